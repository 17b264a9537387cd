#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"

static void test_append_grows_and_terminates(void **state)
{
    (void)state;
    caa_buf b = {0};
    for (int i = 0; i < 1000; i++)
        caa_buf_append(&b, "abc", 3);
    assert_int_equal(b.len, 3000);
    assert_true(b.cap > b.len);
    assert_int_equal(b.data[b.len], '\0');
    assert_memory_equal(b.data + 2997, "abc", 3);
    caa_buf_done(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
}

static void test_puts_putc_printf(void **state)
{
    (void)state;
    caa_buf b = {0};
    caa_buf_puts(&b, "x=");
    caa_buf_printf(&b, "%d,%s", 42, "y");
    caa_buf_putc(&b, '!');
    assert_string_equal(b.data, "x=42,y!");
    assert_int_equal(b.len, strlen("x=42,y!"));
    /* A long printf crosses the first capacity. */
    caa_buf_printf(&b, "%0200d", 7);
    assert_int_equal(b.len, 7 + 200);
    assert_int_equal(b.data[b.len - 1], '7');
    caa_buf_done(&b);
}

static void test_binary_bytes(void **state)
{
    (void)state;
    caa_buf b = {0};
    const unsigned char bytes[] = {0, 1, 0, 255};
    caa_buf_append(&b, bytes, sizeof(bytes));
    assert_int_equal(b.len, 4);
    assert_memory_equal(b.data, bytes, 4);
    caa_buf_wipe_done(&b);
    assert_null(b.data);
}

static void test_steal(void **state)
{
    (void)state;
    caa_buf b = {0};
    size_t len = 99;
    char *empty = caa_buf_steal(&b, &len);
    assert_non_null(empty);
    assert_string_equal(empty, "");
    assert_int_equal(len, 0);
    free(empty);

    caa_buf_puts(&b, "hello");
    char *s = caa_buf_steal(&b, &len);
    assert_string_equal(s, "hello");
    assert_int_equal(len, 5);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    free(s);
}

static void test_reserve_zero_is_empty_string(void **state)
{
    (void)state;
    caa_buf b = {0};
    caa_buf_reserve(&b, 0);
    assert_non_null(b.data);
    assert_string_equal(b.data, "");
    caa_buf_append(&b, NULL, 0);
    assert_int_equal(b.len, 0);
    caa_buf_done(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_grows_and_terminates),
        cmocka_unit_test(test_puts_putc_printf),
        cmocka_unit_test(test_binary_bytes),
        cmocka_unit_test(test_steal),
        cmocka_unit_test(test_reserve_zero_is_empty_string),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
