/* Pod objects: creation at CreateVM, recovery from state files, the pod
 * table, the accessors, the one function that changes a pod's state, and
 * freeing. The start/stop flows are in pod-lifecycle.c. */
#define LOG_COMPONENT "adaptor/pod"
#include "pod-internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agent-proxy.h"
#include "failpoint.h"
#include "fs.h"
#include "instance-name.h"
#include "log.h"
#include "pod-hooks.h"
#include "sandbox-id.h"
#include "strv.h"
#include "uuid.h"
#include "xalloc.h"

static caa_pod *pod_new(caa_manager *m, const char *id)
{
    caa_pod *pod = xnew0(caa_pod, 1);
    caa_list_init(&pod->node);
    caa_list_init(&pod->stop_waiters);
    pod->mgr = m;
    pod->dir = xasprintf("%s/%s", m->cfg->pods_dir, id);
    pod->agent_socket = xasprintf("%s/%s", pod->dir, CAA_AGENT_SOCKET_NAME);
    return pod;
}

void caa_pod_free(caa_pod *pod)
{
    if (!pod)
        return;
    if (pod->mgr->hooks->pod_free)
        pod->mgr->hooks->pod_free(pod->mgr, pod);
    caa_pod_record_done(&pod->rec);
    caa_pod_spec_done(&pod->spec);
    free(pod->dir);
    free(pod->agent_socket);
    free(pod->netns_path);
    caa_pod_drop_boot_data(pod);
    caa_error_free(pod->start_error);
    caa_error_free(pod->stop_error);
    caa_list *n, *tmp;
    caa_list_foreach_safe(n, tmp, &pod->stop_waiters)
    {
        caa_list_remove(n);
        free(caa_list_entry(n, caa_pod_waiter, node));
    }
    free(pod);
}

static bool in_table(const caa_pod *pod)
{
    return !caa_list_empty(&pod->node);
}

void caa_pod_hold(caa_pod *pod)
{
    caa_ref(&pod->busy);
    caa_manager_op_begin(pod->mgr);
}

void caa_pod_release(caa_pod *pod)
{
    caa_manager *m = pod->mgr;
    if (caa_unref(&pod->busy) && !in_table(pod))
        caa_pod_free(pod);
    caa_manager_op_end(m);
}

/* ---------------------------------------------------------------- accessors */

const char *caa_pod_id(const caa_pod *pod)
{
    return pod->rec.sandbox_id;
}

caa_pod_state caa_pod_get_state(const caa_pod *pod)
{
    return pod->rec.state;
}

const char *caa_pod_name(const caa_pod *pod)
{
    return pod->rec.pod_name;
}

const char *caa_pod_namespace(const caa_pod *pod)
{
    return pod->rec.pod_namespace;
}

const char *caa_pod_uid(const caa_pod *pod)
{
    return pod->spec.pod_uid;
}

const char *caa_pod_instance_name(const caa_pod *pod)
{
    return pod->rec.instance_name;
}

const char *caa_pod_instance_id(const caa_pod *pod)
{
    return pod->rec.instance_id;
}

const char *caa_pod_instance_ip(const caa_pod *pod)
{
    return pod->rec.instance_ips ? pod->rec.instance_ips[0] : NULL;
}

const char *caa_pod_agent_socket(const caa_pod *pod)
{
    return pod->agent_socket;
}

const char *caa_pod_agent_connection(const caa_pod *pod)
{
    if (!pod->proxy)
        return "";
    caa_agent_proxy_stats st;
    caa_agent_proxy_get_stats(pod->proxy, &st);
    return st.connected ? "connected" : st.reconnecting ? "reconnecting" : "down";
}

bool caa_pod_is_recovered(const caa_pod *pod)
{
    return pod->recovered;
}

/* ---------------------------------------------------------------- state changes */

int caa_pod_persist(caa_pod *pod, caa_error **err)
{
    pod->rec.updated_at = time(NULL);
    return caa_pod_record_save(pod->dir, &pod->rec, err);
}

int caa_pod_set_state(caa_pod *pod, caa_pod_state to, caa_error **err)
{
    caa_pod_state from = pod->rec.state;
    if (from == to)
        return 0;
    if (!caa_pod_state_transition_allowed(from, to))
        return caa_error_set(err, -EINVAL, "invalid state transition %s -> %s", caa_pod_state_name(from),
                             caa_pod_state_name(to));
    pod->rec.state = to;
    int r = caa_pod_persist(pod, err);
    if (r < 0) {
        pod->rec.state = from;
        return caa_error_prefix(err, "saving state %s", caa_pod_state_name(to));
    }
    log_pod_info(pod->rec.sandbox_id, "state %s -> %s", caa_pod_state_name(from), caa_pod_state_name(to));
    CAA_FAILPOINT("state", caa_pod_state_name(to));
    caa_pod_notify_state(pod, from, to);
    return 0;
}

