/* Our engines against an independent TLS peer: the openssl command line
 * (`s_server -Verify`, `s_client -cert`) over loopback TCP, with our
 * generated material in files as an operator would configure it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "fs.h"
#include "tls-test-net.h"
#include "xalloc.h"

static char tmpdir[] = "/tmp/caa-test-tls-cli-XXXXXX";
static tls_material mat;
static bool have_openssl;

static char *tmp_path(const char *name)
{
    return xasprintf("%s/%s", tmpdir, name);
}

static void write_tmp(const char *name, const char *content)
{
    _cleanup_free_ char *path = tmp_path(name);
    assert_int_equal(caa_write_file_atomic(path, content, strlen(content), 0600, NULL), 0);
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(tmpdir))
        return -1;
    signal(SIGPIPE, SIG_IGN);
    have_openssl = tls_find_in_path("openssl");
    tls_material_init(&mat, TEST_INSTANCE);
    _cleanup_free_ char *ca_pem = caa_tls_ca_cert_pem(mat.ca);
    _cleanup_secret_ char *client_key = caa_tls_identity_key_pem(mat.client);
    /* The file names an upstream pod VM image uses. */
    write_tmp("ca.crt", ca_pem);
    write_tmp("client.crt", mat.client_cert_pem);
    write_tmp("client.key", client_key);
    write_tmp("tls.crt", mat.server_cert_pem);
    write_tmp("tls.key", mat.server_key_pem);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tls_material_done(&mat);
    return caa_rm_rf(tmpdir, NULL);
}

/* Starts `openssl s_server` (reversing each line it gets) and returns its port. */
static uint16_t start_s_server(tls_child *c)
{
    _cleanup_free_ char *crt = tmp_path("tls.crt"), *key = tmp_path("tls.key"), *ca = tmp_path("client.crt");
    char *argv[] = {"openssl",  "s_server", "-accept", "127.0.0.1:0",
                    "-naccept", "1",        "-rev",    "-cert",
                    crt,        "-key",     key,       "-CAfile",
                    ca,         "-Verify",  "1",       "-verify_return_error",
                    NULL};
    {
        _cleanup_free_ char *errp = tmp_path("openssl.stderr");
        tls_spawn(c, argv, errp);
    }
    _cleanup_free_ char *out = tls_read_child(c, "ACCEPT ");
    const char *accept = strstr(out, "ACCEPT ");
    const char *colon = accept ? strrchr(accept, ':') : NULL;
    if (!colon) {
        tls_show_stderr(c);
        fail_msg("s_server did not report its port: '%s'", out);
    }
    return (uint16_t)strtoul(colon + 1, NULL, 10);
}

static void test_client_vs_s_server(void **state)
{
    (void)state;
    if (!have_openssl)
        skip();
    tls_child c = {0};
    uint16_t port = start_s_server(&c);
    int fd = tls_connect_loopback(port);

    tls_peer p;
    SSL_CTX *ctx = tls_client_ctx(&mat, NULL);
    tls_peer_init(&p, ctx, CAA_TLS_ROLE_CLIENT, TEST_INSTANCE);
    SSL_CTX_free(ctx);
    assert_int_equal(caa_tls_engine_handshake(p.e, NULL), 0);
    assert_int_equal(caa_tls_engine_write(p.e, "hello from caa\n", 15, NULL), 0);
    tls_drive(fd, &p, "aac morf olleh");
    if (p.err) {
        tls_show_stderr(&c);
        fail_msg("client: %s", p.err->msg);
    }
    assert_string_equal(caa_tls_engine_protocol(p.e), "TLSv1.3");
    _cleanup_free_ char *subject = caa_tls_engine_peer_subject(p.e);
    assert_string_equal(subject, "CN=" TEST_INSTANCE ",O=agent-protocol-forwarder");

    assert_int_equal(caa_tls_engine_shutdown(p.e, NULL), 0);
    tls_flush(fd, &p);
    close(fd);
    tls_peer_done(&p);
    int rc = tls_reap(&c);
    assert_int_equal(rc, 0);
}

