/* peerpod-ctrl control loop; see controller.h. */
#define LOG_COMPONENT "peerpod-ctrl"
#include "controller.h"

#include <errno.h>
#include <string.h>
#include <sys/time.h>

#include "log.h"
#include "peerpod-owners.h"
#include "peerpod-reconcile.h"
#include "watch-stream.h"
#include "xalloc.h"

#define PEERPODS_PATH "/apis/confidentialcontainers.org/v1alpha1"
/* PeerPods per list page: keeps each answer far below the client's 4 MiB cap
 * with any number of PeerPods (10,000 are about 5 MB). */
#define LIST_PAGE_SIZE 500
/* The API server ends a watch after timeoutSeconds; we then resume from the
 * last resourceVersion. The client's deadline leaves the server time to end it. */
#define WATCH_TIMEOUT_S 300
#define WATCH_DEADLINE_SLACK_MS 30000
#define WATCH_BACKOFF_FIRST_MS 250
#define WATCH_BACKOFF_MAX_MS 30000

typedef struct work_item {
    struct work_item *next;
    controller *c;
    caa_peerpod_action action;
    caa_peerpod_ref ref;
    json_t *obj; /* latest listed object */
    bool in_flight;
    bool seen; /* in the latest list */
    bool instance_deleted;
    unsigned attempts;
    int64_t next_attempt_ms;
} work_item;

struct controller {
    uv_loop_t *loop;
    ctrl_config cfg;
    caa_kube_client *kube;
    caa_provider *provider;
    caa_lease_elector elector;
    uv_timer_t tick;
    int64_t next_election_ms, next_resync_ms;
    bool election_in_flight, list_in_flight, stopping;
    size_t listed; /* PeerPods seen in the pages of the list in progress */
    work_item *items;
    char *warned_provider; /* last foreign provider logged */
    /* The watch: from the resourceVersion of the last full list, advanced by
     * every event; NULL: list first. */
    caa_kube_call *watch_call;
    caa_watch_decoder watch_lines;
    char *watch_rv;
    int64_t next_watch_ms, watch_backoff_ms;
    bool watch_got_events;     /* the current watch delivered something */
    caa_peerpod_owners owners; /* for deleting superseded PeerPods (upstream's isOldPeerPod) */
    ctrl_stats stats;
};

static int64_t now_ms(controller *c)
{
    uv_update_time(c->loop);
    return (int64_t)uv_now(c->loop);
}

static void wall_time(char *buf, size_t size, bool micro)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    caa_lease_micro_time((int64_t)tv.tv_sec * 1000000 + tv.tv_usec, buf, size);
    if (!micro) /* metav1.Time: seconds only */
        strcpy(buf + 19, "Z");
}

static bool is_leader(controller *c)
{
    return !c->cfg.leader_elect || caa_lease_is_leader(&c->elector, now_ms(c));
}

static void start_work(controller *c);

/* ------------------------------------------------------------ events */

static void on_event_posted(int status, json_t *obj, caa_error *err, void *opaque)
{
    controller *c = opaque;
    json_decref(obj);
    if (status == 0)
        c->stats.events_posted++;
    else if (status != -ECANCELED)
        log_warn("posting an Event: %s", caa_error_msg(err));
    caa_error_free(err);
}