static void persist_or_log(caa_pod *pod)
{
    _cleanup_error_ caa_error *e = NULL;
    if (caa_pod_persist(pod, &e) < 0)
        log_pod_error(pod->rec.sandbox_id, "saving pod state: %s", caa_error_msg(e));
}

static void forget_instance(caa_pod *pod)
{
    free(pod->rec.instance_id);
    pod->rec.instance_id = NULL;
    caa_strv_free(pod->rec.instance_ips);
    pod->rec.instance_ips = NULL;
}

void caa_pod_set_instance(caa_pod *pod, const caa_instance *inst)
{
    forget_instance(pod);
    pod->rec.instance_id = xstrdup(inst->id);
    for (size_t i = 0; inst->ips && inst->ips[i] && i < CAA_STATE_MAX_IPS; i++)
        caa_strv_push(&pod->rec.instance_ips, inst->ips[i]);
    persist_or_log(pod);
    CAA_FAILPOINT("instance", "recorded");
    caa_pod_notify_instance(pod);
}

void caa_pod_clear_instance(caa_pod *pod)
{
    forget_instance(pod);
    persist_or_log(pod);
    CAA_FAILPOINT("instance", "cleared");
    caa_pod_notify_instance(pod);
}

/* ---------------------------------------------------------------- the pod table */

static caa_pod *pod_after(caa_manager *m, caa_list *pos)
{
    return pos->next == &m->pods ? NULL : caa_list_entry(pos->next, caa_pod, node);
}

/* Visits every registered pod; the current one may be removed. */
#define foreach_pod(pod, next, m)                                                                            \
    for (pod = pod_after(m, &(m)->pods), next = pod ? pod_after(m, &pod->node) : NULL; pod;                  \
         pod = next, next = pod ? pod_after(m, &pod->node) : NULL)

/* The index by sandbox id keeps lookups O(1) at 10,000 pods (the list keeps
 * the order for the walks). Ids come from the shim on the 0600 socket; an
 * unseeded FNV-1a with at most one pod per bucket on average is enough. */
enum { POD_INDEX_MIN_SIZE = 64 };

