/* PeerPod tracker: one entry per pod VM with a PeerPod (being) created. An
 * entry is owned by the tracker and freed only when no call references it. */
#define LOG_COMPONENT "adaptor/kube"
#include "kube-peerpod.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <jansson.h>

#include "fs.h"
#include "kube-service.h"
#include "kube-status.h"
#include "log.h"
#include "pod.h"
#include "xalloc.h"

#define PEERPOD_API "/apis/confidentialcontainers.org/v1alpha1"
#define PEERPOD_FILE_MAX 4096

typedef enum { PP_CREATING, PP_CREATED, PP_RELEASING } pp_state;

typedef struct pp_entry {
    caa_list node;
    caa_kube_peerpods *pp;
    char *sandbox_id, *ns, *pod_name, *pod_uid, *instance_id;
    char *name; /* NULL until created */
    pp_state state;
    caa_kube_call *call;
    bool release_wanted; /* the instance went away while the create ran */
    bool removed;        /* the pod is gone: drop the entry after the call */
    bool retried_name;
} pp_entry;

json_t *caa_kube_peerpod_object(const char *name, const char *ns, const char *pod_name, const char *pod_uid,
                                const char *cloud_provider, const char *instance_id)
{
    return json_pack("{s:s, s:s, s:{s:s, s:s, s:[s], s:[{s:s, s:s, s:s, s:s, s:b, s:b}]}, s:{s:s, s:s}}",
                     "apiVersion", "confidentialcontainers.org/v1alpha1", "kind", "PeerPod", "metadata",
                     "name", name, "namespace", ns, "finalizers", CAA_PEERPOD_FINALIZER, "ownerReferences",
                     "apiVersion", "v1", "kind", "Pod", "name", pod_name, "uid", pod_uid, "controller", 1,
                     "blockOwnerDeletion", 1, "spec", "cloudProvider", cloud_provider, "instanceID",
                     instance_id);
}

/* <pod>-resource-<5 chars>, the alphabet of apimachinery's rand.String. */
static char *random_name(const char *pod_name)
{
    static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
    unsigned char rnd[5];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        memset(rnd, 0, sizeof(rnd));
    char suffix[6];
    for (size_t i = 0; i < 5; i++)
        suffix[i] = alphabet[rnd[i] % (sizeof(alphabet) - 1)];
    suffix[5] = '\0';
    return xasprintf("%s-resource-%s", pod_name, suffix);
}

static char *state_file(const caa_kube_peerpods *pp, const char *sandbox_id)
{
    return xasprintf("%s/%s/%s", pp->m->cfg->pods_dir, sandbox_id, CAA_PEERPOD_FILE);
}

static caa_kube_client *client_of(caa_kube_peerpods *pp)
{
    return caa_kube_service_client(pp->m->kube);
}

static pp_entry *find(caa_kube_peerpods *pp, const char *sandbox_id)
{
    caa_list *pos, *tmp;
    caa_list_foreach_safe(pos, tmp, &pp->entries)
    {
        pp_entry *e = caa_list_entry(pos, pp_entry, node);
        if (strcmp(e->sandbox_id, sandbox_id) == 0)
            return e;
    }
    return NULL;
}

static void entry_free(pp_entry *e)
{
    caa_list_remove(&e->node);
    free(e->sandbox_id);
    free(e->ns);
    free(e->pod_name);
    free(e->pod_uid);
    free(e->instance_id);
    free(e->name);
    free(e);
}

/* ---------------------------------------------------------------- persistence */

static void save_name(pp_entry *e)
{
    _cleanup_free_ char *path = state_file(e->pp, e->sandbox_id);
    json_t *doc = json_pack("{s:s, s:s}", "name", e->name, "namespace", e->ns);
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    _cleanup_error_ caa_error *err = NULL;
    if (caa_write_file_atomic(path, text, strlen(text), 0600, &err) < 0)
        log_pod_warn(e->sandbox_id, "saving the PeerPod name: %s", caa_error_msg(err));
    free(text);
}

/* The name and namespace saved by a previous daemon; hostile content is refused. */
static int load_name(const caa_kube_peerpods *pp, const char *sandbox_id, char **ret_name, char **ret_ns)
{
    _cleanup_free_ char *path = state_file(pp, sandbox_id);
    _cleanup_free_ char *text = NULL;
    size_t len;
    if (caa_read_file(path, PEERPOD_FILE_MAX, 1, &text, &len, NULL) < 0)
        return -ENOENT;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    const char *name = json_string_value(json_object_get(doc, "name"));
    const char *ns = json_string_value(json_object_get(doc, "namespace"));
    int r = -EINVAL;
    if (caa_kube_name_valid(name) && caa_kube_name_valid(ns)) {
        *ret_name = xstrdup(name);
        *ret_ns = xstrdup(ns);
        r = 0;
    }
    json_decref(doc);
    return r;
}

