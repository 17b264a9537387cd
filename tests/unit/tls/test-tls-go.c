/* Our engines against Go's crypto/tls, the stack of upstream's daemon and
 * forwarder (tests/unit/tls/go-peer, configured like upstream's tlsutil):
 *  - upstream pod VM forwarder <- our daemon: our client engine with our
 *    generated material against a Go server that requires and verifies the
 *    client certificate with our client certificate as its only CA;
 *  - our forwarder <- upstream daemon: a Go client with material made the Go
 *    way (self-signed non-CA client certificate, Go CA, Go-issued server
 *    certificate loaded from PEM as apf.json delivers it) against our server
 *    engine (the self-signed leaf as trust anchor needs partial-chain trust).
 * Argument: path of the built go-peer; the test skips without it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "fs.h"
#include "tls-test-net.h"
#include "xalloc.h"

static char tmpdir[] = "/tmp/caa-test-tls-go-XXXXXX";
static const char *go_peer;
static tls_material mat;

static char *tmp_path(const char *name)
{
    return xasprintf("%s/%s", tmpdir, name);
}

static void write_tmp(const char *name, const char *content)
{
    _cleanup_free_ char *path = tmp_path(name);
    assert_int_equal(caa_write_file_atomic(path, content, strlen(content), 0600, NULL), 0);
}

static char *read_tmp(const char *name)
{
    _cleanup_free_ char *path = tmp_path(name);
    char *text = NULL;
    assert_int_equal(caa_read_file(path, 1 << 20, 0, &text, NULL, NULL), 0);
    return text;
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(tmpdir))
        return -1;
    signal(SIGPIPE, SIG_IGN);
    tls_material_init(&mat, TEST_INSTANCE);
    _cleanup_free_ char *ca_pem = caa_tls_ca_cert_pem(mat.ca);
    _cleanup_secret_ char *client_key = caa_tls_identity_key_pem(mat.client);
    write_tmp("our-client.crt", mat.client_cert_pem);
    write_tmp("our-client.key", client_key);
    write_tmp("our-server.crt", mat.server_cert_pem);
    write_tmp("our-server.key", mat.server_key_pem);
    write_tmp("our-ca.crt", ca_pem);
    if (go_peer && *go_peer) {
        _cleanup_free_ char *dir = tmp_path("go");
        _cleanup_free_ char *err = tmp_path("gencert.stderr");
        tls_child c = {0};
        assert_int_equal(mkdir(dir, 0700), 0);
        char *argv[] = {(char *)go_peer, "gencert", dir, TEST_INSTANCE, NULL};
        tls_spawn(&c, argv, err);
        if (tls_reap(&c) != 0)
            return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tls_material_done(&mat);
    return caa_rm_rf(tmpdir, NULL);
}

static void test_our_client_vs_go_server(void **state)
{
    (void)state;
    if (!go_peer || !*go_peer)
        skip();
    _cleanup_free_ char *crt = tmp_path("our-server.crt"), *key = tmp_path("our-server.key");
    _cleanup_free_ char *ca = tmp_path("our-client.crt"), *errp = tmp_path("go-server.stderr");
    char *argv[] = {(char *)go_peer, "server", crt, key, ca, NULL};
    tls_child c = {0};
    tls_spawn(&c, argv, errp);
    _cleanup_free_ char *first = tls_read_child(&c, "PORT ");
    const char *port = strstr(first, "PORT ");
    if (!port) {
        tls_show_stderr(&c);
        fail_msg("go server did not start: '%s'", first);
    }
    int fd = tls_connect_loopback((uint16_t)strtoul(port + 5, NULL, 10));

    tls_peer p;
    SSL_CTX *ctx = tls_client_ctx(&mat, NULL);
    tls_peer_init(&p, ctx, CAA_TLS_ROLE_CLIENT, TEST_INSTANCE);
    SSL_CTX_free(ctx);
    assert_int_equal(caa_tls_engine_handshake(p.e, NULL), 0);
    assert_int_equal(caa_tls_engine_write(p.e, "hello from caa\n", 15, NULL), 0);
    tls_drive(fd, &p, "aac morf olleh\n");
    if (p.err) {
        tls_show_stderr(&c);
        fail_msg("client: %s", p.err->msg);
    }
    assert_string_equal(caa_tls_engine_protocol(p.e), "TLSv1.3");
    _cleanup_free_ char *out = tls_read_child(&c, "PEER ");
    /* Go saw and verified our generated client certificate. */
    assert_non_null(strstr(out, "PEER O=cloud-api-adaptor\n"));
    caa_tls_engine_shutdown(p.e, NULL);
    tls_flush(fd, &p);
    close(fd);
    tls_peer_done(&p);
    assert_int_equal(tls_reap(&c), 0);
}

