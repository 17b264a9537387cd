/* process-user-data: which cloud the VM runs on, decided in upstream's order
 * and by upstream's heuristics (pkg/userdata/heuristics.go):
 *   Azure   CPUID hypervisor vendor "Microsoft Hv";
 *   AWS     DMI system manufacturer "Amazon EC2";
 *   GCP     CPUID hypervisor vendor "KVMKVMKVM" and the GCP metadata server
 *           answers 200 (the probe is the caller's, see below);
 *   Alibaba DMI system manufacturer "Alibaba Cloud".
 * Used only when no IMDS URL was given on the command line. */
#pragma once

#include <stdbool.h>

typedef enum caa_pud_cloud {
    CAA_PUD_CLOUD_NONE = 0,
    CAA_PUD_CLOUD_AZURE,
    CAA_PUD_CLOUD_AWS,
    CAA_PUD_CLOUD_GCP,
    CAA_PUD_CLOUD_ALIBABA,
} caa_pud_cloud;

/* Asks the GCP metadata server; true when it answered 200. Called only on a
 * KVM guest that is neither Azure nor AWS. */
typedef bool (*caa_pud_gcp_probe)(void *userdata);

/* hypervisor_vendor: NULL reads CPUID leaf 0x40000000; sys_vendor_file: the
 * DMI file (normally /sys/class/dmi/id/sys_vendor). Both overridable for
 * tests. gcp_probe NULL: GCP is never detected. */
caa_pud_cloud caa_pud_detect_cloud(const char *hypervisor_vendor, const char *sys_vendor_file,
                                   caa_pud_gcp_probe gcp_probe, void *userdata);
const char *caa_pud_cloud_name(caa_pud_cloud c);
