/* Daemon option table: defaults, environment vs flag precedence, both dash
 * styles, bad values, validation, help and version through caa_adaptor_main. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "adaptor-main.h"
#include "config.h"
#include "provider.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define SEC 1000000000LL

typedef struct fake_cfg {
    char *region;
    char *secret;
} fake_cfg;

static const caa_option fake_options[] = {
    {"fake-region", "FAKE_REGION", CAA_OPT_STRING, offsetof(fake_cfg, region), "eu-1", 0, 0, 0, "region"},
    {"fake-secret", "FAKE_SECRET", CAA_OPT_STRING, offsetof(fake_cfg, secret), "", 0, 0, CAA_OPT_SECRET,
     "secret"},
};

static const char *const env_vars[] = {
    "REMOTE_HYPERVISOR_ENDPOINT",
    "PODS_DIR",
    "FORWARDER_PORT",
    "PROXY_TIMEOUT",
    "TLS_SKIP_VERIFY",
    "POD_SUBNET_CIDRS",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "INITDATA",
    "FAKE_REGION",
    "FAKE_SECRET",
    "PEERPODS_LIMIT_PER_NODE",
    "TLS_MIN_VERSION",
    "TUNNEL_TYPE",
};

static int clear_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(env_vars); i++)
        unsetenv(env_vars[i]);
    return 0;
}

typedef struct parsed {
    caa_daemon_config cfg;
    fake_cfg fake;
    caa_option_set sets[2];
} parsed;

static int parse(parsed *p, int argc, char **argv, caa_error **err)
{
    memset(p, 0, sizeof(*p));
    p->sets[0] = caa_daemon_option_set(&p->cfg);
    p->sets[1] = (caa_option_set){"fake", fake_options, N(fake_options), &p->fake};
    return caa_options_parse(p->sets, 2, argc, argv, err);
}

static void done(parsed *p)
{
    caa_options_free(p->sets, 2);
}

static void test_defaults(void **state)
{
    (void)state;
    parsed p;
    assert_int_equal(parse(&p, 0, NULL, NULL), 0);
    assert_int_equal(caa_daemon_config_validate(&p.cfg, NULL), 0);
    assert_string_equal(p.cfg.socket_path, "/run/peerpod/hypervisor.sock");
    assert_string_equal(p.cfg.pods_dir, "/run/peerpod/pods");
    assert_int_equal(p.cfg.forwarder_port, 15150);
    assert_int_equal(p.cfg.proxy_timeout_ns, 300 * SEC);
    assert_string_equal(p.cfg.tunnel_type, "vxlan");
    assert_int_equal(p.cfg.vxlan_port, 4789);
    assert_int_equal(p.cfg.vxlan_min_id, 555000);
    assert_int_equal(p.cfg.peerpods_limit_per_node, 10);
    assert_false(p.cfg.disable_tls);
    assert_false(p.cfg.tls_skip_verify);
    assert_string_equal(p.cfg.pause_image, "");
    assert_string_equal(p.cfg.initdata, "");
    assert_null(p.cfg.pod_subnet_cidrs);
    assert_string_equal(p.cfg.log_format, "text");
    assert_string_equal(p.cfg.log_level, "info");
    assert_int_equal(p.cfg.log_level_value, CAA_LOG_INFO);
    assert_string_equal(p.fake.region, "eu-1");
    done(&p);
}

static void test_every_upstream_flag_exists(void **state)
{
    (void)state;
    static const char *const names[] = {
        "socket",
        "pods-dir",
        "forwarder-port",
        "proxy-timeout",
        "pause-image",
        "ca-cert-file",
        "cert-file",
        "cert-key",
        "tls-skip-verify",
        "tls-min-version",
        "tls-cipher-suites",
        "disable-tls",
        "tunnel-type",
        "vxlan-port",
        "vxlan-min-id",
        "host-interface",
        "initdata",
        "cloud-config-verify",
        "peerpods-limit-per-node",
        "enable-scratch-space",
        "ext-network-via-podvm",
        "pod-subnet-cidrs",
        "log-format",
        "log-level",
    };
    for (size_t i = 0; i < N(names); i++) {
        bool found = false;
        for (size_t j = 0; j < caa_daemon_n_options; j++)
            if (strcmp(caa_daemon_options[j].name, names[i]) == 0)
                found = true;
        if (!found)
            fail_msg("flag -%s is missing", names[i]);
    }
    /* Flag-only options, as upstream. */
    for (size_t j = 0; j < caa_daemon_n_options; j++) {
        const caa_option *o = &caa_daemon_options[j];
        if (strcmp(o->name, "disable-tls") == 0 || strcmp(o->name, "vxlan-min-id") == 0 ||
            strcmp(o->name, "host-interface") == 0)
            assert_null(o->env);
    }
}

