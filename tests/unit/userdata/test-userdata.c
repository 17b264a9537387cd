/* Assembly of a pod's user-data (adaptor/userdata). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cloud-config.h"
#include "initdata.h"
#include "userdata.h"
#include "xalloc.h"

#include "golden.h"

static const char toml[] = "algorithm = \"sha256\"\nversion = \"0.1.0\"\n\n[data]\n\"aa.toml\" = '''\n"
                           "[token_configs.kbs]\nurl = \"http://198.18.0.1:8080\"\n'''\n";

static caa_apf_config apf;

static int setup(void **state)
{
    (void)state;
    memset(&apf, 0, sizeof(apf));
    apf.pod_network = json_pack("{s:s}", "podip", "10.244.1.7/24");
    apf.pod_namespace = xstrdup("default");
    apf.pod_name = xstrdup("nginx");
    apf.tls_server_key = xstrdup("-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n");
    apf.tls_server_cert = xstrdup("-----BEGIN CERTIFICATE-----\nCERT\n-----END CERTIFICATE-----\n");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    caa_apf_config_done(&apf);
    return 0;
}

static caa_cloud_config *parse_back(const caa_userdata *ud)
{
    caa_cloud_config *cc = NULL;
    caa_error *err = NULL;
    if (caa_cloud_config_parse(ud->text, ud->len, &cc, &err) < 0)
        fail_msg("%s", caa_error_msg(err));
    return cc;
}

static void test_minimal_golden(void **state)
{
    (void)state;
    caa_userdata_parts parts = {.apf = &apf};
    caa_userdata ud = {0};
    assert_int_equal(caa_userdata_build(&parts, &ud, NULL), 0);
    golden_compare("userdata-minimal.golden", ud.text, ud.len);
    _cleanup_cloud_config_ caa_cloud_config *cc = parse_back(&ud);
    assert_int_equal(cc->n_files, 1);
    assert_string_equal(cc->files[0].path, "/run/peerpod/apf.json");
    caa_apf_config back;
    assert_int_equal(caa_apf_config_parse(cc->files[0].content, cc->files[0].content_len, &back, NULL), 0);
    assert_string_equal(back.pod_name, "nginx");
    assert_string_equal(back.tls_server_key, apf.tls_server_key);
    caa_apf_config_done(&back);
    caa_userdata_done(&ud);
    assert_null(ud.text);
}

static void test_all_parts(void **state)
{
    (void)state;
    const char *auth = "{\"auths\":{\"quay.io\":{\"auth\":\"dXNlcjpwYXNz\"}}}";
    caa_userdata_parts parts = {
        .apf = &apf,
        .auth_json = auth,
        .auth_json_len = strlen(auth),
        .initdata_toml = toml,
        .initdata_default = "ignored-when-annotation-present",
        .scratch_space = true,
        .provider = "libvirt",
    };
    caa_userdata ud = {0};
    caa_error *err = NULL;
    if (caa_userdata_build(&parts, &ud, &err) < 0)
        fail_msg("%s", caa_error_msg(err));
    assert_false(ud.auth_skipped);
    assert_true(strncmp(ud.text, "#cloud-config\n", 14) == 0);
    _cleanup_cloud_config_ caa_cloud_config *cc = parse_back(&ud);
    assert_int_equal(cc->n_files, 4);
    assert_string_equal(cc->files[0].path, "/run/peerpod/apf.json");
    assert_string_equal(cc->files[1].path, "/run/peerpod/auth.json");
    assert_string_equal(cc->files[1].content, auth);
    assert_string_equal(cc->files[2].path, "/run/peerpod/initdata");
    assert_string_equal(cc->files[3].path, "/run/peerpod/scratch-space.marker");
    assert_int_equal(cc->files[3].content_len, 0);
    /* the initdata file decodes to the annotation's exact bytes */
    _cleanup_free_ char *dec = NULL;
    size_t len = 0;
    assert_int_equal(caa_initdata_decode(cc->files[2].content, cc->files[2].content_len, &dec, &len, NULL),
                     0);
    assert_int_equal(len, strlen(toml));
    assert_memory_equal(dec, toml, len);
    caa_userdata_done(&ud);
}

static void test_initdata_default(void **state)
{
    (void)state;
    _cleanup_free_ char *enc = caa_initdata_encode(toml, strlen(toml), NULL);
    assert_int_equal(caa_userdata_validate_initdata_default(enc, NULL), 0);
    caa_userdata_parts parts = {.apf = &apf, .initdata_default = enc, .initdata_toml = ""};
    caa_userdata ud = {0};
    assert_int_equal(caa_userdata_build(&parts, &ud, NULL), 0);
    _cleanup_cloud_config_ caa_cloud_config *cc = parse_back(&ud);
    const caa_cloud_file *f = caa_cloud_config_find(cc, "/run/peerpod/initdata");
    assert_non_null(f);
    assert_string_equal(f->content, enc); /* passed through unchanged */
    caa_userdata_done(&ud);
}