/* ---------------------------------------------------------------- release */

static void on_released(int status, json_t *obj, caa_error *err, void *opaque)
{
    pp_entry *e = opaque;
    e->call = NULL;
    json_decref(obj);
    if (status == 0 || status == -ENOENT)
        log_pod_info(e->sandbox_id, "released PeerPod %s/%s", e->ns, e->name);
    else if (status != -ECANCELED)
        log_pod_warn(e->sandbox_id,
                     "releasing PeerPod %s/%s: %s (peerpod-ctrl deletes the instance when the "
                     "pod is gone)",
                     e->ns, e->name, caa_error_msg(err));
    caa_error_free(err);
    if (status == -ECANCELED) { /* shutdown: the next daemon releases it */
        e->state = PP_CREATED;
        if (e->removed)
            entry_free(e);
        return;
    }
    entry_free(e);
}

static void release(pp_entry *e)
{
    caa_kube_client *c = client_of(e->pp);
    if (!c)
        return; /* shutting down: peerpod.json stays for the next daemon */
    _cleanup_free_ char *path = xasprintf(PEERPOD_API "/namespaces/%s/peerpods/%s", e->ns, e->name);
    json_t *patch = json_pack("[{s:s, s:s}]", "op", "remove", "path", "/metadata/finalizers");
    caa_kube_request req = {
        .verb = "PATCH", .path = path, .content_type = CAA_KUBE_JSON_PATCH, .body = patch};
    _cleanup_error_ caa_error *err = NULL;
    if (caa_kube_call_start(c, &req, on_released, e, &e->call, &err) == 0)
        e->state = PP_RELEASING;
    else
        log_pod_warn(e->sandbox_id, "releasing PeerPod %s/%s: %s", e->ns, e->name, caa_error_msg(err));
    json_decref(patch);
}

/* ---------------------------------------------------------------- create */

static void create(pp_entry *e);

static void created_failed(pp_entry *e, int status, caa_error *err)
{
    if (status != -ECANCELED)
        log_pod_warn(e->sandbox_id, "creating the PeerPod for instance %s: %s", e->instance_id,
                     caa_error_msg(err));
    caa_error_free(err);
    entry_free(e);
}

static void on_created(int status, json_t *obj, caa_error *err, void *opaque)
{
    pp_entry *e = opaque;
    e->call = NULL;
    json_decref(obj);
    if ((status == -EEXIST || status == -EBUSY) && !e->retried_name && !e->removed) {
        /* A 409 on create: the random suffix collided. One more name. */
        caa_error_free(err);
        e->retried_name = true;
        free(e->name);
        e->name = NULL;
        create(e);
        return;
    }
    if (status < 0) {
        created_failed(e, status, err);
        return;
    }
    e->state = PP_CREATED;
    log_pod_info(e->sandbox_id, "created PeerPod %s/%s", e->ns, e->name);
    if (!e->removed)
        save_name(e);
    if (e->release_wanted || e->removed)
        release(e);
}

static void post(pp_entry *e)
{
    caa_kube_client *c = client_of(e->pp);
    if (!c) {
        entry_free(e);
        return;
    }
    e->name = random_name(e->pod_name);
    json_t *obj = caa_kube_peerpod_object(e->name, e->ns, e->pod_name, e->pod_uid, e->pp->cloud_provider,
                                          e->instance_id);
    _cleanup_free_ char *path = xasprintf(PEERPOD_API "/namespaces/%s/peerpods", e->ns);
    caa_kube_request req = {.verb = "POST", .path = path, .body = obj};
    caa_error *err = NULL;
    if (caa_kube_call_start(c, &req, on_created, e, &e->call, &err) < 0)
        created_failed(e, err->code, err);
    json_decref(obj);
}

static void on_pod_read(int status, json_t *obj, caa_error *err, void *opaque)
{
    pp_entry *e = opaque;
    e->call = NULL;
    const char *uid = json_string_value(json_object_get(json_object_get(obj, "metadata"), "uid"));
    if (status == 0 && uid && *uid) {
        e->pod_uid = xstrdup(uid);
        json_decref(obj);
        caa_error_free(err);
        if (e->removed || e->release_wanted) {
            entry_free(e); /* nothing created yet, nothing to release */
            return;
        }
        post(e);
        return;
    }
    json_decref(obj);
    if (status == 0)
        err = caa_error_new(-EPROTO, "pod %s/%s has no metadata.uid", e->ns, e->pod_name);
    created_failed(e, status ? status : -EPROTO, err);
}

