/* hypervisor.Hypervisor: the Kata shim's CreateVM / StartVM / StopVM / Version.
 * Decodes requests, drives the pod lifecycle, maps errors to gRPC codes. */
#define LOG_COMPONENT "adaptor/hypervisor"
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "grpc-status.h"
#include "kube-pull-secrets.h"
#include "kube-service.h"
#include "hypervisor.pb-c.h"
#include "log.h"
#include "metrics.h"
#include "pb-strict.h"
#include "pod.h"
#include "sandbox-id.h"
#include "services.h"
#include "state-store.h"
#include "ttrpc.h"
#include "xalloc.h"

static void free_create_req(Hypervisor__CreateVMRequest *r)
{
    hypervisor__create_vmrequest__free_unpacked(r, NULL);
}
static void free_pb_message(ProtobufCMessage *m)
{
    protobuf_c_message_free_unpacked(m, NULL);
}
CAA_DEFINE_CLEANUP(Hypervisor__CreateVMRequest *, free_create_req)
CAA_DEFINE_CLEANUP(ProtobufCMessage *, free_pb_message)

/* Decodes the request strictly (a string holding a NUL is refused, never
 * cut short; a request over limits is refused before it is unpacked);
 * replies INVALID_ARGUMENT and returns NULL on failure. */
static ProtobufCMessage *unpack_request(ttrpc_call *call, const ProtobufCMessageDescriptor *d,
                                        const caa_pb_stats *limits)
{
    size_t len;
    const uint8_t *data = ttrpc_call_payload(call, &len);
    _cleanup_error_ caa_error *e = NULL;
    ProtobufCMessage *m = caa_pb_unpack_strict(d, data, len, limits, &e);
    if (!m)
        ttrpc_call_reply_error(call, GRPC_INVALID_ARGUMENT, "%s", caa_error_msg(e));
    return m;
}

/* StartVM and StopVM carry one sandbox id. */
static const caa_pb_stats id_request_limits = {.string_bytes = CAA_SANDBOX_ID_MAX, .strings = 1};

static void reply_error(ttrpc_call *call, int grpc_code, const caa_error *e)
{
    ttrpc_call_reply_error(call, grpc_code, "%s", caa_error_msg(e));
}

/* Ids that are not valid are never echoed back or logged raw. */
static const char *loggable_id(const char *id)
{
    return caa_sandbox_id_check(id, NULL) == 0 ? id : "<invalid>";
}

/* The part StartVM and StopVM share: decode the request (which carries only
 * the sandbox id) and check the id. Returns the id (malloc'ed), or NULL after
 * replying INVALID_ARGUMENT. */
static char *decode_sandbox_id(ttrpc_call *call, const ProtobufCMessageDescriptor *d,
                               const char *(*id_of)(const ProtobufCMessage *))
{
    _cleanup_(free_pb_messagep) ProtobufCMessage *req = unpack_request(call, d, &id_request_limits);
    if (!req)
        return NULL;
    const char *id = id_of(req) ? id_of(req) : "";
    _cleanup_error_ caa_error *e = NULL;
    if (caa_sandbox_id_check(id, &e) < 0) {
        reply_error(call, GRPC_INVALID_ARGUMENT, e);
        return NULL;
    }
    return xstrdup(id);
}

/* ---------------------------------------------------------------- CreateVM */

static caa_annotation *annotations_of(const Hypervisor__CreateVMRequest *req)
{
    caa_annotation *ann = xnew0(caa_annotation, req->n_annotations + 1);
    for (size_t i = 0; i < req->n_annotations; i++)
        ann[i] = (caa_annotation){req->annotations[i]->key, req->annotations[i]->value};
    return ann;
}

