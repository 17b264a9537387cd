#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <cmocka.h>

#include "parse.h"

static void test_int64(void **state)
{
    (void)state;
    int64_t v;
    assert_int_equal(caa_parse_int64("42", 0, 100, &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(caa_parse_int64("-5", -10, 10, &v), 0);
    assert_int_equal(v, -5);
    assert_int_equal(caa_parse_int64("101", 0, 100, &v), -ERANGE);
    assert_int_equal(caa_parse_int64("99999999999999999999", INT64_MIN, INT64_MAX, &v), -ERANGE);
    assert_int_equal(caa_parse_int64("", 0, 100, &v), -EINVAL);
    assert_int_equal(caa_parse_int64(" 1", 0, 100, &v), -EINVAL);
    assert_int_equal(caa_parse_int64("1 ", 0, 100, &v), -EINVAL);
    assert_int_equal(caa_parse_int64("0x10", 0, 100, &v), -EINVAL);
    assert_int_equal(caa_parse_int64("1.5", 0, 100, &v), -EINVAL);
    assert_int_equal(caa_parse_int64(NULL, 0, 100, &v), -EINVAL);
}

static void test_uint64(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(caa_parse_uint64("18446744073709551615", UINT64_MAX, &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(caa_parse_uint64("-1", UINT64_MAX, &v), -EINVAL);
    assert_int_equal(caa_parse_uint64("+1", UINT64_MAX, &v), -EINVAL);
    assert_int_equal(caa_parse_uint64("11", 10, &v), -ERANGE);
}

static void test_bool(void **state)
{
    (void)state;
    bool b;
    const char *yes[] = {"1", "t", "T", "true", "TRUE", "True"};
    const char *no[] = {"0", "f", "F", "false", "FALSE", "False"};
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(caa_parse_bool(yes[i], &b), 0);
        assert_true(b);
        assert_int_equal(caa_parse_bool(no[i], &b), 0);
        assert_false(b);
    }
    assert_int_equal(caa_parse_bool("yes", &b), -EINVAL);
    assert_int_equal(caa_parse_bool("", &b), -EINVAL);
    assert_int_equal(caa_parse_bool("tRue", &b), -EINVAL);
}

static void test_duration(void **state)
{
    (void)state;
    int64_t ns;
    assert_int_equal(caa_parse_duration("5m", &ns), 0);
    assert_true(ns == 300000000000LL);
    assert_int_equal(caa_parse_duration("1h30m", &ns), 0);
    assert_true(ns == 5400000000000LL);
    assert_int_equal(caa_parse_duration("300ms", &ns), 0);
    assert_true(ns == 300000000LL);
    assert_int_equal(caa_parse_duration("1.5s", &ns), 0);
    assert_true(ns == 1500000000LL);
    assert_int_equal(caa_parse_duration("10us", &ns), 0);
    assert_true(ns == 10000LL);
    assert_int_equal(caa_parse_duration("7ns", &ns), 0);
    assert_true(ns == 7);
    assert_int_equal(caa_parse_duration("90", &ns), 0); /* bare integer: seconds */
    assert_true(ns == 90000000000LL);
    assert_int_equal(caa_parse_duration("0", &ns), 0);
    assert_true(ns == 0);
    assert_int_equal(caa_parse_duration("-5s", &ns), -ERANGE);
    assert_int_equal(caa_parse_duration("5", &ns), 0);
    assert_int_equal(caa_parse_duration("5x", &ns), -EINVAL);
    assert_int_equal(caa_parse_duration("m", &ns), -EINVAL);
    assert_int_equal(caa_parse_duration("", &ns), -EINVAL);
    assert_int_equal(caa_parse_duration("1h 5m", &ns), -EINVAL);
    assert_int_equal(caa_parse_duration("9999999999h", &ns), -ERANGE);
}

static void test_format_duration(void **state)
{
    (void)state;
    char buf[64];
    caa_format_duration(300000000000LL, buf, sizeof(buf));
    assert_string_equal(buf, "5m0s");
    caa_format_duration(5400000000000LL, buf, sizeof(buf));
    assert_string_equal(buf, "1h30m0s");
    caa_format_duration(1500000000LL, buf, sizeof(buf));
    assert_string_equal(buf, "1.5s");
    caa_format_duration(300000000LL, buf, sizeof(buf));
    assert_string_equal(buf, "300ms");
    caa_format_duration(0, buf, sizeof(buf));
    assert_string_equal(buf, "0s");
    /* Round trip. */
    int64_t ns;
    assert_int_equal(caa_parse_duration("2h45m10s", &ns), 0);
    caa_format_duration(ns, buf, sizeof(buf));
    assert_string_equal(buf, "2h45m10s");
}

static void test_hex_digit(void **state)
{
    (void)state;
    assert_int_equal(caa_hex_digit_value('0'), 0);
    assert_int_equal(caa_hex_digit_value('9'), 9);
    assert_int_equal(caa_hex_digit_value('a'), 10);
    assert_int_equal(caa_hex_digit_value('F'), 15);
    assert_int_equal(caa_hex_digit_value('g'), -1);
    assert_int_equal(caa_hex_digit_value('/'), -1);
    assert_int_equal(caa_hex_digit_value('\0'), -1);
    assert_int_equal(caa_hex_digit_value((char)0xc3), -1); /* a high byte (signed char) */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int64),
        cmocka_unit_test(test_uint64),
        cmocka_unit_test(test_bool),
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_format_duration),
        cmocka_unit_test(test_hex_digit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