static void create(pp_entry *e)
{
    if (e->pod_uid) {
        post(e);
        return;
    }
    /* The shim gave no pod UID annotation: read the pod, as upstream always does. */
    caa_kube_client *c = client_of(e->pp);
    if (!c) {
        entry_free(e);
        return;
    }
    _cleanup_free_ char *path = xasprintf("/api/v1/namespaces/%s/pods/%s", e->ns, e->pod_name);
    caa_kube_request req = {.verb = "GET", .path = path};
    caa_error *err = NULL;
    if (caa_kube_call_start(c, &req, on_pod_read, e, &e->call, &err) < 0)
        created_failed(e, err->code, err);
}

/* ---------------------------------------------------------------- observer */

static pp_entry *entry_new(caa_kube_peerpods *pp, const caa_pod *pod)
{
    pp_entry *e = xnew0(pp_entry, 1);
    e->pp = pp;
    e->sandbox_id = xstrdup(caa_pod_id(pod));
    e->ns = xstrdup(caa_pod_namespace(pod));
    e->pod_name = xstrdup(caa_pod_name(pod));
    caa_list_init(&e->node);
    caa_list_append(&pp->entries, &e->node);
    return e;
}

static void on_pod_added(const caa_pod *pod, void *opaque)
{
    caa_kube_peerpods *pp = opaque;
    if (!caa_pod_is_recovered(pod))
        return;
    char *name, *ns;
    if (load_name(pp, caa_pod_id(pod), &name, &ns) < 0)
        return;
    pp_entry *e = entry_new(pp, pod);
    free(e->ns);
    e->ns = ns;
    e->name = name;
    e->state = PP_CREATED;
}

static void on_instance_changed(const caa_pod *pod, void *opaque)
{
    caa_kube_peerpods *pp = opaque;
    pp_entry *e = find(pp, caa_pod_id(pod));
    const char *instance_id = caa_pod_instance_id(pod);
    if (!instance_id) {
        if (!e)
            return;
        if (e->state == PP_CREATED)
            release(e);
        else
            e->release_wanted = true;
        return;
    }
    if (e || !client_of(pp))
        return;
    if (!pp->cloud_provider) {
        if (!pp->logged_off)
            log_info("CLOUD_PROVIDER is not set: PeerPod objects are off (as upstream)");
        pp->logged_off = true;
        return;
    }
    if (!caa_kube_name_valid(caa_pod_name(pod)) || !caa_kube_name_valid(caa_pod_namespace(pod)) ||
        strlen(caa_pod_name(pod)) > 253 - strlen("-resource-xxxxx")) {
        log_pod_warn(caa_pod_id(pod), "the pod name is not a valid Kubernetes name: no PeerPod");
        return;
    }
    e = entry_new(pp, pod);
    e->instance_id = xstrdup(instance_id);
    e->pod_uid = caa_pod_uid(pod) ? xstrdup(caa_pod_uid(pod)) : NULL;
    e->state = PP_CREATING;
    create(e);
}

static void on_pod_removed(const caa_pod *pod, void *opaque)
{
    caa_kube_peerpods *pp = opaque;
    pp_entry *e = find(pp, caa_pod_id(pod));
    if (!e)
        return;
    if (e->call)
        e->removed = true;
    else
        entry_free(e);
}

static const caa_pod_observer peerpod_observer = {
    .pod_added = on_pod_added,
    .instance_changed = on_instance_changed,
    .pod_removed = on_pod_removed,
};

void caa_kube_peerpods_init(caa_kube_peerpods *pp, caa_manager *m, const char *cloud_provider)
{
    *pp = (caa_kube_peerpods){
        .m = m, .cloud_provider = cloud_provider && *cloud_provider ? xstrdup(cloud_provider) : NULL};
    caa_list_init(&pp->entries);
    caa_manager_add_pod_observer(m, &peerpod_observer, pp);
}

void caa_kube_peerpods_done(caa_kube_peerpods *pp)
{
    caa_list *pos, *tmp;
    caa_list_foreach_safe(pos, tmp, &pp->entries)
    {
        entry_free(caa_list_entry(pos, pp_entry, node));
    }
    free(pp->cloud_provider);
}