static void test_env_then_flag(void **state)
{
    (void)state;
    setenv("REMOTE_HYPERVISOR_ENDPOINT", "/tmp/env.sock", 1);
    setenv("FORWARDER_PORT", "16000", 1);
    setenv("PROXY_TIMEOUT", "90s", 1);
    setenv("PODS_DIR", "", 1); /* empty env is ignored */
    setenv("LOG_LEVEL", "debug", 1);
    setenv("FAKE_REGION", "us-2", 1);
    parsed p;
    assert_int_equal(parse(&p, 0, NULL, NULL), 0);
    assert_string_equal(p.cfg.socket_path, "/tmp/env.sock");
    assert_int_equal(p.cfg.forwarder_port, 16000);
    assert_int_equal(p.cfg.proxy_timeout_ns, 90 * SEC);
    assert_string_equal(p.cfg.pods_dir, "/run/peerpod/pods");
    assert_string_equal(p.fake.region, "us-2");
    assert_int_equal(caa_daemon_config_validate(&p.cfg, NULL), 0);
    assert_int_equal(p.cfg.log_level_value, CAA_LOG_DEBUG);
    done(&p);

    char *argv[] = {"-socket",           "/tmp/flag.sock", "--forwarder-port=17000",
                    "-fake-region=ap-3", "--log-level",    "error"};
    assert_int_equal(parse(&p, N(argv), argv, NULL), 0);
    assert_string_equal(p.cfg.socket_path, "/tmp/flag.sock");
    assert_int_equal(p.cfg.forwarder_port, 17000);
    assert_int_equal(p.cfg.proxy_timeout_ns, 90 * SEC);
    assert_string_equal(p.fake.region, "ap-3");
    assert_int_equal(caa_daemon_config_validate(&p.cfg, NULL), 0);
    assert_int_equal(p.cfg.log_level_value, CAA_LOG_ERROR);
    done(&p);
}

static void test_bool_forms(void **state)
{
    (void)state;
    parsed p;
    char *a1[] = {"-disable-tls", "--tls-skip-verify", "-enable-scratch-space=true",
                  "--cloud-config-verify=0"};
    assert_int_equal(parse(&p, N(a1), a1, NULL), 0);
    assert_true(p.cfg.disable_tls);
    assert_true(p.cfg.tls_skip_verify);
    assert_true(p.cfg.enable_scratch_space);
    assert_false(p.cfg.cloud_config_verify);
    done(&p);

    /* Upstream env booleans: "1"/"true" any case are true, anything else false. */
    setenv("TLS_SKIP_VERIFY", "TRUE", 1);
    assert_int_equal(parse(&p, 0, NULL, NULL), 0);
    assert_true(p.cfg.tls_skip_verify);
    done(&p);
    setenv("TLS_SKIP_VERIFY", "yes", 1);
    assert_int_equal(parse(&p, 0, NULL, NULL), 0);
    assert_false(p.cfg.tls_skip_verify);
    done(&p);
}

static void test_list_appends(void **state)
{
    (void)state;
    setenv("POD_SUBNET_CIDRS", "10.0.0.0/8", 1);
    parsed p;
    char *argv[] = {"-pod-subnet-cidrs", "10.1.0.0/16,10.2.0.0/16", "--pod-subnet-cidrs=10.3.0.0/16"};
    assert_int_equal(parse(&p, N(argv), argv, NULL), 0);
    assert_non_null(p.cfg.pod_subnet_cidrs);
    assert_string_equal(p.cfg.pod_subnet_cidrs[0], "10.0.0.0/8");
    assert_string_equal(p.cfg.pod_subnet_cidrs[1], "10.1.0.0/16");
    assert_string_equal(p.cfg.pod_subnet_cidrs[2], "10.2.0.0/16");
    assert_string_equal(p.cfg.pod_subnet_cidrs[3], "10.3.0.0/16");
    assert_null(p.cfg.pod_subnet_cidrs[4]);
    done(&p);
}

