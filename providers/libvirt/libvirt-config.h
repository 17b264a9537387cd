/* libvirt provider options (flags and environment variables as upstream) and
 * their validation into the settings the provider works with. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "node-name.h"
#include "options.h"

#define LV_DEFAULT_URI "qemu+ssh://root@192.168.122.1/system?no_verify=1"
#define LV_DEFAULT_FIRMWARE "/usr/share/OVMF/OVMF_CODE_4M.fd"
#define LV_N_OPTIONS 16

/* Filled by the daemon from lv_options (strings and lists owned by it). */
typedef struct lv_config {
    char *uri;
    char *pool_name;
    char *network_name;
    char *vol_name;
    char *launch_security;
    char *firmware;
    int64_t cpu;
    int64_t memory; /* MiB */
    char *cpuset;
    int64_t root_disk_size; /* GiB */
    char *data_dir;
    bool disable_cvm;
    char *domain_type;
    int64_t ip_wait; /* nanoseconds */
    char *console_log_dir;
    char *node_name;
} lv_config;

extern const caa_option lv_options[LV_N_OPTIONS];

typedef enum lv_launch_security {
    LV_LAUNCH_NONE = 0,
    LV_LAUNCH_SEV_SNP,
    LV_LAUNCH_TDX,
    LV_LAUNCH_S390_PV,
} lv_launch_security;

typedef enum lv_domain_type {
    LV_DOMTYPE_AUTO = 0,
    LV_DOMTYPE_KVM,
    LV_DOMTYPE_QEMU,
} lv_domain_type;

/* The validated, typed view of lv_config. Strings point into the config. */
typedef struct lv_settings {
    lv_launch_security launch;
    lv_domain_type domain_type;
    /* -firmware still at its default: CVM variants may pick a better loader. */
    bool firmware_is_default;
    /* The node recorded in each pod VM's metadata (-node-name, else the host
     * name): a libvirt host shared by several workers lists each its own. */
    char node[CAA_NODE_NAME_MAX + 1];
} lv_settings;

/* Checks every option (non-empty names, bounds, cpuset syntax, known
 * launch-security and domain-type values, CVM consistency). */
int lv_config_validate(const lv_config *cfg, lv_settings *ret, caa_error **err);

/* libvirt cpuset syntax: comma-separated "N", "N-M" (N <= M) or "^N", at
 * least one non-excluded item, numbers below 2^20. Syntax only: whether the
 * host has those CPUs is libvirt's call. */
bool lv_cpuset_valid(const char *s);

const char *lv_launch_security_name(lv_launch_security l);
int lv_launch_security_parse(const char *s, lv_launch_security *ret);
