#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

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

static void test_make_utf8(void **state)
{
    (void)state;
    char ok[] = "plain \xc3\xa4 \xe2\x82\xac \xf0\x9f\x98\x80";
    caa_str_make_utf8(ok);
    assert_string_equal(ok, "plain \xc3\xa4 \xe2\x82\xac \xf0\x9f\x98\x80");
    /* Stray continuation, truncated sequence, overlong '/', surrogate, > U+10FFFF, 0xff. */
    char bad[] = "a\x80"
                 "b\xc3"
                 "c\xc0\xaf"
                 "d\xed\xa0\x80"
                 "e\xf4\x90\x80\x80"
                 "f\xff";
    caa_str_make_utf8(bad);
    assert_string_equal(bad, "a?b?c??d???e????f?");
}

/* JSON strings are safe at the decoder already: without JSON_ALLOW_NUL (used
 * nowhere in the tree) jansson refuses \u0000, so json_string_value() is
 * always the whole value; the explicit checks are a second line. */
static void test_jansson_refuses_nul_escapes(void **state)
{
    (void)state;
    json_error_t jerr;
    assert_null(json_loads("{\"id\": \"abc\\u0000def\"}", 0, &jerr));
    json_t *ok = json_loads("{\"id\": \"abc\"}", 0, &jerr);
    assert_non_null(ok);
    json_decref(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_string_is_copied_whole),
        cmocka_unit_test(test_embedded_nul_is_refused_with_the_field_name),
        cmocka_unit_test(test_jansson_refuses_nul_escapes),
        cmocka_unit_test(test_make_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
