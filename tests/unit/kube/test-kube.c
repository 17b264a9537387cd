/* Kubernetes client pieces without a server: kubeconfig and in-cluster
 * configuration, Status errors, strict base64, names, Retry-After, the
 * image-pull secret merge, the node patches, the PeerPod object and the
 * metrics exposition. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "fs.h"
#include "kube-base64.h"
#include "kube-client.h"
#include "kube-config.h"
#include "kube-node.h"
#include "kube-peerpod.h"
#include "kube-pull-secrets.h"
#include "kube-status.h"
#include "metrics.h"
#include "xalloc.h"

/* "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n" */
#define PEM_B64 "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCngKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="

static const char kubeconfig_full[] =
    "apiVersion: v1\n"
    "kind: Config\n"
    "current-context: prod\n"
    "contexts:\n"
    "- name: dev\n"
    "  context: {cluster: devc, user: devu}\n"
    "- name: prod\n"
    "  context: {cluster: prodc, user: produ, namespace: confidential-containers-system}\n"
    "clusters:\n"
    "- name: devc\n"
    "  cluster: {server: 'https://dev.example:6443'}\n"
    "- name: prodc\n"
    "  cluster:\n"
    "    server: https://10.96.0.1:443/\n"
    "    certificate-authority-data: " PEM_B64 "\n"
    "    certificate-authority: /ignored/because/data/wins\n"
    "users:\n"
    "- name: devu\n"
    "  user: {token: dev-token}\n"
    "- name: produ\n"
    "  user:\n"
    "    client-certificate: certs/client.crt\n"
    "    client-key: /abs/client.key\n"
    "    tokenFile: token\n";

static void test_kubeconfig_current_context(void **state)
{
    (void)state;
    caa_kube_config cfg;
    caa_error *err = NULL;
    assert_int_equal(caa_kubeconfig_parse(kubeconfig_full, strlen(kubeconfig_full), "/etc/kube", &cfg, &err),
                     0);
    assert_string_equal(cfg.server, "https://10.96.0.1:443");
    assert_string_equal(cfg.namespace, "confidential-containers-system");
    assert_non_null(strstr(cfg.ca_pem, "BEGIN CERTIFICATE"));
    assert_null(cfg.ca_file);
    assert_string_equal(cfg.cert_file, "/etc/kube/certs/client.crt");
    assert_string_equal(cfg.key_file, "/abs/client.key");
    assert_string_equal(cfg.token_file, "/etc/kube/token");
    assert_null(cfg.token);
    assert_false(cfg.insecure_skip_verify);
    caa_kube_config_done(&cfg);
}

static void expect_kubeconfig_error(const char *text, int code, const char *needle)
{
    caa_kube_config cfg;
    caa_error *err = NULL;
    assert_int_equal(caa_kubeconfig_parse(text, strlen(text), NULL, &cfg, &err), code);
    assert_non_null(err);
    if (!strstr(caa_error_msg(err), needle))
        fail_msg("error \"%s\" lacks \"%s\"", caa_error_msg(err), needle);
    caa_error_free(err);
}

static void test_kubeconfig_errors(void **state)
{
    (void)state;
    expect_kubeconfig_error("", -EINVAL, "not a mapping");
    expect_kubeconfig_error("[1, 2", -EINVAL, "YAML error");
    expect_kubeconfig_error("kind: Config\n", -EINVAL, "no current-context");
    expect_kubeconfig_error("current-context: x\n", -EINVAL, "current context is not defined");
    expect_kubeconfig_error("current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n", -EINVAL,
                            "cluster is not defined");
    expect_kubeconfig_error("current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\nclusters: "
                            "[{name: c, cluster: {}}]\n",
                            -EINVAL, "cluster.server is missing");
    expect_kubeconfig_error("current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
                            "clusters: [{name: c, cluster: {server: 'https://a'}}]\n"
                            "users: [{name: u, user: {exec: {command: aws}}}]\n",
                            -ENOTSUP, "exec");
    expect_kubeconfig_error(
        "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n"
        "clusters: [{name: c, cluster: {server: 'https://a', certificate-authority-data: '@@'}}]\n",
        -EINVAL, "certificate-authority-data");
    expect_kubeconfig_error("current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n"
                            "clusters: [{name: c, cluster: {server: [1]}}]\n",
                            -EINVAL, "not a string");
    expect_kubeconfig_error(
        "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n"
        "clusters: [{name: c, cluster: {server: 'https://a', insecure-skip-tls-verify: maybe}}]\n",
        -EINVAL, "not a boolean");
    expect_kubeconfig_error("current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
                            "clusters: [{name: c, cluster: {server: 'https://a'}}]\n"
                            "users: [{name: u, user: {username: a, password: b}}]\n",
                            -ENOTSUP, "basic authentication");
}

