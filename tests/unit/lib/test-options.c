#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "options.h"
#include "strv.h"

struct cfg {
    char *socket;
    bool disable_tls;
    int64_t port;
    int64_t timeout;
    char **types;
    char **tags;
    char *secret;
};

static const caa_option opts[] = {
    {.name = "socket",
     .env = "T_SOCKET",
     .type = CAA_OPT_STRING,
     .offset = offsetof(struct cfg, socket),
     .def = "/run/x.sock",
     .help = "socket"},
    {.name = "disable-tls",
     .type = CAA_OPT_BOOL,
     .offset = offsetof(struct cfg, disable_tls),
     .help = "no tls"},
    {.name = "port",
     .env = "T_PORT",
     .type = CAA_OPT_INT,
     .offset = offsetof(struct cfg, port),
     .def = "15150",
     .min = 1,
     .max = 65535},
    {.name = "timeout",
     .env = "T_TIMEOUT",
     .type = CAA_OPT_DURATION,
     .offset = offsetof(struct cfg, timeout),
     .def = "5m"},
    {.name = "types", .env = "T_TYPES", .type = CAA_OPT_LIST, .offset = offsetof(struct cfg, types)},
    {.name = "tags", .env = "T_TAGS", .type = CAA_OPT_KEYVALUE, .offset = offsetof(struct cfg, tags)},
    {.name = "secret",
     .env = "T_SECRET",
     .type = CAA_OPT_STRING,
     .offset = offsetof(struct cfg, secret),
     .flags = CAA_OPT_SECRET},
};

static int parse(struct cfg *c, int argc, char **argv, caa_error **err)
{
    memset(c, 0, sizeof(*c));
    caa_option_set set = {.title = "test", .opts = opts, .n_opts = 7, .target = c};
    return caa_options_parse(&set, 1, argc, argv, err);
}

static void release(struct cfg *c)
{
    caa_option_set set = {.title = "test", .opts = opts, .n_opts = 7, .target = c};
    caa_options_free(&set, 1);
}

static int setup(void **state)
{
    (void)state;
    unsetenv("T_SOCKET");
    unsetenv("T_PORT");
    unsetenv("T_TIMEOUT");
    unsetenv("T_TYPES");
    unsetenv("T_TAGS");
    unsetenv("T_SECRET");
    return 0;
}

static void test_defaults(void **state)
{
    (void)state;
    struct cfg c;
    assert_int_equal(parse(&c, 0, NULL, NULL), 0);
    assert_string_equal(c.socket, "/run/x.sock");
    assert_false(c.disable_tls);
    assert_int_equal(c.port, 15150);
    assert_true(c.timeout == 300000000000LL);
    assert_null(c.types);
    release(&c);
}

static void test_env_then_flag(void **state)
{
    (void)state;
    struct cfg c;
    setenv("T_SOCKET", "/env.sock", 1);
    setenv("T_PORT", "2000", 1);
    setenv("T_TYPES", "a, b", 1);
    char *argv[] = {"-port", "3000", "--types=c", "-disable-tls"};
    assert_int_equal(parse(&c, 4, argv, NULL), 0);
    assert_string_equal(c.socket, "/env.sock"); /* env over default */
    assert_int_equal(c.port, 3000);             /* flag over env */
    assert_true(c.disable_tls);
    assert_int_equal(caa_strv_len(c.types), 3); /* lists append */
    assert_string_equal(c.types[0], "a");
    assert_string_equal(c.types[1], "b");
    assert_string_equal(c.types[2], "c");
    release(&c);
}

static void test_empty_env_ignored(void **state)
{
    (void)state;
    struct cfg c;
    setenv("T_SOCKET", "", 1);
    assert_int_equal(parse(&c, 0, NULL, NULL), 0);
    assert_string_equal(c.socket, "/run/x.sock");
    release(&c);
}

static void test_bool_forms(void **state)
{
    (void)state;
    struct cfg c;
    char *a1[] = {"--disable-tls=false"};
    assert_int_equal(parse(&c, 1, a1, NULL), 0);
    assert_false(c.disable_tls);
    release(&c);
    char *a2[] = {"-disable-tls=true"};
    assert_int_equal(parse(&c, 1, a2, NULL), 0);
    assert_true(c.disable_tls);
    release(&c);
    caa_error *err = NULL;
    char *a3[] = {"-disable-tls=maybe"};
    assert_int_equal(parse(&c, 1, a3, &err), -EINVAL);
    assert_non_null(strstr(err->msg, "disable-tls"));
    caa_error_free(err);
    release(&c);
}

