/* The TLS engine as a ttRPC transport over real libuv TCP streams on
 * loopback: handshake callbacks, ordered writes, echo, clean close, and the
 * failures an agent connection meets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <uv.h>

#include "tls-test-util.h"
#include "tls-transport.h"
#include "xalloc.h"

static tls_material mat;

typedef struct side {
    const char *name;
    ttrpc_transport *t;
    bool tls;
    int hs_calls, hs_status;
    char *hs_msg;
    uint8_t *in;
    size_t in_len;
    size_t expect;    /* client: shut down once this much came back */
    ssize_t read_end; /* the negative nread that ended reading, 0 while none */
    char *read_end_msg;
    int writes_done, write_errors;
    int last_write_seq;
    bool order_ok;
    bool echo; /* server: write back what arrives */
    bool closed;
} side;

typedef struct out_req {
    ttrpc_write_req req;
    side *s;
    int seq;
    uint8_t data[];
} out_req;

static uv_loop_t loop;
static uv_tcp_t listener;
static side cli, srv;
static SSL_CTX *cli_ctx, *srv_ctx;
static const char *cli_name;
static bool srv_tls;
static int next_seq;

static int setup(void **state)
{
    (void)state;
    /* As in the daemon: a write to a closed socket is an error, not a signal. */
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

static void on_closed(ttrpc_transport *t)
{
    side *s = t->owner;
    s->closed = true;
    s->t = NULL;
}

static void side_close(side *s)
{
    if (s->t && !s->closed)
        ttrpc_transport_close(s->t);
}

static void on_written(ttrpc_write_req *req, int status)
{
    out_req *o = CAA_CONTAINER_OF(req, out_req, req);
    side *s = o->s;
    if (status < 0)
        s->write_errors++;
    else
        s->writes_done++;
    if (o->seq < s->last_write_seq)
        s->order_ok = false;
    s->last_write_seq = o->seq;
    free(o);
}

static int side_write(side *s, const void *data, size_t len)
{
    out_req *o = xmalloc(sizeof(*o) + len);
    memset(&o->req, 0, sizeof(o->req));
    memcpy(o->data, data, len);
    o->s = s;
    o->seq = ++next_seq;
    o->req.data = o->data;
    o->req.len = len;
    o->req.cb = on_written;
    int r = ttrpc_transport_write(s->t, &o->req);
    if (r < 0)
        free(o);
    return r;
}

static void on_shutdown(ttrpc_transport *t, int status)
{
    side *s = t->owner;
    (void)status;
    if (s->read_end)
        side_close(s); /* both directions done */
}

static void on_read(ttrpc_transport *t, ssize_t nread, const uint8_t *data)
{
    side *s = t->owner;
    if (nread < 0) {
        s->read_end = nread;
        const caa_error *e = s->tls ? caa_tls_transport_error(t) : NULL;
        if (e)
            s->read_end_msg = xstrdup(e->msg);
        /* Answer a clean close with ours, then close. */
        if (nread == UV_EOF && s->tls && s->t->ops->shutdown(s->t, on_shutdown) == 0)
            return; /* closed from on_shutdown */
        side_close(s);
        return;
    }
    s->in = xrealloc(s->in, s->in_len + (size_t)nread);
    memcpy(s->in + s->in_len, data, (size_t)nread);
    s->in_len += (size_t)nread;
    if (s->echo)
        assert_int_equal(side_write(s, data, (size_t)nread), 0);
    if (s->expect && s->in_len == s->expect)
        assert_int_equal(s->t->ops->shutdown(s->t, on_shutdown), 0);
}

static void on_handshake(ttrpc_transport *t, int status, const caa_error *err, void *opaque)
{
    side *s = opaque;
    s->hs_calls++;
    s->hs_status = status;
    if (err)
        s->hs_msg = xstrdup(err->msg);
    if (status < 0) {
        side_close(s);
        return;
    }
    t->owner = s;
    t->on_read = on_read;
    assert_int_equal(ttrpc_transport_read_start(t), 0);
}

/* Wraps a connected inner transport, or keeps it plain. */
static void attach(side *s, ttrpc_transport *inner, SSL_CTX *ctx, caa_tls_role role, const char *name)
{
    s->t = inner;
    inner->owner = s;
    inner->on_close = on_closed;
    if (!s->tls) {
        inner->on_read = on_read;
        assert_int_equal(ttrpc_transport_read_start(inner), 0);
        return;
    }
    caa_error *err = NULL;
    s->t = caa_tls_transport_new(&loop, inner, ctx, role, name, &err);
    if (!s->t)
        fail_msg("wrap: %s", err->msg);
    s->t->owner = s;
    s->t->on_close = on_closed;
    assert_int_equal(caa_tls_transport_handshake(s->t, on_handshake, s, NULL), 0);
    /* Only once. */
    assert_int_equal(caa_tls_transport_handshake(s->t, on_handshake, s, &err), -EALREADY);
    caa_error_free(err);
}

static void on_connection(uv_stream_t *l, int status)
{
    assert_int_equal(status, 0);
    ttrpc_transport *inner = ttrpc_transport_uv_new(&loop, UV_TCP, NULL);
    assert_int_equal(uv_accept(l, ttrpc_transport_uv_stream(inner)), 0);
    srv.tls = srv_tls;
    attach(&srv, inner, srv_ctx, CAA_TLS_ROLE_SERVER, NULL);
    uv_close((uv_handle_t *)&listener, NULL);
}

static void (*client_hook)(void);

static void on_connect(uv_connect_t *req, int status)
{
    ttrpc_transport *inner = req->data;
    free(req);
    assert_int_equal(status, 0);
    attach(&cli, inner, cli_ctx, CAA_TLS_ROLE_CLIENT, cli_name);
    if (client_hook)
        client_hook();
}

/* Runs one connection: client (TLS when cctx) against a server (TLS when sctx). */
static void run(SSL_CTX *cctx, SSL_CTX *sctx, const char *name, void (*hook)(void))
{
    struct sockaddr_in a;
    int len = sizeof(a);

    memset(&cli, 0, sizeof(cli));
    memset(&srv, 0, sizeof(srv));
    cli.name = "client";
    srv.name = "server";
    cli.order_ok = srv.order_ok = true;
    cli.tls = cctx != NULL;
    srv_tls = sctx != NULL;
    cli_ctx = cctx;
    srv_ctx = sctx;
    cli_name = name;
    srv.echo = true;
    client_hook = hook;

    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(uv_tcp_init(&loop, &listener), 0);
    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(uv_tcp_bind(&listener, (struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&listener, 1, on_connection), 0);
    assert_int_equal(uv_tcp_getsockname(&listener, (struct sockaddr *)&a, &len), 0);

    ttrpc_transport *inner = ttrpc_transport_uv_new(&loop, UV_TCP, NULL);
    uv_connect_t *req = xnew0(uv_connect_t, 1);
    req->data = inner;
    assert_int_equal(
        uv_tcp_connect(req, (uv_tcp_t *)ttrpc_transport_uv_stream(inner), (struct sockaddr *)&a, on_connect),
        0);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    if (getenv("CAA_TEST_VERBOSE"))
        fprintf(stderr, "client hs %d '%s' end %zd '%s'; server hs %d '%s' end %zd '%s'\n", cli.hs_status,
                cli.hs_msg ? cli.hs_msg : "", cli.read_end, cli.read_end_msg ? cli.read_end_msg : "",
                srv.hs_status, srv.hs_msg ? srv.hs_msg : "", srv.read_end,
                srv.read_end_msg ? srv.read_end_msg : "");
}

static void side_done(side *s)
{
    free(s->hs_msg);
    free(s->in);
    free(s->read_end_msg);
}

static void expect_msg(const char *msg, const char *fragment)
{
    if (!msg || !strstr(msg, fragment))
        fail_msg("expected '%s' in '%s'", fragment, msg ? msg : "(none)");
}

static uint8_t *big;
static size_t big_len;

static void queue_exchange(void)
{
    /* Queued while the handshake is still running. */
    assert_int_equal(side_write(&cli, "hello ", 6), 0);
    assert_int_equal(side_write(&cli, "", 0), 0);
    assert_int_equal(side_write(&cli, big, big_len), 0);
    assert_int_equal(side_write(&cli, " end", 4), 0);
    cli.expect = 6 + big_len + 4;
}

static void test_echo(void **state)
{
    (void)state;
    /* Smaller under valgrind, which is slow at crypto. */
    big_len = getenv("CAA_UNDER_VALGRIND") ? 64 * 1024 : 1 << 20;
    big = xmalloc(big_len);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (uint8_t)(i * 13 + 1);
    SSL_CTX *cctx = tls_client_ctx(&mat, NULL), *sctx = tls_server_ctx(&mat, NULL);

    run(cctx, sctx, TEST_INSTANCE, queue_exchange);
    assert_int_equal(cli.hs_calls, 1);
    assert_int_equal(cli.hs_status, 0);
    assert_int_equal(srv.hs_calls, 1);
    assert_int_equal(srv.hs_status, 0);
    assert_int_equal(cli.writes_done, 4);
    assert_int_equal(cli.write_errors, 0);
    assert_true(cli.order_ok);
    assert_true(srv.order_ok);
    assert_int_equal(srv.write_errors, 0);
    assert_int_equal(srv.in_len, cli.expect);
    assert_int_equal(cli.in_len, cli.expect);
    assert_memory_equal(cli.in, "hello ", 6);
    assert_memory_equal(cli.in + 6, big, big_len);
    assert_memory_equal(cli.in + 6 + big_len, " end", 4);
    /* Both ends saw a clean close_notify. */
    assert_int_equal(srv.read_end, UV_EOF);
    assert_int_equal(cli.read_end, UV_EOF);
    assert_true(cli.closed);
    assert_true(srv.closed);

    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    free(big);
    side_done(&cli);
    side_done(&srv);
}

static void test_wrong_name(void **state)
{
    (void)state;
    SSL_CTX *cctx = tls_client_ctx(&mat, NULL), *sctx = tls_server_ctx(&mat, NULL);
    run(cctx, sctx, "podvm-someone-else", NULL);
    assert_int_equal(cli.hs_calls, 1);
    assert_int_equal(cli.hs_status, -EACCES);
    expect_msg(cli.hs_msg, "server certificate rejected: hostname mismatch");
    /* The alert went out before the client closed: the server knows why. */
    assert_int_equal(srv.hs_calls, 1);
    assert_int_equal(srv.hs_status, -EACCES);
    expect_msg(srv.hs_msg, "the client refused our certificate");
    assert_true(cli.closed && srv.closed);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    side_done(&cli);
    side_done(&srv);
}

static void queue_request(void)
{
    assert_int_equal(side_write(&cli, "request", 7), 0);
}

static void test_no_client_cert(void **state)
{
    (void)state;
    caa_tls_client_config cfg = {.ca = mat.ca_trust};
    SSL_CTX *cctx = NULL, *sctx = tls_server_ctx(&mat, NULL);
    assert_int_equal(caa_tls_client_ctx_new(&cfg, &cctx, NULL), 0);
    run(cctx, sctx, TEST_INSTANCE, queue_request);
    assert_int_equal(srv.hs_status, -EACCES);
    expect_msg(srv.hs_msg, "the client presented no certificate");
    assert_int_equal(srv.in_len, 0);
    /* TLS 1.3: the client's handshake succeeded; the refusal comes as a read error. */
    assert_int_equal(cli.hs_status, 0);
    assert_int_equal(cli.read_end, -EACCES);
    expect_msg(cli.read_end_msg, "the server requires a client certificate and none is configured");
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    side_done(&cli);
    side_done(&srv);
}

static const uint8_t ttrpc_frame[] = {0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x0a, 0x00};

static void queue_plain_frame(void)
{
    assert_int_equal(side_write(&cli, ttrpc_frame, sizeof(ttrpc_frame)), 0);
}

static void test_plain_client(void **state)
{
    (void)state;
    SSL_CTX *sctx = tls_server_ctx(&mat, NULL);
    run(NULL, sctx, NULL, queue_plain_frame);
    assert_int_equal(srv.hs_status, -EPROTO);
    expect_msg(srv.hs_msg, "the client is not speaking TLS (first byte 0x00");
    /* The plain client just sees the connection end. */
    assert_true(cli.read_end < 0);
    assert_true(cli.closed && srv.closed);
    SSL_CTX_free(sctx);
    side_done(&cli);
    side_done(&srv);
}

static void close_at_once(void)
{
    side_close(&cli);
}

static void test_close_during_handshake(void **state)
{
    (void)state;
    SSL_CTX *cctx = tls_client_ctx(&mat, NULL), *sctx = tls_server_ctx(&mat, NULL);
    run(cctx, sctx, TEST_INSTANCE, close_at_once);
    assert_int_equal(cli.hs_calls, 1);
    assert_int_equal(cli.hs_status, -ECANCELED);
    assert_int_equal(srv.hs_calls, 1);
    assert_true(srv.hs_status == -ECONNRESET || srv.hs_status == -EPROTO);
    assert_true(cli.closed && srv.closed);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    side_done(&cli);
    side_done(&srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo),
        cmocka_unit_test(test_wrong_name),
        cmocka_unit_test(test_no_client_cert),
        cmocka_unit_test(test_plain_client),
        cmocka_unit_test(test_close_during_handshake),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
