#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "fs.h"
#include "xalloc.h"

static char *tmpdir;

static int setup(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/caa-test-fs-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    tmpdir = xstrdup(tmpl);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(caa_rm_rf(tmpdir, NULL), 0);
    assert_int_equal(access(tmpdir, F_OK), -1);
    free(tmpdir);
    return 0;
}

static void test_mkdir_p(void **state)
{
    (void)state;
    _cleanup_free_ char *deep = xasprintf("%s/a/b/c", tmpdir);
    assert_int_equal(caa_mkdir_p(deep, 0700, NULL), 0);
    struct stat st;
    assert_int_equal(stat(deep, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(caa_mkdir_p(deep, 0700, NULL), 0); /* exists: fine */

    _cleanup_free_ char *file = xasprintf("%s/file", tmpdir);
    assert_int_equal(caa_write_file_atomic(file, "x", 1, 0600, NULL), 0);
    caa_error *err = NULL;
    assert_int_equal(caa_mkdir_p(file, 0700, &err), -ENOTDIR);
    caa_error_free(err);
}

static void test_atomic_write_and_read(void **state)
{
    (void)state;
    _cleanup_free_ char *path = xasprintf("%s/state.json", tmpdir);
    assert_int_equal(caa_write_file_atomic(path, "{\"a\":1}", 7, 0600, NULL), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char *buf = NULL;
    size_t len = 0;
    assert_int_equal(caa_read_file(path, 1024, 1, &buf, &len, NULL), 0);
    assert_int_equal(len, 7);
    assert_string_equal(buf, "{\"a\":1}");
    free(buf);

    /* Replacing keeps exactly one file and no temporaries. */
    assert_int_equal(caa_write_file_atomic(path, "new", 3, 0600, NULL), 0);
    assert_int_equal(caa_read_file(path, 1024, 1, &buf, &len, NULL), 0);
    assert_string_equal(buf, "new");
    free(buf);
    _cleanup_free_ char *cmd = xasprintf("test $(ls %s | wc -l) -eq 1", tmpdir);
    assert_int_equal(system(cmd), 0);
}

static void test_read_limits(void **state)
{
    (void)state;
    _cleanup_free_ char *path = xasprintf("%s/big", tmpdir);
    char data[100];
    memset(data, 'x', sizeof(data));
    assert_int_equal(caa_write_file_atomic(path, data, sizeof(data), 0600, NULL), 0);
    char *buf = NULL;
    caa_error *err = NULL;
    assert_int_equal(caa_read_file(path, 99, 1, &buf, NULL, &err), -EFBIG);
    assert_null(buf);
    caa_error_free(err);
    err = NULL;

    _cleanup_free_ char *link = xasprintf("%s/link", tmpdir);
    assert_int_equal(symlink(path, link), 0);
    assert_int_equal(caa_read_file(link, 1000, 1, &buf, NULL, &err), -ELOOP);
    caa_error_free(err);
    err = NULL;
    assert_int_equal(caa_read_file(link, 1000, 0, &buf, NULL, NULL), 0);
    free(buf);

    assert_int_equal(caa_read_file(tmpdir, 1000, 1, &buf, NULL, &err), -EINVAL);
    caa_error_free(err);
    err = NULL;
    _cleanup_free_ char *missing = xasprintf("%s/missing", tmpdir);
    assert_int_equal(caa_read_file(missing, 1000, 1, &buf, NULL, &err), -ENOENT);
    assert_non_null(strstr(err->msg, "missing"));
    caa_error_free(err);
}

/* A FIFO (no writer), a symlink to it and a character device are refused at
 * once; alarm() turns a regression (open blocking) into a failure. */
static void test_read_refuses_special_files(void **state)
{
    (void)state;
    char *buf = NULL;
    caa_error *err = NULL;
    _cleanup_free_ char *fifo = xasprintf("%s/fifo", tmpdir);
    _cleanup_free_ char *link = xasprintf("%s/fifo-link", tmpdir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(symlink(fifo, link), 0);
    alarm(10);
    assert_int_equal(caa_read_file(fifo, 1000, 1, &buf, NULL, &err), -EINVAL);
    assert_non_null(strstr(err->msg, "not a regular file"));
    caa_error_free(err);
    err = NULL;
    assert_int_equal(caa_read_file(link, 1000, 0, &buf, NULL, NULL), -EINVAL);
    assert_int_equal(caa_read_file(link, 1000, 1, &buf, NULL, NULL), -ELOOP);
    assert_int_equal(caa_read_file("/dev/null", 1000, 0, &buf, NULL, NULL), -EINVAL);
    assert_int_equal(caa_read_file("/dev/zero", 1000, 0, &buf, NULL, NULL), -EINVAL);
    alarm(0);
    assert_null(buf);
}

static void test_rm_rf_does_not_follow_links(void **state)
{
    (void)state;
    _cleanup_free_ char *outside = xasprintf("%s/outside", tmpdir);
    _cleanup_free_ char *keep = xasprintf("%s/outside/keep", tmpdir);
    _cleanup_free_ char *tree = xasprintf("%s/tree/sub", tmpdir);
    _cleanup_free_ char *link = xasprintf("%s/tree/sub/link", tmpdir);
    _cleanup_free_ char *top = xasprintf("%s/tree", tmpdir);
    assert_int_equal(caa_mkdir_p(outside, 0700, NULL), 0);
    assert_int_equal(caa_write_file_atomic(keep, "k", 1, 0600, NULL), 0);
    assert_int_equal(caa_mkdir_p(tree, 0700, NULL), 0);
    assert_int_equal(symlink(outside, link), 0);
    assert_int_equal(caa_rm_rf(top, NULL), 0);
    assert_int_equal(access(top, F_OK), -1);
    assert_int_equal(access(keep, F_OK), 0);
    assert_int_equal(caa_rm_rf(top, NULL), 0); /* missing is success */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mkdir_p, setup, teardown),
        cmocka_unit_test_setup_teardown(test_atomic_write_and_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_refuses_special_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rm_rf_does_not_follow_links, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