static void test_resolve_policy(void **state)
{
    (void)state;
    caa_error *err = NULL;
    caa_kube_config cfg = {.server = xstrdup("http://198.18.0.1:6443"), .namespace = xstrdup("default")};
    assert_int_equal(caa_kube_config_resolve(&cfg, &err), -EACCES);
    caa_error_free(err);
    err = NULL;
    free(cfg.server);
    cfg.server = xstrdup("http://127.0.0.1:8080");
    assert_int_equal(caa_kube_config_resolve(&cfg, &err), 0);
    cfg.cert_pem = xstrdup("-----BEGIN CERTIFICATE-----\n");
    assert_int_equal(caa_kube_config_resolve(&cfg, &err), -EINVAL);
    assert_non_null(strstr(caa_error_msg(err), "needs its key"));
    caa_error_free(err);
    err = NULL;
    free(cfg.server);
    cfg.server = xstrdup("ftp://127.0.0.1");
    free(cfg.cert_pem);
    cfg.cert_pem = NULL;
    assert_int_equal(caa_kube_config_resolve(&cfg, &err), -EINVAL);
    caa_error_free(err);
    caa_kube_config_done(&cfg);
}

static void test_in_cluster(void **state)
{
    (void)state;
    char dir[] = "/tmp/caa-kube-sa-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *ns_path = xasprintf("%s/namespace", dir);
    assert_int_equal(caa_write_file_atomic(ns_path, "peerpods\n", 9, 0600, NULL), 0);
    caa_kube_config cfg;
    assert_int_equal(caa_kube_config_in_cluster("10.96.0.1", "443", dir, &cfg, NULL), 1); /* no token */
    char *token_path = xasprintf("%s/token", dir);
    assert_int_equal(caa_write_file_atomic(token_path, "t\n", 2, 0600, NULL), 0);
    free(token_path);
    assert_int_equal(caa_kube_config_in_cluster("", "443", dir, &cfg, NULL), 1);
    assert_int_equal(caa_kube_config_in_cluster("10.96.0.1", "443", dir, &cfg, NULL), 0);
    assert_string_equal(cfg.server, "https://10.96.0.1:443");
    assert_string_equal(cfg.namespace, "peerpods");
    assert_non_null(strstr(cfg.token_file, "/token"));
    assert_non_null(strstr(cfg.ca_file, "/ca.crt"));
    caa_kube_config_done(&cfg);
    assert_int_equal(caa_kube_config_in_cluster("fd00::1", "6443", dir, &cfg, NULL), 0);
    assert_string_equal(cfg.server, "https://[fd00::1]:6443");
    caa_kube_config_done(&cfg);
    caa_error *err = NULL;
    assert_int_equal(caa_kube_config_in_cluster("10.96.0.1", "http", dir, &cfg, &err), -EINVAL);
    caa_error_free(err);
    assert_int_equal(caa_rm_rf(dir, NULL), 0);
    free(ns_path);
}

static void test_status_errors(void **state)
{
    (void)state;
    const char *body =
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"nodes "
        "\\\"n1\\\" is forbidden: User cannot patch\\n\\u001b[31m\",\"reason\":\"Forbidden\",\"code\":403}";
    caa_error *e =
        caa_kube_status_error(403, body, strlen(body), "PATCH", "/api/v1/nodes/n1/status?x=secret");
    assert_int_equal(e->code, -EPERM);
    assert_non_null(
        strstr(e->msg, "PATCH /api/v1/nodes/n1/status: HTTP 403 Forbidden: nodes \"n1\" is forbidden"));
    assert_null(strstr(e->msg, "secret"));
    assert_null(strchr(e->msg, '\n'));
    assert_null(strchr(e->msg, '\x1b'));
    caa_error_free(e);
    const char *exists = "{\"kind\":\"Status\",\"reason\":\"AlreadyExists\"}";
    e = caa_kube_status_error(409, exists, strlen(exists), "POST", "/x");
    assert_int_equal(e->code, -EEXIST);
    caa_error_free(e);
    e = caa_kube_status_error(502, "<html>bad gateway</html>", 24, "GET", "/y");
    assert_int_equal(e->code, -EIO);
    assert_non_null(strstr(e->msg, "server error"));
    caa_error_free(e);
    e = caa_kube_status_error(401, NULL, 0, "GET", "/z");
    assert_int_equal(e->code, -EACCES);
    caa_error_free(e);
    assert_int_equal(caa_kube_errno_from_http(429, NULL), -EAGAIN);
    assert_int_equal(caa_kube_errno_from_http(404, NULL), -ENOENT);
    assert_int_equal(caa_kube_errno_from_http(422, NULL), -EINVAL);
}

