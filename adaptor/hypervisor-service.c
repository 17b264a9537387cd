/* hypervisor.Hypervisor: the Kata shim's CreateVM / StartVM / StopVM / Version.
 * Decodes requests, drives the pod lifecycle, maps errors to gRPC codes. */
#define LOG_COMPONENT "adaptor/hypervisor"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "grpc-status.h"
#include "hypervisor.pb-c.h"
#include "log.h"
#include "pod.h"
#include "sandbox-id.h"
#include "services.h"
#include "ttrpc.h"
#include "xalloc.h"

static void free_create_req(Hypervisor__CreateVMRequest *r)
{
    hypervisor__create_vmrequest__free_unpacked(r, NULL);
}
static void free_start_req(Hypervisor__StartVMRequest *r)
{
    hypervisor__start_vmrequest__free_unpacked(r, NULL);
}
static void free_stop_req(Hypervisor__StopVMRequest *r)
{
    hypervisor__stop_vmrequest__free_unpacked(r, NULL);
}
CAA_DEFINE_CLEANUP(Hypervisor__CreateVMRequest *, free_create_req)
CAA_DEFINE_CLEANUP(Hypervisor__StartVMRequest *, free_start_req)
CAA_DEFINE_CLEANUP(Hypervisor__StopVMRequest *, free_stop_req)

#define UNPACK(call, fn, ret)                                                                                \
    do {                                                                                                     \
        size_t len_;                                                                                         \
        const uint8_t *data_ = ttrpc_call_payload((call), &len_);                                            \
        (ret) = fn(NULL, len_, data_);                                                                       \
    } while (0)

static void reply_error(ttrpc_call *call, int grpc_code, const caa_error *e)
{
    ttrpc_call_reply_error(call, grpc_code, "%s", caa_error_msg(e));
}

/* Ids that are not valid are never echoed back or logged raw. */
static const char *loggable_id(const char *id)
{
    return caa_sandbox_id_check(id, NULL) == 0 ? id : "<invalid>";
}

/* ---------------------------------------------------------------- CreateVM */

static void handle_create_vm(ttrpc_call *call, void *opaque)
{
    caa_manager *m = opaque;
    _cleanup_(free_create_reqp) Hypervisor__CreateVMRequest *req = NULL;
    UNPACK(call, hypervisor__create_vmrequest__unpack, req);
    if (!req) {
        ttrpc_call_reply_error(call, GRPC_INVALID_ARGUMENT, "CreateVM: cannot decode the request");
        return;
    }
    _cleanup_free_ caa_annotation *ann = xnew0(caa_annotation, req->n_annotations + 1);
    for (size_t i = 0; i < req->n_annotations; i++)
        ann[i] = (caa_annotation){req->annotations[i]->key, req->annotations[i]->value};

    const char *id = req->id ? req->id : "";
    log_pod_info(loggable_id(id), "CreateVM (%zu annotations, netns %s)", req->n_annotations,
                 req->networknamespacepath && *req->networknamespacepath ? req->networknamespacepath
                                                                         : "none");
    caa_pod *pod = NULL;
    _cleanup_error_ caa_error *e = NULL;
    int r = caa_pod_create(m, id, ann, req->n_annotations, req->networknamespacepath, &pod, &e);
    if (r < 0) {
        log_pod_error(loggable_id(id), "CreateVM failed: %s", caa_error_msg(e));
        reply_error(call, caa_grpc_code_from_errno(r), e);
        return;
    }
    Hypervisor__CreateVMResponse resp = HYPERVISOR__CREATE_VMRESPONSE__INIT;
    resp.agentsocketpath = pod->agent_socket;
    ttrpc_call_reply_message(call, &resp.base);
}

/* ---------------------------------------------------------------- StartVM */

typedef struct start_ctx {
    ttrpc_call *call;
    caa_pod *pod;
    char *id;
    uv_timer_t deadline; /* the call's timeout_nano, when it has one */
    bool has_deadline;
    bool deadline_passed;
} start_ctx;

static void start_ctx_closed(uv_handle_t *h)
{
    free(h->data);
}

static void start_ctx_free(start_ctx *ctx)
{
    free(ctx->id);
    if (ctx->has_deadline)
        uv_close((uv_handle_t *)&ctx->deadline, start_ctx_closed);
    else
        free(ctx);
}

static void on_start_done(int status, caa_error *err, void *opaque)
{
    start_ctx *ctx = opaque;
    _cleanup_error_ caa_error *e = err;
    if (status == 0) {
        log_pod_info(ctx->id, "StartVM done");
        ttrpc_call_reply(ctx->call, NULL, 0);
    } else if (status == -ECANCELED && ctx->deadline_passed) {
        log_pod_error(ctx->id, "StartVM failed: the caller's deadline passed");
        ttrpc_call_reply_error(ctx->call, GRPC_DEADLINE_EXCEEDED, "StartVM: the request's deadline passed");
    } else {
        if (!e)
            e = caa_error_new(status, "StartVM failed");
        log_pod_error(ctx->id, "StartVM failed: %s", caa_error_msg(e));
        reply_error(ctx->call, caa_grpc_code_from_provider_errno(status), e);
    }
    start_ctx_free(ctx);
}

/* The Kata shim gives StartVM a deadline (timeout_nano) and gives up at it,
 * possibly keeping the connection: the start is cancelled then too, through
 * the same path as a disconnect. */
static void on_start_deadline(uv_timer_t *t)
{
    start_ctx *ctx = t->data;
    log_pod_warn(ctx->id, "StartVM: the request's deadline passed, cancelling the start");
    ctx->deadline_passed = true;
    caa_pod_cancel_start(ctx->pod);
}

