/* Peer-pod resource mutation; see pod-mutation.h. */
#include "pod-mutation.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "quantity.h"
#include "xalloc.h"

typedef struct resource_sums {
    caa_quantity cpu_requests, cpu_limits;
    caa_quantity memory_requests, memory_limits;
    caa_quantity gpu_requests;
} resource_sums;

/* Adds list[name] (a quantity string; integers are accepted as Kubernetes
 * does) to *sum. Absent: nothing added. */
static int add_quantity(const json_t *list, const char *name, caa_quantity *sum, const char *where,
                        caa_error **err)
{
    const json_t *v = json_object_get(list, name);
    if (!v)
        return 0;
    caa_quantity q = 0;
    if (json_is_string(v)) {
        if (caa_quantity_parse(json_string_value(v), json_string_length(v), &q, err) < 0)
            return caa_error_prefix(err, "%s[%s]", where, name);
    } else if (json_is_integer(v) && json_integer_value(v) >= 0) {
        q = (caa_quantity)json_integer_value(v) * 1000000000;
    } else {
        return caa_error_set(err, -EINVAL, "%s[%s]: a quantity must be a string", where, name);
    }
    if (caa_quantity_add(*sum, q, sum, err) < 0)
        return caa_error_prefix(err, "%s[%s]", where, name);
    return 0;
}

/* Checks that every entry of a requests/limits map is a valid quantity, so
 * that a pod carrying garbage is refused as the upstream decoder refuses it. */
static int check_quantities(const json_t *list, const char *where, caa_error **err)
{
    const char *name;
    const json_t *v;
    json_object_foreach((json_t *)list, name, v)
    {
        caa_quantity unused = 0;
        if (add_quantity(list, name, &unused, where, err) < 0)
            return -EINVAL;
    }
    return 0;
}

static int sum_container(const json_t *c, const char *where, resource_sums *s, caa_error **err)
{
    if (!json_is_object(c))
        return caa_error_set(err, -EINVAL, "%s: not an object", where);
    const json_t *res = json_object_get(c, "resources");
    if (!res || json_is_null(res))
        return 0;
    if (!json_is_object(res))
        return caa_error_set(err, -EINVAL, "%s.resources: not an object", where);
    const json_t *requests = json_object_get(res, "requests");
    const json_t *limits = json_object_get(res, "limits");
    if (requests && !json_is_null(requests) && !json_is_object(requests))
        return caa_error_set(err, -EINVAL, "%s.resources.requests: not an object", where);
    if (limits && !json_is_null(limits) && !json_is_object(limits))
        return caa_error_set(err, -EINVAL, "%s.resources.limits: not an object", where);

    char rwhere[160], lwhere[160];
    snprintf(rwhere, sizeof(rwhere), "%s.resources.requests", where);
    snprintf(lwhere, sizeof(lwhere), "%s.resources.limits", where);
    if (check_quantities(requests, rwhere, err) < 0 || check_quantities(limits, lwhere, err) < 0)
        return -EINVAL;
    if (add_quantity(requests, "cpu", &s->cpu_requests, rwhere, err) < 0 ||
        add_quantity(requests, "memory", &s->memory_requests, rwhere, err) < 0 ||
        add_quantity(requests, CAA_WEBHOOK_GPU_RESOURCE, &s->gpu_requests, rwhere, err) < 0 ||
        add_quantity(limits, "cpu", &s->cpu_limits, lwhere, err) < 0 ||
        add_quantity(limits, "memory", &s->memory_limits, lwhere, err) < 0)
        return -EINVAL;
    return 0;
}

/* Containers list at spec[field]: absent/null is an empty list unless required. */
static int get_containers(const json_t *spec, const char *field, bool required, const json_t **ret,
                          caa_error **err)
{
    const json_t *list = json_object_get(spec, field);
    if ((!list || json_is_null(list)) && !required) {
        *ret = NULL;
        return 0;
    }
    if (!json_is_array(list))
        return caa_error_set(err, -EINVAL, "spec.%s: not a list", field);
    if (required && json_array_size(list) == 0)
        return caa_error_set(err, -EINVAL, "spec.%s: a pod needs at least one container", field);
    *ret = list;
    return 0;
}

static int sum_list(const json_t *list, const char *field, resource_sums *s, caa_error **err)
{
    size_t i;
    const json_t *c;
    json_array_foreach(list, i, c)
    {
        char where[64];
        snprintf(where, sizeof(where), "spec.%s[%zu]", field, i);
        if (sum_container(c, where, s, err) < 0)
            return -EINVAL;
    }
    return 0;
}

