#include "state-store.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "boot-data.h"
#include "cleanup.h"
#include "daemon-sc.h"
#include "fs.h"
#include "sandbox-id.h"
#include "start-request.h"
#include "strcheck.h"
#include "strv.h"
#include "xalloc.h"

/* Field bounds for hostile files. */
#define NAME_MAX_LEN 253
#define INSTANCE_NAME_MAX_LEN 63
#define KEY_MAX_LEN 64
#define INSTANCE_ID_MAX_LEN 1024
#define PATH_MAX_LEN 4096
#define VNI_MAX 16777215
#define GPUS_MAX 1024

void caa_pod_record_done(caa_pod_record *rec)
{
    free(rec->sandbox_id);
    free(rec->pod_name);
    free(rec->pod_namespace);
    free(rec->instance_name);
    free(rec->idempotency_key);
    free(rec->instance_id);
    caa_strv_free(rec->instance_ips);
    free(rec->tls_dir);
    free(rec->netns_path);
    *rec = (caa_pod_record){0};
}

void caa_format_timestamp(time_t t, char buf[32])
{
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        strcpy(buf, "1970-01-01T00:00:00Z");
}

int caa_parse_timestamp(const char *s, time_t *ret)
{
    struct tm tm = {0};
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!end || *end != '\0')
        return -EINVAL;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -EINVAL;
    *ret = t;
    return 0;
}

static json_t *string_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

char *caa_pod_record_to_json(const caa_pod_record *rec)
{
    char created[32], updated[32];
    caa_format_timestamp(rec->created_at, created);
    caa_format_timestamp(rec->updated_at, updated);

    json_auto_t *ips = json_array();
    for (size_t i = 0; rec->instance_ips && rec->instance_ips[i]; i++)
        json_array_append_new(ips, json_string(rec->instance_ips[i]));

    json_auto_t *o = json_object();
    json_object_set_new(o, "schema", json_integer(CAA_STATE_SCHEMA_VERSION));
    json_object_set_new(o, "sandbox_id", json_string(rec->sandbox_id));
    json_object_set_new(o, "pod_name", json_string(rec->pod_name));
    json_object_set_new(o, "pod_namespace", json_string(rec->pod_namespace));
    json_object_set_new(o, "state", json_string(caa_pod_state_name(rec->state)));
    json_object_set_new(o, "instance_name", json_string(rec->instance_name));
    json_object_set_new(o, "idempotency_key", json_string(rec->idempotency_key));
    json_object_set_new(o, "instance_id", string_or_null(rec->instance_id));
    json_object_set(o, "instance_ips", ips);
    json_object_set_new(o, "vni", json_integer(rec->vni));
    json_object_set_new(o, "tls_dir", string_or_null(rec->tls_dir));
    json_object_set_new(o, "netns_path", string_or_null(rec->netns_path));
    json_object_set_new(o, "gpus", json_integer(rec->gpus));
    json_object_set_new(o, "created_at", json_string(created));
    json_object_set_new(o, "updated_at", json_string(updated));
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!s) /* only on OOM or a non-UTF-8 string, which callers never pass */
        caa_oom();
    char *out = xasprintf("%s\n", s);
    free(s);
    return out;
}

/* ---------------------------------------------------------------- loading */

static int printable(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

static int chars_in(const char *s, const char *extra)
{
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr(extra, *p)))
            return 0;
    return 1;
}

/* Required string field (or, with nullable, string or null -> *ret NULL). */
static int get_string(json_t *o, const char *key, size_t max, int nullable, int allow_empty, char **ret,
                      caa_error **err)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return caa_error_set(err, -EINVAL, "field \"%s\" is missing", key);
    if (json_is_null(v) && nullable) {
        *ret = NULL;
        return 0;
    }
    if (!json_is_string(v))
        return caa_error_set(err, -EINVAL, "field \"%s\" must be a string%s", key,
                             nullable ? " or null" : "");
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (caa_str_check(key, s, len, err) < 0)
        return -EINVAL;
    if (len > max)
        return caa_error_set(err, -EINVAL, "field \"%s\" is longer than %zu bytes", key, max);
    if (!allow_empty && len == 0)
        return caa_error_set(err, -EINVAL, "field \"%s\" is empty", key);
    if (!printable(s))
        return caa_error_set(err, -EINVAL, "field \"%s\" contains control characters", key);
    *ret = xstrdup(s);
    return 0;
}

