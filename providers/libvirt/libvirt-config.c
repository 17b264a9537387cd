/* libvirt provider options and their validation. */
#include "libvirt-config.h"
#include "domain-xml.h"
#include "node-name.h"
#include "timeutil.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

const caa_option lv_options[LV_N_OPTIONS] = {
    CAA_OPTION(lv_config, "uri", "LIBVIRT_URI", CAA_OPT_STRING, uri, LV_DEFAULT_URI, "libvirt URI"),
    CAA_OPTION(lv_config, "pool-name", "LIBVIRT_POOL", CAA_OPT_STRING, pool_name, "default",
               "libvirt storage pool"),
    CAA_OPTION(lv_config, "network-name", "LIBVIRT_NET", CAA_OPT_STRING, network_name, "default",
               "libvirt network for the pod VM NIC"),
    CAA_OPTION(lv_config, "vol-name", "LIBVIRT_VOL_NAME", CAA_OPT_STRING, vol_name, "podvm-base.qcow2",
               "volume name of the pod VM base image in the pool"),
    CAA_OPTION(lv_config, "launch-security", "LIBVIRT_LAUNCH_SECURITY", CAA_OPT_STRING, launch_security, "",
               "confidential VM technology: sev-snp, tdx or s390-pv (empty: none; s390x hosts pick s390-pv)"),
    CAA_OPTION(lv_config, "firmware", "LIBVIRT_EFI_FIRMWARE", CAA_OPT_STRING, firmware, LV_DEFAULT_FIRMWARE,
               "path to the OVMF firmware on the libvirt host (empty: libvirt firmware autoselection)"),
    CAA_OPTION_INT(lv_config, "cpu", "LIBVIRT_CPU", cpu, "2", 1, 4096, "number of vCPUs of a pod VM"),
    CAA_OPTION_INT(lv_config, "memory", "LIBVIRT_MEMORY", memory, "8192", 1, INT64_C(16) << 20,
                   "memory of a pod VM in MiB"),
    CAA_OPTION(lv_config, "cpuset", "LIBVIRT_CPUSET", CAA_OPT_STRING, cpuset, "",
               "host CPUs the vCPUs may run on, e.g. 0-3,8"),
    CAA_OPTION_INT(lv_config, "root-disk-size", "LIBVIRT_ROOT_DISK_SIZE", root_disk_size, "10", 0, 65536,
                   "root disk size in GiB (never below the base image size)"),
    CAA_OPTION(lv_config, "data-dir", NULL, CAA_OPT_STRING, data_dir, "/var/lib/libvirt/images",
               "libvirt storage directory (accepted for compatibility, unused)"),
    CAA_OPTION(lv_config, "disable-cvm", "DISABLECVM", CAA_OPT_BOOL, disable_cvm, "true",
               "create plain (non-confidential) VMs"),
    CAA_OPTION(lv_config, "domain-type", "LIBVIRT_DOMAIN_TYPE", CAA_OPT_STRING, domain_type, "auto",
               "auto, kvm or qemu (TCG); auto picks kvm only when the host can run KVM guests"),
    CAA_OPTION(lv_config, "ip-wait", "LIBVIRT_IP_WAIT", CAA_OPT_DURATION, ip_wait, "60s",
               "how long to wait for a pod VM's DHCP lease"),
    CAA_OPTION(lv_config, "console-log-dir", "LIBVIRT_CONSOLE_LOG_DIR", CAA_OPT_STRING, console_log_dir,
               "/var/log/libvirt/qemu",
               "directory on the libvirt host for <name>-console.log (empty: serial console on a pty only)"),
    CAA_OPTION(
        lv_config, "node-name", "NODE_NAME", CAA_OPT_STRING, node_name, "",
        "node name in the pod VMs' metadata; the orphan sweep lists only this node's domains (empty: the "
        "host name)"),
};

static const char *const launch_names[] = {
    [LV_LAUNCH_NONE] = "",
    [LV_LAUNCH_SEV_SNP] = "sev-snp",
    [LV_LAUNCH_TDX] = "tdx",
    [LV_LAUNCH_S390_PV] = "s390-pv",
};

const char *lv_launch_security_name(lv_launch_security l)
{
    return launch_names[l];
}

int lv_launch_security_parse(const char *s, lv_launch_security *ret)
{
    for (size_t i = 0; i < sizeof(launch_names) / sizeof(launch_names[0]); i++)
        if (strcmp(s ? s : "", launch_names[i]) == 0) {
            *ret = (lv_launch_security)i;
            return 0;
        }
    return -EINVAL;
}

