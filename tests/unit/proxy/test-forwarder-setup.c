/* agent-protocol-forwarder set-up code: flags (upstream names and
 * defaults), -listen parsing, apf.json loading (bad input), the pod network
 * step when apf.json has none or a broken one, the TLS server context from
 * apf.json material or flags, and the systemd notification. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "apf-config.h"
#include "forwarder-options.h"
#include "forwarder-setup.h"
#include "fs.h"
#include "sd-notify.h"
#include "tls-cert.h"
#include "ttrpc-test-util.h"
#include "xalloc.h"

static void test_listen_parsing(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *host;
        int port; /* -1: rejected */
    } cases[] = {
        {"0.0.0.0:15150", "0.0.0.0", 15150},
        {":15150", "", 15150},
        {"[::1]:80", "::1", 80},
        {"127.0.0.1:0", "127.0.0.1", 0},
        {"::1:80", NULL, -1},
        {"15150", NULL, -1},
        {"host:99999", NULL, -1},
        {"host:abc", NULL, -1},
        {"host:", NULL, -1},
    };
    for (size_t i = 0; i < CAA_ARRAY_SIZE(cases); i++) {
        char *host = NULL;
        uint16_t port = 0;
        caa_error *e = NULL;
        int r = fwd_parse_listen(cases[i].in, &host, &port, &e);
        if (cases[i].port < 0) {
            assert_int_equal(r, -EINVAL);
            assert_non_null(strstr(caa_error_msg(e), "-listen"));
            caa_error_free(e);
        } else {
            assert_int_equal(r, 0);
            assert_string_equal(host, cases[i].host);
            assert_int_equal(port, cases[i].port);
            free(host);
        }
    }
}

static void test_flags(void **state)
{
    (void)state;
    fwd_options o = {0};
    caa_option_set set = fwd_option_set(&o);
    assert_int_equal(caa_options_parse(&set, 1, 0, NULL, NULL), 0);
    assert_string_equal(o.config, "/run/peerpod/apf.json");
    assert_string_equal(o.listen, "0.0.0.0:15150");
    assert_string_equal(o.kata_agent_socket, "/run/kata-containers/agent.sock");
    assert_string_equal(o.pod_namespace, "/run/netns/podns");
    assert_false(o.disable_tls);
    assert_false(o.tls_skip_verify);
    caa_options_free(&set, 1);

    /* The systemd unit's command line. */
    memset(&o, 0, sizeof(o));
    char *argv[] = {
        "-pod-namespace",  "/run/netns/podns",        "-kata-agent-socket", "/run/kata-containers/agent.sock",
        "-disable-tls",    "--listen=127.0.0.1:1234", "-host-interface",    "eth1",
        "-tls-skip-verify"};
    assert_int_equal(caa_options_parse(&set, 1, CAA_ARRAY_SIZE(argv), argv, NULL), 0);
    assert_true(o.disable_tls);
    assert_true(o.tls_skip_verify);
    assert_string_equal(o.listen, "127.0.0.1:1234");
    assert_string_equal(o.host_interface, "eth1");
    caa_options_free(&set, 1);

    memset(&o, 0, sizeof(o));
    char *bad[] = {"-no-such-flag"};
    caa_error *e = NULL;
    assert_true(caa_options_parse(&set, 1, 1, bad, &e) < 0);
    caa_error_free(e);
    caa_options_free(&set, 1);
}

static char *write_tmp(const char *dir, const char *name, const char *text)
{
    char *p = tu_path(dir, name);
    assert_int_equal(caa_write_file_atomic(p, text, strlen(text), 0600, NULL), 0);
    return p;
}

static void test_config_load(void **state)
{
    (void)state;
    char *dir = caa_test_tmpdir_new("ttrpc-test");
    caa_apf_config c = {0};
    caa_error *e = NULL;

    char *missing = tu_path(dir, "missing.json");
    assert_int_equal(fwd_config_load(missing, &c, &e), -ENOENT);
    assert_non_null(strstr(caa_error_msg(e), missing));
    caa_error_freep(&e);

    char *ok =
        write_tmp(dir, "ok.json",
                  "{\"pod-name\":\"nginx\",\"pod-namespace\":\"/run/netns/podns\",\"pod-network\":null,"
                  "\"sc-pp-prv\":\"legacy\",\"something-new\":{\"x\":1},\"tls-cipher-suites\":[]}");
    assert_int_equal(fwd_config_load(ok, &c, NULL), 0);
    assert_string_equal(c.pod_name, "nginx");
    assert_null(c.pod_network);
    assert_int_equal(fwd_pod_network_setup(&c, "/run/netns/podns", NULL), 1); /* nothing to do */
    caa_apf_config_done(&c);

    const char *bad[] = {"{\"pod-name\": 5}", "[1,2]", "{\"pod-network\": \"eth0\"}", "{not json", ""};
    for (size_t i = 0; i < CAA_ARRAY_SIZE(bad); i++) {
        char *p = write_tmp(dir, "bad.json", bad[i]);
        assert_true(fwd_config_load(p, &c, &e) < 0);
        assert_non_null(strstr(caa_error_msg(e), "bad.json"));
        caa_error_freep(&e);
        free(p);
    }

    /* A pod-network that does not parse fails before any netlink work. */
    char *pn = write_tmp(dir, "pn.json", "{\"pod-network\": {\"podip\": 5}}");
    assert_int_equal(fwd_config_load(pn, &c, NULL), 0);
    assert_true(fwd_pod_network_setup(&c, "/run/netns/never-created", &e) < 0);
    assert_non_null(strstr(caa_error_msg(e), "pod-network"));
    caa_error_freep(&e);
    caa_apf_config_done(&c);

    free(missing);
    free(ok);
    free(pn);
    caa_test_tmpdir_remove(dir);
}

