/* The XML documents the provider hands to libvirt (domain, storage volumes),
 * written with the libxml2 tree API so every value is escaped. Pure
 * functions: everything host-specific is resolved into the parameters. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "libvirt-config.h"

/* Our <metadata> namespace; a domain carrying it was created by the adaptor. */
#define LV_METADATA_NS "https://confidentialcontainers.org/cloud-api-adaptor-c/libvirt/1"
#define LV_METADATA_PREFIX "caa"
#define LV_DESCRIPTION "This Virtual Machine is the peer-pod VM"

typedef enum lv_arch {
    LV_ARCH_X86_64 = 0,
    LV_ARCH_S390X,
    LV_ARCH_AARCH64,
} lv_arch;

typedef struct lv_domain_params {
    const char *name;        /* validated instance name */
    const char *uuid;        /* 36-character UUID string */
    const char *domain_type; /* "kvm" or "qemu" */
    lv_arch arch;
    const char *machine; /* NULL: q35 on x86_64, virt on aarch64, s390-ccw-virtio on s390x */
    int64_t vcpus;
    int64_t memory_mib;
    const char *cpuset; /* NULL or "" for none */
    /* x86_64/aarch64 firmware: a path gives a manual loader (pflash, or a
     * stateless ROM for SEV-SNP/TDX); NULL asks libvirt to autoselect an EFI
     * firmware (<os firmware='efi'>). */
    const char *loader;
    lv_launch_security launch;
    unsigned sev_cbitpos; /* SEV-SNP C-bit position */
    unsigned sev_reduced_phys_bits;
    uint64_t snp_policy;
    uint64_t tdx_policy;
    const char *pool;          /* storage pool of both volumes */
    const char *root_volume;   /* <name>-root.qcow2 */
    const char *cidata_volume; /* <name>-cloudinit.iso */
    const char *network;
    const char *console_log; /* file on the libvirt host, or NULL for a pty only */
    /* Metadata (ownership and re-adoption). */
    const char *sandbox_id;
    const char *pod_name;        /* may be NULL */
    const char *pod_namespace;   /* may be NULL */
    const char *image;           /* base volume name */
    const char *idempotency_key; /* may be NULL */
    const char *node;            /* the creating worker node; may be NULL */
    char *const *tags;           /* "k=v" items, may be NULL */
} lv_domain_params;

#define LV_SNP_DEFAULT_POLICY UINT64_C(0x30000)    /* SMT allowed, reserved bit 17 set, no debug/migration */
#define LV_TDX_DEFAULT_POLICY UINT64_C(0x10000000) /* SEPT_VE_DISABLE, no debug */
#define LV_SEV_DEFAULT_CBITPOS 51
#define LV_SEV_DEFAULT_REDUCED_PHYS_BITS 1

/* Returns the domain XML (malloc'd) or NULL with *err (-EINVAL for values that
 * cannot be expressed: control characters, invalid UTF-8). */
char *lv_domain_xml(const lv_domain_params *p, caa_error **err);

/* <volume> for the pod's root disk: qcow2 overlay of `backing_path`. */
char *lv_root_volume_xml(const char *name, uint64_t capacity_bytes, const char *backing_path,
                         const char *backing_format, caa_error **err);
/* <volume> for the raw cidata image. */
char *lv_raw_volume_xml(const char *name, uint64_t capacity_bytes, caa_error **err);

/* True when s is valid UTF-8 without control characters (what we accept in
 * any value that ends up in XML). */
bool lv_xml_text_ok(const char *s);