/* A Warning Event on the PeerPod, as controller-runtime's recorder writes it. */
static void post_event(controller *c, const work_item *it, const char *reason, const char *message)
{
    char now[40];
    wall_time(now, sizeof(now), false);
    _cleanup_free_ char *prefix = xasprintf("%s.", it->ref.name);
    json_t *ev = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s, s:s, s:s, s:s}, s:s, s:s, s:s, s:{s:s}, "
                           "s:s, s:s, s:i, s:s}",
                           "apiVersion", "v1", "kind", "Event", "metadata", "generateName", prefix,
                           "namespace", it->ref.ns, "involvedObject", "apiVersion",
                           "confidentialcontainers.org/v1alpha1", "kind", "PeerPod", "name", it->ref.name,
                           "namespace", it->ref.ns, "uid", it->ref.uid, "reason", reason, "message", message,
                           "type", "Warning", "source", "component", "peerpod-ctrl", "firstTimestamp", now,
                           "lastTimestamp", now, "count", 1, "reportingComponent", "peerpod-ctrl");
    _cleanup_free_ char *path = xasprintf("/api/v1/namespaces/%s/events", it->ref.ns);
    caa_kube_request req = {.verb = "POST", .path = path, .body = ev, .max_attempts = 3};
    _cleanup_error_ caa_error *err = NULL;
    if (caa_kube_call_start(c->kube, &req, on_event_posted, c, NULL, &err) < 0)
        log_warn("posting an Event: %s", caa_error_msg(err));
    json_decref(ev);
}

/* ------------------------------------------------------------ work items */

static work_item *find_item(controller *c, const char *uid)
{
    for (work_item *it = c->items; it; it = it->next)
        if (strcmp(it->ref.uid, uid) == 0)
            return it;
    return NULL;
}

static void remove_item(controller *c, work_item *victim)
{
    for (work_item **p = &c->items; *p; p = &(*p)->next) {
        if (*p == victim) {
            *p = victim->next;
            break;
        }
    }
    caa_peerpod_ref_done(&victim->ref);
    json_decref(victim->obj);
    free(victim);
}

static void count_pending(controller *c)
{
    c->stats.pending = 0;
    for (work_item *it = c->items; it; it = it->next)
        c->stats.pending++;
}

static void failed(work_item *it, const char *what, const caa_error *err)
{
    controller *c = it->c;
    it->in_flight = false;
    it->attempts++;
    int64_t delay = c->cfg.backoff_base_ms;
    for (unsigned i = 1; i < it->attempts && delay < c->cfg.backoff_max_ms; i++)
        delay *= 2;
    if (delay > c->cfg.backoff_max_ms)
        delay = c->cfg.backoff_max_ms;
    it->next_attempt_ms = now_ms(c) + delay;
    _cleanup_free_ char *msg = xasprintf("%s %s failed (attempt %u, next in %lld ms): %s", what,
                                         it->ref.instance_id ? it->ref.instance_id : "", it->attempts,
                                         (long long)delay, caa_error_msg(err));
    log_warn("PeerPod %s/%s: %s", it->ref.ns, it->ref.name, msg);
    post_event(c, it, strcmp(what, "deleting instance") == 0 ? "DeleteInstanceFailed" : "ReleaseFailed", msg);
}

static void on_released(int status, json_t *obj, caa_error *err, void *opaque)
{
    work_item *it = opaque;
    controller *c = it->c;
    json_decref(obj);
    if (status == -ECANCELED) {
        caa_error_free(err);
        return;
    }
    if (status == 0 || status == -ENOENT) {
        c->stats.releases_ok++;
        log_info("PeerPod %s/%s released (instance %s)", it->ref.ns, it->ref.name,
                 it->ref.instance_id ? it->ref.instance_id : "none");
        remove_item(c, it);
    } else if (status == -EINVAL) {
        /* The test op failed: the finalizers changed since our list. Re-read. */
        log_info("PeerPod %s/%s changed while releasing; re-reading", it->ref.ns, it->ref.name);
        it->in_flight = false;
        c->next_resync_ms = 0;
    } else {
        c->stats.releases_failed++;
        failed(it, "releasing the finalizer of", err);
    }
    caa_error_free(err);
    count_pending(c);
}

