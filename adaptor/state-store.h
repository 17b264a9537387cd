/* Persisted pod state: <pods-dir>/<id>/state.json, written atomically at
 * every lifecycle transition, read back at daemon start.
 *
 * Files are treated as hostile on load: size cap, no symlinks, strict types,
 * the id must match its directory, unknown states are refused. */
#pragma once

#include <stdint.h>
#include <time.h>

#include "error.h"
#include "pod-state.h"

#define CAA_STATE_FILE "state.json"
#define CAA_STATE_SCHEMA_VERSION 1
#define CAA_STATE_FILE_MAX (64 * 1024)
#define CAA_STATE_MAX_IPS 16

typedef struct caa_pod_record {
    char *sandbox_id;
    char *pod_name;
    char *pod_namespace;
    caa_pod_state state;
    char *instance_name;
    char *idempotency_key;
    char *instance_id;   /* NULL: not known */
    char **instance_ips; /* NULL-terminated, may be NULL */
    uint32_t vni;        /* 0: no pod network (CreateVM without a network namespace) */
    char *tls_dir;       /* directory of the TLS material this pod's VM trusts; NULL with -disable-tls */
    char *netns_path;    /* CreateVM networkNamespacePath; NULL: none (optional in the file) */
    uint32_t gpus;       /* GPUs the pod asked for, for the agent proxy (optional in the file) */
    time_t created_at;
    time_t updated_at;
} caa_pod_record;

void caa_pod_record_done(caa_pod_record *rec);

/* Serialises rec (never fails; returns a new NUL-terminated string). */
char *caa_pod_record_to_json(const caa_pod_record *rec);
/* Parses and validates a state document. expected_id (may be NULL) must
 * equal its sandbox_id. *ret is untouched on failure. */
int caa_pod_record_from_json(const char *data, size_t len, const char *expected_id, caa_pod_record *ret,
                             caa_error **err);

/* Atomically replaces <pod_dir>/state.json (mode 0600). */
int caa_pod_record_save(const char *pod_dir, const caa_pod_record *rec, caa_error **err);
/* Loads <pods_dir>/<name>/state.json with every hostile-file check.
 * -ENOENT when the directory has no state file. */
int caa_pod_record_load(const char *pods_dir, const char *name, caa_pod_record *ret, caa_error **err);

/* Removes <pods_dir>/<name> when it provably never got an instance: a real
 * directory (no symlink) holding no state file and nothing but regular files
 * CreateVM writes before its first state (apf.json and the temporary files
 * of the atomic writes of apf.json and state.json), or nothing at all; a
 * SIGKILL during CreateVM leaves such a directory. Returns 1 when removed
 * (*ret_what, when non-NULL, gets a new string listing what it held), 0 when
 * the directory is something else or missing (left alone), negative on an
 * error removing it. */
int caa_state_store_remove_leftover(const char *pods_dir, const char *name, char **ret_what, caa_error **err);

/* Called for each directory entry of the pods dir: rec != NULL for a valid
 * record (the callee may move its contents out and zero it), otherwise err says why
 * the entry was rejected (owned by the caller). */
typedef void (*caa_state_scan_cb)(const char *name, caa_pod_record *rec, const caa_error *err, void *opaque);
/* Visits every entry of pods_dir. A missing pods_dir is an empty scan. */
int caa_state_store_scan(const char *pods_dir, caa_state_scan_cb cb, void *opaque, caa_error **err);

/* RFC 3339 UTC, second precision ("2026-08-30T12:00:00Z"). */
void caa_format_timestamp(time_t t, char buf[32]);
int caa_parse_timestamp(const char *s, time_t *ret);