/* Registers the pod and answers; auth_json: the pod's registry credentials. */
static void create_and_reply(caa_manager *m, ttrpc_call *call, const Hypervisor__CreateVMRequest *req,
                             const char *auth_json)
{
    _cleanup_free_ caa_annotation *ann = annotations_of(req);
    const char *id = req->id ? req->id : "";
    caa_pod *pod = NULL;
    _cleanup_error_ caa_error *e = NULL;
    int r = caa_pod_create(m, id, ann, req->n_annotations, req->networknamespacepath, auth_json, &pod, &e);
    if (r < 0) {
        log_pod_error(loggable_id(id), "CreateVM failed: %s", caa_error_msg(e));
        reply_error(call, caa_grpc_code_from_errno(r), e);
        return;
    }
    Hypervisor__CreateVMResponse resp = HYPERVISOR__CREATE_VMRESPONSE__INIT;
    resp.agentsocketpath = (char *)caa_pod_agent_socket(pod);
    ttrpc_call_reply_message(call, &resp.base);
}

/* With Kubernetes on, CreateVM first reads the pod's image-pull secrets
 * (the only Kubernetes data the pod layer needs); the pod layer itself
 * stays synchronous. */
typedef struct create_ctx {
    caa_manager *m;
    ttrpc_call *call;
    Hypervisor__CreateVMRequest *req;
    caa_kube_pull_secrets *fetch;
} create_ctx;

static void on_pull_secrets(int status, char *auth_json, size_t len, caa_error *err, void *opaque)
{
    (void)len;
    create_ctx *ctx = opaque;
    _cleanup_error_ caa_error *e = err;
    if (status < 0) {
        log_pod_error(loggable_id(ctx->req->id), "CreateVM failed: %s", caa_error_msg(e));
        reply_error(ctx->call, caa_grpc_code_from_errno(status), e);
    } else {
        create_and_reply(ctx->m, ctx->call, ctx->req, auth_json);
    }
    caa_kube_secret_free(auth_json);
    free_create_req(ctx->req);
    free(ctx);
}

static void on_create_call_cancelled(ttrpc_call *call, void *opaque)
{
    (void)call;
    create_ctx *ctx = opaque;
    caa_kube_pull_secrets_cancel(ctx->fetch);
}

/* Starts the secrets fetch; false when Kubernetes is off or the request is
 * bad anyway (caa_pod_create reports that). */
static bool fetch_pull_secrets(caa_manager *m, ttrpc_call *call, Hypervisor__CreateVMRequest **req)
{
    caa_kube_client *kube = caa_kube_service_client(m->kube);
    if (!kube || caa_sandbox_id_check((*req)->id ? (*req)->id : "", NULL) < 0)
        return false;
    _cleanup_free_ caa_annotation *ann = annotations_of(*req);
    caa_pod_spec spec;
    if (caa_pod_spec_from_annotations(ann, (*req)->n_annotations, &spec, NULL) < 0)
        return false;
    create_ctx *ctx = xnew0(create_ctx, 1);
    *ctx = (create_ctx){.m = m, .call = call, .req = *req};
    int r = caa_kube_pull_secrets_fetch(kube, spec.pod_name, spec.pod_namespace, on_pull_secrets, ctx,
                                        &ctx->fetch, NULL);
    caa_pod_spec_done(&spec);
    if (r < 0) {
        free(ctx);
        return false;
    }
    *req = NULL; /* the context owns it now */
    ttrpc_call_set_cancel_cb(call, on_create_call_cancelled, ctx);
    return true;
}

/* Annotations over their limits are refused before the request is unpacked,
 * so its loop time stays bounded (bench/hostile-requests); the exact count
 * follows in caa_pod_spec_from_annotations. The id and the netns path are
 * the only other strings. */
static const caa_pb_stats create_vm_limits = {
    .string_bytes = CAA_ANNOTATIONS_MAX_TOTAL + CAA_SANDBOX_ID_MAX + PATH_MAX,
    .strings = 2 * CAA_ANNOTATIONS_MAX_COUNT + 2,
    .messages = CAA_ANNOTATIONS_MAX_COUNT,
};