static void test_errors(void **state)
{
    (void)state;
    struct cfg c;
    caa_error *err = NULL;
    char *a1[] = {"-nope"};
    assert_true(parse(&c, 1, a1, &err) < 0);
    assert_string_equal(err->msg, "flag provided but not defined: -nope");
    caa_error_free(err);
    err = NULL;
    release(&c);

    char *a2[] = {"-port"};
    assert_true(parse(&c, 1, a2, &err) < 0);
    assert_string_equal(err->msg, "flag needs an argument: -port");
    caa_error_free(err);
    err = NULL;
    release(&c);

    char *a3[] = {"-port=70000"};
    assert_int_equal(parse(&c, 1, a3, &err), -ERANGE);
    caa_error_free(err);
    err = NULL;
    release(&c);

    char *a4[] = {"-timeout=soon"};
    assert_int_equal(parse(&c, 1, a4, &err), -EINVAL);
    caa_error_free(err);
    err = NULL;
    release(&c);

    char *a5[] = {"stray"};
    assert_true(parse(&c, 1, a5, &err) < 0);
    caa_error_free(err);
    err = NULL;
    release(&c);

    char *a6[] = {"-tags=novalue"};
    assert_int_equal(parse(&c, 1, a6, &err), -EINVAL);
    caa_error_free(err);
    err = NULL;
    release(&c);

    setenv("T_PORT", "abc", 1);
    assert_true(parse(&c, 0, NULL, &err) < 0);
    assert_non_null(strstr(err->msg, "T_PORT"));
    caa_error_free(err);
    release(&c);
    unsetenv("T_PORT");
}

static void test_help(void **state)
{
    (void)state;
    struct cfg c;
    char *a1[] = {"-h"};
    assert_int_equal(parse(&c, 1, a1, NULL), 1);
    release(&c);
    char *a2[] = {"--help"};
    assert_int_equal(parse(&c, 1, a2, NULL), 1);
    release(&c);
}

struct dump {
    int n;
    int saw_masked;
    int saw_secret_text;
};

static void dump_cb(const char *name, const char *value, void *opaque)
{
    struct dump *d = opaque;
    d->n++;
    if (strcmp(name, "secret") == 0 && strcmp(value, "********") == 0)
        d->saw_masked = 1;
    if (strstr(value, "hunter2"))
        d->saw_secret_text = 1;
}

static void test_dump_masks_secrets(void **state)
{
    (void)state;
    struct cfg c;
    char *a[] = {"-secret", "hunter2", "-tags", "a=1,b=2"};
    assert_int_equal(parse(&c, 4, a, NULL), 0);
    struct dump d = {0};
    caa_option_set set = {.title = "test", .opts = opts, .n_opts = 7, .target = &c};
    caa_options_dump(&set, 1, dump_cb, &d);
    assert_int_equal(d.n, 7);
    assert_true(d.saw_masked);
    assert_false(d.saw_secret_text);
    release(&c);
}

/* The shared program prologue: go on (-1), help (0), usage error (2),
 * version (0); the sets are freed whenever it answers an exit status. */
static void test_parse_program(void **state)
{
    (void)state;
    struct cfg c = {0};
    caa_option_set set = {.title = "test", .opts = opts, .n_opts = 7, .target = &c};
    char *go[] = {"prog", "-port", "1"};
    assert_int_equal(caa_options_parse_program("prog", &set, 1, 3, go, &c.disable_tls, "1.0", "abc"), -1);
    assert_int_equal(c.port, 1);
    caa_options_free(&set, 1);

    memset(&c, 0, sizeof(c));
    char *bad[] = {"prog", "-port", "0"};
    assert_int_equal(caa_options_parse_program("prog", &set, 1, 3, bad, NULL, "1.0", "abc"), 2);

    memset(&c, 0, sizeof(c));
    char *help[] = {"prog", "-help"};
    assert_int_equal(caa_options_parse_program("prog", &set, 1, 2, help, NULL, "1.0", "abc"), 0);

    memset(&c, 0, sizeof(c));
    char *version[] = {"prog", "-disable-tls"}; /* stands in for a -version flag */
    assert_int_equal(caa_options_parse_program("prog", &set, 1, 2, version, &c.disable_tls, "1.0", "abc"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, setup),
        cmocka_unit_test_setup(test_env_then_flag, setup),
        cmocka_unit_test_setup(test_empty_env_ignored, setup),
        cmocka_unit_test_setup(test_bool_forms, setup),
        cmocka_unit_test_setup(test_errors, setup),
        cmocka_unit_test_setup(test_help, setup),
        cmocka_unit_test_setup(test_dump_masks_secrets, setup),
        cmocka_unit_test_setup(test_parse_program, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