static void expect_parse_error(int argc, char **argv, const char *needle)
{
    parsed p;
    caa_error *err = NULL;
    int r = parse(&p, argc, argv, &err);
    assert_true(r < 0);
    assert_non_null(err);
    if (!strstr(err->msg, needle))
        fail_msg("error \"%s\" does not mention \"%s\"", err->msg, needle);
    caa_error_free(err);
    done(&p);
}

static void test_bad_values(void **state)
{
    (void)state;
    char *a1[] = {"-forwarder-port", "70000"};
    expect_parse_error(N(a1), a1, "out of range");
    char *a2[] = {"-forwarder-port", "abc"};
    expect_parse_error(N(a2), a2, "invalid integer");
    char *a3[] = {"-proxy-timeout", "soon"};
    expect_parse_error(N(a3), a3, "invalid duration");
    char *a4[] = {"-no-such-flag"};
    expect_parse_error(N(a4), a4, "not defined");
    char *a5[] = {"-socket"};
    expect_parse_error(N(a5), a5, "needs an argument");
    char *a6[] = {"-disable-tls=maybe"};
    expect_parse_error(N(a6), a6, "invalid boolean");
    char *a7[] = {"positional"};
    expect_parse_error(N(a7), a7, "unexpected argument");
    char *a8[] = {"-vxlan-min-id", "16777216"};
    expect_parse_error(N(a8), a8, "out of range");
    char *a9[] = {"---socket=x"};
    expect_parse_error(N(a9), a9, "bad flag syntax");

    setenv("FORWARDER_PORT", "0", 1);
    char *none[] = {NULL};
    expect_parse_error(0, none, "FORWARDER_PORT");
    unsetenv("FORWARDER_PORT");
}

static void expect_invalid_config(char **argv, int argc, const char *needle)
{
    parsed p;
    caa_error *err = NULL;
    assert_int_equal(parse(&p, argc, argv, NULL), 0);
    assert_true(caa_daemon_config_validate(&p.cfg, &err) < 0);
    if (!strstr(err->msg, needle))
        fail_msg("error \"%s\" does not mention \"%s\"", err->msg, needle);
    caa_error_free(err);
    done(&p);
}

static void test_validation(void **state)
{
    (void)state;
    char *a1[] = {"-tls-min-version", "VersionTLS10"};
    expect_invalid_config(a1, N(a1), "tls-min-version");
    char *a2[] = {"-tunnel-type", "routing"};
    expect_invalid_config(a2, N(a2), "tunnel-type");
    char *a3[] = {"-log-format", "xml"};
    expect_invalid_config(a3, N(a3), "log-format");
    char *a4[] = {"-log-level", "loud"};
    expect_invalid_config(a4, N(a4), "log-level");
    char *a5[] = {"-pods-dir", "/run/a:b"};
    expect_invalid_config(a5, N(a5), "':'");
    char *a6[] = {"-socket", ""};
    expect_invalid_config(a6, N(a6), "-socket");
    char long_path[200];
    memset(long_path, 'x', sizeof(long_path) - 1);
    long_path[0] = '/';
    long_path[sizeof(long_path) - 1] = '\0';
    char *a7[] = {"-socket", long_path};
    expect_invalid_config(a7, N(a7), "longer");
    char *a8[] = {"-pods-dir", long_path};
    expect_invalid_config(a8, N(a8), "too long");
    char *a9[] = {"-tls-min-version", "VersionTLS13", "-tls-cipher-suites", "TLS_AES_128_GCM_SHA256"};
    expect_invalid_config(a9, N(a9), "TLS 1.3");
    char *a10[] = {"-proxy-timeout", "0s"};
    expect_invalid_config(a10, N(a10), "proxy-timeout");
}