static void test_tls_ctx(void **state)
{
    (void)state;
    char *dir = caa_test_tmpdir_new("ttrpc-test");
    fwd_options o = {.ca_cert_file = "", .cert_file = "", .cert_key = ""};
    caa_apf_config apf = {0};
    SSL_CTX *ctx = NULL;
    caa_error *e = NULL;

    /* TLS on, no certificate anywhere. */
    assert_int_equal(fwd_tls_server_ctx(&o, &apf, &ctx, &e), -EINVAL);
    assert_non_null(strstr(caa_error_msg(e), "-disable-tls"));
    caa_error_freep(&e);

    /* apf.json material as the daemon issues it. */
    caa_tls_ca *ca = NULL;
    caa_tls_identity *client = NULL;
    char *cert = NULL, *key = NULL;
    assert_int_equal(caa_tls_ca_new(&ca, NULL), 0);
    assert_int_equal(caa_tls_ca_issue_server(ca, "podvm-x", &cert, &key, NULL), 0);
    assert_int_equal(caa_tls_identity_generate_client(&client, NULL), 0);
    char *client_pem = caa_tls_identity_cert_pem(client);
    apf.tls_server_cert = cert;
    apf.tls_server_key = key;
    apf.tls_client_ca = client_pem;
    assert_int_equal(fwd_tls_server_ctx(&o, &apf, &ctx, NULL), 0);
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_get_verify_mode(ctx) & SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                     SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
    SSL_CTX_free(ctx);

    /* A bad profile in apf.json is refused, naming it. */
    apf.tls_min_version = "VersionTLS10";
    assert_true(fwd_tls_server_ctx(&o, &apf, &ctx, &e) < 0);
    assert_non_null(strstr(caa_error_msg(e), "profile"));
    caa_error_freep(&e);
    apf.tls_min_version = NULL;

    /* Certificate and key that do not belong together. */
    char *cert2 = NULL, *key2 = NULL;
    assert_int_equal(caa_tls_ca_issue_server(ca, "podvm-y", &cert2, &key2, NULL), 0);
    apf.tls_server_key = key2;
    assert_true(fwd_tls_server_ctx(&o, &apf, &ctx, &e) < 0);
    assert_non_null(strstr(caa_error_msg(e), "server certificate"));
    caa_error_freep(&e);

    /* Flags: CA together with skip-verify is refused; cert without key too. */
    caa_apf_config none = {0};
    o.ca_cert_file = "/nonexistent/ca.crt";
    o.tls_skip_verify = true;
    assert_int_equal(fwd_tls_server_ctx(&o, &none, &ctx, &e), -EINVAL);
    caa_error_freep(&e);
    o.ca_cert_file = "";
    o.tls_skip_verify = false;
    o.cert_file = "/nonexistent/tls.crt";
    assert_int_equal(fwd_tls_server_ctx(&o, &none, &ctx, &e), -EINVAL);
    caa_error_freep(&e);

    /* Files (the image's /etc/certificates): no CA -> clients are not asked. */
    char *certf = write_tmp(dir, "tls.crt", cert);
    char *keyf = write_tmp(dir, "tls.key", key);
    o.cert_file = certf;
    o.cert_key = keyf;
    assert_int_equal(fwd_tls_server_ctx(&o, &none, &ctx, NULL), 0);
    assert_int_equal(SSL_CTX_get_verify_mode(ctx) & SSL_VERIFY_PEER, 0);
    SSL_CTX_free(ctx);

    free(certf);
    free(keyf);
    caa_tls_secret_free(key);
    caa_tls_secret_free(key2);
    free(cert);
    free(cert2);
    free(client_pem);
    caa_tls_identity_free(client);
    caa_tls_ca_free(ca);
    caa_test_tmpdir_remove(dir);
}

static void test_sd_notify(void **state)
{
    (void)state;
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(fwd_sd_notify("READY=1"), 0);

    char *dir = caa_test_tmpdir_new("ttrpc-test");
    char *path = tu_path(dir, "notify");
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    setenv("NOTIFY_SOCKET", path, 1);
    assert_int_equal(fwd_sd_notify("READY=1"), 1);
    char buf[32] = {0};
    assert_int_equal(recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT), 7);
    assert_string_equal(buf, "READY=1");
    close(fd);

    /* Abstract namespace. */
    fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un abs = {.sun_family = AF_UNIX};
    const char *name = "@caa-test-notify";
    memcpy(abs.sun_path + 1, name + 1, strlen(name) - 1);
    assert_int_equal(
        bind(fd, (struct sockaddr *)&abs, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name))),
        0);
    setenv("NOTIFY_SOCKET", name, 1);
    assert_int_equal(fwd_sd_notify("READY=1"), 1);
    memset(buf, 0, sizeof(buf));
    assert_int_equal(recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT), 7);
    close(fd);

    setenv("NOTIFY_SOCKET", "relative/path", 1);
    assert_int_equal(fwd_sd_notify("READY=1"), -EINVAL);
    unsetenv("NOTIFY_SOCKET");
    free(path);
    caa_test_tmpdir_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listen_parsing), cmocka_unit_test(test_flags),
        cmocka_unit_test(test_config_load),    cmocka_unit_test(test_tls_ctx),
        cmocka_unit_test(test_sd_notify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
