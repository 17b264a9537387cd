#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "apf-config.h"
#include "strv.h"
#include "xalloc.h"

static void fill(caa_apf_config *c)
{
    memset(c, 0, sizeof(*c));
    c->pod_network =
        json_pack("{s:s, s:s, s:i}", "podip", "10.244.1.7/24", "interface", "eth0", "vxlan-id", 555000);
    c->pod_namespace = xstrdup("default");
    c->pod_name = xstrdup("nginx");
    c->tls_server_key = xstrdup("-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n");
    c->tls_server_cert = xstrdup("-----BEGIN CERTIFICATE-----\nCERT\n-----END CERTIFICATE-----\n");
    c->tls_client_ca = xstrdup("-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n");
    c->tls_min_version = xstrdup("VersionTLS12");
    caa_strv_push(&c->tls_cipher_suites, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256");
    caa_strv_push(&c->tls_cipher_suites, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384");
}

static void test_to_string_exact(void **state)
{
    (void)state;
    caa_apf_config c = {0};
    c.pod_namespace = xstrdup("ns");
    c.pod_name = xstrdup("p");
    _cleanup_free_ char *s = caa_apf_config_to_string(&c, NULL);
    /* Field order and names as upstream; network null; every empty TLS field
     * left out, as Go's encoding/json writes upstream's forwarder.Config
     * (all TLS fields `omitempty`): this is the apf.json upstream's adaptor
     * writes with -disable-tls, rendered by hand from that struct. */
    assert_string_equal(s, "{\"pod-network\":null,\"pod-namespace\":\"ns\",\"pod-name\":\"p\"}");
    c.tls_min_version = xstrdup("");
    c.tls_cipher_suites = xnew0(char *, 1);
    _cleanup_free_ char *s2 = caa_apf_config_to_string(&c, NULL);
    assert_string_equal(s2, s);
    caa_apf_config_done(&c);

    fill(&c);
    _cleanup_free_ char *full = caa_apf_config_to_string(&c, NULL);
    assert_non_null(strstr(full, "\"pod-network\":{\"podip\":\"10.244.1.7/24\""));
    assert_non_null(strstr(full, "\"tls-client-ca\":\"-----BEGIN CERTIFICATE-----\\nCA\\n"));
    assert_non_null(strstr(full, "\"tls-cipher-suites\":[\"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\","));
    caa_apf_config_done(&c);
}

static void test_roundtrip(void **state)
{
    (void)state;
    caa_apf_config c;
    fill(&c);
    _cleanup_free_ char *s = caa_apf_config_to_string(&c, NULL);
    caa_apf_config back;
    assert_int_equal(caa_apf_config_parse(s, strlen(s), &back, NULL), 0);
    assert_true(json_equal(c.pod_network, back.pod_network));
    assert_string_equal(back.pod_namespace, "default");
    assert_string_equal(back.pod_name, "nginx");
    assert_string_equal(back.tls_server_key, c.tls_server_key);
    assert_string_equal(back.tls_server_cert, c.tls_server_cert);
    assert_string_equal(back.tls_client_ca, c.tls_client_ca);
    assert_string_equal(back.tls_min_version, "VersionTLS12");
    assert_int_equal(caa_strv_len(back.tls_cipher_suites), 2);
    assert_string_equal(back.tls_cipher_suites[1], "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384");
    caa_apf_config_done(&back);
    caa_apf_config_done(&c);
    assert_null(c.pod_name);
}

static void test_parse_lenient_parts(void **state)
{
    (void)state;
    /* Unknown fields (e.g. upstream's legacy sc-pp-prv) are ignored; null = absent. */
    const char *doc = "{\"pod-name\":\"a\",\"sc-pp-prv\":\"AAAA\",\"future\":{\"x\":[1,2]},"
                      "\"tls-client-ca\":null,\"tls-cipher-suites\":null,\"pod-network\":null}";
    caa_apf_config c;
    assert_int_equal(caa_apf_config_parse(doc, strlen(doc), &c, NULL), 0);
    assert_string_equal(c.pod_name, "a");
    assert_null(c.pod_namespace);
    assert_null(c.tls_client_ca);
    assert_null(c.tls_cipher_suites);
    assert_null(c.pod_network);
    caa_apf_config_done(&c);

    assert_int_equal(caa_apf_config_parse("{\"tls-cipher-suites\":[]}", 24, &c, NULL), 0);
    assert_non_null(c.tls_cipher_suites);
    assert_int_equal(caa_strv_len(c.tls_cipher_suites), 0);
    caa_apf_config_done(&c);
}

static void expect_error(const char *doc, int code, const char *needle)
{
    caa_apf_config c;
    caa_error *err = NULL;
    int r = caa_apf_config_parse(doc, strlen(doc), &c, &err);
    if (r != code)
        fail_msg("expected %d got %d for %s", code, r, doc);
    assert_null(c.pod_name);
    assert_null(c.pod_network);
    if (!strstr(caa_error_msg(err), needle))
        fail_msg("message '%s' lacks '%s'", caa_error_msg(err), needle);
    caa_error_free(err);
}

static void test_parse_errors(void **state)
{
    (void)state;
    expect_error("{\"pod-name\": 5}", -EINVAL, "field 'pod-name' must be a string");
    expect_error("{\"pod-name\":\"a\",\"pod-namespace\": true}", -EINVAL,
                 "field 'pod-namespace' must be a string");
    expect_error("{\"tls-server-key\": [\"k\"]}", -EINVAL, "field 'tls-server-key' must be a string");
    expect_error("{\"pod-network\": \"eth0\"}", -EINVAL, "field 'pod-network' must be an object");
    expect_error("{\"pod-network\": []}", -EINVAL, "field 'pod-network' must be an object");
    expect_error("{\"tls-cipher-suites\": \"A,B\"}", -EINVAL,
                 "'tls-cipher-suites' must be an array of strings");
    expect_error("{\"tls-cipher-suites\": [\"A\", 1]}", -EINVAL,
                 "'tls-cipher-suites' must be an array of strings");
    expect_error("{\"pod-name\": \"a\\u0000b\"}", -EINVAL, "NUL");
    expect_error("[]", -EINVAL, "top level must be a JSON object");
    expect_error("{\"pod-name\":\"a\",\"pod-name\":\"b\"}", -EINVAL, "invalid JSON");
    expect_error("{\"pod-name\":", -EINVAL, "invalid JSON");
    expect_error("", -EINVAL, "invalid JSON");

    size_t big = CAA_APF_CONFIG_MAX_SIZE + 1;
    char *doc = xmalloc(big + 1);
    memset(doc, ' ', big);
    doc[big] = '\0';
    expect_error(doc, -EFBIG, "more than");
    free(doc);
}

static void test_to_json_errors(void **state)
{
    (void)state;
    caa_apf_config c = {0};
    c.pod_network = json_array();
    caa_error *err = NULL;
    assert_null(caa_apf_config_to_string(&c, &err));
    assert_int_equal(err->code, -EINVAL);
    caa_error_free(err);
    err = NULL;
    json_decref(c.pod_network);
    c.pod_network = NULL;
    c.pod_name = xstrdup("bad \xff utf8");
    assert_null(caa_apf_config_to_json(&c, &err));
    assert_int_equal(err->code, -EINVAL);
    caa_error_free(err);
    caa_apf_config_done(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_to_string_exact),     cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_parse_lenient_parts), cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_to_json_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
