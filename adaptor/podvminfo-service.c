/* podvminfo.PodVMInfo/GetInfo: the instance id of a pod, optionally waiting
 * until StartVM records one. Waiters sit in a list that
 * caa_podvminfo_instance_known() walks; no polling. A waiter ends when the
 * instance is known, at the call's deadline, or when the caller disconnects. */
#define LOG_COMPONENT "adaptor/podvminfo"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "grpc-status.h"
#include "log.h"
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

static void reply_vmid(ttrpc_call *call, const char *vmid)
{
    Podvminfo__GetInfoResponse resp = PODVMINFO__GET_INFO_RESPONSE__INIT;
    resp.vmid = (char *)vmid;
    ttrpc_call_reply_message(call, &resp.base);
}

/* The newest pod with this name and namespace whose instance id is known. */
static const caa_pod *find_instance(caa_manager *m, const char *name, const char *ns)
{
    const caa_pod *found = NULL;
    caa_list *pos, *tmp;
    caa_list_foreach_safe(pos, tmp, &m->pods)
    {
        const caa_pod *pod = caa_list_entry(pos, caa_pod, node);
        if (pod->rec.instance_id && strcmp(pod->rec.pod_name, name) == 0 &&
            strcmp(pod->rec.pod_namespace, ns) == 0)
            found = pod;
    }
    return found;
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

void caa_podvminfo_instance_known(caa_manager *m, caa_pod *pod)
{
    caa_list *pos, *tmp;
    caa_list_foreach_safe(pos, tmp, &m->waiters)
    {
        info_waiter *w = caa_list_entry(pos, info_waiter, node);
        if (strcmp(w->pod_name, pod->rec.pod_name) == 0 &&
            strcmp(w->pod_namespace, pod->rec.pod_namespace) == 0) {
            reply_vmid(w->call, pod->rec.instance_id);
            waiter_free(w);
        }
    }
}

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
    Podvminfo__GetInfoRequest *req = podvminfo__get_info_request__unpack(NULL, len, data);
    if (!req) {
        ttrpc_call_reply_error(call, GRPC_INVALID_ARGUMENT, "GetInfo: cannot decode the request");
        return;
    }
    const char *name = req->podname ? req->podname : "";
    const char *ns = req->podnamespace ? req->podnamespace : "";
    const caa_pod *pod = *name && *ns ? find_instance(m, name, ns) : NULL;
    if (!*name || !*ns) {
        ttrpc_call_reply_error(call, GRPC_INVALID_ARGUMENT, "GetInfo needs a pod name and namespace");
    } else if (pod) {
        reply_vmid(call, pod->rec.instance_id);
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
    return ttrpc_server_register(s, CAA_PODVMINFO_SERVICE, podvminfo_methods,
                                 CAA_ARRAY_SIZE(podvminfo_methods), m, err);
}