static void handle_create_vm(ttrpc_call *call, void *opaque)
{
    caa_manager *m = opaque;
    _cleanup_(free_create_reqp) Hypervisor__CreateVMRequest *req = NULL;
    req = (Hypervisor__CreateVMRequest *)unpack_request(call, &hypervisor__create_vmrequest__descriptor,
                                                        &create_vm_limits);
    if (!req)
        return;
    const char *id = req->id ? req->id : "";
    log_pod_info(loggable_id(id), "CreateVM (%zu annotations, netns %s)", req->n_annotations,
                 req->networknamespacepath && *req->networknamespacepath ? req->networknamespacepath
                                                                         : "none");
    if (!fetch_pull_secrets(m, call, &req))
        create_and_reply(m, call, req, NULL);
}

/* ---------------------------------------------------------------- StartVM */

typedef struct start_ctx {
    uint64_t started_ns; /* for caa_startvm_duration_seconds */
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
    caa_metrics_observe_startvm((double)(uv_hrtime() - ctx->started_ns) / 1e9);
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

static const char *start_req_id(const ProtobufCMessage *m)
{
    return ((const Hypervisor__StartVMRequest *)m)->id;
}

static void handle_start_vm(ttrpc_call *call, void *opaque)
{
    caa_manager *m = opaque;
    _cleanup_free_ char *id = decode_sandbox_id(call, &hypervisor__start_vmrequest__descriptor, start_req_id);
    if (!id)
        return;
    _cleanup_error_ caa_error *e = NULL;
    caa_pod *pod = caa_pod_find(m, id);
    if (!pod) {
        log_pod_warn(id, "StartVM: sandbox does not exist");
        ttrpc_call_reply_error(call, GRPC_NOT_FOUND, "starting VM: sandbox %s does not exist", id);
        return;
    }
    log_pod_info(id, "StartVM");
    start_ctx *ctx = xnew0(start_ctx, 1);
    ctx->started_ns = uv_hrtime();
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
    uint64_t started_ns; /* for caa_stopvm_duration_seconds */
    ttrpc_call *call;
    char *id;
} stop_ctx;

static void on_stop_done(int status, caa_error *err, void *opaque)
{
    stop_ctx *ctx = opaque;
    _cleanup_error_ caa_error *e = err;
    caa_metrics_observe_stopvm((double)(uv_hrtime() - ctx->started_ns) / 1e9);
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

static const char *stop_req_id(const ProtobufCMessage *m)
{
    return ((const Hypervisor__StopVMRequest *)m)->id;
}

static void handle_stop_vm(ttrpc_call *call, void *opaque)
{
    caa_manager *m = opaque;
    _cleanup_free_ char *id = decode_sandbox_id(call, &hypervisor__stop_vmrequest__descriptor, stop_req_id);
    if (!id)
        return;
    _cleanup_error_ caa_error *e = NULL;
    caa_pod *pod = caa_pod_find(m, id);
    if (!pod) {
        /* A CreateVM killed before its first state left a directory with no
         * instance behind: the shim's StopVM removes it (then as upstream). */
        _cleanup_free_ char *held = NULL;
        if (caa_state_store_remove_leftover(m->cfg->pods_dir, id, &held, &e) > 0)
            log_pod_warn(id, "StopVM: removed the directory of an unfinished CreateVM (it held: %s)", held);
        else if (e)
            log_pod_error(id, "StopVM: %s", caa_error_msg(e));
        /* Upstream's text and code (a plain Go error: UNKNOWN). */
        log_pod_warn(id, "StopVM: sandbox does not exist");
        ttrpc_call_reply_error(call, GRPC_UNKNOWN, "stopping VM: sandbox %s does not exist", id);
        return;
    }
    log_pod_info(id, "StopVM (state %s)", caa_pod_state_name(caa_pod_get_state(pod)));
    stop_ctx *ctx = xnew0(stop_ctx, 1);
    ctx->started_ns = uv_hrtime();
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