/* Our forwarder, configured from Go-made material as apf.json carries it. */
static SSL_CTX *server_ctx_from_go(void)
{
    _cleanup_free_ char *cert = read_tmp("go/server.crt"), *client_ca = read_tmp("go/client.crt");
    _cleanup_secret_ char *key = read_tmp("go/server.key");
    _cleanup_tls_identity_ caa_tls_identity *id = NULL;
    _cleanup_tls_trust_ caa_tls_trust *trust = NULL;
    caa_error *err = NULL;
    if (caa_tls_identity_from_pem(cert, key, &id, &err) < 0 ||
        caa_tls_trust_from_pem(client_ca, &trust, &err) < 0)
        fail_msg("go material: %s", err->msg);
    caa_tls_server_config cfg = {.identity = id, .client_ca = trust};
    SSL_CTX *ctx = NULL;
    if (caa_tls_server_ctx_new(&cfg, &ctx, &err) < 0)
        fail_msg("server ctx: %s", err->msg);
    return ctx;
}

static void run_go_client(const char *cert_name, const char *key_name, bool expect_ok)
{
    uint16_t port;
    int lfd = tls_listen_loopback(&port);
    _cleanup_free_ char *port_s = xasprintf("%u", port);
    _cleanup_free_ char *ca = tmp_path("go/ca.crt"), *crt = tmp_path(cert_name), *key = tmp_path(key_name);
    _cleanup_free_ char *errp = tmp_path("go-client.stderr");
    char *argv[] = {(char *)go_peer, "client", port_s, TEST_INSTANCE, ca, crt, key, NULL};
    tls_child c = {0};
    tls_spawn(&c, argv, errp);
    int fd = tls_accept_with_timeout(lfd);
    close(lfd);

    tls_peer p;
    SSL_CTX *ctx = server_ctx_from_go();
    tls_peer_init(&p, ctx, CAA_TLS_ROLE_SERVER, NULL);
    SSL_CTX_free(ctx);
    tls_drive(fd, &p, "hello from go\n");
    if (expect_ok) {
        if (p.err) {
            tls_show_stderr(&c);
            fail_msg("server: %s", p.err->msg);
        }
        _cleanup_free_ char *subject = caa_tls_engine_peer_subject(p.e);
        assert_string_equal(subject, "O=cloud-api-adaptor");
        assert_int_equal(caa_tls_engine_write(p.e, "og morf olleh\n", 14, NULL), 0);
        caa_tls_engine_shutdown(p.e, NULL);
        tls_flush(fd, &p);
        _cleanup_free_ char *out = tls_read_child(&c, "VERSION ");
        assert_non_null(strstr(out, "REPLY og morf olleh\n"));
        assert_non_null(strstr(out, "VERSION 304\n")); /* TLS 1.3 */
        close(fd);
        assert_int_equal(tls_reap(&c), 0);
    } else {
        tls_expect_error(p.err, -EACCES, "client certificate rejected");
        assert_int_equal(p.in_len, 0);
        close(fd);
        assert_int_not_equal(tls_reap(&c), 0);
    }
    tls_peer_done(&p);
}

static void test_go_client_vs_our_server(void **state)
{
    (void)state;
    if (!go_peer || !*go_peer)
        skip();
    run_go_client("go/client.crt", "go/client.key", true);
}

static void test_foreign_go_client_refused(void **state)
{
    (void)state;
    if (!go_peer || !*go_peer)
        skip();
    /* Our own client identity is not the one this VM was told to trust. */
    run_go_client("our-client.crt", "our-client.key", false);
}

int main(int argc, char **argv)
{
    go_peer = argc > 1 ? argv[1] : getenv("CAA_TLS_GO_PEER");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_our_client_vs_go_server),
        cmocka_unit_test(test_go_client_vs_our_server),
        cmocka_unit_test(test_foreign_go_client_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
