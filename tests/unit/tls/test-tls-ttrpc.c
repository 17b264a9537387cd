/* ttRPC over TLS end to end: the ttRPC server adopts TLS transports from a
 * loopback TCP listener (the forwarder's shape), the ttRPC client runs on a
 * TLS transport from a TCP connect (the daemon's agent dialer's shape). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <uv.h>

#include "tls-test-util.h"
#include "tls-transport.h"
#include "ttrpc.h"
#include "xalloc.h"

static tls_material mat;

static uv_loop_t loop;
static uv_tcp_t listener;
static ttrpc_server *server;
static ttrpc_client *client;
static SSL_CTX *cctx, *sctx;
static int server_hs_status, client_hs_status;
static int results, failures, last_status;
static size_t calls_planned;
static uint8_t *payload;
static size_t payload_len;
static bool server_done;
static char *client_tls_error;

static void on_tls_error(ttrpc_transport *t, const caa_error *err, void *opaque)
{
    (void)t;
    (void)opaque;
    client_tls_error = xstrdup(err->msg);
}

static int setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    tls_material_init(&mat, TEST_INSTANCE);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tls_material_done(&mat);
    return 0;
}

static void h_echo(ttrpc_call *c, void *opaque)
{
    (void)opaque;
    size_t len;
    const uint8_t *p = ttrpc_call_payload(c, &len);
    ttrpc_call_reply(c, p, len);
}

static const ttrpc_method_entry methods[] = {{"Echo", h_echo}};

static void on_server_done(void *opaque)
{
    (void)opaque;
    server_done = true;
}

static void finish(void)
{
    if (client) {
        ttrpc_client_close(client);
        client = NULL;
    }
    if (server) {
        ttrpc_server_close(server, on_server_done, NULL);
        server = NULL;
    }
}

static void on_result(const ttrpc_result *r, void *opaque)
{
    size_t expect = (size_t)(uintptr_t)opaque;
    last_status = r->status;
    if (r->status == 0 && r->grpc_code == 0 && r->payload_len == expect &&
        (expect == 0 || memcmp(r->payload, payload, expect) == 0))
        results++;
    else
        failures++;
    if ((size_t)(results + failures) == calls_planned)
        finish();
}

static void on_server_handshake(ttrpc_transport *t, int status, const caa_error *err, void *opaque)
{
    (void)err;
    (void)opaque;
    server_hs_status = status;
    if (status < 0) {
        ttrpc_transport_close(t);
        return;
    }
    assert_int_equal(ttrpc_server_adopt(server, t, NULL), 0);
}

static void on_connection(uv_stream_t *l, int status)
{
    assert_int_equal(status, 0);
    ttrpc_transport *tcp = ttrpc_transport_uv_new(&loop, UV_TCP, NULL);
    assert_int_equal(uv_accept(l, ttrpc_transport_uv_stream(tcp)), 0);
    ttrpc_transport *t = caa_tls_transport_new(&loop, tcp, sctx, CAA_TLS_ROLE_SERVER, NULL, NULL);
    assert_non_null(t);
    assert_int_equal(caa_tls_transport_handshake(t, on_server_handshake, NULL, NULL), 0);
    uv_close((uv_handle_t *)&listener, NULL);
}

static void on_client_handshake(ttrpc_transport *t, int status, const caa_error *err, void *opaque)
{
    (void)err;
    (void)opaque;
    client_hs_status = status;
    if (status < 0) {
        ttrpc_transport_close(t);
        finish();
        return;
    }
    caa_tls_transport_set_error_cb(t, on_tls_error, NULL);
    assert_int_equal(ttrpc_client_new_on_transport(&loop, t, &client, NULL), 0);
    /* Calls of several sizes, pipelined on the one connection. */
    static const size_t sizes[] = {0, 1, 1000, 70000, 300000};
    calls_planned = CAA_ARRAY_SIZE(sizes);
    for (size_t i = 0; i < calls_planned; i++)
        assert_int_equal(ttrpc_client_call(client, "t.S", "Echo", payload, sizes[i], 5000000000LL, NULL, 0,
                                           on_result, (void *)(uintptr_t)sizes[i], NULL),
                         0);
}

static void on_connect(uv_connect_t *req, int status)
{
    ttrpc_transport *tcp = req->data;
    free(req);
    assert_int_equal(status, 0);
    ttrpc_transport *t = caa_tls_transport_new(&loop, tcp, cctx, CAA_TLS_ROLE_CLIENT, TEST_INSTANCE, NULL);
    assert_non_null(t);
    assert_int_equal(caa_tls_transport_handshake(t, on_client_handshake, NULL, NULL), 0);
}

static void run(void)
{
    struct sockaddr_in a;
    int len = sizeof(a);

    results = failures = 0;
    last_status = 0;
    server_hs_status = client_hs_status = 1;
    server_done = false;
    payload_len = 300000;
    payload = xmalloc(payload_len);
    for (size_t i = 0; i < payload_len; i++)
        payload[i] = (uint8_t)(i * 31 + 7);

    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(ttrpc_server_new(&loop, &server, NULL), 0);
    assert_int_equal(ttrpc_server_register(server, "t.S", methods, 1, NULL, NULL), 0);
    assert_int_equal(uv_tcp_init(&loop, &listener), 0);
    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(uv_tcp_bind(&listener, (struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&listener, 1, on_connection), 0);
    assert_int_equal(uv_tcp_getsockname(&listener, (struct sockaddr *)&a, &len), 0);

    ttrpc_transport *tcp = ttrpc_transport_uv_new(&loop, UV_TCP, NULL);
    uv_connect_t *req = xnew0(uv_connect_t, 1);
    req->data = tcp;
    assert_int_equal(
        uv_tcp_connect(req, (uv_tcp_t *)ttrpc_transport_uv_stream(tcp), (struct sockaddr *)&a, on_connect),
        0);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    free(payload);
}

static void test_calls_over_tls(void **state)
{
    (void)state;
    cctx = tls_client_ctx(&mat, NULL);
    sctx = tls_server_ctx(&mat, NULL);
    run();
    assert_int_equal(client_hs_status, 0);
    assert_int_equal(server_hs_status, 0);
    assert_int_equal(failures, 0);
    assert_int_equal(results, 5);
    assert_null(client_tls_error);
    assert_true(server_done);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}

static void test_refused_client(void **state)
{
    (void)state;
    /* No client certificate: TLS 1.3 lets the client finish its handshake,
     * the server refuses it, and the call fails with the connection. */
    caa_tls_client_config cfg = {.ca = mat.ca_trust};
    assert_int_equal(caa_tls_client_ctx_new(&cfg, &cctx, NULL), 0);
    sctx = tls_server_ctx(&mat, NULL);
    run();
    assert_int_equal(client_hs_status, 0);
    assert_int_equal(server_hs_status, -EACCES);
    assert_int_equal(results, 0);
    assert_int_equal(failures, 5);
    /* The ttRPC client reports a lost connection; the TLS reason comes
     * through the transport's error callback. */
    assert_int_equal(last_status, -ECONNRESET);
    assert_non_null(client_tls_error);
    if (!strstr(client_tls_error, "the server requires a client certificate and none is configured"))
        fail_msg("unexpected TLS error '%s'", client_tls_error);
    free(client_tls_error);
    client_tls_error = NULL;
    assert_true(server_done);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_calls_over_tls),
        cmocka_unit_test(test_refused_client),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
