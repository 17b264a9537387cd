/* Provider registry and module loader: statically registered providers,
 * loading a module (whose logging goes through the daemon's log settings), and
 * every refusal: wrong ABI, wrong table size, no entry symbol, wrong provider
 * name, writable or foreign-owned file or directory, symlinks, bad names.
 *
 * argv: good, bad-abi, bad-size and no-entry test modules (built by meson). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "error.h"
#include "fs.h"
#include "log.h"
#include "module.h"
#include "provider.h"
#include "xalloc.h"
#include "test-tmpdir.h"

static const char *mod_good, *mod_bad_abi, *mod_bad_size, *mod_no_entry;
static char *tmpdir;

static int setup(void **state)
{
    (void)state;
    tmpdir = caa_test_tmpdir_new("test-registry");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(caa_test_tmpdir_remove(tmpdir), 0);
    tmpdir = NULL;
    return 0;
}

/* Copies src to <dir>/caa-provider-<name>.so with the given mode. */
static void install_module(const char *dir, const char *src, const char *name, mode_t mode)
{
    _cleanup_free_ char *data = NULL;
    size_t len = 0;
    assert_int_equal(caa_read_file(src, 64u << 20, 0, &data, &len, NULL), 0);
    _cleanup_free_ char *dst = xasprintf("%s/caa-provider-%s.so", dir, name);
    int fd = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
    assert_int_equal(chmod(dst, mode), 0);
}

/* Loads and expects failure with code; the message must contain needle. */
static void expect_refused(const char *dir, const char *name, int code, const char *needle)
{
    const caa_provider_ops *ops = NULL;
    caa_error *err = NULL;
    int r = caa_provider_module_load(dir, name, &ops, &err);
    if (r != code || !err || !strstr(caa_error_msg(err), needle))
        fail_msg("loading %s: got %d \"%s\", want %d with \"%s\"", name, r,
                 err ? caa_error_msg(err) : "(none)", code, needle);
    assert_null(ops);
    caa_error_free(err);
}

static void test_names(void **state)
{
    (void)state;
    assert_true(caa_provider_name_valid("libvirt"));
    assert_true(caa_provider_name_valid("a"));
    assert_true(caa_provider_name_valid("ibm-cloud_vpc2"));
    assert_true(caa_provider_name_valid("0123456789abcdef0123456789abcdef"));
    assert_false(caa_provider_name_valid("0123456789abcdef0123456789abcdefg"));
    assert_false(caa_provider_name_valid(NULL));
    assert_false(caa_provider_name_valid(""));
    assert_false(caa_provider_name_valid("-x"));
    assert_false(caa_provider_name_valid("_x"));
    assert_false(caa_provider_name_valid("AWS"));
    assert_false(caa_provider_name_valid("../aws"));
    assert_false(caa_provider_name_valid("a/b"));
    assert_false(caa_provider_name_valid("a.b"));
    assert_false(caa_provider_name_valid("a b"));
    expect_refused(tmpdir, "../x", -EINVAL, "invalid provider name");
}

