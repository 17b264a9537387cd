/* The peer-pods pod mutation, as upstream's webhook does it.
 *
 * For a pod whose spec.runtimeClassName is the peer-pods class:
 *  - sum cpu, memory and nvidia.com/gpu over containers and init containers;
 *  - annotate io.katacontainers.config.hypervisor.default_vcpus (whole CPUs,
 *    rounded up) and .default_memory (MiB, rounded up), each from the limits
 *    when requests are set and the limit sum is at least the request sum,
 *    else from the requests; no annotation for a zero sum; .default_gpus from
 *    the GPU requests (canonical quantity text);
 *  - clear the resources of every container and init container;
 *  - put <extended resource>: "1" into the first container's requests and
 *    limits, so the scheduler counts one peer-pod VM slot.
 * Any other pod is left alone (no patch).
 *
 * The result is an RFC 6902 JSON Patch against the pod as received. */
#pragma once

#include <jansson.h>

#include "error.h"

#define CAA_WEBHOOK_RUNTIMECLASS_DEFAULT "kata-remote"
#define CAA_WEBHOOK_EXTENDED_RESOURCE_DEFAULT "kata.peerpods.io/vm"
#define CAA_WEBHOOK_GPU_RESOURCE "nvidia.com/gpu"

#define CAA_ANNOTATION_VCPUS "io.katacontainers.config.hypervisor.default_vcpus"
#define CAA_ANNOTATION_MEMORY "io.katacontainers.config.hypervisor.default_memory"
#define CAA_ANNOTATION_GPUS "io.katacontainers.config.hypervisor.default_gpus"

typedef struct caa_pod_mutation_config {
    const char *runtime_class;     /* pods of this class are mutated */
    const char *extended_resource; /* resource put into the first container */
} caa_pod_mutation_config;

/* pod: the Pod object of the review. On success *ret_patch is a JSON array of
 * patch operations (new reference), or NULL when the pod is not a peer pod.
 * -EINVAL with a message naming the field for a pod that cannot be decoded
 * (wrong types, bad quantity, no containers); nothing is returned then. */
int caa_pod_mutation_patch(const json_t *pod, const caa_pod_mutation_config *cfg, json_t **ret_patch,
                           caa_error **err);
