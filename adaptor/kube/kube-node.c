/* Node extended resource: a small state machine of API calls per operation.
 * The operation is freed only after its current call has called back, so a
 * cancel never races a callback. */
#define LOG_COMPONENT "adaptor/kube"
#include "kube-node.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube-status.h"
#include "log.h"
#include "xalloc.h"

#define RETRY_FIRST_MS 1000
#define RETRY_MAX_MS 30000
#define RELEASE_TIMEOUT_MS 5000
#define RELEASE_ATTEMPTS 2
/* The JSON pointer of the resource in node status capacity ("/" is "~1"). */
#define CAPACITY_PATH "/status/capacity/kata.peerpods.io~1vm"

typedef enum { STEP_OWNER, STEP_CAPACITY, STEP_GET, STEP_REMOVE } step;

struct caa_kube_node {
    caa_kube_client *c;
    uv_timer_t retry; /* advertise: the next round after a failure */
    caa_kube_call *call;
    step step;
    bool release;
    bool stopped; /* caa_kube_node_free() was called */
    bool timer_closed;
    char *node_name, *pod_uid, *path, *status_path;
    int64_t limit;
    uint64_t delay_ms;
    caa_kube_node_cb cb;
    void *opaque;
};

json_t *caa_kube_node_capacity_patch(const char *op, int64_t limit)
{
    char value[24];
    snprintf(value, sizeof(value), "%" PRId64, limit);
    json_t *patch = json_object();
    json_object_set_new(patch, "op", json_string(op));
    json_object_set_new(patch, "path", json_string(CAPACITY_PATH));
    /* A resource quantity is a string ("10"), as upstream sends it. */
    if (strcmp(op, "remove") != 0)
        json_object_set_new(patch, "value", json_string(value));
    return json_pack("[o]", patch);
}

json_t *caa_kube_node_owner_patch(const char *pod_uid)
{
    return json_pack("{s:{s:{s:s}}}", "metadata", "annotations", CAA_KUBE_OWNER_ANNOTATION, pod_uid);
}

static bool has_uid(const caa_kube_node *n)
{
    return n->pod_uid && *n->pod_uid;
}

static void on_timer_closed(uv_handle_t *h)
{
    caa_kube_node *n = h->data;
    free(n->node_name);
    free(n->pod_uid);
    free(n->path);
    free(n->status_path);
    free(n);
}

static void dispose(caa_kube_node *n)
{
    uv_close((uv_handle_t *)&n->retry, on_timer_closed);
}

static void complete(caa_kube_node *n, int status, caa_error *err)
{
    if (!n->stopped) {
        n->stopped = true;
        n->cb(status, err, n->opaque);
    } else {
        caa_error_free(err);
    }
    dispose(n);
}

static void on_call_done(int status, json_t *obj, caa_error *err, void *opaque);

static void start_step(caa_kube_node *n, step s)
{
    n->step = s;
    _cleanup_(json_decrefp) json_t *body = NULL;
    caa_kube_request req = {.path = n->path};
    switch (s) {
    case STEP_OWNER:
        body = caa_kube_node_owner_patch(n->pod_uid);
        req.verb = "PATCH";
        req.content_type = CAA_KUBE_MERGE_PATCH;
        break;
    case STEP_CAPACITY:
    case STEP_REMOVE:
        body = caa_kube_node_capacity_patch(s == STEP_CAPACITY ? "add" : "remove", n->limit);
        req.verb = "PATCH";
        req.path = n->status_path;
        req.content_type = CAA_KUBE_JSON_PATCH;
        break;
    case STEP_GET:
        req.verb = "GET";
        break;
    }
    req.body = body;
    if (n->release) {
        req.max_attempts = RELEASE_ATTEMPTS;
        req.timeout_ms = RELEASE_TIMEOUT_MS;
    }
    caa_error *err = NULL;
    if (caa_kube_call_start(n->c, &req, on_call_done, n, &n->call, &err) < 0)
        complete(n, err->code, err);
}

static void on_retry(uv_timer_t *t)
{
    caa_kube_node *n = t->data;
    if (n->release)
        start_step(n, has_uid(n) ? STEP_GET : STEP_REMOVE);
    else
        start_step(n, has_uid(n) ? STEP_OWNER : STEP_CAPACITY);
}

