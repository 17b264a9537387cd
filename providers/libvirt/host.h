/* What this provider makes of the libvirt host: guest architecture, domain
 * type (kvm or TCG), effective launch security, firmware and SEV parameters.
 * Pure resolution over parsed capabilities, so every rule is unit-tested. */
#pragma once

#include <stdbool.h>

#include "domain-xml.h"
#include "error.h"
#include "libvirt-config.h"
#include "libvirt-parse.h"

typedef struct lv_host {
    lv_arch arch;
    const char *domain_type;  /* static "kvm" or "qemu" */
    char *domain_type_reason; /* why (for verify_config and debug logs) */
    char *machine;            /* NULL: the builder's default alias */
    lv_launch_security launch;
    char *loader; /* NULL: firmware autoselection (or none on s390x) */
    unsigned cbitpos, reduced_phys_bits;
} lv_host;

void lv_host_done(lv_host *h);

/* True for URIs that reach a libvirt daemon on this machine
 * (qemu:///system, qemu+unix:///session, test:///default). */
bool lv_uri_is_local(const char *uri);

/* domcaps may be NULL (not offered by the driver). cpuinfo is the text of
 * /proc/cpuinfo of the libvirt host when it is this machine, else NULL. */
int lv_host_resolve(const lv_config *cfg, const lv_settings *set, const lv_caps *caps,
                    const lv_domcaps *domcaps, const char *cpuinfo, size_t cpuinfo_len, lv_host *ret,
                    caa_error **err);