/* RFC 6901 escaping of one reference token. */
static char *pointer_token(const char *key)
{
    size_t n = 0;
    for (const char *p = key; *p; p++)
        n += (*p == '~' || *p == '/') ? 2 : 1;
    char *out = xmalloc(n + 1), *o = out;
    for (const char *p = key; *p; p++) {
        if (*p == '~' || *p == '/') {
            *o++ = '~';
            *o++ = *p == '~' ? '0' : '1';
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

static void patch_add(json_t *patch, const char *path, json_t *value /* stolen */)
{
    json_array_append_new(patch, json_pack("{s:s, s:s, s:o}", "op", "add", "path", path, "value", value));
}

/* Limit when requests are set and the limits cover them, else the request;
 * 0 when neither applies (upstream's rule). */
static caa_quantity pick_limit_or_request(caa_quantity request, caa_quantity limit)
{
    if (request != 0 && limit >= request)
        return limit;
    return request;
}

static json_t *new_annotations(const resource_sums *s)
{
    json_t *a = json_object();
    char text[48];
    caa_quantity cpu = pick_limit_or_request(s->cpu_requests, s->cpu_limits);
    if (cpu > 0) {
        snprintf(text, sizeof(text), "%" PRId64, caa_quantity_ceil_units(cpu));
        json_object_set_new(a, CAA_ANNOTATION_VCPUS, json_string(text));
    }
    caa_quantity memory = pick_limit_or_request(s->memory_requests, s->memory_limits);
    if (memory > 0) {
        snprintf(text, sizeof(text), "%" PRId64, caa_quantity_ceil_mib(memory));
        json_object_set_new(a, CAA_ANNOTATION_MEMORY, json_string(text));
    }
    if (s->gpu_requests > 0) {
        caa_quantity_format(s->gpu_requests, text, sizeof(text));
        json_object_set_new(a, CAA_ANNOTATION_GPUS, json_string(text));
    }
    return a;
}

static void patch_annotations(json_t *patch, const json_t *metadata, json_t *added /* stolen */)
{
    if (json_object_size(added) == 0) {
        json_decref(added);
        return;
    }
    if (!metadata) {
        patch_add(patch, "/metadata", json_pack("{s:o}", "annotations", added));
        return;
    }
    const json_t *existing = json_object_get(metadata, "annotations");
    if (!json_is_object(existing)) {
        patch_add(patch, "/metadata/annotations", added);
        return;
    }
    const char *key;
    json_t *value;
    json_object_foreach(added, key, value)
    {
        _cleanup_free_ char *token = pointer_token(key);
        _cleanup_free_ char *path = xasprintf("/metadata/annotations/%s", token);
        patch_add(patch, path, json_incref(value));
    }
    json_decref(added);
}

static void patch_resources(json_t *patch, const char *field, size_t count, const char *extended_resource)
{
    for (size_t i = 0; i < count; i++) {
        _cleanup_free_ char *path = xasprintf("/spec/%s/%zu/resources", field, i);
        json_t *resources = json_object();
        if (i == 0 && strcmp(field, "containers") == 0) {
            json_object_set_new(resources, "requests", json_pack("{s:s}", extended_resource, "1"));
            json_object_set_new(resources, "limits", json_pack("{s:s}", extended_resource, "1"));
        }
        patch_add(patch, path, resources);
    }
}

int caa_pod_mutation_patch(const json_t *pod, const caa_pod_mutation_config *cfg, json_t **ret_patch,
                           caa_error **err)
{
    if (!json_is_object(pod))
        return caa_error_set(err, -EINVAL, "the pod is not a JSON object");
    const json_t *metadata = json_object_get(pod, "metadata");
    if (metadata && json_is_null(metadata))
        metadata = NULL;
    if (metadata && !json_is_object(metadata))
        return caa_error_set(err, -EINVAL, "metadata: not an object");
    const json_t *annotations = metadata ? json_object_get(metadata, "annotations") : NULL;
    if (annotations && !json_is_null(annotations) && !json_is_object(annotations))
        return caa_error_set(err, -EINVAL, "metadata.annotations: not an object");
    const json_t *spec = json_object_get(pod, "spec");
    if (spec && !json_is_null(spec) && !json_is_object(spec))
        return caa_error_set(err, -EINVAL, "spec: not an object");
    const json_t *rc = json_object_get(spec, "runtimeClassName");
    if (rc && !json_is_null(rc) && !json_is_string(rc))
        return caa_error_set(err, -EINVAL, "spec.runtimeClassName: not a string");

    if (!json_is_string(rc) || strcmp(json_string_value(rc), cfg->runtime_class) != 0) {
        *ret_patch = NULL;
        return 0;
    }

    const json_t *containers = NULL, *init_containers = NULL;
    if (get_containers(spec, "containers", true, &containers, err) < 0 ||
        get_containers(spec, "initContainers", false, &init_containers, err) < 0)
        return -EINVAL;
    resource_sums sums = {0};
    if (sum_list(containers, "containers", &sums, err) < 0 ||
        sum_list(init_containers, "initContainers", &sums, err) < 0)
        return -EINVAL;

    json_t *patch = json_array();
    patch_annotations(patch, metadata, new_annotations(&sums));
    patch_resources(patch, "containers", json_array_size(containers), cfg->extended_resource);
    patch_resources(patch, "initContainers", json_array_size(init_containers), cfg->extended_resource);
    *ret_patch = patch;
    return 0;
}