/* The owner annotation of a node object, or NULL. */
static const char *owner_of(const json_t *node)
{
    return json_string_value(json_object_get(
        json_object_get(json_object_get(node, "metadata"), "annotations"), CAA_KUBE_OWNER_ANNOTATION));
}

static void on_call_done(int status, json_t *obj_in, caa_error *err, void *opaque)
{
    caa_kube_node *n = opaque;
    _cleanup_(json_decrefp) json_t *obj = obj_in;
    n->call = NULL;
    if (n->stopped) {
        caa_error_free(err);
        dispose(n);
        return;
    }
    if (status < 0 && !n->release) {
        log_warn("advertising %s on node %s: %s (retrying in %" PRIu64 " s)", CAA_KUBE_NODE_RESOURCE,
                 n->node_name, caa_error_msg(err), n->delay_ms / 1000);
        caa_error_free(err);
        uv_timer_start(&n->retry, on_retry, n->delay_ms, 0);
        n->delay_ms = n->delay_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : n->delay_ms * 2;
        return;
    }
    if (status < 0) {
        complete(n, status, err);
        return;
    }
    switch (n->step) {
    case STEP_OWNER:
        start_step(n, STEP_CAPACITY);
        return;
    case STEP_CAPACITY:
        log_info("advertised %s = %" PRId64 " on node %s", CAA_KUBE_NODE_RESOURCE, n->limit, n->node_name);
        complete(n, 0, NULL);
        return;
    case STEP_GET: {
        const char *owner = owner_of(obj);
        if (has_uid(n) && (!owner || strcmp(owner, n->pod_uid) != 0)) {
            log_info("node %s: %s is owned by another daemon now; leaving it", n->node_name,
                     CAA_KUBE_NODE_RESOURCE);
            complete(n, 0, NULL);
            return;
        }
        start_step(n, STEP_REMOVE);
        return;
    }
    case STEP_REMOVE:
        log_info("removed %s from node %s", CAA_KUBE_NODE_RESOURCE, n->node_name);
        complete(n, 0, NULL);
        return;
    }
}

static caa_kube_node *node_new(caa_kube_client *c, const char *node_name, const char *pod_uid,
                               caa_kube_node_cb cb, void *opaque)
{
    caa_kube_node *n = xnew0(caa_kube_node, 1);
    n->c = c;
    n->node_name = xstrdup(node_name);
    n->pod_uid = pod_uid && *pod_uid ? xstrdup(pod_uid) : NULL;
    n->path = xasprintf("/api/v1/nodes/%s", node_name);
    n->status_path = xasprintf("/api/v1/nodes/%s/status", node_name);
    n->delay_ms = RETRY_FIRST_MS;
    n->cb = cb;
    n->opaque = opaque;
    uv_timer_init(caa_kube_client_loop(c), &n->retry);
    n->retry.data = n;
    return n;
}

int caa_kube_node_advertise(caa_kube_client *c, const char *node_name, const char *pod_uid, int64_t limit,
                            caa_kube_node_cb cb, void *opaque, caa_kube_node **ret, caa_error **err)
{
    if (!caa_kube_name_valid(node_name))
        return caa_error_set(err, -EINVAL, "NODE_NAME is not a valid node name");
    caa_kube_node *n = node_new(c, node_name, pod_uid, cb, opaque);
    n->limit = limit;
    /* The first step starts from the timer: cb never runs before we return. */
    uv_timer_start(&n->retry, on_retry, 0, 0);
    *ret = n;
    return 0;
}

int caa_kube_node_release(caa_kube_client *c, const char *node_name, const char *pod_uid, caa_kube_node_cb cb,
                          void *opaque, caa_kube_node **ret, caa_error **err)
{
    if (!caa_kube_name_valid(node_name))
        return caa_error_set(err, -EINVAL, "NODE_NAME is not a valid node name");
    caa_kube_node *n = node_new(c, node_name, pod_uid, cb, opaque);
    n->release = true;
    uv_timer_start(&n->retry, on_retry, 0, 0);
    *ret = n;
    return 0;
}

void caa_kube_node_free(caa_kube_node *n)
{
    if (!n || n->stopped)
        return;
    n->stopped = true;
    if (n->call) {
        caa_kube_call_cancel(n->call); /* on_call_done disposes */
        return;
    }
    uv_timer_stop(&n->retry);
    dispose(n);
}
