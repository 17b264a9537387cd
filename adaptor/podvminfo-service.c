/* podvminfo.PodVMInfo/GetInfo: the instance id of a pod, optionally waiting
 * until StartVM records one. Waiters sit in a list that a pod observer
 * (instance_changed) walks; no polling. A waiter ends when the
 * instance is known, at the call's deadline, or when the caller disconnects. */
#define LOG_COMPONENT "adaptor/podvminfo"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "grpc-status.h"
#include "log.h"
#include "pb-strict.h"
#include "pod.h"
#include "podvminfo.pb-c.h"
#include "services.h"
#include "ttrpc.h"
#include "xalloc.h"

typedef struct info_waiter {
    caa_list node;
    caa_manager *mgr;
    ttrpc_call *call;
    char *pod_name;
    char *pod_namespace;
    uv_timer_t timer;
    bool has_timer;
} info_waiter;

static void reply_vmid(ttrpc_call *call, const caa_pod *pod)
{
    Podvminfo__GetInfoResponse resp = PODVMINFO__GET_INFO_RESPONSE__INIT;
    resp.vmid = (char *)caa_pod_instance_id(pod);
    resp.agentconnection = (char *)caa_pod_agent_connection(pod);
    if (strcmp(resp.agentconnection, "reconnecting") == 0)
        log_info("GetInfo for %s/%s: instance %s, agent proxy reconnecting", caa_pod_namespace(pod),
                 caa_pod_name(pod), resp.vmid);
    ttrpc_call_reply_message(call, &resp.base);
}

static void on_waiter_closed(uv_handle_t *h)
{
    free(h->data);
}

static void waiter_free(info_waiter *w)
{
    caa_list_remove(&w->node);
    free(w->pod_name);
    free(w->pod_namespace);
    if (w->has_timer) {
        w->timer.data = w;
        uv_close((uv_handle_t *)&w->timer, on_waiter_closed);
    } else {
        free(w);
    }
}

static void on_waiter_deadline(uv_timer_t *t)
{
    info_waiter *w = t->data;
    log_debug("GetInfo for %s/%s: deadline passed", w->pod_namespace, w->pod_name);
    ttrpc_call_reply_error(w->call, GRPC_DEADLINE_EXCEEDED, "timed out waiting for the pod VM of %s/%s",
                           w->pod_namespace, w->pod_name);
    waiter_free(w);
}

static void on_waiter_cancelled(ttrpc_call *call, void *opaque)
{
    info_waiter *w = opaque;
    log_debug("GetInfo for %s/%s: caller went away", w->pod_namespace, w->pod_name);
    ttrpc_call_reply_error(call, GRPC_CANCELLED, "caller went away");
    waiter_free(w);
}

/* Pod observer: answers the waiters of a pod whose instance was just recorded. */
static void on_instance_changed(const caa_pod *pod, void *opaque)
{
    caa_manager *m = opaque;
    const char *vmid = caa_pod_instance_id(pod);
    if (!vmid)
        return;
    caa_list *pos, *tmp;
    caa_list_foreach_safe(pos, tmp, &m->waiters)
    {
        info_waiter *w = caa_list_entry(pos, info_waiter, node);
        if (strcmp(w->pod_name, caa_pod_name(pod)) == 0 &&
            strcmp(w->pod_namespace, caa_pod_namespace(pod)) == 0) {
            reply_vmid(w->call, pod);
            waiter_free(w);
        }
    }
}

static const caa_pod_observer waiter_observer = {
    .instance_changed = on_instance_changed,
};

void caa_podvminfo_cancel_all(caa_manager *m)
{
    caa_list *pos, *tmp;
    caa_list_foreach_safe(pos, tmp, &m->waiters)
    {
        info_waiter *w = caa_list_entry(pos, info_waiter, node);
        ttrpc_call_reply_error(w->call, GRPC_UNAVAILABLE, "the daemon is shutting down");
        waiter_free(w);
    }
}

static void handle_get_info(ttrpc_call *call, void *opaque)
{
    caa_manager *m = opaque;
    size_t len;
    const uint8_t *data = ttrpc_call_payload(call, &len);
    /* Two Kubernetes names: anything longer is refused before it is unpacked. */
    static const caa_pb_stats limits = {.string_bytes = 2 * 253, .strings = 2};
    _cleanup_error_ caa_error *e = NULL;
    Podvminfo__GetInfoRequest *req = (Podvminfo__GetInfoRequest *)caa_pb_unpack_strict(
        &podvminfo__get_info_request__descriptor, data, len, &limits, &e);
    if (!req) {
        ttrpc_call_reply_error(call, GRPC_INVALID_ARGUMENT, "GetInfo: %s", caa_error_msg(e));
        return;
    }
    const char *name = req->podname ? req->podname : "";
    const char *ns = req->podnamespace ? req->podnamespace : "";
    const caa_pod *pod = *name && *ns ? caa_pod_find_by_name(m, name, ns) : NULL;
    if (!*name || !*ns) {
        ttrpc_call_reply_error(call, GRPC_INVALID_ARGUMENT, "GetInfo needs a pod name and namespace");
    } else if (pod) {
        reply_vmid(call, pod);
    } else if (!req->wait) {
        ttrpc_call_reply_error(call, GRPC_NOT_FOUND, "no pod VM for pod %s/%s", ns, name);
    } else if (m->shutting_down) {
        ttrpc_call_reply_error(call, GRPC_UNAVAILABLE, "the daemon is shutting down");
    } else {
        info_waiter *w = xnew0(info_waiter, 1);
        w->mgr = m;
        w->call = call;
        w->pod_name = xstrdup(name);
        w->pod_namespace = xstrdup(ns);
        caa_list_append(&m->waiters, &w->node);
        uint64_t ms = caa_call_deadline_ms(call);
        if (ms > 0) {
            uv_timer_init(m->loop, &w->timer);
            w->timer.data = w;
            w->has_timer = true;
            uv_timer_start(&w->timer, on_waiter_deadline, ms, 0);
        }
        ttrpc_call_set_cancel_cb(call, on_waiter_cancelled, w);
        log_debug("GetInfo for %s/%s: waiting for the pod VM", ns, name);
    }
    podvminfo__get_info_request__free_unpacked(req, NULL);
}

static const ttrpc_method_entry podvminfo_methods[] = {
    {"GetInfo", handle_get_info},
};

int caa_podvminfo_service_register(caa_manager *m, ttrpc_server *s, caa_error **err)
{
    int r = ttrpc_server_register(s, CAA_PODVMINFO_SERVICE, podvminfo_methods,
                                  CAA_ARRAY_SIZE(podvminfo_methods), m, err);
    if (r < 0)
        return r;
    caa_manager_add_pod_observer(m, &waiter_observer, m);
    return 0;
}
