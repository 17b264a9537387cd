#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "instance-name.h"

static void check(const char *pod, const char *sid, const char *want)
{
    char *got = caa_instance_name(pod, sid);
    assert_string_equal(got, want);
    assert_true(strlen(got) <= CAA_INSTANCE_NAME_MAX);
    for (const char *p = got; *p; p++)
        assert_true((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-');
    free(got);
}

static void test_names(void **state)
{
    (void)state;
    check("nginx", "1a2b3c4d5e6f", "podvm-nginx-1a2b3c4d");
    check("My_Pod.v2", "ABCDEF0123", "podvm-my-pod-v2-abcdef01");
    check("", "abc", "podvm--abc");
    /* A multi-byte character counts as one, as Go ranges over runes. */
    check("caf\xc3\xa9", "12345678", "podvm-caf--12345678");
    check("a<b>\"c'&d", "12345678", "podvm-a-b--c--d-12345678");
}

static void test_long_names_truncated(void **state)
{
    (void)state;
    char pod[200];
    memset(pod, 'p', sizeof(pod) - 1);
    pod[sizeof(pod) - 1] = '\0';
    char *got = caa_instance_name(pod, "0123456789abcdef");
    assert_int_equal(strlen(got), 63);
    assert_int_equal(strncmp(got, "podvm-ppp", 9), 0);
    assert_string_equal(got + 63 - 9, "-01234567");
    free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_long_names_truncated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