static int get_timestamp(json_t *o, const char *key, time_t *ret, caa_error **err)
{
    _cleanup_free_ char *s = NULL;
    int r = get_string(o, key, 32, 0, 0, &s, err);
    if (r < 0)
        return r;
    if (caa_parse_timestamp(s, ret) < 0)
        return caa_error_set(err, -EINVAL, "field \"%s\" is not an RFC 3339 UTC time", key);
    return 0;
}

static int valid_ip(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

int caa_pod_record_from_json(const char *data, size_t len, const char *expected_id, caa_pod_record *ret,
                             caa_error **err)
{
    json_error_t jerr;
    json_auto_t *o = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!o)
        return caa_error_set(err, -EINVAL, "not valid JSON (line %d: %s)", jerr.line, jerr.text);
    if (!json_is_object(o))
        return caa_error_set(err, -EINVAL, "top level is not a JSON object");

    json_t *schema = json_object_get(o, "schema");
    if (!json_is_integer(schema))
        return caa_error_set(err, -EINVAL, "field \"schema\" is missing or not an integer");
    if (json_integer_value(schema) != CAA_STATE_SCHEMA_VERSION)
        return caa_error_set(err, -EINVAL, "unsupported schema version %lld (this daemon reads %d)",
                             (long long)json_integer_value(schema), CAA_STATE_SCHEMA_VERSION);

    caa_pod_record rec = {0};
    _cleanup_free_ char *state = NULL;
    int r;
    if ((r = get_string(o, "sandbox_id", 1024, 0, 1, &rec.sandbox_id, err)) < 0)
        goto fail;
    if ((r = caa_sandbox_id_check(rec.sandbox_id, err)) < 0) {
        caa_error_prefix(err, "field \"sandbox_id\"");
        goto fail;
    }
    if (expected_id && strcmp(rec.sandbox_id, expected_id) != 0) {
        r = caa_error_set(err, -EINVAL, "sandbox id \"%s\" does not match its directory", rec.sandbox_id);
        goto fail;
    }
    if ((r = get_string(o, "state", 32, 0, 0, &state, err)) < 0)
        goto fail;
    if (caa_pod_state_from_name(state, &rec.state) < 0) {
        r = caa_error_set(err, -EINVAL, "unknown state \"%s\"", state);
        goto fail;
    }
    if ((r = get_string(o, "pod_name", NAME_MAX_LEN, 0, 0, &rec.pod_name, err)) < 0 ||
        (r = get_string(o, "pod_namespace", NAME_MAX_LEN, 0, 0, &rec.pod_namespace, err)) < 0 ||
        (r = get_string(o, "instance_name", INSTANCE_NAME_MAX_LEN, 0, 0, &rec.instance_name, err)) < 0 ||
        (r = get_string(o, "idempotency_key", KEY_MAX_LEN, 0, 0, &rec.idempotency_key, err)) < 0 ||
        (r = get_string(o, "instance_id", INSTANCE_ID_MAX_LEN, 1, 0, &rec.instance_id, err)) < 0 ||
        (r = get_string(o, "tls_dir", PATH_MAX_LEN, 1, 0, &rec.tls_dir, err)) < 0 ||
        (r = get_timestamp(o, "created_at", &rec.created_at, err)) < 0 ||
        (r = get_timestamp(o, "updated_at", &rec.updated_at, err)) < 0)
        goto fail;
    if (!chars_in(rec.instance_name, "-")) {
        r = caa_error_set(err, -EINVAL, "field \"instance_name\" has characters outside [a-z0-9-]");
        goto fail;
    }
    if (!chars_in(rec.idempotency_key, "-")) {
        r = caa_error_set(err, -EINVAL, "field \"idempotency_key\" has characters outside [a-z0-9-]");
        goto fail;
    }

    json_t *vni = json_object_get(o, "vni");
    if (!json_is_integer(vni) || json_integer_value(vni) < 0 || json_integer_value(vni) > VNI_MAX) {
        r = caa_error_set(err, -EINVAL, "field \"vni\" must be an integer in [0, %d]", VNI_MAX);
        goto fail;
    }
    rec.vni = (uint32_t)json_integer_value(vni);

    /* Added after the first files were written: absent means none. */
    if (json_object_get(o, "netns_path") &&
        (r = get_string(o, "netns_path", PATH_MAX_LEN, 1, 0, &rec.netns_path, err)) < 0)
        goto fail;
    if (rec.netns_path && rec.netns_path[0] != '/') {
        r = caa_error_set(err, -EINVAL, "field \"netns_path\" is not an absolute path");
        goto fail;
    }
    json_t *gpus = json_object_get(o, "gpus");
    if (gpus) {
        if (!json_is_integer(gpus) || json_integer_value(gpus) < 0 || json_integer_value(gpus) > GPUS_MAX) {
            r = caa_error_set(err, -EINVAL, "field \"gpus\" must be an integer in [0, %d]", GPUS_MAX);
            goto fail;
        }
        rec.gpus = (uint32_t)json_integer_value(gpus);
    }

    json_t *ips = json_object_get(o, "instance_ips");
    if (!json_is_array(ips)) {
        r = caa_error_set(err, -EINVAL, "field \"instance_ips\" is missing or not an array");
        goto fail;
    }
    if (json_array_size(ips) > CAA_STATE_MAX_IPS) {
        r = caa_error_set(err, -EINVAL, "field \"instance_ips\" has more than %d entries", CAA_STATE_MAX_IPS);
        goto fail;
    }
    size_t i;
    json_t *ip;
    json_array_foreach(ips, i, ip)
    {
        if (!json_is_string(ip) || !valid_ip(json_string_value(ip))) {
            r = caa_error_set(err, -EINVAL, "field \"instance_ips\" entry %zu is not an IP address", i);
            goto fail;
        }
        caa_strv_push(&rec.instance_ips, json_string_value(ip));
    }

    *ret = rec;
    return 0;
fail:
    caa_pod_record_done(&rec);
    return r;
}

