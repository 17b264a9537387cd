/* Test helpers: the fake Azure endpoint (tests/integration/azure/fake_arm.py)
 * as a child process, its control API over blocking loopback HTTP, and the
 * Azure provider configured against it and driven on a uv loop. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include <jansson.h>
#include <uv.h>

#include "provider.h"

typedef struct az_fake {
    pid_t pid;
    int stdin_fd; /* closing it stops the fake */
    int port;
    char url[64]; /* http://127.0.0.1:<port> */
} az_fake;

/* Starts the fake (config: JSON object merged over its defaults, or NULL).
 * Returns false when python3 or the script is missing. */
bool az_fake_start(az_fake *f, const char *config);
void az_fake_stop(az_fake *f);
/* Blocking request to the fake; returns the parsed JSON answer or NULL. */
json_t *az_fake_call(az_fake *f, const char *method, const char *path, const char *body);
json_t *az_fake_state(az_fake *f);
void az_fake_config(az_fake *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void az_fake_reset(az_fake *f, const char *config);
/* Number of VMs the fake holds. */
size_t az_fake_vm_count(az_fake *f);
/* How many logged requests have this method and contain `path_part`. */
size_t az_fake_count(az_fake *f, const char *method, const char *path_part);
long az_fake_stat(az_fake *f, const char *name);

/* A provider against the fake: base flags (ids, endpoints, short poll
 * intervals) followed by `extra` (NULL-terminated flag list). */
caa_provider *az_test_provider(uv_loop_t *loop, az_fake *f, const char *const *extra, caa_error **err);
/* Frees the provider, runs the loop dry and checks that it closes. */
void az_test_provider_free(uv_loop_t *loop, caa_provider *p);

/* Synchronous wrappers that run the loop until the callback. */
typedef struct az_result {
    bool done;
    int status;
    caa_instance *inst;
    caa_instance **list;
    caa_error *err;
} az_result;

void az_result_done(az_result *r);
void az_run_until(uv_loop_t *loop, const bool *flag);
void az_create_cb(int status, caa_instance *inst, caa_error *err, void *opaque);
int az_test_create(uv_loop_t *loop, caa_provider *p, const caa_instance_spec *spec, az_result *r);
int az_test_delete(uv_loop_t *loop, caa_provider *p, const char *id, az_result *r);
int az_test_get(uv_loop_t *loop, caa_provider *p, const char *id, az_result *r);
int az_test_list(uv_loop_t *loop, caa_provider *p, az_result *r);
/* A spec with a name derived from n, no sizes, a small cloud-config. */
caa_instance_spec az_test_spec(int n);
/* Runs the loop for ms milliseconds. */
void az_run_for(uv_loop_t *loop, uint64_t ms);