static void test_base64(void **state)
{
    (void)state;
    char *out;
    size_t len;
    assert_int_equal(caa_kube_base64_decode("dTpw", 4, &out, &len, NULL), 0);
    assert_int_equal(len, 3);
    assert_string_equal(out, "u:p");
    free(out);
    assert_int_equal(caa_kube_base64_decode("YQ==", 4, &out, &len, NULL), 0);
    assert_int_equal(len, 1);
    free(out);
    assert_int_equal(caa_kube_base64_decode("", 0, &out, &len, NULL), 0);
    assert_int_equal(len, 0);
    free(out);
    const char *bad[] = {"YQ=", "Y Q==", "YQ=a", "Y===", "@@@@", "YQ==\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(caa_kube_base64_decode(bad[i], strlen(bad[i]), &out, &len, NULL), -EINVAL);
    char *enc = caa_kube_base64_encode("u:p", 3);
    assert_string_equal(enc, "dTpw");
    free(enc);
}

static void test_names_and_retry_after(void **state)
{
    (void)state;
    assert_true(caa_kube_name_valid("worker-1.example"));
    assert_false(caa_kube_name_valid(""));
    assert_false(caa_kube_name_valid("Worker"));
    assert_false(caa_kube_name_valid("a/b"));
    assert_false(caa_kube_name_valid("-a"));
    assert_false(caa_kube_name_valid("a?x=1"));
    assert_int_equal(caa_kube_retry_after_ms("2"), 2000);
    assert_int_equal(caa_kube_retry_after_ms("3600"), CAA_KUBE_RETRY_AFTER_MAX_MS);
    assert_int_equal(caa_kube_retry_after_ms("-1"), -1);
    assert_int_equal(caa_kube_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT"), -1);
    assert_int_equal(caa_kube_retry_after_ms(NULL), -1);
}

static json_t *secret_with(const char *key, const char *raw)
{
    char *b64 = caa_kube_base64_encode(raw, strlen(raw));
    json_t *s = json_pack("{s:s, s:{s:s}}", "kind", "Secret", "data", key, b64);
    free(b64);
    return s;
}

static void test_auths_merge(void **state)
{
    (void)state;
    json_t *reg = json_object();
    json_t *s1 = secret_with(".dockerconfigjson", "{\"auths\":{\"a.example\":{\"auth\":\"YTpi\"},"
                                                  "\"b.example\":{\"username\":\"u\",\"password\":\"p\"},"
                                                  "\"c.example\":{\"username\":\"only\"}}}");
    json_t *s2 =
        secret_with(".dockercfg", "{\"a.example\":{\"username\":\"x\",\"password\":\"y\",\"email\":\"e\"}}");
    assert_int_equal(caa_kube_auths_merge_secret(reg, s1, "ns/one", NULL), 0);
    assert_int_equal(caa_kube_auths_merge_secret(reg, s2, "ns/two", NULL), 0);
    size_t len;
    char *text = caa_kube_auths_to_json(reg, &len);
    assert_string_equal(text,
                        "{\"auths\":{\"a.example\":{\"auth\":\"eDp5\"},\"b.example\":{\"auth\":\"dTpw\"}}}");
    assert_int_equal(len, strlen(text));
    caa_kube_secret_free(text);
    json_t *empty = json_object();
    assert_null(caa_kube_auths_to_json(empty, &len));
    json_decref(empty);

    const char *bad[][2] = {{".dockerconfigjson", "{not json"},
                            {".dockerconfigjson", "{\"auths\":[]}"},
                            {".dockerconfigjson", "{\"auths\":{\"r\":{\"auth\":1}}}"},
                            {".dockercfg", "[]"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *s = secret_with(bad[i][0], bad[i][1]);
        caa_error *err = NULL;
        assert_int_equal(caa_kube_auths_merge_secret(reg, s, "ns/bad", &err), -EINVAL);
        assert_non_null(strstr(caa_error_msg(err), "ns/bad"));
        caa_error_free(err);
        json_decref(s);
    }
    json_t *s = json_pack("{s:{s:s}}", "data", ".dockerconfigjson", "!!notbase64");
    caa_error *err = NULL;
    assert_int_equal(caa_kube_auths_merge_secret(reg, s, "ns/b64", &err), -EINVAL);
    assert_non_null(strstr(caa_error_msg(err), "base64"));
    caa_error_free(err);
    json_decref(s);
    json_decref(s1);
    json_decref(s2);
    json_decref(reg);
}

static void test_node_and_peerpod_documents(void **state)
{
    (void)state;
    json_t *p = caa_kube_node_capacity_patch("add", 10);
    char *t = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(
        t, "[{\"op\":\"add\",\"path\":\"/status/capacity/kata.peerpods.io~1vm\",\"value\":\"10\"}]");
    free(t);
    json_decref(p);
    p = caa_kube_node_capacity_patch("remove", 10);
    t = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(t, "[{\"op\":\"remove\",\"path\":\"/status/capacity/kata.peerpods.io~1vm\"}]");
    free(t);
    json_decref(p);
    p = caa_kube_node_owner_patch("uid-1");
    t = json_dumps(p, JSON_COMPACT);
    assert_string_equal(t, "{\"metadata\":{\"annotations\":{\"kata.peerpods.io/caa-owner\":\"uid-1\"}}}");
    free(t);
    json_decref(p);
    p = caa_kube_peerpod_object("web-resource-abcde", "ns", "web", "uid-2", "aws", "i-123");
    t = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(
        t, "{\"apiVersion\":\"confidentialcontainers.org/v1alpha1\",\"kind\":\"PeerPod\","
           "\"metadata\":{\"finalizers\":[\"peer.pod/finalizer\"],\"name\":\"web-resource-abcde\","
           "\"namespace\":\"ns\",\"ownerReferences\":[{\"apiVersion\":\"v1\",\"blockOwnerDeletion\":"
           "true,\"controller\":true,\"kind\":\"Pod\",\"name\":\"web\",\"uid\":\"uid-2\"}]},"
           "\"spec\":{\"cloudProvider\":\"aws\",\"instanceID\":\"i-123\"}}");
    free(t);
    json_decref(p);
}

static void test_metrics_text(void **state)
{
    (void)state;
    caa_metrics_reset();
    caa_metrics_pod_state(NULL, "created");
    caa_metrics_pod_state("created", "ready");
    caa_metrics_observe_startvm(0.3);
    caa_metrics_observe_startvm(700);
    caa_metrics_provider_result("create_instance", 0);
    caa_metrics_provider_result("create_instance", -ECANCELED);
    caa_metrics_kube_request("GET", 200);
    caa_metrics_kube_request("GET", 0);
    caa_metrics_provider_request("we\"ird\\op\n", "x");
    char *text = caa_metrics_render();
    const char *want[] = {
        "caa_pods{state=\"created\"} 0\n",
        "caa_pods{state=\"ready\"} 1\n",
        "caa_startvm_duration_seconds_bucket{le=\"0.25\"} 0\n",
        "caa_startvm_duration_seconds_bucket{le=\"0.5\"} 1\n",
        "caa_startvm_duration_seconds_bucket{le=\"600\"} 1\n",
        "caa_startvm_duration_seconds_bucket{le=\"+Inf\"} 2\n",
        "caa_startvm_duration_seconds_count 2\n",
        "caa_provider_requests_total{op=\"create_instance\",result=\"ok\"} 1\n",
        "caa_provider_requests_total{op=\"create_instance\",result=\"cancelled\"} 1\n",
        "caa_provider_requests_total{op=\"we\\\"ird\\\\op\\n\",result=\"x\"} 1\n",
        "caa_kube_requests_total{verb=\"GET\",code=\"200\"} 1\n",
        "caa_kube_requests_total{verb=\"GET\",code=\"error\"} 1\n",
        "# TYPE caa_stopvm_duration_seconds histogram\n",
        "caa_agent_proxy_connections 0\n",
        "caa_build_info{version=\"",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (!strstr(text, want[i]))
            fail_msg("metrics lack %s in:\n%s", want[i], text);
    free(text);
    caa_metrics_reset();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kubeconfig_current_context),
        cmocka_unit_test(test_kubeconfig_errors),
        cmocka_unit_test(test_resolve_policy),
        cmocka_unit_test(test_in_cluster),
        cmocka_unit_test(test_status_errors),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_names_and_retry_after),
        cmocka_unit_test(test_auths_merge),
        cmocka_unit_test(test_node_and_peerpod_documents),
        cmocka_unit_test(test_metrics_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
