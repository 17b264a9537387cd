#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "strcheck.h"

static void test_plain_string_is_copied_whole(void **state)
{
    (void)state;
    char *s = NULL;
    assert_int_equal(caa_str_from_bytes("id", "abc", 3, &s, NULL), 0);
    assert_string_equal(s, "abc");
    free(s);
    assert_int_equal(caa_str_from_bytes("id", NULL, 0, &s, NULL), 0);
    assert_string_equal(s, "");
    free(s);
    /* Bytes after len are not looked at. */
    assert_int_equal(caa_str_check("id", "ab\0c", 2, NULL), 0);
}

static void test_embedded_nul_is_refused_with_the_field_name(void **state)
{
    (void)state;
    char *s = NULL;
    caa_error *err = NULL;
    assert_int_equal(caa_str_from_bytes("CreateVMRequest.id", "abc\0def", 7, &s, &err), -EINVAL);
    assert_null(s);
    assert_non_null(strstr(err->msg, "CreateVMRequest.id"));
    assert_non_null(strstr(err->msg, "offset 3"));
    caa_error_free(err);
    assert_int_equal(caa_str_check("x", "\0", 1, NULL), -EINVAL);
    assert_int_equal(caa_str_check("x", "abc\0", 4, NULL), -EINVAL);
    err = NULL;
    assert_int_equal(caa_str_check(NULL, "\0", 1, &err), -EINVAL);
    assert_non_null(strstr(err->msg, "value"));
    caa_error_free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_string_is_copied_whole),
        cmocka_unit_test(test_embedded_nul_is_refused_with_the_field_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
