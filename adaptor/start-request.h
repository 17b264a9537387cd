/* What StartVM needs that only CreateVM knows: the instance size and image
 * from the pod's annotations and the boot data (cloud-config user-data).
 * CreateVM writes it to <pods-dir>/<id>/start-request.json (0600, atomically,
 * before state.json), so a daemon restarted between CreateVM and StartVM can
 * still start the pod.
 *
 * The user-data is stored base64-encoded. It holds the VM's TLS server key and
 * the pod's initdata, which apf.json in the same 0600 directory already holds:
 * nothing is on disk that was not there before. Files are hostile on load:
 * size cap, no symlinks, strict types, the id must match its directory. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "provider.h"

#define CAA_START_REQUEST_FILE "start-request.json"
#define CAA_START_REQUEST_VERSION 1
/* The largest user-data any provider accepts (libvirt: 64 MiB). */
#define CAA_START_REQUEST_USER_DATA_MAX (64u << 20)
/* base64 of that, plus the other fields. */
#define CAA_START_REQUEST_FILE_MAX ((CAA_START_REQUEST_USER_DATA_MAX / 3 + 1) * 4 + 64 * 1024)

typedef struct caa_start_request {
    char *sandbox_id;
    char *machine_type; /* NULL: provider default */
    char *image;        /* NULL: provider default */
    int64_t vcpus;      /* 0: provider default */
    int64_t memory_mib; /* 0: provider default */
    int64_t gpus;
    char *user_data; /* NULL: none; never logged */
    size_t user_data_len;
    bool multi_nic; /* "multi_nic"; absent (older files): false */
} caa_start_request;

/* Frees the fields (the user-data is wiped first) and zeroes *req. */
void caa_start_request_done(caa_start_request *req);

/* Serialises what StartVM needs of spec (sandbox id, instance type, image,
 * sizes, user-data); the result holds the user-data: free it with
 * caa_start_request_text_free(), which wipes it. */
char *caa_start_request_to_json(const caa_instance_spec *spec);
void caa_start_request_text_free(char *text);
/* Parses and validates a document; expected_id (may be NULL) must equal its
 * sandbox_id. *ret is untouched on failure. */
int caa_start_request_from_json(const char *data, size_t len, const char *expected_id, caa_start_request *ret,
                                caa_error **err);

/* Atomically replaces <pod_dir>/start-request.json (0600). */
int caa_start_request_save(const char *pod_dir, const caa_instance_spec *spec, caa_error **err);
/* Loads <pod_dir>/start-request.json with the hostile-file checks; -ENOENT
 * when there is none (a pod created by a daemon that did not write it). */
int caa_start_request_load(const char *pod_dir, const char *expected_id, caa_start_request *ret,
                           caa_error **err);