int caa_pod_record_save(const char *pod_dir, const caa_pod_record *rec, caa_error **err)
{
    _cleanup_free_ char *path = xasprintf("%s/%s", pod_dir, CAA_STATE_FILE);
    _cleanup_free_ char *doc = caa_pod_record_to_json(rec);
    return caa_write_file_atomic(path, doc, strlen(doc), 0600, err);
}

int caa_pod_record_load(const char *pods_dir, const char *name, caa_pod_record *ret, caa_error **err)
{
    int r = caa_sandbox_id_check(name, err);
    if (r < 0)
        return caa_error_prefix(err, "directory name is not a sandbox id");

    _cleanup_free_ char *dir = xasprintf("%s/%s", pods_dir, name);
    struct stat st;
    if (lstat(dir, &st) < 0)
        return caa_error_set_errno(err, -errno, "checking '%s'", dir);
    if (S_ISLNK(st.st_mode))
        return caa_error_set(err, -ELOOP, "'%s' is a symlink", dir);
    if (!S_ISDIR(st.st_mode))
        return caa_error_set(err, -ENOTDIR, "'%s' is not a directory", dir);

    _cleanup_free_ char *path = xasprintf("%s/%s", dir, CAA_STATE_FILE);
    if (lstat(path, &st) < 0) {
        if (errno == ENOENT)
            return caa_error_set(err, -ENOENT, "'%s' has no state file", dir);
        return caa_error_set_errno(err, -errno, "checking '%s'", path);
    }
    if (S_ISLNK(st.st_mode))
        return caa_error_set(err, -ELOOP, "'%s' is a symlink", path);
    /* Checked before open: opening a FIFO would block. */
    if (!S_ISREG(st.st_mode))
        return caa_error_set(err, -EINVAL, "'%s' is not a regular file", path);
    if (st.st_size > CAA_STATE_FILE_MAX)
        return caa_error_set(err, -EFBIG, "'%s' is larger than %d bytes", path, CAA_STATE_FILE_MAX);

    _cleanup_free_ char *data = NULL;
    size_t len = 0;
    r = caa_read_file(path, CAA_STATE_FILE_MAX, 1, &data, &len, err);
    if (r < 0)
        return r;
    r = caa_pod_record_from_json(data, len, name, ret, err);
    if (r < 0)
        return caa_error_prefix(err, "'%s'", path);
    return 0;
}

