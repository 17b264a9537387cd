/* CreateVM annotations -> what the pod asks for (upstream-caa.md §3.5,
 * wire-protocols.md §3.3). Pure: no I/O, no logging. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define CAA_ANN_SANDBOX_NAME "io.kubernetes.cri.sandbox-name"
#define CAA_ANN_SANDBOX_NAMESPACE "io.kubernetes.cri.sandbox-namespace"
#define CAA_ANN_SANDBOX_UID "io.kubernetes.cri.sandbox-uid"
#define CAA_ANN_HYPERVISOR_PREFIX "io.katacontainers.config.hypervisor."
#define CAA_ANN_MACHINE_TYPE CAA_ANN_HYPERVISOR_PREFIX "machine_type"
#define CAA_ANN_DEFAULT_VCPUS CAA_ANN_HYPERVISOR_PREFIX "default_vcpus"
#define CAA_ANN_DEFAULT_MEMORY CAA_ANN_HYPERVISOR_PREFIX "default_memory"
#define CAA_ANN_DEFAULT_GPUS CAA_ANN_HYPERVISOR_PREFIX "default_gpus"
#define CAA_ANN_DEFAULT_GPU_MODEL CAA_ANN_HYPERVISOR_PREFIX "default_gpu_model"
#define CAA_ANN_IMAGE CAA_ANN_HYPERVISOR_PREFIX "image"
#define CAA_ANN_INITDATA CAA_ANN_HYPERVISOR_PREFIX "cc_init_data"
/* Kata 3.9+ names initdata with the runtime prefix; the hypervisor key is
 * still honoured for older shims. */
#define CAA_ANN_RUNTIME_PREFIX "io.katacontainers.config.runtime."
#define CAA_ANN_RUNTIME_INITDATA CAA_ANN_RUNTIME_PREFIX "cc_init_data"

/* Bounds for the numeric annotations (far above any real VM). */
#define CAA_SPEC_VCPUS_MAX 4096
#define CAA_SPEC_MEMORY_MIB_MAX (64LL * 1024 * 1024) /* 64 TiB */
#define CAA_SPEC_GPUS_MAX 1024
/* Kubernetes limits a pod's annotations to 256 KiB, keys and values
 * together (apimachinery's TotalAnnotationSizeLimitB). */
#define CAA_ANNOTATIONS_MAX_TOTAL (256 * 1024)
/* Not a Kubernetes limit (it has none on the count): pods carry tens, and
 * each one costs loop time to decode (bench/hostile-requests). */
#define CAA_ANNOTATIONS_MAX_COUNT 4096
/* Kubernetes names are at most 253 characters. */
#define CAA_SPEC_NAME_MAX 253

typedef struct caa_annotation {
    const char *key;
    const char *value;
} caa_annotation;

/* All strings owned; NULL when the annotation is absent or empty. */
typedef struct caa_pod_spec {
    char *pod_name;
    char *pod_namespace;
    char *pod_uid;
    char *machine_type; /* cloud instance type */
    int64_t vcpus;      /* 0: provider default */
    int64_t memory_mib; /* 0: provider default */
    int64_t gpus;
    char *gpu_model;
    char *image;
    char *
        initdata; /* cc_init_data: initdata TOML text (decoded when the shim sent it encoded); never log it */
} caa_pod_spec;

/* Fills *ret from the annotations (later duplicates win, like a protobuf map).
 * -EINVAL with a message naming the annotation on missing pod name/namespace,
 * malformed or out-of-range numbers, more than CAA_ANNOTATIONS_MAX_COUNT
 * annotations, keys and values totalling more than CAA_ANNOTATIONS_MAX_TOTAL
 * bytes, or an initdata value that does not decode. On failure *ret is left
 * empty.
 *
 * initdata: the runtime key wins over the hypervisor key. Either may carry
 * the TOML text (what shims send after decoding the pod annotation), the
 * pod annotation's own form base64(gzip(TOML)), or base64(TOML). */
int caa_pod_spec_from_annotations(const caa_annotation *ann, size_t n, caa_pod_spec *ret, caa_error **err);
void caa_pod_spec_done(caa_pod_spec *spec);

/* Pod name from a sandbox-name annotation value: the value itself, or <pod>
 * of the CRI-O form k8s_<pod>_<ns>_<uid>_<attempt>. Returns a new string. */
char *caa_pod_name_from_sandbox_name(const char *sandbox_name);

/* Parses a non-negative count: digits, or (allow_fraction) digits with a
 * fractional part that rounds up ("1.5" -> 2). "" is 0. */
int caa_parse_count(const char *s, int allow_fraction, int64_t max, int64_t *ret);
