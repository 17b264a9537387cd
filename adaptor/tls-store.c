/* Persistence of the daemon's generated TLS material (see tls-store.h). */
#include "tls-store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "fs.h"
#include "strcheck.h"
#include "tls-cert.h"
#include "xalloc.h"

void caa_tls_material_done(caa_tls_material *m)
{
    if (!m)
        return;
    free(m->client_cert);
    caa_tls_secret_free(m->client_key);
    free(m->ca_cert);
    caa_tls_secret_free(m->ca_key);
    *m = (caa_tls_material){0};
}

int caa_tls_store_prepare_dir(const char *dir, caa_error **err)
{
    if (mkdir(dir, 0700) == 0)
        return 0;
    if (errno != EEXIST)
        return caa_error_set_errno(err, -errno, "creating '%s'", dir);
    struct stat st;
    if (lstat(dir, &st) < 0)
        return caa_error_set_errno(err, -errno, "checking '%s'", dir);
    if (!S_ISDIR(st.st_mode))
        return caa_error_set(err, -ENOTDIR, "'%s' is not a directory", dir);
    if ((st.st_mode & 07777) != 0700 && chmod(dir, 0700) < 0)
        return caa_error_set_errno(err, -errno, "setting the mode of '%s'", dir);
    return 0;
}

/* Optional PEM string member. */
static int get_pem(json_t *o, const char *key, char **ret, caa_error **err)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v) || json_string_length(v) == 0)
        return caa_error_set(err, -EINVAL, "field \"%s\" must be a non-empty string", key);
    return caa_str_from_bytes(key, json_string_value(v), json_string_length(v), ret, err);
}

int caa_tls_material_parse(const char *data, size_t len, caa_tls_material *ret, caa_error **err)
{
    json_error_t jerr;
    json_t *o = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    caa_tls_material m = {0};
    int r;
    if (!o || !json_is_object(o)) {
        r = caa_error_set(err, -EINVAL, "not a JSON object");
        goto out;
    }
    json_t *schema = json_object_get(o, "schema");
    if (!json_is_integer(schema) || json_integer_value(schema) != CAA_TLS_STORE_SCHEMA) {
        r = caa_error_set(err, -EINVAL, "missing or unsupported \"schema\" (this daemon reads %d)",
                          CAA_TLS_STORE_SCHEMA);
        goto out;
    }
    if ((r = get_pem(o, "client_cert", &m.client_cert, err)) < 0 ||
        (r = get_pem(o, "client_key", &m.client_key, err)) < 0 ||
        (r = get_pem(o, "ca_cert", &m.ca_cert, err)) < 0 || (r = get_pem(o, "ca_key", &m.ca_key, err)) < 0)
        goto out;
    if (!m.client_cert != !m.client_key || !m.ca_cert != !m.ca_key) {
        r = caa_error_set(err, -EINVAL, "a certificate without its key (or the reverse)");
        goto out;
    }
    *ret = m;
    m = (caa_tls_material){0};
    r = 0;
out:
    /* jansson keeps its own copies of the key strings; they go with the object. */
    json_decref(o);
    caa_tls_material_done(&m);
    return r;
}

int caa_tls_store_load(const char *dir, caa_tls_material *ret, caa_error **err)
{
    _cleanup_free_ char *path = xasprintf("%s/%s", dir, CAA_TLS_STORE_FILE);
    struct stat st;
    if (lstat(path, &st) < 0) {
        if (errno == ENOENT)
            return -ENOENT;
        return caa_error_set_errno(err, -errno, "checking '%s'", path);
    }
    if (!S_ISREG(st.st_mode))
        return caa_error_set(err, -EINVAL, "'%s' is not a regular file", path);

    char *data = NULL;
    size_t len = 0;
    int r = caa_read_file(path, CAA_TLS_STORE_MAX, 1, &data, &len, err);
    if (r < 0)
        return r;
    r = caa_tls_material_parse(data, len, ret, err);
    explicit_bzero(data, len);
    free(data);
    if (r < 0)
        return caa_error_prefix(err, "'%s'", path);
    return 0;
}

static void set_pem(json_t *o, const char *key, const char *pem)
{
    if (pem && json_object_set_new(o, key, json_string(pem)) < 0)
        caa_oom();
}

int caa_tls_store_save(const char *dir, const caa_tls_material *m, caa_error **err)
{
    json_auto_t *o = json_object();
    json_object_set_new(o, "schema", json_integer(CAA_TLS_STORE_SCHEMA));
    set_pem(o, "client_cert", m->client_cert);
    set_pem(o, "client_key", m->client_key);
    set_pem(o, "ca_cert", m->ca_cert);
    set_pem(o, "ca_key", m->ca_key);
    char *doc = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!doc)
        caa_oom();
    _cleanup_free_ char *path = xasprintf("%s/%s", dir, CAA_TLS_STORE_FILE);
    int r = caa_write_file_atomic(path, doc, strlen(doc), 0600, err);
    caa_tls_secret_free(doc);
    return r;
}