static void on_start_call_cancelled(ttrpc_call *call, void *opaque)
{
    (void)call;
    start_ctx *ctx = opaque;
    caa_pod_cancel_start(ctx->pod);
}

static void handle_start_vm(ttrpc_call *call, void *opaque)
{
    caa_manager *m = opaque;
    _cleanup_(free_start_reqp) Hypervisor__StartVMRequest *req = NULL;
    UNPACK(call, hypervisor__start_vmrequest__unpack, req);
    if (!req) {
        ttrpc_call_reply_error(call, GRPC_INVALID_ARGUMENT, "StartVM: cannot decode the request");
        return;
    }
    const char *id = req->id ? req->id : "";
    _cleanup_error_ caa_error *e = NULL;
    if (caa_sandbox_id_check(id, &e) < 0) {
        reply_error(call, GRPC_INVALID_ARGUMENT, e);
        return;
    }
    caa_pod *pod = caa_manager_find_pod(m, id);
    if (!pod) {
        log_pod_warn(id, "StartVM: sandbox does not exist");
        ttrpc_call_reply_error(call, GRPC_NOT_FOUND, "starting VM: sandbox %s does not exist", id);
        return;
    }
    log_pod_info(id, "StartVM");
    start_ctx *ctx = xnew0(start_ctx, 1);
    ctx->call = call;
    ctx->pod = pod;
    ctx->id = xstrdup(id);
    int r = caa_pod_start(pod, on_start_done, ctx, &e);
    if (r < 0) {
        log_pod_error(id, "StartVM failed: %s", caa_error_msg(e));
        reply_error(call, caa_grpc_code_from_errno(r), e);
        free(ctx->id);
        free(ctx);
        return;
    }
    ttrpc_call_set_cancel_cb(call, on_start_call_cancelled, ctx);
    uint64_t ms = caa_call_deadline_ms(call);
    if (ms > 0) {
        uv_timer_init(m->loop, &ctx->deadline);
        ctx->deadline.data = ctx;
        ctx->has_deadline = true;
        uv_timer_start(&ctx->deadline, on_start_deadline, ms, 0);
        /* It must not keep the loop alive at shutdown: a start whose
         * callback a torn-down provider dropped is answered once the loop
         * has run dry (caa_pod_abandon). */
        uv_unref((uv_handle_t *)&ctx->deadline);
    }
}

/* ---------------------------------------------------------------- StopVM */

typedef struct stop_ctx {
    ttrpc_call *call;
    char *id;
} stop_ctx;

static void on_stop_done(int status, caa_error *err, void *opaque)
{
    stop_ctx *ctx = opaque;
    _cleanup_error_ caa_error *e = err;
    if (status == 0) {
        log_pod_info(ctx->id, "StopVM done");
        ttrpc_call_reply(ctx->call, NULL, 0);
    } else {
        if (!e)
            e = caa_error_new(status, "StopVM failed");
        caa_error_prefix(&e, "stopping VM");
        log_pod_error(ctx->id, "StopVM failed: %s", caa_error_msg(e));
        reply_error(ctx->call, caa_grpc_code_from_provider_errno(status), e);
    }
    free(ctx->id);
    free(ctx);
}

static void handle_stop_vm(ttrpc_call *call, void *opaque)
{
    caa_manager *m = opaque;
    _cleanup_(free_stop_reqp) Hypervisor__StopVMRequest *req = NULL;
    UNPACK(call, hypervisor__stop_vmrequest__unpack, req);
    if (!req) {
        ttrpc_call_reply_error(call, GRPC_INVALID_ARGUMENT, "StopVM: cannot decode the request");
        return;
    }
    const char *id = req->id ? req->id : "";
    _cleanup_error_ caa_error *e = NULL;
    if (caa_sandbox_id_check(id, &e) < 0) {
        reply_error(call, GRPC_INVALID_ARGUMENT, e);
        return;
    }
    caa_pod *pod = caa_manager_find_pod(m, id);
    if (!pod) {
        /* Upstream's text and code (a plain Go error: UNKNOWN). */
        log_pod_warn(id, "StopVM: sandbox does not exist");
        ttrpc_call_reply_error(call, GRPC_UNKNOWN, "stopping VM: sandbox %s does not exist", id);
        return;
    }
    log_pod_info(id, "StopVM (state %s)", caa_pod_state_name(pod->rec.state));
    stop_ctx *ctx = xnew0(stop_ctx, 1);
    ctx->call = call;
    ctx->id = xstrdup(id);
    caa_pod_stop(pod, on_stop_done, ctx);
}

/* ---------------------------------------------------------------- Version */

static void handle_version(ttrpc_call *call, void *opaque)
{
    (void)opaque;
    Hypervisor__VersionResponse resp = HYPERVISOR__VERSION_RESPONSE__INIT;
    resp.version = (char *)CAA_HYPERVISOR_VERSION;
    ttrpc_call_reply_message(call, &resp.base);
}

static const ttrpc_method_entry hypervisor_methods[] = {
    {"CreateVM", handle_create_vm},
    {"StartVM", handle_start_vm},
    {"StopVM", handle_stop_vm},
    {"Version", handle_version},
};

int caa_hypervisor_service_register(caa_manager *m, ttrpc_server *s, caa_error **err)
{
    return ttrpc_server_register(s, CAA_HYPERVISOR_SERVICE, hypervisor_methods,
                                 CAA_ARRAY_SIZE(hypervisor_methods), m, err);
}
