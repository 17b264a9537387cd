#include "annotations.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "codec.h"
#include "initdata.h"
#include "xalloc.h"

int caa_parse_count(const char *s, int allow_fraction, int64_t max, int64_t *ret)
{
    if (!s)
        return -EINVAL;
    if (!*s) {
        *ret = 0;
        return 0;
    }
    const char *p = s;
    int64_t v = 0;
    size_t digits = 0;
    for (; *p >= '0' && *p <= '9'; p++, digits++) {
        int d = *p - '0';
        if (v > (max - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    if (*p == '.' && allow_fraction) {
        int round_up = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (*p != '0')
                round_up = 1;
        if (round_up) {
            if (v >= max)
                return -ERANGE;
            v++;
        }
    }
    if (*p != '\0' || digits == 0)
        return -EINVAL;
    *ret = v;
    return 0;
}

char *caa_pod_name_from_sandbox_name(const char *sandbox_name)
{
    /* CRI-O: k8s_<pod>_<namespace>_<uid>_<attempt>; Kubernetes names have no '_'. */
    if (strncmp(sandbox_name, "k8s_", 4) == 0) {
        const char *pod = sandbox_name + 4;
        const char *end = strchr(pod, '_');
        return end ? xstrndup(pod, (size_t)(end - pod)) : xstrdup(pod);
    }
    return xstrdup(sandbox_name);
}

/* <ns> of the CRI-O form, or NULL. */
static char *namespace_from_crio_name(const char *sandbox_name)
{
    if (strncmp(sandbox_name, "k8s_", 4) != 0)
        return NULL;
    const char *pod_end = strchr(sandbox_name + 4, '_');
    if (!pod_end)
        return NULL;
    const char *ns = pod_end + 1;
    const char *ns_end = strchr(ns, '_');
    size_t len = ns_end ? (size_t)(ns_end - ns) : strlen(ns);
    return len ? xstrndup(ns, len) : NULL;
}

static const char *lookup(const caa_annotation *ann, size_t n, const char *key)
{
    const char *v = NULL;
    for (size_t i = 0; i < n; i++)
        if (ann[i].key && strcmp(ann[i].key, key) == 0)
            v = ann[i].value ? ann[i].value : "";
    return v;
}

static char *nonempty_dup(const char *v)
{
    return v && *v ? xstrdup(v) : NULL;
}

static int check_name(const char *what, const char *key, const char *v, caa_error **err)
{
    if (strlen(v) > CAA_SPEC_NAME_MAX)
        return caa_error_set(err, -EINVAL, "%s in annotation %s is longer than %d characters", what, key,
                             CAA_SPEC_NAME_MAX);
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p < 0x20 || *p == 0x7f || *p == '/')
            return caa_error_set(err, -EINVAL, "%s in annotation %s contains a forbidden character", what,
                                 key);
    return 0;
}

static int parse_number(const caa_annotation *ann, size_t n, const char *key, int allow_fraction, int64_t max,
                        int64_t *ret, caa_error **err)
{
    const char *v = lookup(ann, n, key);
    *ret = 0;
    if (!v)
        return 0;
    int r = caa_parse_count(v, allow_fraction, max, ret);
    if (r == -ERANGE)
        return caa_error_set(err, -EINVAL, "invalid annotation %s=\"%.32s\": out of range (maximum %lld)",
                             key, v, (long long)max);
    if (r < 0)
        return caa_error_set(err, -EINVAL, "invalid annotation %s=\"%.32s\": expected a non-negative %s", key,
                             v, allow_fraction ? "number" : "integer");
    return 0;
}

/* Checked first, so the lookups below stay bounded by the limit. */
static int check_total_size(const caa_annotation *ann, size_t n, caa_error **err)
{
    if (n > CAA_ANNOTATIONS_MAX_COUNT)
        return caa_error_set(err, -EINVAL, "%zu annotations, more than the %d allowed", n,
                             CAA_ANNOTATIONS_MAX_COUNT);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += (ann[i].key ? strlen(ann[i].key) : 0) + (ann[i].value ? strlen(ann[i].value) : 0);
        if (total > CAA_ANNOTATIONS_MAX_TOTAL)
            return caa_error_set(err, -EINVAL,
                                 "annotations are larger than %d bytes in total (keys and values)",
                                 CAA_ANNOTATIONS_MAX_TOTAL);
    }
    return 0;
}

/* An initdata annotation value as TOML text. A TOML document always has
 * characters base64 lacks (spaces, quotes), so a value that decodes as
 * base64 is an encoded one: gzip when it starts with the gzip magic. */
static int initdata_text(const char *key, const char *value, char **ret, caa_error **err)
{
    size_t len = strlen(value);
    _cleanup_free_ void *raw = NULL;
    size_t raw_len = 0;
    if (caa_bootdata_base64_decode(value, len, CAA_INITDATA_MAX_SIZE, &raw, &raw_len, NULL) < 0) {
        *ret = xstrdup(value); /* plain TOML */
        return 0;
    }
    const uint8_t *b = raw;
    if (raw_len >= 2 && b[0] == 0x1f && b[1] == 0x8b) {
        _cleanup_free_ void *toml = NULL;
        size_t toml_len = 0;
        int r = caa_bootdata_gzip_decompress(raw, raw_len, CAA_INITDATA_MAX_SIZE, &toml, &toml_len, err);
        if (r < 0)
            return caa_error_prefix(err, "invalid annotation %s", key);
        free(raw);
        raw = TAKE_PTR(toml);
        raw_len = toml_len;
    }
    if (memchr(raw, '\0', raw_len))
        return caa_error_set(err, -EINVAL, "invalid annotation %s: the decoded initdata contains a NUL byte",
                             key);
    *ret = TAKE_PTR(raw); /* NUL-terminated by the decoders */
    return 0;
}

int caa_pod_spec_from_annotations(const caa_annotation *ann, size_t n, caa_pod_spec *ret, caa_error **err)
{
    caa_pod_spec s = {0};
    int r = check_total_size(ann, n, err);
    if (r < 0)
        return r;

    const char *sandbox_name = lookup(ann, n, CAA_ANN_SANDBOX_NAME);
    if (sandbox_name && *sandbox_name)
        s.pod_name = caa_pod_name_from_sandbox_name(sandbox_name);
    if (!s.pod_name || !*s.pod_name) {
        r = caa_error_set(err, -EINVAL, "pod name %s is missing in annotations", CAA_ANN_SANDBOX_NAME);
        goto fail;
    }
    s.pod_namespace = nonempty_dup(lookup(ann, n, CAA_ANN_SANDBOX_NAMESPACE));
    if (!s.pod_namespace) /* extension: the CRI-O sandbox name carries the namespace too */
        s.pod_namespace = namespace_from_crio_name(sandbox_name);
    if (!s.pod_namespace) {
        r = caa_error_set(err, -EINVAL, "namespace name %s is missing in annotations",
                          CAA_ANN_SANDBOX_NAMESPACE);
        goto fail;
    }
    if ((r = check_name("pod name", CAA_ANN_SANDBOX_NAME, s.pod_name, err)) < 0 ||
        (r = check_name("namespace", CAA_ANN_SANDBOX_NAMESPACE, s.pod_namespace, err)) < 0)
        goto fail;
    s.pod_uid = nonempty_dup(lookup(ann, n, CAA_ANN_SANDBOX_UID));
    s.machine_type = nonempty_dup(lookup(ann, n, CAA_ANN_MACHINE_TYPE));
    s.gpu_model = nonempty_dup(lookup(ann, n, CAA_ANN_DEFAULT_GPU_MODEL));
    s.image = nonempty_dup(lookup(ann, n, CAA_ANN_IMAGE));
    const char *initdata_key = CAA_ANN_RUNTIME_INITDATA;
    const char *initdata = lookup(ann, n, initdata_key);
    if (!initdata || !*initdata) {
        initdata_key = CAA_ANN_INITDATA;
        initdata = lookup(ann, n, initdata_key);
    }
    if (initdata && *initdata && (r = initdata_text(initdata_key, initdata, &s.initdata, err)) < 0)
        goto fail;

    /* runtime-rs may send default_vcpus as a float string; the Go shim sends ceil(). */
    if ((r = parse_number(ann, n, CAA_ANN_DEFAULT_VCPUS, 1, CAA_SPEC_VCPUS_MAX, &s.vcpus, err)) < 0 ||
        (r = parse_number(ann, n, CAA_ANN_DEFAULT_MEMORY, 0, CAA_SPEC_MEMORY_MIB_MAX, &s.memory_mib, err)) <
            0 ||
        (r = parse_number(ann, n, CAA_ANN_DEFAULT_GPUS, 0, CAA_SPEC_GPUS_MAX, &s.gpus, err)) < 0)
        goto fail;

    *ret = s;
    return 0;
fail:
    caa_pod_spec_done(&s);
    return r;
}

void caa_pod_spec_done(caa_pod_spec *spec)
{
    free(spec->pod_name);
    free(spec->pod_namespace);
    free(spec->pod_uid);
    free(spec->machine_type);
    free(spec->gpu_model);
    free(spec->image);
    free(spec->initdata);
    *spec = (caa_pod_spec){0};
}
