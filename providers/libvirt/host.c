/* Host resolution rules (see docs/provider-libvirt.md, "Domain type" and
 * "Confidential VMs"). */
#include "host.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "xalloc.h"

void lv_host_done(lv_host *h)
{
    free(h->domain_type_reason);
    free(h->machine);
    free(h->loader);
    memset(h, 0, sizeof(*h));
}

bool lv_uri_is_local(const char *uri)
{
    const char *sep = uri ? strstr(uri, "://") : NULL;
    if (!sep)
        return false;
    /* A transport other than unix means a remote (or at least networked) daemon. */
    const char *plus = memchr(uri, '+', (size_t)(sep - uri));
    if (plus && !((size_t)(sep - plus) == 5 && memcmp(plus, "+unix", 5) == 0))
        return false;
    return sep[3] == '/';
}

static lv_arch arch_of(const char *name)
{
    if (strcmp(name, "s390x") == 0)
        return LV_ARCH_S390X;
    if (strcmp(name, "aarch64") == 0)
        return LV_ARCH_AARCH64;
    /* x86_64, and anything else (the test driver reports i686) */
    return LV_ARCH_X86_64;
}

static const char *arch_name(lv_arch a)
{
    return a == LV_ARCH_S390X ? "s390x" : a == LV_ARCH_AARCH64 ? "aarch64" : "x86_64";
}

static int resolve_launch(const lv_config *cfg, const lv_settings *set, lv_arch arch, lv_launch_security *ret,
                          caa_error **err)
{
    lv_launch_security l = set->launch;
    if (l == LV_LAUNCH_NONE && !cfg->disable_cvm) {
        if (arch != LV_ARCH_S390X)
            return caa_error_set(
                err, -EINVAL, "libvirt: DISABLECVM=false on an %s host needs -launch-security sev-snp or tdx",
                arch_name(arch));
        l = LV_LAUNCH_S390_PV;
    }
    if ((l == LV_LAUNCH_SEV_SNP || l == LV_LAUNCH_TDX) && arch != LV_ARCH_X86_64)
        return caa_error_set(err, -EOPNOTSUPP, "libvirt: -launch-security %s needs an x86_64 host, not %s",
                             lv_launch_security_name(l), arch_name(arch));
    if (l == LV_LAUNCH_S390_PV && arch != LV_ARCH_S390X)
        return caa_error_set(err, -EOPNOTSUPP,
                             "libvirt: -launch-security s390-pv needs an s390x host, not %s",
                             arch_name(arch));
    *ret = l;
    return 0;
}

static void resolve_domain_type(const lv_settings *set, const lv_caps *caps, lv_arch arch,
                                lv_launch_security l, const char *cpuinfo, size_t cpuinfo_len, lv_host *h)
{
    if (set->domain_type == LV_DOMTYPE_KVM) {
        h->domain_type = "kvm";
        h->domain_type_reason = xstrdup("-domain-type kvm");
    } else if (set->domain_type == LV_DOMTYPE_QEMU) {
        h->domain_type = "qemu";
        h->domain_type_reason = xstrdup("-domain-type qemu");
    } else if (l != LV_LAUNCH_NONE) {
        h->domain_type = "kvm";
        h->domain_type_reason = xasprintf("confidential VMs (%s) need KVM", lv_launch_security_name(l));
    } else if (!(caps->guest_types & LV_GUEST_KVM)) {
        h->domain_type = "qemu";
        h->domain_type_reason = xasprintf("libvirt offers no KVM guests for %s", caps->host_arch);
    } else if (arch == LV_ARCH_X86_64 && cpuinfo && !lv_cpuinfo_has_hw_virt(cpuinfo, cpuinfo_len)) {
        /* /dev/kvm without VT-x/AMD-V (e.g. kvm_pvm inside a microVM) passes
         * libvirt's probe but cannot run stock guest kernels. */
        h->domain_type = "qemu";
        h->domain_type_reason = xstrdup("libvirt offers KVM, but the host CPU has no vmx/svm flag");
    } else {
        h->domain_type = "kvm";
        h->domain_type_reason = xstrdup(cpuinfo ? "libvirt offers KVM and the host CPU has vmx/svm"
                                                : "libvirt offers KVM on a remote host");
    }
}

static char *find_loader(char *const *loaders, const char *const *needles)
{
    for (size_t i = 0; loaders && loaders[i]; i++) {
        const char *base = strrchr(loaders[i], '/');
        base = base ? base + 1 : loaders[i];
        for (size_t j = 0; needles[j]; j++)
            if (strstr(base, needles[j]))
                return xstrdup(loaders[i]);
    }
    return NULL;
}

static char *resolve_loader(const lv_config *cfg, const lv_settings *set, const lv_domcaps *domcaps,
                            lv_arch arch, lv_launch_security l)
{
    static const char *const snp[] = {"amdsev", "AmdSev", NULL};
    static const char *const tdx[] = {"inteltdx", "IntelTdx", "tdx", NULL};
    if (arch == LV_ARCH_S390X || !cfg->firmware || !*cfg->firmware)
        return NULL;
    /* The x86 OVMF default means nothing on arm64: autoselect there. */
    if (arch == LV_ARCH_AARCH64 && set->firmware_is_default)
        return NULL;
    if ((l == LV_LAUNCH_SEV_SNP || l == LV_LAUNCH_TDX) && set->firmware_is_default)
        /* A pflash OVMF cannot boot an encrypted guest: take the host's
         * SNP/TDX build when libvirt lists one, else let libvirt pick. */
        return domcaps ? find_loader(domcaps->loaders, l == LV_LAUNCH_SEV_SNP ? snp : tdx) : NULL;
    return xstrdup(cfg->firmware);
}

int lv_host_resolve(const lv_config *cfg, const lv_settings *set, const lv_caps *caps,
                    const lv_domcaps *domcaps, const char *cpuinfo, size_t cpuinfo_len, lv_host *ret,
                    caa_error **err)
{
    lv_host h = {0};
    h.arch = arch_of(caps->host_arch);
    int r = resolve_launch(cfg, set, h.arch, &h.launch, err);
    if (r < 0)
        return r;
    resolve_domain_type(set, caps, h.arch, h.launch, cpuinfo, cpuinfo_len, &h);
    if (h.launch != LV_LAUNCH_NONE && strcmp(h.domain_type, "kvm") != 0) {
        int code = caa_error_set(err, -EINVAL,
                                 "libvirt: launch security %s needs KVM, but the domain type is %s (%s)",
                                 lv_launch_security_name(h.launch), h.domain_type, h.domain_type_reason);
        lv_host_done(&h);
        return code;
    }
    const char *m = h.arch == LV_ARCH_S390X     ? caps->machine_s390
                    : h.arch == LV_ARCH_AARCH64 ? caps->machine_virt
                                                : NULL;
    h.machine = m ? xstrdup(m) : NULL;
    h.loader = resolve_loader(cfg, set, domcaps, h.arch, h.launch);
    h.cbitpos = domcaps && domcaps->cbitpos ? domcaps->cbitpos : LV_SEV_DEFAULT_CBITPOS;
    h.reduced_phys_bits =
        domcaps && domcaps->reduced_phys_bits ? domcaps->reduced_phys_bits : LV_SEV_DEFAULT_REDUCED_PHYS_BITS;
    *ret = h;
    return 0;
}