static void release(work_item *it)
{
    controller *c = it->c;
    json_t *patch = caa_peerpod_release_patch(it->obj);
    if (!patch) { /* someone else released it */
        remove_item(c, it);
        return;
    }
    _cleanup_free_ char *path =
        xasprintf(PEERPODS_PATH "/namespaces/%s/peerpods/%s", it->ref.ns, it->ref.name);
    caa_kube_request req = {
        .verb = "PATCH", .path = path, .content_type = CAA_KUBE_JSON_PATCH, .body = patch};
    _cleanup_error_ caa_error *err = NULL;
    if (caa_kube_call_start(c->kube, &req, on_released, it, NULL, &err) < 0)
        failed(it, "releasing the finalizer of", err);
    json_decref(patch);
}

static void on_instance_deleted(int status, caa_error *err, void *opaque)
{
    work_item *it = opaque;
    controller *c = it->c;
    if (status == -ECANCELED || c->stopping) {
        caa_error_free(err);
        it->in_flight = false;
        return;
    }
    if (status < 0) {
        c->stats.deletes_failed++;
        failed(it, "deleting instance", err);
    } else {
        c->stats.deletes_ok++;
        it->instance_deleted = true;
        log_info("PeerPod %s/%s: instance %s deleted", it->ref.ns, it->ref.name, it->ref.instance_id);
        release(it);
    }
    caa_error_free(err);
}

static void start_item(work_item *it)
{
    controller *c = it->c;
    it->in_flight = true;
    if (it->action == CAA_PEERPOD_RELEASE_ONLY || it->instance_deleted) {
        release(it);
        return;
    }
    log_info("PeerPod %s/%s is being deleted but was not released: deleting instance %s", it->ref.ns,
             it->ref.name, it->ref.instance_id);
    _cleanup_error_ caa_error *err = NULL;
    if (caa_provider_delete_instance(c->provider, it->ref.instance_id, on_instance_deleted, it, &err) < 0) {
        c->stats.deletes_failed++;
        failed(it, "deleting instance", err);
    }
}

static void start_work(controller *c)
{
    if (c->stopping || !is_leader(c))
        return;
    int64_t now = now_ms(c);
    work_item *next;
    for (work_item *it = c->items; it; it = next) {
        next = it->next; /* start_item may remove it */
        if (!it->in_flight && it->next_attempt_ms <= now)
            start_item(it);
    }
}

/* ------------------------------------------------------------ list */

/* Takes a listed or watched PeerPod; returns its owner's uid in the owner
 * index (NULL: no owner, or not readable). */
static const char *take_listed(controller *c, json_t *obj)
{
    caa_peerpod_action action;
    caa_peerpod_ref ref;
    _cleanup_error_ caa_error *err = NULL;
    if (caa_peerpod_classify(obj, &action, &ref, &err) < 0) {
        log_warn("skipping a PeerPod: %s", caa_error_msg(err));
        return NULL;
    }
    const char *owner = caa_peerpod_owners_put(&c->owners, obj);
    work_item *it = find_item(c, ref.uid);
    if (action == CAA_PEERPOD_KEEP) {
        if (it && !it->in_flight)
            remove_item(c, it);
        caa_peerpod_ref_done(&ref);
        return owner;
    }
    if (ref.cloud_provider && strcmp(ref.cloud_provider, c->cfg.provider_name) != 0) {
        if (!c->warned_provider || strcmp(c->warned_provider, ref.cloud_provider) != 0) {
            log_warn("PeerPod %s/%s belongs to cloud provider %s, this controller serves %s: left alone",
                     ref.ns, ref.name, ref.cloud_provider, c->cfg.provider_name);
            free(c->warned_provider);
            c->warned_provider = xstrdup(ref.cloud_provider);
        }
        caa_peerpod_ref_done(&ref);
        return owner;
    }
    if (!it) {
        it = xcalloc(1, sizeof(*it));
        it->c = c;
        it->next = c->items;
        c->items = it;
    } else if (it->in_flight) {
        it->seen = true;
        caa_peerpod_ref_done(&ref);
        return owner;
    } else {
        caa_peerpod_ref_done(&it->ref);
        json_decref(it->obj);
    }
    it->action = action;
    it->ref = ref;
    it->obj = json_incref(obj);
    it->seen = true;
    return owner;
}

