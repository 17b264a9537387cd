/* VNI allocation: lowest free index above vxlan-min-id, given the VNIs of live pods. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "podnet-worker.h"

static void test_empty(void **state)
{
    (void)state;
    uint32_t vni = 0, index = 99;
    assert_int_equal(caa_podnet_vni_alloc(555000, NULL, 0, &vni, &index, NULL), 0);
    assert_int_equal(vni, 555000);
    assert_int_equal(index, 0);
}

static void test_gap(void **state)
{
    (void)state;
    const uint32_t used[] = {555003, 555000, 555001, 555000, 12, 999999};
    uint32_t vni, index;
    assert_int_equal(caa_podnet_vni_alloc(555000, used, 6, &vni, &index, NULL), 0);
    assert_int_equal(vni, 555002);
    assert_int_equal(index, 2);
}

/* After a daemon restart the persisted set decides: a freed low index is reused. */
static void test_restart_reuses_lowest(void **state)
{
    (void)state;
    const uint32_t used[] = {555001, 555002};
    uint32_t vni, index;
    assert_int_equal(caa_podnet_vni_alloc(555000, used, 2, &vni, &index, NULL), 0);
    assert_int_equal(vni, 555000);
    assert_int_equal(index, 0);
    const uint32_t used2[] = {555000, 555001, 555002};
    assert_int_equal(caa_podnet_vni_alloc(555000, used2, 3, &vni, &index, NULL), 0);
    assert_int_equal(vni, 555003);
    assert_int_equal(index, 3);
}

static void test_exhausted(void **state)
{
    (void)state;
    const uint32_t used[] = {CAA_PODNET_MAX_VNI, CAA_PODNET_MAX_VNI - 1};
    uint32_t vni = 7, index = 7;
    caa_error *err = NULL;
    assert_int_equal(caa_podnet_vni_alloc(CAA_PODNET_MAX_VNI - 1, used, 2, &vni, &index, &err), -ENOSPC);
    assert_non_null(err);
    assert_non_null(strstr(err->msg, "no free VXLAN id"));
    assert_int_equal(vni, 7); /* untouched on failure */
    caa_error_free(err);
    assert_int_equal(caa_podnet_vni_alloc(CAA_PODNET_MAX_VNI, NULL, 0, &vni, &index, NULL), 0);
    assert_int_equal(vni, CAA_PODNET_MAX_VNI);
}

static void test_bad_min(void **state)
{
    (void)state;
    uint32_t vni, index;
    caa_error *err = NULL;
    assert_int_equal(caa_podnet_vni_alloc(CAA_PODNET_MAX_VNI + 1, NULL, 0, &vni, &index, &err), -EINVAL);
    assert_non_null(err);
    caa_error_free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_gap),
        cmocka_unit_test(test_restart_reuses_lowest),
        cmocka_unit_test(test_exhausted),
        cmocka_unit_test(test_bad_min),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
