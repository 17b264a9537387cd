/* Cloud detection for process-user-data (see detect.h). */
#include "detect.h"

#include <stdio.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#    include <cpuid.h>
#endif

#define DEFAULT_SYS_VENDOR "/sys/class/dmi/id/sys_vendor"

/* The 12-byte hypervisor vendor signature, "" on bare metal or other CPUs. */
static void cpuid_hypervisor_vendor(char out[13])
{
    out[0] = '\0';
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    __cpuid(1, a, b, c, d);
    if (!(c & (1u << 31))) /* no hypervisor present */
        return;
    __cpuid(0x40000000, a, b, c, d);
    memcpy(out, &b, 4);
    memcpy(out + 4, &c, 4);
    memcpy(out + 8, &d, 4);
    out[12] = '\0';
#endif
}

/* The first line of the DMI file, "" when unreadable. */
static void read_line(const char *path, char *buf, size_t size)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    if (!fgets(buf, (int)size, f))
        buf[0] = '\0';
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
}

caa_pud_cloud caa_pud_detect_cloud(const char *hypervisor_vendor, const char *sys_vendor_file,
                                   caa_pud_gcp_probe gcp_probe, void *userdata)
{
    char hv[13];
    if (hypervisor_vendor)
        snprintf(hv, sizeof(hv), "%s", hypervisor_vendor);
    else
        cpuid_hypervisor_vendor(hv);
    if (strcmp(hv, "Microsoft Hv") == 0)
        return CAA_PUD_CLOUD_AZURE;
    char vendor[128];
    read_line(sys_vendor_file ? sys_vendor_file : DEFAULT_SYS_VENDOR, vendor, sizeof(vendor));
    if (strcmp(vendor, "Amazon EC2") == 0)
        return CAA_PUD_CLOUD_AWS;
    /* GCP's DMI says "Google", but upstream asks the metadata server instead. */
    if (strcmp(hv, "KVMKVMKVM") == 0 && gcp_probe && gcp_probe(userdata))
        return CAA_PUD_CLOUD_GCP;
    if (strcmp(vendor, "Alibaba Cloud") == 0)
        return CAA_PUD_CLOUD_ALIBABA;
    return CAA_PUD_CLOUD_NONE;
}

const char *caa_pud_cloud_name(caa_pud_cloud c)
{
    switch (c) {
    case CAA_PUD_CLOUD_AZURE:
        return "azure";
    case CAA_PUD_CLOUD_AWS:
        return "aws";
    case CAA_PUD_CLOUD_GCP:
        return "gcp";
    case CAA_PUD_CLOUD_ALIBABA:
        return "alibaba";
    case CAA_PUD_CLOUD_NONE:
        break;
    }
    return "none";
}