/* The module logs with the daemon's level, format and fd: one log state. */
static void test_load_good_module_shares_log_state(void **state)
{
    (void)state;
    install_module(tmpdir, mod_good, "tprobe", 0755);
    const caa_provider_ops *ops = NULL;
    caa_error *err = NULL;
    assert_int_equal(caa_provider_module_load(tmpdir, "tprobe", &ops, &err), 0);
    assert_null(err);
    assert_non_null(ops);
    assert_string_equal(ops->name, "tprobe");

    _cleanup_free_ char *log_path = xasprintf("%s/log", tmpdir);
    int fd = open(log_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    caa_log_set_fd(fd);
    void *priv = NULL;

    caa_log_set_level(CAA_LOG_INFO);
    assert_int_equal(ops->init(NULL, NULL, &priv, NULL), 0);
    caa_log_set_level(CAA_LOG_DEBUG);
    caa_log_set_format(CAA_LOG_JSON);
    assert_int_equal(ops->init(NULL, NULL, &priv, NULL), 0);
    caa_log_set_format(CAA_LOG_TEXT);
    caa_log_set_level(CAA_LOG_INFO);
    caa_log_set_fd(STDERR_FILENO);
    close(fd);

    _cleanup_free_ char *log = NULL;
    size_t len = 0;
    assert_int_equal(caa_read_file(log_path, 1 << 20, 0, &log, &len, NULL), 0);
    /* At info: the info line only, as text. At debug + JSON: both, as JSON. */
    const char *text_info = strstr(log, "info  [test/module] probe module: info line\n");
    assert_non_null(text_info);
    assert_null(strstr(log, "[test/module] probe module: debug line"));
    assert_non_null(strstr(log, "\"component\":\"test/module\""));
    assert_non_null(strstr(log, "probe module: debug line"));
    const char *first_json = strchr(log, '{');
    assert_non_null(first_json);
    assert_true(first_json > text_info);

    /* An error object made in the module is the daemon's type. */
    caa_error *verr = NULL;
    assert_int_equal(ops->verify_config(NULL, &verr), -EHOSTDOWN);
    assert_string_equal(caa_error_msg(verr), "probe module: error made inside the module");
    caa_error_free(verr);

    /* A second load of the same file gives the same object (never unloaded). */
    const caa_provider_ops *again = NULL;
    assert_int_equal(caa_provider_module_load(tmpdir, "tprobe", &again, NULL), 0);
    assert_ptr_equal(again, ops);
}

static void test_refuse_wrong_abi(void **state)
{
    (void)state;
    install_module(tmpdir, mod_bad_abi, "tprobe", 0755);
    char want[96];
    snprintf(want, sizeof(want), "was built for provider ABI %d, this daemon needs ABI %d",
             CAA_PROVIDER_ABI + 1000, CAA_PROVIDER_ABI);
    expect_refused(tmpdir, "tprobe", -EPROTO, want);
    install_module(tmpdir, mod_bad_size, "tprobe", 0755);
    expect_refused(tmpdir, "tprobe", -EPROTO, "has a provider table of");
}

static void test_refuse_not_a_module(void **state)
{
    (void)state;
    install_module(tmpdir, mod_no_entry, "tprobe", 0755);
    expect_refused(tmpdir, "tprobe", -ENOEXEC, "has no symbol caa_provider_module_entry");
    /* Not an ELF file at all. */
    _cleanup_free_ char *junk = xasprintf("%s/caa-provider-junk.so", tmpdir);
    assert_int_equal(caa_write_file_atomic(junk, "not a module\n", 13, 0755, NULL), 0);
    expect_refused(tmpdir, "junk", -ENOEXEC, "loading provider module");
}

static void test_refuse_wrong_name(void **state)
{
    (void)state;
    install_module(tmpdir, mod_good, "tother", 0755);
    expect_refused(tmpdir, "tother", -EPROTO, "provides \"tprobe\", not \"tother\"");
}

static void test_refuse_unsafe_files(void **state)
{
    (void)state;
    install_module(tmpdir, mod_good, "tprobe", 0757);
    expect_refused(tmpdir, "tprobe", -EPERM, "group- or world-writable (0757)");
    install_module(tmpdir, mod_good, "tprobe", 0775);
    expect_refused(tmpdir, "tprobe", -EPERM, "group- or world-writable (0775)");

    /* A writable directory: anyone could have swapped the file. */
    install_module(tmpdir, mod_good, "tprobe", 0755);
    assert_int_equal(chmod(tmpdir, 0777), 0);
    expect_refused(tmpdir, "tprobe", -EPERM, "directory");
    assert_int_equal(chmod(tmpdir, 01777), 0);
    expect_refused(tmpdir, "tprobe", -EPERM, "group- or world-writable (1777)");
    assert_int_equal(chmod(tmpdir, 0700), 0);

    /* Symlinks are refused even when they point at a good module. */
    _cleanup_free_ char *target = xasprintf("%s/caa-provider-tprobe.so", tmpdir);
    _cleanup_free_ char *link = xasprintf("%s/caa-provider-tlink.so", tmpdir);
    assert_int_equal(symlink(target, link), 0);
    expect_refused(tmpdir, "tlink", -EPERM, "symbolic link");

    /* Not a regular file. */
    _cleanup_free_ char *dir = xasprintf("%s/caa-provider-tdir.so", tmpdir);
    assert_int_equal(mkdir(dir, 0755), 0);
    expect_refused(tmpdir, "tdir", -EPERM, "not a regular file");

    expect_refused(tmpdir, "tmissing", -ENOENT, "no provider module");
    _cleanup_free_ char *nodir = xasprintf("%s/nodir", tmpdir);
    expect_refused(nodir, "tprobe", -ENOENT, "no provider module directory");
}

static void test_refuse_foreign_owner(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    install_module(tmpdir, mod_good, "tprobe", 0755);
    _cleanup_free_ char *path = xasprintf("%s/caa-provider-tprobe.so", tmpdir);
    assert_int_equal(chown(path, 65534, 65534), 0);
    expect_refused(tmpdir, "tprobe", -EPERM, "owned by uid 65534, neither root nor the daemon's user");
    assert_int_equal(chown(path, 0, 0), 0);
    assert_int_equal(chown(tmpdir, 65534, 65534), 0);
    expect_refused(tmpdir, "tprobe", -EPERM, "directory");
    assert_int_equal(chown(tmpdir, 0, 0), 0);
}

static int fake_init(uv_loop_t *loop, const void *config, void **ret_priv, caa_error **err)
{
    (void)loop;
    (void)config;
    (void)err;
    *ret_priv = NULL;
    return 0;
}

static const caa_provider_ops fake_a = {.name = "zz-static-a", .init = fake_init};
static const caa_provider_ops fake_a_again = {.name = "zz-static-a"};
static const caa_provider_ops no_name = {.name = ""};

/* Registered providers come first; unknown names list what is available. */
static void test_registry(void **state)
{
    (void)state;
    caa_error *err = NULL;
    assert_int_equal(caa_provider_register(&fake_a, NULL), 0);
    assert_int_equal(caa_provider_register(&fake_a_again, &err), -EEXIST);
    caa_error_free(err);
    err = NULL;
    assert_int_equal(caa_provider_register(&no_name, NULL), -EINVAL);
    assert_int_equal(caa_provider_register(NULL, NULL), -EINVAL);

    assert_ptr_equal(caa_provider_lookup("zz-static-a"), &fake_a);
    assert_ptr_equal(caa_provider_find("zz-static-a", NULL), &fake_a);

    assert_null(caa_provider_find("nosuchcloud", &err));
    assert_non_null(err);
    assert_int_equal(err->code, -ENOENT);
    assert_non_null(strstr(caa_error_msg(err), "unknown provider \"nosuchcloud\" (available: zz-static-a"));
    assert_non_null(strstr(caa_error_msg(err), "provider modules are in "));
    caa_error_free(err);
    err = NULL;

    /* Names that could escape the module directory never reach the loader. */
    const char *bad[] = {"../../tmp/x", "/tmp/x", "AWS", "a.so", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_null(caa_provider_find(bad[i], &err));
        assert_non_null(err);
        assert_true(err->code == -ENOENT || err->code == -EINVAL);
        caa_error_free(err);
        err = NULL;
    }
    assert_null(caa_provider_lookup("nosuchcloud"));

    const char *names[64];
    caa_provider_names(names, 64);
    assert_string_equal(names[0], "zz-static-a");
    for (size_t i = 1; names[i]; i++)
        assert_true(caa_provider_name_valid(names[i]));
    /* Truncation keeps the terminator. */
    caa_provider_names(names, 1);
    assert_null(names[0]);
    caa_provider_names(names, 2);
    assert_string_equal(names[0], "zz-static-a");
    assert_null(names[1]);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s good.so bad-abi.so bad-size.so no-entry.so\n", argv[0]);
        return 2;
    }
    mod_good = argv[1];
    mod_bad_abi = argv[2];
    mod_bad_size = argv[3];
    mod_no_entry = argv[4];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_good_module_shares_log_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_wrong_abi, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_not_a_module, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_wrong_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_unsafe_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_foreign_owner, setup, teardown),
        cmocka_unit_test(test_registry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
