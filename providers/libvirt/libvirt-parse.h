/* Readers for the XML libvirt hands back (capabilities, domain capabilities,
 * volume descriptions, our domain metadata) and for /proc/cpuinfo. Pure
 * functions over untrusted text, fuzzed by tests/fuzz/libvirt. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

#define LV_PARSE_MAX_XML (8u << 20)

enum {
    LV_GUEST_KVM = 1 << 0,
    LV_GUEST_QEMU = 1 << 1,
};

typedef struct lv_caps {
    char *host_arch;      /* /capabilities/host/cpu/arch */
    unsigned guest_types; /* LV_GUEST_* offered for hvm guests of host_arch */
    /* Canonical machine names for the aliases we use (NULL when not listed). */
    char *machine_q35;
    char *machine_s390;
    char *machine_virt;
} lv_caps;

typedef struct lv_domcaps {
    bool sev_supported;
    unsigned cbitpos;           /* 0 when not reported */
    unsigned reduced_phys_bits; /* 0 when not reported */
    char **loaders;             /* firmware paths offered (NULL-terminated, may be NULL) */
} lv_domcaps;

typedef struct lv_metadata {
    char *sandbox_id;
    char *pool;
    char *image;
    char *pod_name;
    char *pod_namespace;
    char *node; /* NULL in domains made before the node was recorded */
} lv_metadata;

int lv_parse_capabilities(const char *xml, size_t len, lv_caps *ret, caa_error **err);
void lv_caps_done(lv_caps *c);

int lv_parse_domcaps(const char *xml, size_t len, lv_domcaps *ret, caa_error **err);
void lv_domcaps_done(lv_domcaps *c);

/* /volume/target/format/@type; *ret is NULL when absent. */
int lv_parse_volume_format(const char *xml, size_t len, char **ret, caa_error **err);

/* Our <caa:instance> element as returned by virDomainGetMetadata (which
 * strips the namespace it selected by) or with our namespace. -ENOENT when
 * it is not ours (other namespace or element), -EINVAL when malformed,
 * -EPROTO when it is ours but carries no sandbox id. */
int lv_parse_metadata(const char *xml, size_t len, lv_metadata *ret, caa_error **err);
void lv_metadata_done(lv_metadata *m);

/* Whether the "flags" line of an x86 /proc/cpuinfo lists vmx or svm. */
bool lv_cpuinfo_has_hw_virt(const char *text, size_t len);
