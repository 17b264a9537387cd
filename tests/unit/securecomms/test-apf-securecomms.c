/* apf.json secure comms fields: upstream's encoding (base64 of the key bytes,
 * omitempty), round trip through the whole apf.json, refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "apf-config.h"
#include "xalloc.h"

static const char wn_pub[] = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk worker\n";
static const char pp_prv[] = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
                             "-----END OPENSSH PRIVATE KEY-----\n";

static void test_absent_when_off(void **state)
{
    (void)state;
    caa_apf_config c = {0};
    char *s = caa_apf_config_to_string(&c, NULL);
    assert_null(strstr(s, "\"sc"));
    caa_apf_config back;
    assert_int_equal(caa_apf_config_parse(s, strlen(s), &back, NULL), 0);
    assert_false(back.sc.enabled);
    assert_null(back.sc.pp_private_key);
    caa_apf_config_done(&back);
    free(s);
}

static void test_roundtrip_and_encoding(void **state)
{
    (void)state;
    caa_apf_config c = {0};
    c.pod_name = xstrdup("p");
    c.sc.enabled = true;
    c.sc.pp_private_key = xmemdup(pp_prv, sizeof(pp_prv));
    c.sc.pp_private_key_len = strlen(pp_prv);
    c.sc.wn_public_key = xmemdup(wn_pub, sizeof(wn_pub));
    c.sc.wn_public_key_len = strlen(wn_pub);
    c.sc.inbounds = xstrdup("KUBERNETES_PHASE:DNS:podns:9053");
    c.sc.outbounds = xstrdup("KUBERNETES_PHASE:KUBEAPI:10.0.0.1:6443");
    char *s = caa_apf_config_to_string(&c, NULL);
    /* Upstream's layout: standard base64 with padding, as Go encodes []byte. */
    assert_non_null(strstr(s, "\"sc\":true"));
    assert_non_null(strstr(s, "\"sc-pp-prv\":\"LS0tLS1CRUdJTiBPUEVOU1NIIFBSSVZBVEUgS0VZLS0tLS0K"));
    assert_non_null(strstr(s, "\"sc-wn-pub\":\"c3NoLWVkMjU1MTkg"));
    assert_non_null(strstr(s, "\"sc-inbounds\":\"KUBERNETES_PHASE:DNS:podns:9053\""));
    caa_apf_config back;
    assert_int_equal(caa_apf_config_parse(s, strlen(s), &back, NULL), 0);
    assert_true(back.sc.enabled);
    assert_int_equal(back.sc.pp_private_key_len, strlen(pp_prv));
    assert_memory_equal(back.sc.pp_private_key, pp_prv, strlen(pp_prv));
    assert_string_equal((char *)back.sc.wn_public_key, wn_pub);
    assert_string_equal(back.sc.outbounds, "KUBERNETES_PHASE:KUBEAPI:10.0.0.1:6443");
    caa_apf_config_done(&back);
    caa_apf_config_done(&c);
    free(s);
}

static void test_upstream_document(void **state)
{
    (void)state;
    /* As upstream's daemon wrote it in NoTrustee mode (field order is Go's struct order). */
    const char *doc = "{\"pod-network\":null,\"pod-namespace\":\"default\",\"pod-name\":\"busybox\","
                      "\"tls-server-key\":\"\",\"tls-server-cert\":\"\",\"tls-client-ca\":\"\","
                      "\"sc\":true,\"sc-pp-prv\":\"LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQo=\","
                      "\"sc-wn-pub\":\"c3NoLXJzYSBBQUFB\",\"sc-inbounds\":\"\",\"sc-outbounds\":\"\"}";
    caa_apf_config c;
    assert_int_equal(caa_apf_config_parse(doc, strlen(doc), &c, NULL), 0);
    assert_true(c.sc.enabled);
    assert_string_equal((char *)c.sc.pp_private_key, "-----BEGIN RSA PRIVATE KEY-----\n");
    assert_string_equal((char *)c.sc.wn_public_key, "ssh-rsa AAAA");
    assert_string_equal(c.sc.inbounds, "");
    caa_apf_config_done(&c);
}

static void expect_error(const char *doc, const char *needle)
{
    caa_apf_config c;
    caa_error *err = NULL;
    assert_int_equal(caa_apf_config_parse(doc, strlen(doc), &c, &err), -EINVAL);
    if (!strstr(caa_error_msg(err), needle))
        fail_msg("'%s': '%s' lacks '%s'", doc, caa_error_msg(err), needle);
    assert_null(c.sc.pp_private_key);
    caa_error_free(err);
}

static void test_refusals(void **state)
{
    (void)state;
    expect_error("{\"sc\":\"true\"}", "field 'sc' must be a boolean");
    expect_error("{\"sc\":1}", "field 'sc' must be a boolean");
    expect_error("{\"sc-pp-prv\":42}", "field 'sc-pp-prv' must be a base64 string");
    expect_error("{\"sc-pp-prv\":\"not base64!\"}", "field 'sc-pp-prv'");
    expect_error("{\"sc-wn-pub\":\"YQ\"}", "field 'sc-wn-pub'"); /* missing padding */
    expect_error("{\"sc-pp-prv\":\"YQ==\",\"sc-wn-pub\":[]}", "field 'sc-wn-pub' must be");
    expect_error("{\"sc-inbounds\":[\"x\"]}", "field 'sc-inbounds' must be a string");

    /* A key larger than allowed. */
    size_t n = (CAA_APF_SC_KEY_MAX_SIZE / 3 + 2) * 4;
    char *doc = xmalloc(n + 32);
    strcpy(doc, "{\"sc-pp-prv\":\"");
    memset(doc + strlen(doc), 'A', n);
    strcpy(doc + 14 + n, "\"}");
    caa_apf_config c;
    caa_error *err = NULL;
    assert_true(caa_apf_config_parse(doc, strlen(doc), &c, &err) < 0);
    assert_non_null(strstr(caa_error_msg(err), "sc-pp-prv"));
    caa_error_free(err);
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_absent_when_off),
        cmocka_unit_test(test_roundtrip_and_encoding),
        cmocka_unit_test(test_upstream_document),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