/* ------------------------------------------------------------ superseded PeerPods */

typedef struct supersede_call {
    controller *c;
    char *ns, *name, *owner, *uid;
} supersede_call;

static void supersede_call_free(supersede_call *call)
{
    free(call->ns);
    free(call->name);
    free(call->owner);
    free(call->uid);
    free(call);
}

static void on_superseded_deleted(int status, json_t *obj, caa_error *err, void *opaque)
{
    supersede_call *call = opaque;
    controller *c = call->c;
    json_decref(obj);
    if (status == -ECANCELED) {
        caa_error_free(err);
        supersede_call_free(call);
        return;
    }
    /* 404: gone already; 409: the name now belongs to another object (the
     * uid precondition failed), which the next list judges afresh. */
    if (status == 0 || status == -ENOENT || status == -EBUSY) {
        c->stats.superseded_ok++;
        log_info("PeerPod %s/%s: deleted, a newer PeerPod of the same Pod exists", call->ns, call->name);
    } else {
        c->stats.superseded_failed++;
        log_warn("PeerPod %s/%s: deleting it (a newer PeerPod of the same Pod exists): %s", call->ns,
                 call->name, caa_error_msg(err));
        caa_peerpod_owners_delete_failed(&c->owners, call->owner, call->uid);
    }
    caa_error_free(err);
    supersede_call_free(call);
}

/* DELETE of each superseded PeerPod (entries of caa_peerpod_owners_superseded())
 * with a uid precondition, as upstream's r.Delete(item). Its finalizer then
 * brings it back as being deleted, and its instance is collected as any
 * orphan's. */
static void delete_superseded(controller *c, json_t *victims)
{
    size_t i;
    json_t *v;
    json_array_foreach(victims, i, v)
    {
        const char *ns = json_string_value(json_object_get(v, "namespace"));
        const char *name = json_string_value(json_object_get(v, "name"));
        const char *uid = json_string_value(json_object_get(v, "uid"));
        const char *own = json_string_value(json_object_get(v, "owner"));
        if (c->stopping || !is_leader(c)) { /* ask again at the next list */
            caa_peerpod_owners_delete_failed(&c->owners, own, uid);
            continue;
        }
        log_info("PeerPod %s/%s is older than another PeerPod of the same Pod: deleting it", ns, name);
        supersede_call *call = xcalloc(1, sizeof(*call));
        *call = (supersede_call){
            .c = c, .ns = xstrdup(ns), .name = xstrdup(name), .owner = xstrdup(own), .uid = xstrdup(uid)};
        _cleanup_free_ char *path = xasprintf(PEERPODS_PATH "/namespaces/%s/peerpods/%s", ns, name);
        json_t *opts = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "DeleteOptions",
                                 "preconditions", "uid", uid);
        caa_kube_request req = {.verb = "DELETE", .path = path, .body = opts};
        _cleanup_error_ caa_error *err = NULL;
        if (caa_kube_call_start(c->kube, &req, on_superseded_deleted, call, NULL, &err) < 0) {
            c->stats.superseded_failed++;
            log_warn("PeerPod %s/%s: %s", ns, name, caa_error_msg(err));
            caa_peerpod_owners_delete_failed(&c->owners, own, uid);
            supersede_call_free(call);
        }
        json_decref(opts);
    }
}

static void start_list_page(controller *c, const char *continue_token);
static void start_watch(controller *c);

/* RFC 3986 query escaping of an opaque token (the API server's continue). */
static char *query_escape(const char *s)
{
    char *out = xmalloc(strlen(s) * 3 + 1), *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~", *p))
            *o++ = (char)*p;
        else
            o += sprintf(o, "%%%02X", *p);
    }
    *o = '\0';
    return out;
}

