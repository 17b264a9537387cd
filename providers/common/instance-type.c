/* Instance-type selection (see instance-type.h). */
#include "instance-type.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "strv.h"
#include "xalloc.h"

static int cmp_i64(int64_t a, int64_t b)
{
    return a < b ? -1 : a > b;
}

static int cmp_type(const void *pa, const void *pb)
{
    const caa_instance_type *a = pa, *b = pb;
    int c = cmp_i64(a->gpus, b->gpus);
    if (!c)
        c = cmp_i64(a->memory_mib, b->memory_mib);
    if (!c)
        c = cmp_i64(a->vcpus, b->vcpus);
    if (!c)
        c = strcmp(a->name, b->name);
    return c;
}

void caa_instance_types_sort(caa_instance_type *types, size_t n)
{
    if (n > 1)
        qsort(types, n, sizeof(*types), cmp_type);
}

void caa_instance_types_free(caa_instance_type *types, size_t n)
{
    for (size_t i = 0; types && i < n; i++)
        free(types[i].name);
    free(types);
}

const caa_instance_type *caa_instance_type_find(const caa_instance_type *types, size_t n, const char *name)
{
    for (size_t i = 0; name && i < n; i++)
        if (strcmp(types[i].name, name) == 0)
            return &types[i];
    return NULL;
}

static bool fits(const caa_instance_type *t, int64_t vcpus, int64_t mem, int64_t gpus)
{
    return t->gpus >= gpus && t->vcpus >= vcpus && t->memory_mib >= mem;
}

/* The first (smallest) entry satisfying the request, or NULL. */
static const caa_instance_type *first_fit(const caa_instance_type *types, size_t n, int64_t vcpus,
                                          int64_t mem, int64_t gpus)
{
    for (size_t i = 0; i < n; i++) {
        if (gpus == 0 && types[i].gpus > 0)
            continue; /* no GPU types for requests without GPUs */
        if (fits(&types[i], vcpus, mem, gpus))
            return &types[i];
    }
    return NULL;
}

int caa_instance_type_select(const caa_instance_type *types, size_t n, const char *default_type,
                             char *const *allowed, const caa_instance_type_request *req, char **ret,
                             caa_error **err)
{
    const char *chosen = NULL;
    if (req->explicit_type && *req->explicit_type) {
        chosen = req->explicit_type;
    } else if (req->gpus > 0 || (req->vcpus > 0 && req->memory_mib > 0)) {
        const caa_instance_type *t = first_fit(types, n, req->vcpus, req->memory_mib, req->gpus);
        if (!t)
            return caa_error_set(err, -EINVAL,
                                 "no instance type found for the given vcpus (%lld) and memory (%lld)",
                                 (long long)req->vcpus, (long long)req->memory_mib);
        chosen = t->name;
    }
    if (!chosen || !*chosen) {
        *ret = xstrdup(default_type);
        return 0;
    }
    if (strcmp(chosen, default_type) != 0) {
        if (caa_strv_len(allowed) == 0)
            return caa_error_set(
                err, -EINVAL,
                "requested instance type (\"%s\") is not default (\"%s\") and supported instance "
                "types list is empty",
                chosen, default_type);
        if (!caa_strv_contains(allowed, chosen))
            return caa_error_set(
                err, -EINVAL, "requested instance type (\"%s\") is not part of supported instance types list",
                chosen);
    }
    *ret = xstrdup(chosen);
    return 0;
}

char **caa_instance_type_fallbacks(const caa_instance_type *types, size_t n, char *const *allowed,
                                   const caa_instance_type_request *req, const char *chosen)
{
    char **out = xcalloc(1, sizeof(char *));
    if (req->explicit_type && *req->explicit_type)
        return out;
    int64_t vcpus = req->vcpus, mem = req->memory_mib, gpus = req->gpus;
    if (!(gpus > 0 || (vcpus > 0 && mem > 0))) {
        const caa_instance_type *base = caa_instance_type_find(types, n, chosen);
        if (!base)
            return out;
        vcpus = base->vcpus;
        mem = base->memory_mib;
        gpus = base->gpus;
    }
    bool after = caa_instance_type_find(types, n, chosen) == NULL;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(types[i].name, chosen) == 0) {
            after = true;
            continue;
        }
        if (!after || (gpus == 0 && types[i].gpus > 0) || !fits(&types[i], vcpus, mem, gpus))
            continue;
        if (caa_strv_len(allowed) > 0 && !caa_strv_contains(allowed, types[i].name))
            continue;
        caa_strv_push(&out, types[i].name);
    }
    return out;
}
