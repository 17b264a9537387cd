/* process-user-data's cloud detection (agent-protocol/process-user-data/detect.c),
 * with the CPUID vendor and the DMI file given as upstream's heuristics read them. */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>
#include <cmocka.h>

#include "detect.h"

static char *dmi_file(const char *content)
{
    static char path[] = "/tmp/caa-test-detect-XXXXXX";
    char *p = malloc(sizeof(path));
    memcpy(p, path, sizeof(path));
    int fd = mkstemp(p);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    return p;
}

/* Stands in for the GCP metadata probe; counts its calls. */
typedef struct probe {
    bool answers;
    int calls;
} probe;

static bool fake_gcp_probe(void *userdata)
{
    probe *p = userdata;
    p->calls++;
    return p->answers;
}

static probe no_gcp;

static caa_pud_cloud detect(const char *hv, const char *vendor_file)
{
    return caa_pud_detect_cloud(hv, vendor_file, fake_gcp_probe, &no_gcp);
}

static void test_detect(void **state)
{
    (void)state;
    char *aws = dmi_file("Amazon EC2\n");
    char *qemu = dmi_file("QEMU\n");
    /* Azure: the Hyper-V CPUID signature wins over DMI. */
    assert_int_equal(detect("Microsoft Hv", qemu), CAA_PUD_CLOUD_AZURE);
    assert_int_equal(detect("Microsoft Hv", aws), CAA_PUD_CLOUD_AZURE);
    /* AWS: DMI system manufacturer, whatever the hypervisor (Nitro is KVM-based). */
    assert_int_equal(detect("KVMKVMKVM", aws), CAA_PUD_CLOUD_AWS);
    assert_int_equal(detect("", aws), CAA_PUD_CLOUD_AWS);
    /* Neither: a local QEMU VM, a missing DMI file, near misses. */
    assert_int_equal(detect("KVMKVMKVM", qemu), CAA_PUD_CLOUD_NONE);
    assert_int_equal(detect("", "/nonexistent/sys_vendor"), CAA_PUD_CLOUD_NONE);
    assert_int_equal(detect("Microsoft H", qemu), CAA_PUD_CLOUD_NONE);
    char *near = dmi_file("Amazon EC2 \n");
    assert_int_equal(detect("", near), CAA_PUD_CLOUD_NONE);
    assert_string_equal(caa_pud_cloud_name(CAA_PUD_CLOUD_AZURE), "azure");
    assert_string_equal(caa_pud_cloud_name(CAA_PUD_CLOUD_AWS), "aws");
    assert_string_equal(caa_pud_cloud_name(CAA_PUD_CLOUD_NONE), "none");
    assert_string_equal(caa_pud_cloud_name(CAA_PUD_CLOUD_GCP), "gcp");
    assert_string_equal(caa_pud_cloud_name(CAA_PUD_CLOUD_ALIBABA), "alibaba");
    unlink(aws);
    unlink(qemu);
    unlink(near);
    free(aws);
    free(qemu);
    free(near);
}

/* GCP (upstream's isGCPVM): a KVM guest whose metadata server answers; the
 * probe is asked only there, after Azure and AWS. Alibaba Cloud
 * (isAlibabaCloudVM): DMI "Alibaba Cloud", after GCP. The DMI strings are
 * what those clouds' guests show in /sys/class/dmi/id/sys_vendor. */
static void test_detect_gcp_alibaba(void **state)
{
    (void)state;
    char *google = dmi_file("Google\n");
    char *alibaba = dmi_file("Alibaba Cloud\n");
    char *aws = dmi_file("Amazon EC2\n");
    probe yes = {.answers = true}, no = {.answers = false};
    assert_int_equal(caa_pud_detect_cloud("KVMKVMKVM", google, fake_gcp_probe, &yes), CAA_PUD_CLOUD_GCP);
    assert_int_equal(yes.calls, 1);
    /* No answer from the metadata server: not GCP, whatever DMI says. */
    assert_int_equal(caa_pud_detect_cloud("KVMKVMKVM", google, fake_gcp_probe, &no), CAA_PUD_CLOUD_NONE);
    assert_int_equal(no.calls, 1);
    /* Not KVM, or already Azure/AWS: the probe is not sent. */
    yes.calls = 0;
    assert_int_equal(caa_pud_detect_cloud("", google, fake_gcp_probe, &yes), CAA_PUD_CLOUD_NONE);
    assert_int_equal(caa_pud_detect_cloud("Microsoft Hv", google, fake_gcp_probe, &yes), CAA_PUD_CLOUD_AZURE);
    assert_int_equal(caa_pud_detect_cloud("KVMKVMKVM", aws, fake_gcp_probe, &yes), CAA_PUD_CLOUD_AWS);
    assert_int_equal(yes.calls, 0);
    assert_int_equal(caa_pud_detect_cloud("KVMKVMKVM", google, NULL, NULL), CAA_PUD_CLOUD_NONE);
    /* Alibaba Cloud: DMI only; a GCP answer would come first (upstream's order). */
    assert_int_equal(caa_pud_detect_cloud("KVMKVMKVM", alibaba, fake_gcp_probe, &no), CAA_PUD_CLOUD_ALIBABA);
    assert_int_equal(caa_pud_detect_cloud("", alibaba, NULL, NULL), CAA_PUD_CLOUD_ALIBABA);
    assert_int_equal(caa_pud_detect_cloud("KVMKVMKVM", alibaba, fake_gcp_probe, &yes), CAA_PUD_CLOUD_GCP);
    char *near = dmi_file("Alibaba\n");
    assert_int_equal(caa_pud_detect_cloud("", near, NULL, NULL), CAA_PUD_CLOUD_NONE);
    for (char **f = (char *[]){google, alibaba, aws, near, NULL}; *f; f++) {
        unlink(*f);
        free(*f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detect),
        cmocka_unit_test(test_detect_gcp_alibaba),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