static void on_listed(int status, json_t *list, caa_error *err, void *opaque)
{
    controller *c = opaque;
    if (status == -ECANCELED) {
        c->list_in_flight = false;
        caa_error_free(err);
        json_decref(list);
        return;
    }
    if (status < 0 || !json_is_array(json_object_get(list, "items"))) {
        /* Including 410 for an expired continue token: the next resync starts over. */
        c->list_in_flight = false;
        c->stats.lists_failed++;
        log_warn("listing PeerPods: %s", err ? caa_error_msg(err) : "answer without items");
        c->next_resync_ms = now_ms(c) + c->cfg.retry_period_ms;
        caa_error_free(err);
        json_decref(list);
        return;
    }
    size_t i;
    json_t *obj;
    json_array_foreach(json_object_get(list, "items"), i, obj) take_listed(c, obj);
    c->listed += json_array_size(json_object_get(list, "items"));
    const char *next = json_string_value(json_object_get(json_object_get(list, "metadata"), "continue"));
    const char *list_rv =
        json_string_value(json_object_get(json_object_get(list, "metadata"), "resourceVersion"));
    if ((!next || !next[0]) && list_rv && list_rv[0] && !c->watch_call) {
        /* The last page: the snapshot the watch continues from. */
        free(c->watch_rv);
        c->watch_rv = xstrdup(list_rv);
    }
    if (next && next[0]) {
        _cleanup_free_ char *token = xstrdup(next);
        json_decref(list);
        start_list_page(c, token);
        return;
    }
    json_decref(list);
    c->list_in_flight = false;
    c->stats.lists_ok++;
    /* The whole set is known now: older PeerPods of each Pod go. */
    caa_peerpod_owners_list_done(&c->owners);
    json_t *victims = json_array();
    caa_peerpod_owners_all_superseded(&c->owners, victims);
    delete_superseded(c, victims);
    json_decref(victims);
    /* Gone from the list (deleted meanwhile): nothing left to collect. */
    work_item *next_item;
    c->stats.pending = 0;
    for (work_item *it = c->items; it; it = next_item) {
        next_item = it->next;
        if (!it->seen && !it->in_flight)
            remove_item(c, it);
        else
            c->stats.pending++;
    }
    log_debug("listed %zu PeerPods, %llu to collect", c->listed, (unsigned long long)c->stats.pending);
    start_work(c);
    start_watch(c);
}

static void start_list_page(controller *c, const char *continue_token)
{
    _cleanup_free_ char *escaped = continue_token ? query_escape(continue_token) : NULL;
    _cleanup_free_ char *path =
        escaped ? xasprintf(PEERPODS_PATH "/peerpods?limit=%d&continue=%s", LIST_PAGE_SIZE, escaped)
                : xasprintf(PEERPODS_PATH "/peerpods?limit=%d", LIST_PAGE_SIZE);
    caa_kube_request req = {.verb = "GET", .path = path};
    _cleanup_error_ caa_error *err = NULL;
    if (caa_kube_call_start(c->kube, &req, on_listed, c, NULL, &err) < 0) {
        log_warn("listing PeerPods: %s", caa_error_msg(err));
        c->stats.lists_failed++;
        c->list_in_flight = false;
        return;
    }
    c->list_in_flight = true;
}

static void start_list(controller *c)
{
    if (c->list_in_flight || c->stopping)
        return;
    for (work_item *it = c->items; it; it = it->next)
        it->seen = false;
    c->listed = 0;
    caa_peerpod_owners_list_started(&c->owners);
    start_list_page(c, NULL);
}

/* ------------------------------------------------------------ watch */

static void take_watched(controller *c, const caa_watch_event *ev)
{
    if (ev->type == CAA_WATCH_ADDED || ev->type == CAA_WATCH_MODIFIED) {
        const char *owner = take_listed(c, ev->object);
        const json_t *deletion =
            json_object_get(json_object_get(ev->object, "metadata"), "deletionTimestamp");
        if (owner && !json_is_string(deletion)) { /* upstream reconciles a live PeerPod */
            json_t *victims = json_array();
            caa_peerpod_owners_superseded(&c->owners, owner, victims);
            delete_superseded(c, victims);
            json_decref(victims);
        }
    } else if (ev->type == CAA_WATCH_DELETED) {
        caa_peerpod_owners_remove(&c->owners, ev->object);
        /* Gone: nothing left to collect (an item in flight finishes by itself). */
        const char *uid = json_string_value(json_object_get(json_object_get(ev->object, "metadata"), "uid"));
        work_item *it = uid ? find_item(c, uid) : NULL;
        if (it && !it->in_flight)
            remove_item(c, it);
    }
    count_pending(c);
}

