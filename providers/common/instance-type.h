/* Instance-type selection for cloud providers (AWS instance types, Azure VM
 * sizes), with upstream's rules and error texts:
 *
 *  1. an explicit type (machine_type annotation) is used as is;
 *  2. else, with gpus > 0: the smallest type with gpus, vcpus and memory at
 *     least the request;
 *  3. else, with both vcpus and memory set: the smallest type without GPUs
 *     that has at least that many vcpus and that much memory;
 *  4. else the default type.
 * Then the result must be the default type, or be in the allow-list when
 * that list is not empty.
 *
 * "Smallest" is the first fit in the order (GPUs, memory, vCPUs, name),
 * found by a linear scan. Upstream binary-searches with a predicate that is
 * not monotone over that order and can return a bigger type or nothing. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct caa_instance_type {
    char *name;
    int64_t vcpus;
    int64_t memory_mib;
    int64_t gpus;
} caa_instance_type;

/* Sorts by (gpus, memory, vcpus, name) ascending. */
void caa_instance_types_sort(caa_instance_type *types, size_t n);
void caa_instance_types_free(caa_instance_type *types, size_t n);

typedef struct caa_instance_type_request {
    const char *explicit_type; /* annotation, or NULL/"" */
    int64_t vcpus;
    int64_t memory_mib;
    int64_t gpus;
} caa_instance_type_request;

/* types: sorted; default_type: never NULL; allowed: allow-list (NULL or
 * empty: only the default may be used). Returns a new string. */
int caa_instance_type_select(const caa_instance_type *types, size_t n, const char *default_type,
                             char *const *allowed, const caa_instance_type_request *req, char **ret,
                             caa_error **err);

/* For capacity fallback: the types after `chosen` (in the sort order) that
 * also satisfy the request, or, for a request without sizes, that are at
 * least as big as `chosen` in every dimension; GPU types only for GPU
 * requests; only names in `allowed`. Never for an explicit type. Returns a
 * NULL-terminated list (possibly empty). */
char **caa_instance_type_fallbacks(const caa_instance_type *types, size_t n, char *const *allowed,
                                   const caa_instance_type_request *req, const char *chosen);

/* The entry called name, or NULL. */
const caa_instance_type *caa_instance_type_find(const caa_instance_type *types, size_t n, const char *name);
