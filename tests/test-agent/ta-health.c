/* grpc.Health: Check answers SERVING, Version names this program. */
#define LOG_COMPONENT "test-agent"

#include "caa-version.h"
#include "cleanup.h"
#include "health.pb-c.h"
#include "log.h"
#include "test-agent.h"

ta_agent *ta_begin(ttrpc_call *c, void *opaque)
{
    ta_agent *a = opaque;
    log_debug("request %s/%s", ttrpc_call_service(c), ttrpc_call_method(c));
    ta_record_call(a->record, c);
    return a;
}

static void h_check(ttrpc_call *c, void *opaque)
{
    ta_begin(c, opaque);
    _cleanup_message_ Grpc__CheckRequest *req = ta_unpack(c, &grpc__check_request__descriptor);
    if (!req)
        return;
    Grpc__HealthCheckResponse resp = GRPC__HEALTH_CHECK_RESPONSE__INIT;
    resp.status = GRPC__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    ta_reply(c, &resp.base);
}

static void h_version(ttrpc_call *c, void *opaque)
{
    ta_begin(c, opaque);
    _cleanup_message_ Grpc__CheckRequest *req = ta_unpack(c, &grpc__check_request__descriptor);
    if (!req)
        return;
    Grpc__VersionCheckResponse resp = GRPC__VERSION_CHECK_RESPONSE__INIT;
    resp.grpc_version = (char *)"0.0.1";
    resp.agent_version = (char *)(TA_NAME " " CAA_VERSION);
    ta_reply(c, &resp.base);
}

static const ttrpc_method_entry health_methods[] = {
    {"Check", h_check},
    {"Version", h_version},
};

int ta_register_health(ta_agent *a, caa_error **err)
{
    return ttrpc_server_register(a->server, "grpc.Health", health_methods, CAA_ARRAY_SIZE(health_methods), a,
                                 err);
}