/* Bytes of the event stream, on the loop. */
static int on_watch_data(const char *data, size_t len, void *opaque, caa_error **err)
{
    controller *c = opaque;
    int r = caa_watch_decoder_feed(&c->watch_lines, data, len, err);
    if (r < 0)
        return r;
    const char *line;
    size_t line_len;
    bool got_events = false;
    while (caa_watch_decoder_next(&c->watch_lines, &line, &line_len)) {
        caa_watch_event ev;
        _cleanup_error_ caa_error *perr = NULL;
        r = caa_watch_event_parse(line, line_len, &ev, &perr);
        if (r == -EINVAL) {
            log_warn("watching PeerPods: skipping an event: %s", caa_error_msg(perr));
            continue;
        }
        if (r < 0)
            return caa_error_set(err, r, "%s", caa_error_msg(perr));
        c->stats.watch_events++;
        free(c->watch_rv);
        c->watch_rv = ev.resource_version ? xstrdup(ev.resource_version) : NULL;
        if (ev.type == CAA_WATCH_GONE) {
            caa_watch_event_done(&ev);
            return caa_error_set(err, -ESTALE, "watching PeerPods: resourceVersion too old");
        }
        take_watched(c, &ev);
        caa_watch_event_done(&ev);
        got_events = true;
    }
    if (got_events) {
        c->watch_got_events = true;
        c->watch_backoff_ms = WATCH_BACKOFF_FIRST_MS; /* the stream works */
        start_work(c);
    }
    return 0;
}

static void on_watch_end(int status, json_t *obj, caa_error *err, void *opaque)
{
    controller *c = opaque;
    json_decref(obj);
    c->watch_call = NULL;
    caa_watch_decoder_done(&c->watch_lines);
    memset(&c->watch_lines, 0, sizeof(c->watch_lines));
    if (status == -ECANCELED || c->stopping) {
        caa_error_free(err);
        return;
    }
    if (status == -ESTALE) {
        /* 410 Gone (an ERROR event or the answer): list again, watch from there. */
        log_info("watching PeerPods: resourceVersion expired, listing again");
        c->stats.watch_restarts++;
        free(c->watch_rv);
        c->watch_rv = NULL;
        c->next_resync_ms = 0;
    } else if (status == 0 && c->watch_rv && c->watch_got_events) {
        /* A server that ends empty watches at once would otherwise make us spin: those back off. */
        log_debug("watching PeerPods: the server ended the watch, resuming at %s", c->watch_rv);
        c->next_watch_ms = 0;
        caa_error_free(err);
        start_watch(c);
        return;
    } else {
        c->stats.watch_restarts++;
        log_warn("watching PeerPods: %s; reconnecting in %lld ms", err ? caa_error_msg(err) : "stream ended",
                 (long long)c->watch_backoff_ms);
        c->next_watch_ms = now_ms(c) + c->watch_backoff_ms;
        c->watch_backoff_ms =
            c->watch_backoff_ms * 2 > WATCH_BACKOFF_MAX_MS ? WATCH_BACKOFF_MAX_MS : c->watch_backoff_ms * 2;
        if (!c->watch_rv)
            c->next_resync_ms = c->next_watch_ms;
    }
    caa_error_free(err);
}

