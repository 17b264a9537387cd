/* process-user-data's cloud detection (agent-protocol/process-user-data/detect.c),
 * with the CPUID vendor and the DMI file given as upstream's heuristics read them. */
#include <setjmp.h>
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

static void test_detect(void **state)
{
    (void)state;
    char *aws = dmi_file("Amazon EC2\n");
    char *qemu = dmi_file("QEMU\n");
    /* Azure: the Hyper-V CPUID signature wins over DMI. */
    assert_int_equal(caa_pud_detect_cloud("Microsoft Hv", qemu), CAA_PUD_CLOUD_AZURE);
    assert_int_equal(caa_pud_detect_cloud("Microsoft Hv", aws), CAA_PUD_CLOUD_AZURE);
    /* AWS: DMI system manufacturer, whatever the hypervisor (Nitro is KVM-based). */
    assert_int_equal(caa_pud_detect_cloud("KVMKVMKVM", aws), CAA_PUD_CLOUD_AWS);
    assert_int_equal(caa_pud_detect_cloud("", aws), CAA_PUD_CLOUD_AWS);
    /* Neither: a local QEMU VM, a missing DMI file, near misses. */
    assert_int_equal(caa_pud_detect_cloud("KVMKVMKVM", qemu), CAA_PUD_CLOUD_NONE);
    assert_int_equal(caa_pud_detect_cloud("", "/nonexistent/sys_vendor"), CAA_PUD_CLOUD_NONE);
    assert_int_equal(caa_pud_detect_cloud("Microsoft H", qemu), CAA_PUD_CLOUD_NONE);
    char *near = dmi_file("Amazon EC2 \n");
    assert_int_equal(caa_pud_detect_cloud("", near), CAA_PUD_CLOUD_NONE);
    assert_string_equal(caa_pud_cloud_name(CAA_PUD_CLOUD_AZURE), "azure");
    assert_string_equal(caa_pud_cloud_name(CAA_PUD_CLOUD_AWS), "aws");
    assert_string_equal(caa_pud_cloud_name(CAA_PUD_CLOUD_NONE), "none");
    unlink(aws);
    unlink(qemu);
    unlink(near);
    free(aws);
    free(qemu);
    free(near);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