static size_t index_slot(const caa_manager *m, const char *sandbox_id)
{
    uint64_t h = 14695981039346656037ull;
    for (const unsigned char *p = (const unsigned char *)sandbox_id; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return (size_t)(h ^ (h >> 32)) & (m->pod_index_size - 1);
}

static void index_link(caa_manager *m, caa_pod *pod)
{
    caa_pod **bucket = &m->pod_index[index_slot(m, pod->rec.sandbox_id)];
    pod->index_next = *bucket;
    *bucket = pod;
}

/* Makes room for one more pod: the first one allocates, more pods than
 * buckets doubles (the pods are relinked from the list). */
static void index_reserve(caa_manager *m)
{
    if (m->n_pods < m->pod_index_size)
        return;
    free(m->pod_index);
    m->pod_index_size = m->pod_index_size ? m->pod_index_size * 2 : POD_INDEX_MIN_SIZE;
    m->pod_index = xnew0(caa_pod *, m->pod_index_size);
    caa_pod *pod, *next;
    foreach_pod(pod, next, m) index_link(m, pod);
}

static void index_unlink(caa_manager *m, caa_pod *pod)
{
    caa_pod **link = &m->pod_index[index_slot(m, pod->rec.sandbox_id)];
    while (*link != pod)
        link = &(*link)->index_next;
    *link = pod->index_next;
    pod->index_next = NULL;
}

static void table_add(caa_manager *m, caa_pod *pod)
{
    index_reserve(m);
    index_link(m, pod);
    caa_list_append(&m->pods, &pod->node);
    m->n_pods++;
    caa_pod_notify_added(pod);
}

static void table_remove(caa_manager *m, caa_pod *pod)
{
    if (!in_table(pod))
        return;
    index_unlink(m, pod);
    caa_list_remove(&pod->node);
    if (--m->n_pods == 0) {
        free(m->pod_index);
        m->pod_index = NULL;
        m->pod_index_size = 0;
    }
}

caa_pod *caa_pod_find(caa_manager *m, const char *sandbox_id)
{
    if (!m->pod_index)
        return NULL;
    for (caa_pod *pod = m->pod_index[index_slot(m, sandbox_id)]; pod; pod = pod->index_next) {
        if (strcmp(pod->rec.sandbox_id, sandbox_id) == 0)
            return pod;
    }
    return NULL;
}

void caa_pods_foreach(caa_manager *m, void (*fn)(const caa_pod *pod, void *opaque), void *opaque)
{
    caa_pod *pod, *next;
    foreach_pod(pod, next, m)
    {
        fn(pod, opaque);
    }
}

const caa_pod *caa_pod_find_by_name(caa_manager *m, const char *pod_name, const char *pod_namespace)
{
    const caa_pod *found = NULL;
    caa_pod *pod, *next;
    foreach_pod(pod, next, m)
    {
        if (pod->rec.instance_id && strcmp(pod->rec.pod_name, pod_name) == 0 &&
            strcmp(pod->rec.pod_namespace, pod_namespace) == 0)
            found = pod;
    }
    return found;
}

bool caa_pod_knows_instance(caa_manager *m, const char *id, const char *name)
{
    caa_pod *pod, *next;
    foreach_pod(pod, next, m)
    {
        if ((pod->rec.instance_id && strcmp(pod->rec.instance_id, id) == 0) ||
            (name && strcmp(pod->rec.instance_name, name) == 0))
            return true;
    }
    return false;
}

uint32_t *caa_pods_vnis_in_use(caa_manager *m, size_t *ret_n)
{
    uint32_t *vnis = xnew0(uint32_t, m->n_pods + 1);
    size_t n = 0;
    caa_pod *pod, *next;
    foreach_pod(pod, next, m)
    {
        if (pod->rec.vni)
            vnis[n++] = pod->rec.vni;
    }
    *ret_n = n;
    return vnis;
}

void caa_pod_forget(caa_pod *pod)
{
    if (!in_table(pod))
        return;
    caa_pod_notify_removed(pod);
    table_remove(pod->mgr, pod);
}

void caa_pods_resume(caa_manager *m)
{
    caa_pod *pod, *next;
    foreach_pod(pod, next, m)
    {
        if (pod->rec.state == CAA_POD_STOPPING) {
            /* A StopVM that an earlier daemon did not finish: finish it. */
            log_pod_info(pod->rec.sandbox_id, "resuming the interrupted StopVM");
            caa_pod_stop(pod, NULL, NULL);
        } else if (pod->rec.state == CAA_POD_READY) {
            /* Its VM runs and the shim may still use it: serve its agent socket again. */
            caa_pod_reconnect(pod);
        }
    }
}

void caa_pods_shutdown(caa_manager *m)
{
    caa_pod *pod, *next;
    foreach_pod(pod, next, m) caa_pod_stop_proxy(pod);
}

void caa_pods_release_all(caa_manager *m)
{
    caa_pod *pod, *next;
    foreach_pod(pod, next, m)
    {
        caa_pod_abandon(pod);
        caa_pod_stop_proxy(pod);
    }
    caa_pod_free_all(m);
}

/* mkdir <pods-dir>/<id> 0700; an existing plain directory is reused unless it
 * holds a state file (from a run whose state could not be loaded). */
static int make_pod_dir(caa_pod *pod, caa_error **err)
{
    int r = caa_mkdir_p(pod->mgr->cfg->pods_dir, 0700, err);
    if (r < 0)
        return r;
    if (mkdir(pod->dir, 0700) == 0)
        return 0;
    if (errno != EEXIST)
        return caa_error_set_errno(err, -errno, "creating pod directory '%s'", pod->dir);
    struct stat st;
    if (lstat(pod->dir, &st) < 0)
        return caa_error_set_errno(err, -errno, "checking '%s'", pod->dir);
    if (!S_ISDIR(st.st_mode))
        return caa_error_set(err, -EEXIST, "'%s' exists and is not a directory", pod->dir);
    _cleanup_free_ char *state = xasprintf("%s/%s", pod->dir, CAA_STATE_FILE);
    if (lstat(state, &st) == 0)
        return caa_error_set(err, -EEXIST,
                             "'%s' holds a state file from an earlier run that could not be loaded; "
                             "an operator must remove it",
                             pod->dir);
    if (chmod(pod->dir, 0700) < 0)
        return caa_error_set_errno(err, -errno, "setting the mode of '%s'", pod->dir);
    return 0;
}

int caa_pod_create(caa_manager *m, const char *sandbox_id, const caa_annotation *ann, size_t n_ann,
                   const char *netns_path, const char *auth_json, caa_pod **ret, caa_error **err)
{
    int r = caa_sandbox_id_check(sandbox_id, err);
    if (r < 0)
        return r;
    if (caa_pod_find(m, sandbox_id))
        return caa_error_set(err, -EEXIST, "sandbox %s already exists", sandbox_id);
    if (m->shutting_down)
        return caa_error_set(err, -ESHUTDOWN, "the daemon is shutting down");

    caa_pod *pod = pod_new(m, sandbox_id);
    struct sockaddr_un sun;
    if (strlen(pod->agent_socket) >= sizeof(sun.sun_path)) {
        r = caa_error_set(err, -EINVAL, "agent socket path for sandbox %s would be longer than %zu bytes",
                          sandbox_id, sizeof(sun.sun_path) - 1);
        goto fail;
    }
    r = caa_pod_spec_from_annotations(ann, n_ann, &pod->spec, err);
    if (r < 0)
        goto fail;
    pod->netns_path = netns_path && *netns_path ? xstrdup(netns_path) : NULL;
    pod->auth_json = auth_json ? xstrdup(auth_json) : NULL;

    char key[CAA_UUID_STRING_LEN + 1];
    caa_uuid_v4(key);
    time_t now = time(NULL);
    pod->rec = (caa_pod_record){
        .sandbox_id = xstrdup(sandbox_id),
        .pod_name = xstrdup(pod->spec.pod_name),
        .pod_namespace = xstrdup(pod->spec.pod_namespace),
        .state = CAA_POD_CREATED,
        .instance_name = caa_instance_name(pod->spec.pod_name, sandbox_id),
        .idempotency_key = xstrdup(key),
        .netns_path = pod->netns_path ? xstrdup(pod->netns_path) : NULL,
        .gpus = (uint32_t)pod->spec.gpus,
        .created_at = now,
        .updated_at = now,
    };

    if (m->hooks->network_inspect && (r = m->hooks->network_inspect(m, pod, err)) < 0)
        goto fail;
    r = make_pod_dir(pod, err);
    if (r < 0)
        goto fail;
    if (m->hooks->build_boot_data &&
        (r = m->hooks->build_boot_data(m, pod, &pod->user_data, &pod->user_data_len, err)) < 0)
        goto fail_rmdir;
    /* A spec the provider would refuse at StartVM (user-data over its limit, a
     * size it cannot make) fails now, before any cloud call. */
    caa_instance_spec spec;
    caa_pod_instance_spec(pod, &spec);
    if ((r = caa_provider_validate_spec(m->provider, &spec, err)) < 0) {
        caa_error_prefix(err, "provider %s refuses the pod", m->provider->ops->name);
        goto fail_rmdir;
    }
    /* Before state.json: a pod whose state file exists can always be started. */
    r = caa_pod_save_start_request(pod, err);
    if (r < 0)
        goto fail_rmdir;
    CAA_FAILPOINT("create", "start-request-saved");
    r = caa_pod_persist(pod, err);
    if (r < 0)
        goto fail_rmdir;

    /* Saved in start-request.json: an idle pod does not keep it in memory. */
    caa_pod_drop_boot_data(pod);
    pod->boot_data_on_disk = true;
    table_add(m, pod);
    log_pod_info(sandbox_id, "created pod %s/%s, instance name %s", pod->rec.pod_namespace, pod->rec.pod_name,
                 pod->rec.instance_name);
    *ret = pod;
    return 0;

fail_rmdir:
    (void)caa_rm_rf(pod->dir, NULL);
fail:
    caa_pod_free(pod);
    return r;
}

void caa_pod_instance_spec(const caa_pod *pod, caa_instance_spec *ret)
{
    *ret = (caa_instance_spec){
        .instance_name = pod->rec.instance_name,
        .sandbox_id = pod->rec.sandbox_id,
        .pod_name = pod->rec.pod_name,
        .pod_namespace = pod->rec.pod_namespace,
        .vcpus = pod->spec.vcpus,
        .memory_mib = pod->spec.memory_mib,
        .gpus = pod->spec.gpus,
        .instance_type = pod->spec.machine_type,
        .image = pod->spec.image,
        .user_data = pod->user_data,
        .user_data_len = pod->user_data_len,
        .tags = NULL,
        .idempotency_key = pod->rec.idempotency_key,
        .multi_nic = pod->multi_nic,
    };
}

caa_pod *caa_pod_recover(caa_manager *m, caa_pod_record *rec)
{
    caa_pod *pod = pod_new(m, rec->sandbox_id);
    pod->rec = *rec;
    *rec = (caa_pod_record){0};
    pod->recovered = true;
    if (!pod->rec.instance_id && caa_pod_state_create_may_be_pending(pod->rec.state))
        pod->made |= CAA_POD_MADE_UNKNOWN_INSTANCE;
    /* What recovery knows of the pod request from state.json; a `created` pod's
     * size, image and boot data come from start-request.json. */
    pod->spec.pod_name = xstrdup(pod->rec.pod_name);
    pod->spec.pod_namespace = xstrdup(pod->rec.pod_namespace);
    if (pod->rec.state == CAA_POD_CREATED)
        caa_pod_restore_start_request(pod);
    table_add(m, pod);
    return pod;
}

void caa_pod_free_all(caa_manager *m)
{
    caa_pod *pod, *next;
    foreach_pod(pod, next, m)
    {
        table_remove(m, pod);
        caa_pod_free(pod);
    }
}
