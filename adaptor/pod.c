/* Pod objects: creation at CreateVM, recovery from state files, the
 * persisted state machine, and freeing. The start/stop flows are in
 * pod-lifecycle.c. */
#define LOG_COMPONENT "adaptor/pod"
#include "pod.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

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
    if (pod->user_data)
        explicit_bzero(pod->user_data, pod->user_data_len);
    free(pod->user_data);
    caa_error_free(pod->start_error);
    caa_error_free(pod->stop_error);
    free(pod->stop_waiters);
    free(pod);
}

void caa_pod_hold(caa_pod *pod)
{
    pod->busy++;
    caa_manager_op_begin(pod->mgr);
}

void caa_pod_release(caa_pod *pod)
{
    caa_manager *m = pod->mgr;
    pod->busy--;
    if (pod->busy == 0 && !pod->in_table)
        caa_pod_free(pod);
    caa_manager_op_end(m);
}

int caa_pod_persist(caa_pod *pod, caa_error **err)
{
    pod->rec.updated_at = time(NULL);
    return caa_pod_record_save(pod->dir, &pod->rec, err);
}

int caa_pod_transition(caa_pod *pod, caa_pod_state to, caa_error **err)
{
    caa_pod_state from = pod->rec.state;
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
    return 0;
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
                   const char *netns_path, caa_pod **ret, caa_error **err)
{
    int r = caa_sandbox_id_check(sandbox_id, err);
    if (r < 0)
        return r;
    if (caa_manager_find_pod(m, sandbox_id))
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
    r = caa_pod_persist(pod, err);
    if (r < 0)
        goto fail_rmdir;

    caa_manager_add_pod(m, pod);
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
    };
}

caa_pod *caa_pod_recover(caa_manager *m, caa_pod_record *rec)
{
    caa_pod *pod = pod_new(m, rec->sandbox_id);
    pod->rec = *rec;
    *rec = (caa_pod_record){0};
    pod->recovered = true;
    /* What recovery knows of the pod request; the rest (annotations) was not persisted. */
    pod->spec.pod_name = xstrdup(pod->rec.pod_name);
    pod->spec.pod_namespace = xstrdup(pod->rec.pod_namespace);
    caa_manager_add_pod(m, pod);
    return pod;
}

void caa_pod_free_all(caa_manager *m)
{
    caa_list *pos, *tmp;
    caa_list_foreach_safe(pos, tmp, &m->pods)
    {
        caa_pod *pod = caa_list_entry(pos, caa_pod, node);
        caa_manager_remove_pod(m, pod);
        caa_pod_free(pod);
    }
}
