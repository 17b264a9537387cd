/* process-user-data: which cloud the VM runs on, as upstream's heuristics
 * (pkg/userdata/heuristics.go) decide it: Azure when the CPUID hypervisor
 * vendor is "Microsoft Hv", AWS when the DMI system manufacturer is
 * "Amazon EC2". Used only when no IMDS URL was given on the command line. */
#pragma once

#include <stdbool.h>

typedef enum caa_pud_cloud {
    CAA_PUD_CLOUD_NONE = 0,
    CAA_PUD_CLOUD_AZURE,
    CAA_PUD_CLOUD_AWS,
} caa_pud_cloud;

/* hypervisor_vendor: NULL reads CPUID leaf 0x40000000; sys_vendor_file: the
 * DMI file (normally /sys/class/dmi/id/sys_vendor). Both overridable for
 * tests. */
caa_pud_cloud caa_pud_detect_cloud(const char *hypervisor_vendor, const char *sys_vendor_file);
const char *caa_pud_cloud_name(caa_pud_cloud c);