/* Reads a decimal number below 2^20 (no sign, no leading zeros beyond "0"). */
static const char *cpu_number(const char *p, unsigned *ret)
{
    unsigned v = 0;
    const char *start = p;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (unsigned)(*p - '0');
        if (v >= (1u << 20))
            return NULL;
        p++;
    }
    if (p == start || (p - start > 1 && *start == '0'))
        return NULL;
    *ret = v;
    return p;
}

bool lv_cpuset_valid(const char *s)
{
    bool positive = false;
    const char *p = s;
    if (!s || !*s)
        return false;
    for (;;) {
        unsigned a, b;
        bool excl = *p == '^';
        if (excl)
            p++;
        p = cpu_number(p, &a);
        if (!p)
            return false;
        if (*p == '-' && !excl) {
            p = cpu_number(p + 1, &b);
            if (!p || b < a)
                return false;
        }
        positive |= !excl;
        if (*p == '\0')
            break;
        if (*p != ',')
            return false;
        p++;
    }
    return positive;
}

static int require(const char *value, const char *flag, caa_error **err)
{
    if (!value || !*value)
        return caa_error_set(err, -EINVAL, "libvirt: -%s must not be empty", flag);
    return 0;
}

int lv_config_validate(const lv_config *cfg, lv_settings *ret, caa_error **err)
{
    lv_settings s = {0};
    int r;

    if ((r = require(cfg->uri, "uri", err)) < 0 || (r = require(cfg->pool_name, "pool-name", err)) < 0 ||
        (r = require(cfg->network_name, "network-name", err)) < 0 ||
        (r = require(cfg->vol_name, "vol-name", err)) < 0)
        return r;
    if (cfg->cpu <= 0 || cfg->memory <= 0)
        return caa_error_set(err, -EINVAL, "libvirt: -cpu and -memory must be positive");
    if (cfg->root_disk_size < 0)
        return caa_error_set(err, -EINVAL, "libvirt: -root-disk-size must not be negative");
    if (cfg->cpuset && *cfg->cpuset && !lv_cpuset_valid(cfg->cpuset))
        return caa_error_set(err, -EINVAL, "libvirt: invalid -cpuset \"%s\" (expected e.g. 0-3,8 or 0-7,^4)",
                             cfg->cpuset);
    if (lv_launch_security_parse(cfg->launch_security, &s.launch) < 0)
        return caa_error_set(err, -EINVAL,
                             "libvirt: unknown -launch-security \"%s\" (expected sev-snp, tdx or s390-pv)",
                             cfg->launch_security);
    if (cfg->disable_cvm && s.launch != LV_LAUNCH_NONE)
        return caa_error_set(
            err, -EINVAL,
            "libvirt: -launch-security %s needs confidential VMs, but -disable-cvm (DISABLECVM) is true",
            cfg->launch_security);
    const char *dt = cfg->domain_type && *cfg->domain_type ? cfg->domain_type : "auto";
    if (strcmp(dt, "auto") == 0)
        s.domain_type = LV_DOMTYPE_AUTO;
    else if (strcmp(dt, "kvm") == 0)
        s.domain_type = LV_DOMTYPE_KVM;
    else if (strcmp(dt, "qemu") == 0)
        s.domain_type = LV_DOMTYPE_QEMU;
    else
        return caa_error_set(err, -EINVAL,
                             "libvirt: unknown -domain-type \"%s\" (expected auto, kvm or qemu)", dt);
    if (s.domain_type == LV_DOMTYPE_QEMU && (s.launch == LV_LAUNCH_SEV_SNP || s.launch == LV_LAUNCH_TDX))
        return caa_error_set(err, -EINVAL, "libvirt: -launch-security %s needs KVM, not -domain-type qemu",
                             cfg->launch_security);
    if (cfg->ip_wait <= 0 || cfg->ip_wait > 3600 * CAA_NSEC_PER_SEC)
        return caa_error_set(err, -EINVAL, "libvirt: -ip-wait must be between 1ns and 1h");
    s.firmware_is_default = cfg->firmware && strcmp(cfg->firmware, LV_DEFAULT_FIRMWARE) == 0;
    int nr = caa_node_name(cfg->node_name, s.node, sizeof(s.node));
    if (nr == -E2BIG || (nr == 0 && cfg->node_name && *cfg->node_name && !lv_xml_text_ok(s.node)))
        return caa_error_set(err, -EINVAL,
                             "libvirt: -node-name must be at most 256 characters of XML-safe text");
    if (nr == -ENOENT)
        snprintf(s.node, sizeof(s.node), "unknown");
    *ret = s;
    return 0;
}