/* Files CreateVM may have written before the pod's first state.json (each
 * also as the temporary file of its atomic write): the boot data, the
 * secure-comms host key's public half and the saved start request. */
static bool written_before_state(const char *name)
{
    static const char *const files[] = {CAA_APF_JSON_NAME, CAA_SC_HOST_KEY_PUB_FILE, CAA_START_REQUEST_FILE,
                                        CAA_STATE_FILE};
    for (size_t i = 0; i < CAA_ARRAY_SIZE(files); i++) {
        size_t n = strlen(files[i]);
        if (strncmp(name, files[i], n) != 0)
            continue;
        /* state.json itself is not a leftover: only its temporary file. */
        if (name[n] == '\0' && strcmp(files[i], CAA_STATE_FILE) != 0)
            return true;
        if (strncmp(name + n, ".tmp.", 5) == 0)
            return true;
    }
    return false;
}

/* The names in dfd when all are regular files written before the state;
 * NULL (and *ret_leftover false) otherwise. */
static int list_leftover(int dfd, char ***ret, bool *ret_leftover, caa_error **err)
{
    _cleanup_close_ int fd = dup(dfd);
    if (fd < 0)
        return caa_error_set_errno(err, -errno, "listing a pod directory");
    DIR *d = fdopendir(fd);
    if (!d)
        return caa_error_set_errno(err, -errno, "listing a pod directory");
    fd = -1;
    _cleanup_strv_ char **names = NULL;
    bool leftover = true;
    struct dirent *de;
    while (leftover && (de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        struct stat st;
        leftover = written_before_state(de->d_name) &&
                   fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
        caa_strv_push(&names, de->d_name);
    }
    closedir(d);
    *ret_leftover = leftover;
    *ret = leftover ? TAKE_PTR(names) : NULL;
    return 0;
}

int caa_state_store_remove_leftover(const char *pods_dir, const char *name, char **ret_what, caa_error **err)
{
    if (caa_sandbox_id_check(name, NULL) < 0)
        return 0;
    _cleanup_free_ char *dir = xasprintf("%s/%s", pods_dir, name);
    _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return errno == ENOENT || errno == ENOTDIR || errno == ELOOP
                   ? 0
                   : caa_error_set_errno(err, -errno, "opening '%s'", dir);
    _cleanup_strv_ char **names = NULL;
    bool leftover = false;
    int r = list_leftover(dfd, &names, &leftover, err);
    if (r < 0 || !leftover)
        return r;
    for (char **n = names; n && *n; n++)
        if (unlinkat(dfd, *n, 0) < 0 && errno != ENOENT)
            return caa_error_set_errno(err, -errno, "removing '%s/%s'", dir, *n);
    if (rmdir(dir) < 0 && errno != ENOENT)
        return caa_error_set_errno(err, -errno, "removing '%s'", dir);
    if (ret_what)
        *ret_what = names ? caa_strv_join(names, ", ") : xstrdup("nothing");
    return 1;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int caa_state_store_scan(const char *pods_dir, caa_state_scan_cb cb, void *opaque, caa_error **err)
{
    DIR *d = opendir(pods_dir);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        return caa_error_set_errno(err, -errno, "listing '%s'", pods_dir);
    }
    /* Collect first so that callbacks may touch the directory. Sorted for stable logs. */
    _cleanup_strv_ char **names = NULL;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            strcmp(de->d_name, CAA_PODS_DIR_TLS_NAME) == 0)
            continue;
        caa_strv_push(&names, de->d_name);
    }
    closedir(d);
    size_t n = caa_strv_len(names);
    if (n)
        qsort(names, n, sizeof(char *), compare_names);
    for (size_t i = 0; i < n; i++) {
        caa_pod_record rec = {0};
        _cleanup_error_ caa_error *e = NULL;
        if (caa_pod_record_load(pods_dir, names[i], &rec, &e) < 0)
            cb(names[i], NULL, e, opaque);
        else
            cb(names[i], &rec, NULL, opaque);
        caa_pod_record_done(&rec);
    }
    return 0;
}