static void expect_build_error(const caa_userdata_parts *parts, const char *needle)
{
    caa_userdata ud = {0};
    caa_error *err = NULL;
    assert_int_equal(caa_userdata_build(parts, &ud, &err), -EINVAL);
    assert_null(ud.text);
    if (!strstr(caa_error_msg(err), needle))
        fail_msg("message '%s' lacks '%s'", caa_error_msg(err), needle);
    caa_error_free(err);
}

static void test_bad_initdata(void **state)
{
    (void)state;
    caa_userdata_parts parts = {.apf = &apf, .initdata_toml = "algorithm = \"md5\"\nversion = \"0.1.0\"\n"};
    expect_build_error(&parts, "cc_init_data: initdata: unsupported algorithm 'md5'");
    parts.initdata_toml = "algorithm = \"sha256\"\nversion = \"0.1.0\"\n[data]\na = 1\n";
    expect_build_error(&parts, "cc_init_data: initdata: line 4: value of 'a' must be a string");

    caa_userdata_parts dflt = {.apf = &apf, .initdata_default = "not base64!"};
    expect_build_error(&dflt, "-initdata: initdata: invalid base64");
    caa_error *err = NULL;
    assert_int_equal(caa_userdata_validate_initdata_default("H4sIAAAA", &err), -EINVAL);
    assert_non_null(strstr(caa_error_msg(err), "-initdata: initdata: gzip"));
    caa_error_free(err);

    caa_userdata_parts none = {0};
    expect_build_error(&none, "apf.json configuration missing");
}

static void test_auth_too_large_skipped(void **state)
{
    (void)state;
    size_t n = CAA_USERDATA_AUTH_MAX + 1;
    char *auth = xmalloc(n + 1);
    memset(auth, 'a', n);
    auth[n] = '\0';
    caa_userdata_parts parts = {.apf = &apf, .auth_json = auth, .auth_json_len = n};
    caa_userdata ud = {0};
    assert_int_equal(caa_userdata_build(&parts, &ud, NULL), 0);
    assert_true(ud.auth_skipped);
    _cleanup_cloud_config_ caa_cloud_config *cc = parse_back(&ud);
    assert_null(caa_cloud_config_find(cc, "/run/peerpod/auth.json"));
    caa_userdata_done(&ud);

    parts.auth_json_len = CAA_USERDATA_AUTH_MAX; /* at the limit: kept */
    assert_int_equal(caa_userdata_build(&parts, &ud, NULL), 0);
    assert_false(ud.auth_skipped);
    caa_userdata_done(&ud);
    free(auth);
}

static void test_size_limits(void **state)
{
    (void)state;
    assert_int_equal(caa_userdata_max_size("aws"), 16384);
    assert_int_equal(caa_userdata_max_size("azure"), 49152);
    assert_int_equal(caa_userdata_max_size("libvirt"), 0);
    assert_int_equal(caa_userdata_max_size(NULL), 0);

    assert_int_equal(caa_userdata_check_size("aws", 16384, NULL), 0);
    caa_error *err = NULL;
    assert_int_equal(caa_userdata_check_size("aws", 16385, &err), -EINVAL);
    assert_string_equal(caa_error_msg(err), "user-data is 16385 bytes, over the aws limit of 16384 bytes");
    caa_error_free(err);
    err = NULL;
    assert_int_equal(caa_userdata_check_size("azure", 49152, NULL), 0); /* base64: exactly 65536 */
    assert_int_equal(caa_userdata_check_size("azure", 49153, &err), -EINVAL);
    assert_non_null(strstr(caa_error_msg(err), "65540 after base64"));
    caa_error_free(err);
    assert_int_equal(caa_userdata_check_size("libvirt", 100 * 1024 * 1024, NULL), 0);

    /* The check runs inside build when a provider is named: a big initdata
     * (random-looking, so gzip cannot shrink it) trips the AWS limit. */
    static const char head[] = "algorithm = \"sha256\"\nversion = \"0.1.0\"\n[data]\n\"policy.rego\" = '''\n";
    size_t body = 30000;
    _cleanup_free_ char *big = xmalloc(sizeof(head) + body + 8);
    memcpy(big, head, sizeof(head) - 1);
    uint32_t x = 12345;
    for (size_t i = 0; i < body; i++) {
        x = x * 1103515245 + 12345;
        big[sizeof(head) - 1 + i] = (char)('a' + (x >> 16) % 26);
    }
    memcpy(big + sizeof(head) - 1 + body, "\n'''\n", 6);
    caa_userdata_parts parts = {.apf = &apf, .initdata_toml = big, .provider = "aws"};
    expect_build_error(&parts, "over the aws limit of 16384 bytes");
    parts.provider = "azure";
    caa_userdata ud = {0};
    assert_int_equal(caa_userdata_build(&parts, &ud, NULL), 0);
    caa_userdata_done(&ud);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_golden),         cmocka_unit_test(test_all_parts),
        cmocka_unit_test(test_initdata_default),       cmocka_unit_test(test_bad_initdata),
        cmocka_unit_test(test_auth_too_large_skipped), cmocka_unit_test(test_size_limits),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