static void start_watch(controller *c)
{
    if (c->watch_call || !c->watch_rv || c->stopping || !is_leader(c) || now_ms(c) < c->next_watch_ms)
        return;
    _cleanup_free_ char *rv = query_escape(c->watch_rv);
    _cleanup_free_ char *path = xasprintf(PEERPODS_PATH "/peerpods?watch=1&resourceVersion=%s"
                                                        "&allowWatchBookmarks=true&timeoutSeconds=%d",
                                          rv, WATCH_TIMEOUT_S);
    _cleanup_error_ caa_error *err = NULL;
    if (caa_kube_stream_start(c->kube, path, WATCH_TIMEOUT_S * 1000 + WATCH_DEADLINE_SLACK_MS, on_watch_data,
                              on_watch_end, c, &c->watch_call, &err) < 0) {
        log_warn("watching PeerPods: %s", caa_error_msg(err));
        c->next_watch_ms = now_ms(c) + c->watch_backoff_ms;
        return;
    }
    c->watch_got_events = false;
    log_debug("watching PeerPods from resourceVersion %s", c->watch_rv);
}

/* ------------------------------------------------------------ election */

typedef struct election_call {
    controller *c;
    int64_t started_ms;
} election_call;

static void set_leader(controller *c, bool leader)
{
    if (leader == c->stats.leader)
        return;
    c->stats.leader = leader;
    if (leader) {
        log_info("became leader (Lease %s/%s, identity %s)", c->cfg.lease_namespace, c->cfg.lease_name,
                 c->cfg.identity);
        c->next_resync_ms = 0;
    } else {
        log_info("not leader any more (Lease %s/%s)", c->cfg.lease_namespace, c->cfg.lease_name);
    }
}

static void on_lease_written(int status, json_t *obj, caa_error *err, void *opaque)
{
    election_call *call = opaque;
    controller *c = call->c;
    c->election_in_flight = false;
    json_decref(obj);
    if (status == 0)
        caa_lease_written(&c->elector, call->started_ms);
    else if (status != -ECANCELED && status != -EBUSY && status != -EEXIST)
        log_warn("writing the Lease: %s", caa_error_msg(err));
    if (status != -ECANCELED)
        set_leader(c, caa_lease_is_leader(&c->elector, now_ms(c)));
    caa_error_free(err);
    free(call);
}

static void on_lease_read(int status, json_t *lease, caa_error *err, void *opaque)
{
    election_call *call = opaque;
    controller *c = call->c;
    if (status == -ECANCELED || (status < 0 && status != -ENOENT)) {
        if (status != -ECANCELED)
            log_warn("reading the Lease: %s", caa_error_msg(err));
        c->election_in_flight = false;
        if (status != -ECANCELED)
            set_leader(c, caa_lease_is_leader(&c->elector, now_ms(c)));
        caa_error_free(err);
        free(call);
        return;
    }
    caa_error_free(err);
    err = NULL;
    char now[40];
    wall_time(now, sizeof(now), true);
    caa_lease_verdict verdict;
    json_t *write = NULL;
    call->started_ms = now_ms(c);
    int r = caa_lease_step(&c->elector, status == -ENOENT ? NULL : lease, call->started_ms, now, &verdict,
                           &write, &err);
    json_decref(lease);
    if (r < 0 || verdict == CAA_LEASE_FOLLOW) {
        if (r < 0)
            log_warn("%s", caa_error_msg(err));
        caa_error_free(err);
        c->election_in_flight = false;
        set_leader(c, caa_lease_is_leader(&c->elector, now_ms(c)));
        free(call);
        return;
    }
    _cleanup_free_ char *path =
        verdict == CAA_LEASE_CREATE
            ? xasprintf("/apis/coordination.k8s.io/v1/namespaces/%s/leases", c->cfg.lease_namespace)
            : xasprintf("/apis/coordination.k8s.io/v1/namespaces/%s/leases/%s", c->cfg.lease_namespace,
                        c->cfg.lease_name);
    caa_kube_request req = {.verb = verdict == CAA_LEASE_CREATE ? "POST" : "PUT",
                            .path = path,
                            .body = write,
                            .max_attempts = 1,
                            .timeout_ms = (uint64_t)c->cfg.retry_period_ms};
    if (caa_kube_call_start(c->kube, &req, on_lease_written, call, NULL, &err) < 0) {
        log_warn("writing the Lease: %s", caa_error_msg(err));
        caa_error_free(err);
        c->election_in_flight = false;
        free(call);
    }
    json_decref(write);
}