static void test_client_without_cert_vs_s_server(void **state)
{
    (void)state;
    if (!have_openssl)
        skip();
    tls_child c = {0};
    uint16_t port = start_s_server(&c);
    int fd = tls_connect_loopback(port);

    caa_tls_client_config cfg = {.ca = mat.ca_trust};
    SSL_CTX *ctx = NULL;
    assert_int_equal(caa_tls_client_ctx_new(&cfg, &ctx, NULL), 0);
    tls_peer p;
    tls_peer_init(&p, ctx, CAA_TLS_ROLE_CLIENT, TEST_INSTANCE);
    SSL_CTX_free(ctx);
    assert_int_equal(caa_tls_engine_handshake(p.e, NULL), 0);
    assert_int_equal(caa_tls_engine_write(p.e, "hello\n", 6, NULL), 0);
    tls_drive(fd, &p, "olleh");
    tls_expect_error(p.err, -EACCES, "the server requires a client certificate and none is configured");
    close(fd);
    tls_peer_done(&p);
    tls_reap(&c);
}

static void run_s_client(tls_child *c, uint16_t port, bool with_cert)
{
    _cleanup_free_ char *ca = tmp_path("ca.crt"), *crt = tmp_path("client.crt"),
                        *key = tmp_path("client.key");
    _cleanup_free_ char *target = xasprintf("127.0.0.1:%u", port);
    char *argv[] = {"openssl",
                    "s_client",
                    "-connect",
                    target,
                    "-servername",
                    TEST_INSTANCE,
                    "-verify_hostname",
                    TEST_INSTANCE,
                    "-CAfile",
                    ca,
                    "-verify_return_error",
                    "-quiet",
                    with_cert ? "-cert" : NULL,
                    crt,
                    "-key",
                    key,
                    NULL};
    {
        _cleanup_free_ char *errp = tmp_path("openssl.stderr");
        tls_spawn(c, argv, errp);
    }
}

static void test_s_client_vs_server(void **state)
{
    (void)state;
    if (!have_openssl)
        skip();
    uint16_t port;
    int lfd = tls_listen_loopback(&port);
    tls_child c = {0};
    run_s_client(&c, port, true);
    int fd = tls_accept_with_timeout(lfd);
    close(lfd);

    tls_peer p;
    SSL_CTX *ctx = tls_server_ctx(&mat, NULL);
    tls_peer_init(&p, ctx, CAA_TLS_ROLE_SERVER, NULL);
    SSL_CTX_free(ctx);
    /* s_client sends its stdin once connected. */
    assert_int_equal(write(c.in_fd, "ping from s_client\n", 19), 19);
    tls_drive(fd, &p, "ping from s_client\n");
    if (p.err) {
        tls_show_stderr(&c);
        fail_msg("server: %s", p.err->msg);
    }
    _cleanup_free_ char *subject = caa_tls_engine_peer_subject(p.e);
    assert_string_equal(subject, "O=cloud-api-adaptor");

    /* Answer and close cleanly: s_client prints the answer and exits. */
    assert_int_equal(caa_tls_engine_write(p.e, "pong from caa\n", 14, NULL), 0);
    assert_int_equal(caa_tls_engine_shutdown(p.e, NULL), 0);
    tls_flush(fd, &p);
    _cleanup_free_ char *out = tls_read_child(&c, "pong from caa\n");
    assert_non_null(strstr(out, "pong from caa\n"));
    shutdown(fd, SHUT_WR);
    close(fd);
    tls_peer_done(&p);
    tls_reap(&c);
}

static void test_s_client_without_cert_vs_server(void **state)
{
    (void)state;
    if (!have_openssl)
        skip();
    uint16_t port;
    int lfd = tls_listen_loopback(&port);
    tls_child c = {0};
    run_s_client(&c, port, false);
    int fd = tls_accept_with_timeout(lfd);
    close(lfd);

    tls_peer p;
    SSL_CTX *ctx = tls_server_ctx(&mat, NULL);
    tls_peer_init(&p, ctx, CAA_TLS_ROLE_SERVER, NULL);
    SSL_CTX_free(ctx);
    assert_int_equal(write(c.in_fd, "ping\n", 5), 5);
    tls_drive(fd, &p, "ping\n");
    tls_expect_error(p.err, -EACCES, "the client presented no certificate");
    assert_int_equal(p.in_len, 0);
    close(fd);
    tls_peer_done(&p);
    int rc = tls_reap(&c);
    assert_int_not_equal(rc, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_vs_s_server),
        cmocka_unit_test(test_client_without_cert_vs_s_server),
        cmocka_unit_test(test_s_client_vs_server),
        cmocka_unit_test(test_s_client_without_cert_vs_server),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
