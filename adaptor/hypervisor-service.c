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

/* Decodes the call's request into ret; when it does not decode, answers
 * INVALID_ARGUMENT and returns from the handler. */
#define UNPACK_OR_RETURN(call, fn, ret, method)                                                              \
    do {                                                                                                     \
        size_t len_;                                                                                         \
        const uint8_t *data_ = ttrpc_call_payload((call), &len_);                                            \
        (ret) = fn(NULL, len_, data_);                                                                       \
        if (!(ret)) {                                                                                        \
            ttrpc_call_reply_error((call), GRPC_INVALID_ARGUMENT, "%s: cannot decode the request", method);  \
            return;                                                                                          \
        }                                                                                                    \
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
    UNPACK_OR_RETURN(call, hypervisor__create_vmrequest__unpack, req, "CreateVM");
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
    resp.agentsocketpath = (char *)caa_pod_agent_socket(pod);
    ttrpc_call_reply_message(call, &resp.base);
}

/* ---------------------------------------------------------------- StartVM, StopVM */

/* One StartVM or StopVM call waiting for the lifecycle's answer. */
typedef struct vm_call {
    ttrpc_call *call;
    caa_pod *pod;
    char *id;
    const char *method;       /* "StartVM" / "StopVM" */
    const char *error_prefix; /* put before an error answer, or NULL */
} vm_call;

static vm_call *vm_call_new(ttrpc_call *call, caa_pod *pod, const char *method, const char *error_prefix)
{
    vm_call *vc = xnew0(vm_call, 1);
    *vc = (vm_call){call, pod, xstrdup(caa_pod_id(pod)), method, error_prefix};
    return vc;
}

static void vm_call_free(vm_call *vc)
{
    free(vc->id);
    free(vc);
}

static void on_vm_call_done(int status, caa_error *err, void *opaque)
{
    vm_call *vc = opaque;
    _cleanup_error_ caa_error *e = err;
    if (status == 0) {
        log_pod_info(vc->id, "%s done", vc->method);
        ttrpc_call_reply(vc->call, NULL, 0);
    } else {
        if (!e)
            e = caa_error_new(status, "%s failed", vc->method);
        if (vc->error_prefix)
            caa_error_prefix(&e, "%s", vc->error_prefix);
        log_pod_error(vc->id, "%s failed: %s", vc->method, caa_error_msg(e));
        reply_error(vc->call, caa_grpc_code_from_provider_errno(status), e);
    }
    vm_call_free(vc);
}

/* The pod a StartVM/StopVM names; NULL after answering the call (invalid id:
 * INVALID_ARGUMENT; unknown sandbox: missing_code "<verb> VM: sandbox <id> does not exist"). */
static caa_pod *requested_pod(caa_manager *m, ttrpc_call *call, const char *method, const char *raw_id,
                              int missing_code, const char *verb)
{
    const char *id = raw_id ? raw_id : "";
    _cleanup_error_ caa_error *e = NULL;
    if (caa_sandbox_id_check(id, &e) < 0) {
        reply_error(call, GRPC_INVALID_ARGUMENT, e);
        return NULL;
    }
    caa_pod *pod = caa_pod_find(m, id);
    if (!pod) {
        log_pod_warn(id, "%s: sandbox does not exist", method);
        ttrpc_call_reply_error(call, missing_code, "%s VM: sandbox %s does not exist", verb, id);
    }
    return pod;
}

static void on_start_call_cancelled(ttrpc_call *call, void *opaque)
{
    (void)call;
    vm_call *vc = opaque;
    caa_pod_cancel_start(vc->pod);
}

static void handle_start_vm(ttrpc_call *call, void *opaque)
{
    caa_manager *m = opaque;
    _cleanup_(free_start_reqp) Hypervisor__StartVMRequest *req = NULL;
    UNPACK_OR_RETURN(call, hypervisor__start_vmrequest__unpack, req, "StartVM");
    caa_pod *pod = requested_pod(m, call, "StartVM", req->id, GRPC_NOT_FOUND, "starting");
    if (!pod)
        return;
    const char *id = caa_pod_id(pod);
    log_pod_info(id, "StartVM");
    vm_call *vc = vm_call_new(call, pod, "StartVM", NULL);
    _cleanup_error_ caa_error *e = NULL;
    int r = caa_pod_start(pod, on_vm_call_done, vc, &e);
    if (r < 0) {
        log_pod_error(id, "StartVM failed: %s", caa_error_msg(e));
        reply_error(call, caa_grpc_code_from_errno(r), e);
        vm_call_free(vc);
        return;
    }
    ttrpc_call_set_cancel_cb(call, on_start_call_cancelled, vc);
}

static void handle_stop_vm(ttrpc_call *call, void *opaque)
{
    caa_manager *m = opaque;
    _cleanup_(free_stop_reqp) Hypervisor__StopVMRequest *req = NULL;
    UNPACK_OR_RETURN(call, hypervisor__stop_vmrequest__unpack, req, "StopVM");
    /* Upstream's text and code for an unknown sandbox (a plain Go error: UNKNOWN). */
    caa_pod *pod = requested_pod(m, call, "StopVM", req->id, GRPC_UNKNOWN, "stopping");
    if (!pod)
        return;
    log_pod_info(caa_pod_id(pod), "StopVM (state %s)", caa_pod_state_name(caa_pod_get_state(pod)));
    caa_pod_stop(pod, on_vm_call_done, vm_call_new(call, pod, "StopVM", "stopping VM"));
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