static void test_help_flags(void **state)
{
    (void)state;
    const char *forms[] = {"-h", "-help", "--help", "--h"};
    for (size_t i = 0; i < N(forms); i++) {
        parsed p;
        char *argv[] = {(char *)forms[i]};
        assert_int_equal(parse(&p, 1, argv, NULL), 1);
        done(&p);
    }
    parsed p;
    assert_int_equal(parse(&p, 0, NULL, NULL), 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    caa_options_print_help(f, p.sets, 2);
    fclose(f);
    for (size_t j = 0; j < caa_daemon_n_options; j++) {
        char *flag = NULL;
        assert_true(asprintf(&flag, "-%s", caa_daemon_options[j].name) > 0);
        assert_non_null(strstr(buf, flag));
        free(flag);
    }
    assert_non_null(strstr(buf, "REMOTE_HYPERVISOR_ENDPOINT"));
    assert_non_null(strstr(buf, "-fake-region"));
    free(buf);
    done(&p);
}

static void collect(const char *name, const char *value, void *opaque)
{
    char **out = opaque;
    char *next = NULL;
    assert_true(asprintf(&next, "%s %s=%s", *out ? *out : "", name, value) > 0);
    free(*out);
    *out = next;
}

static void test_secrets_masked(void **state)
{
    (void)state;
    parsed p;
    char *argv[] = {"-initdata", "H4sIAAAAAAAA-secret-initdata", "-fake-secret", "hunter2"};
    assert_int_equal(parse(&p, N(argv), argv, NULL), 0);
    char *dump = NULL;
    caa_options_dump(p.sets, 2, collect, &dump);
    assert_null(strstr(dump, "secret-initdata"));
    assert_null(strstr(dump, "hunter2"));
    assert_non_null(strstr(dump, "initdata=********"));
    assert_non_null(strstr(dump, "socket=/run/peerpod/hypervisor.sock"));
    free(dump);
    done(&p);
}

/* ---------------------------------------------------------------- through main */

static const caa_provider_ops fake_provider = {
    .name = "fake",
    .options = fake_options,
    .n_options = N(fake_options),
    .config_size = sizeof(fake_cfg),
};

static int run_main_quiet(int argc, char **argv)
{
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(1), saved_err = dup(2);
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    dup2(null, 1);
    dup2(null, 2);
    int r = caa_adaptor_main(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    close(null);
    return r;
}

static void test_main_subcommands(void **state)
{
    (void)state;
    static bool registered;
    if (!registered) {
        assert_int_equal(caa_provider_register(&fake_provider, NULL), 0);
        registered = true;
    }
    char *help[] = {"cloud-api-adaptor", "help"};
    assert_int_equal(run_main_quiet(2, help), 0);
    char *help2[] = {"cloud-api-adaptor", "--help"};
    assert_int_equal(run_main_quiet(2, help2), 0);
    char *version[] = {"cloud-api-adaptor", "version"};
    assert_int_equal(run_main_quiet(2, version), 0);
    char *version2[] = {"cloud-api-adaptor", "-version"};
    assert_int_equal(run_main_quiet(2, version2), 0);
    char *none[] = {"cloud-api-adaptor"};
    assert_int_equal(run_main_quiet(1, none), 2);
    char *unknown[] = {"cloud-api-adaptor", "nosuchcloud"};
    assert_int_equal(run_main_quiet(2, unknown), 2);
    char *phelp[] = {"cloud-api-adaptor", "fake", "-help"};
    assert_int_equal(run_main_quiet(3, phelp), 0);
    char *badflag[] = {"cloud-api-adaptor", "fake", "-bogus"};
    assert_int_equal(run_main_quiet(3, badflag), 2);
    char *badval[] = {"cloud-api-adaptor", "fake", "--log-format=xml"};
    assert_int_equal(run_main_quiet(3, badval), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, clear_env),
        cmocka_unit_test_setup(test_every_upstream_flag_exists, clear_env),
        cmocka_unit_test_setup(test_env_then_flag, clear_env),
        cmocka_unit_test_setup(test_bool_forms, clear_env),
        cmocka_unit_test_setup(test_list_appends, clear_env),
        cmocka_unit_test_setup(test_bad_values, clear_env),
        cmocka_unit_test_setup(test_validation, clear_env),
        cmocka_unit_test_setup(test_help_flags, clear_env),
        cmocka_unit_test_setup(test_secrets_masked, clear_env),
        cmocka_unit_test_setup(test_main_subcommands, clear_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
