/* The cidata ISO builder, checked with an independent reader (isoinfo from
 * genisoimage): volume id, Rock Ridge + Joliet, file names and exact bytes. */
#include <setjmp.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cidata-iso.h"
#include "lv-test-util.h"

static void need_isoinfo(void)
{
    if (!lvt_have("isoinfo")) {
        lvt_note("isoinfo (genisoimage) not installed\n");
        skip();
    }
}

/* Extracts one file through the Rock Ridge names. */
static char *extract(const char *iso, const char *file, int *ret_status)
{
    char *out = NULL;
    char *argv[] = {"isoinfo", "-R", "-i", (char *)iso, "-x", (char *)file, NULL};
    *ret_status = lvt_run(argv, &out);
    return out;
}

static void test_seed_content(void **state)
{
    (void)state;
    need_isoinfo();
    const char *user_data =
        "#cloud-config\nwrite_files:\n- path: /run/peerpod/apf.json\n  content: '{\"a\": 1}'\n";
    uint8_t *img = NULL;
    size_t len = 0;
    caa_error *err = NULL;
    assert_int_equal(
        caa_cidata_iso_build_seed("podvm-nginx-1234abcd", user_data, strlen(user_data), &img, &len, &err), 0);
    assert_null(err);
    assert_true(len >= 16 * 2048);
    assert_int_equal(len % 2048, 0);
    char *iso = lvt_write_temp("seed.iso", img, len);
    assert_non_null(iso);

    char *out = NULL;
    char *dargv[] = {"isoinfo", "-d", "-i", iso, NULL};
    assert_int_equal(lvt_run(dargv, &out), 0);
    assert_non_null(strstr(out, "Volume id: cidata\n"));
    assert_non_null(strstr(out, "Joliet"));
    assert_non_null(strstr(out, "Rock Ridge"));
    free(out);

    char *largv[] = {"isoinfo", "-R", "-f", "-i", iso, NULL};
    assert_int_equal(lvt_run(largv, &out), 0);
    assert_non_null(strstr(out, "/user-data\n"));
    assert_non_null(strstr(out, "/meta-data\n"));
    assert_non_null(strstr(out, "/vendor-data\n"));
    free(out);

    /* Joliet view has the same names. */
    char *jargv[] = {"isoinfo", "-J", "-f", "-i", iso, NULL};
    assert_int_equal(lvt_run(jargv, &out), 0);
    assert_non_null(strstr(out, "/user-data\n"));
    free(out);

    int st;
    out = extract(iso, "/user-data", &st);
    assert_int_equal(st, 0);
    assert_string_equal(out, user_data);
    free(out);
    out = extract(iso, "/meta-data", &st);
    assert_int_equal(st, 0);
    assert_string_equal(out, "local-hostname: podvm-nginx-1234abcd\n");
    free(out);
    out = extract(iso, "/vendor-data", &st);
    assert_int_equal(st, 0);
    assert_string_equal(out, "");
    free(out);

    lvt_remove_temp(iso);
    free(img);
}

static void test_binary_and_large_file(void **state)
{
    (void)state;
    need_isoinfo();
    size_t n = 3 * 1024 * 1024 + 17; /* spans many blocks, odd length */
    unsigned char *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (unsigned char)(i * 31 + (i >> 9));
    caa_cidata_file files[] = {{"blob.bin", data, n}, {"empty", NULL, 0}};
    uint8_t *img = NULL;
    size_t len = 0;
    assert_int_equal(caa_cidata_iso_build("MYLABEL", files, 2, &img, &len, NULL), 0);
    char *iso = lvt_write_temp("b.iso", img, len);
    char *out = NULL;
    char *dargv[] = {"isoinfo", "-d", "-i", iso, NULL};
    assert_int_equal(lvt_run(dargv, &out), 0);
    assert_non_null(strstr(out, "Volume id: MYLABEL\n"));
    free(out);
    /* isoinfo -x writes raw bytes to stdout; compare through a file. */
    int st;
    out = extract(iso, "/blob.bin", &st);
    assert_int_equal(st, 0);
    free(out);
    char *x = NULL;
    char *sh[] = {"sh", "-c", "isoinfo -R -i \"$0\" -x /blob.bin | cmp - \"$1\" && echo SAME",
                  iso,  NULL, NULL};
    char *raw = lvt_write_temp("raw.bin", data, n);
    sh[4] = raw;
    assert_int_equal(lvt_run(sh, &x), 0);
    assert_non_null(strstr(x, "SAME"));
    free(x);
    lvt_remove_temp(raw);
    lvt_remove_temp(iso);
    free(img);
    free(data);
}

static void test_bad_input(void **state)
{
    (void)state;
    uint8_t *img = NULL;
    size_t len = 0;
    caa_error *err = NULL;
    const char *bad_names[] = {"",
                               "a/b",
                               "..",
                               ".",
                               "x y",
                               "new\nline",
                               "12345678901234567890123456789012345678901234567890123456789012345"};
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        caa_cidata_file f = {bad_names[i], "x", 1};
        assert_int_equal(caa_cidata_iso_build(NULL, &f, 1, &img, &len, &err), -EINVAL);
        assert_non_null(err);
        caa_error_free(err);
        err = NULL;
        assert_null(img);
    }
    caa_cidata_file dup[] = {{"a", "1", 1}, {"a", "2", 1}};
    assert_true(caa_cidata_iso_build(NULL, dup, 2, &img, &len, &err) < 0);
    caa_error_free(err);
    err = NULL;
    assert_int_equal(caa_cidata_iso_build("", NULL, 0, &img, &len, &err), -EINVAL);
    caa_error_free(err);
    err = NULL;
    assert_int_equal(caa_cidata_iso_build("123456789012345678901234567890123", NULL, 0, &img, &len, &err),
                     -EINVAL);
    caa_error_free(err);
    err = NULL;
    /* Host names are validated instance names, nothing YAML could misread. */
    const char *bad_hosts[] = {"",     "Upper",
                               "a: b", "x\nlocal-hostname: evil",
                               "a_b",  "0123456789012345678901234567890123456789012345678901234567890123"};
    for (size_t i = 0; i < sizeof(bad_hosts) / sizeof(bad_hosts[0]); i++) {
        assert_int_equal(caa_cidata_iso_build_seed(bad_hosts[i], "x", 1, &img, &len, &err), -EINVAL);
        caa_error_free(err);
        err = NULL;
    }
    assert_null(img);
}

static void test_empty_image_is_valid(void **state)
{
    (void)state;
    uint8_t *img = NULL;
    size_t len = 0;
    assert_int_equal(caa_cidata_iso_build(NULL, NULL, 0, &img, &len, NULL), 0);
    /* Primary volume descriptor at sector 16: type 1, "CD001". */
    assert_true(len > 17 * 2048);
    assert_int_equal(img[16 * 2048], 1);
    assert_memory_equal(img + 16 * 2048 + 1, "CD001", 5);
    assert_memory_equal(img + 16 * 2048 + 40, "cidata", 6);
    free(img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_content),
        cmocka_unit_test(test_binary_and_large_file),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_empty_image_is_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