static void start_election(controller *c)
{
    if (c->election_in_flight || c->stopping)
        return;
    election_call *call = xcalloc(1, sizeof(*call));
    call->c = c;
    _cleanup_free_ char *path = xasprintf("/apis/coordination.k8s.io/v1/namespaces/%s/leases/%s",
                                          c->cfg.lease_namespace, c->cfg.lease_name);
    caa_kube_request req = {
        .verb = "GET", .path = path, .max_attempts = 1, .timeout_ms = (uint64_t)c->cfg.retry_period_ms};
    _cleanup_error_ caa_error *err = NULL;
    if (caa_kube_call_start(c->kube, &req, on_lease_read, call, NULL, &err) < 0) {
        log_warn("reading the Lease: %s", caa_error_msg(err));
        free(call);
        return;
    }
    c->election_in_flight = true;
}

/* ------------------------------------------------------------ tick */

static void on_tick(uv_timer_t *t)
{
    controller *c = t->data;
    int64_t now = now_ms(c);
    if (c->cfg.leader_elect && now >= c->next_election_ms) {
        c->next_election_ms = now + c->cfg.retry_period_ms;
        start_election(c);
    }
    set_leader(c, is_leader(c));
    if (!c->stats.leader) {
        caa_kube_call_cancel(c->watch_call); /* a follower neither watches nor acts */
        return;
    }
    if (now >= c->next_resync_ms) {
        /* The safety net beside the watch. */
        c->next_resync_ms = now + c->cfg.resync_period_ms;
        start_list(c);
    }
    start_watch(c);
    start_work(c);
}

int controller_start(uv_loop_t *loop, const ctrl_config *cfg, caa_kube_client *kube, caa_provider *provider,
                     controller **ret, caa_error **err)
{
    controller *c = xcalloc(1, sizeof(*c));
    c->loop = loop;
    c->cfg = *cfg;
    c->kube = kube;
    c->provider = provider;
    c->watch_backoff_ms = WATCH_BACKOFF_FIRST_MS;
    caa_peerpod_owners_init(&c->owners);
    if (cfg->leader_elect &&
        caa_lease_elector_init(&c->elector, cfg->identity, cfg->lease_namespace, cfg->lease_name,
                               cfg->lease_duration_s, cfg->renew_deadline_s, err) < 0) {
        caa_peerpod_owners_done(&c->owners);
        free(c);
        return -EINVAL;
    }
    uv_timer_init(loop, &c->tick);
    c->tick.data = c;
    /* A short tick drives the election, the resync and the backoff retries. */
    uint64_t period = (uint64_t)(cfg->retry_period_ms < 500 ? cfg->retry_period_ms : 500);
    uv_timer_start(&c->tick, on_tick, 0, period ? period : 100);
    *ret = c;
    return 0;
}

const ctrl_stats *controller_stats(const controller *c)
{
    return &c->stats;
}

void controller_stop(controller *c)
{
    c->stopping = true;
    caa_kube_call_cancel(c->watch_call);
    uv_timer_stop(&c->tick);
    uv_close((uv_handle_t *)&c->tick, NULL);
}

void controller_free(controller *c)
{
    if (!c)
        return;
    while (c->items)
        remove_item(c, c->items);
    if (c->cfg.leader_elect)
        caa_lease_elector_done(&c->elector);
    caa_peerpod_owners_done(&c->owners);
    free(c->warned_provider);
    free(c->watch_rv);
    caa_watch_decoder_done(&c->watch_lines);
    free(c);
}
