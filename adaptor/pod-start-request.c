/* The pod's side of start-request.json (start-request.h): CreateVM saves what
 * StartVM will need; a pod recovered in `created` gets it back, so that a new
 * daemon can start it. */
#define LOG_COMPONENT "adaptor/pod"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pod-internal.h"
#include "start-request.h"
#include "xalloc.h"

int caa_pod_save_start_request(caa_pod *pod, caa_error **err)
{
    caa_instance_spec spec;
    caa_pod_instance_spec(pod, &spec);
    int r = caa_start_request_save(pod->dir, &spec, err);
    if (r < 0)
        return caa_error_prefix(err, "saving the start request");
    return 0;
}

void caa_pod_drop_boot_data(caa_pod *pod)
{
    if (pod->user_data)
        explicit_bzero(pod->user_data, pod->user_data_len);
    free(pod->user_data);
    pod->user_data = NULL;
    pod->user_data_len = 0;
    if (pod->auth_json)
        explicit_bzero(pod->auth_json, strlen(pod->auth_json));
    free(pod->auth_json);
    pod->auth_json = NULL;
}

int caa_pod_load_start_request(caa_pod *pod, caa_error **err)
{
    caa_start_request req = {0};
    int r = caa_start_request_load(pod->dir, pod->rec.sandbox_id, &req, err);
    if (r < 0)
        return r == -ENOENT ? caa_error_set(err, r, "%s/%s is missing", pod->dir, CAA_START_REQUEST_FILE) : r;
    caa_pod_drop_boot_data(pod);
    free(pod->spec.machine_type);
    free(pod->spec.image);
    pod->spec.machine_type = TAKE_PTR(req.machine_type);
    pod->spec.image = TAKE_PTR(req.image);
    pod->spec.vcpus = req.vcpus;
    pod->spec.memory_mib = req.memory_mib;
    pod->spec.gpus = req.gpus;
    pod->user_data = TAKE_PTR(req.user_data);
    pod->user_data_len = req.user_data_len;
    pod->multi_nic = req.multi_nic;
    req.user_data_len = 0;
    caa_start_request_done(&req);
    return 0;
}

void caa_pod_restore_start_request(caa_pod *pod)
{
    _cleanup_error_ caa_error *e = NULL;
    if (caa_pod_load_start_request(pod, &e) < 0) {
        log_pod_warn(pod->rec.sandbox_id, "cannot be started: its start request is lost (%s)",
                     caa_error_msg(e));
        return;
    }
    pod->start_request_restored = true;
    log_pod_info(pod->rec.sandbox_id, "start request restored (%zu bytes of user-data)", pod->user_data_len);
    /* Checked; StartVM reads it again. */
    caa_pod_drop_boot_data(pod);
    pod->boot_data_on_disk = true;
}
