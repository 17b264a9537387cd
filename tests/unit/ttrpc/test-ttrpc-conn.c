/* The connection layer over a mock transport (the seam a TLS transport will
 * use): write back-pressure stops and resumes reading, write errors break
 * the connection, and server and client need nothing from uv streams. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ttrpc-conn.h"
#include "ttrpc-test-util.h"
#include "ttrpc-transport.h"
#include "ttrpc.h"
#include "xalloc.h"

#define MOCK_MAX_PENDING 64

typedef struct mock {
    ttrpc_transport base;
    uv_loop_t *loop;
    uv_idle_t closer;
    bool reading;
    int starts, stops;
    bool closing;
    bool *closed_flag;
    ttrpc_write_req *pending[MOCK_MAX_PENDING];
    size_t n_pending;
    size_t written;
} mock;

static int mock_read_start(ttrpc_transport *t)
{
    mock *m = (mock *)t;
    m->reading = true;
    m->starts++;
    return 0;
}

static void mock_read_stop(ttrpc_transport *t)
{
    mock *m = (mock *)t;
    m->reading = false;
    m->stops++;
}

static int mock_write(ttrpc_transport *t, ttrpc_write_req *req)
{
    mock *m = (mock *)t;
    if (m->closing)
        return -ENOTCONN;
    assert_true(m->n_pending < MOCK_MAX_PENDING);
    m->pending[m->n_pending++] = req;
    return 0;
}

static int mock_shutdown(ttrpc_transport *t, void (*cb)(ttrpc_transport *t, int status))
{
    (void)t;
    (void)cb;
    return -ENOTSUP;
}

/* Completes the oldest pending write. */
static void mock_complete(mock *m, int status)
{
    assert_true(m->n_pending > 0);
    ttrpc_write_req *req = m->pending[0];
    memmove(m->pending, m->pending + 1, (m->n_pending - 1) * sizeof(m->pending[0]));
    m->n_pending--;
    if (status == 0)
        m->written += req->len;
    req->cb(req, status);
}

static void mock_closed(uv_handle_t *h)
{
    mock *m = CAA_CONTAINER_OF(h, mock, closer);
    while (m->n_pending > 0)
        mock_complete(m, -ECANCELED);
    if (m->closed_flag)
        *m->closed_flag = true;
    m->base.on_close(&m->base);
    free(m);
}

static void mock_close(ttrpc_transport *t)
{
    mock *m = (mock *)t;
    if (m->closing)
        return;
    m->closing = true;
    m->reading = false;
    /* on_close must come later, on the loop */
    uv_idle_init(m->loop, &m->closer);
    uv_close((uv_handle_t *)&m->closer, mock_closed);
}

static const ttrpc_transport_ops mock_ops = {
    .name = "mock",
    .read_start = mock_read_start,
    .read_stop = mock_read_stop,
    .write = mock_write,
    .shutdown = mock_shutdown,
    .close = mock_close,
};

static mock *mock_new(uv_loop_t *loop, bool *closed_flag)
{
    mock *m = xnew0(mock, 1);
    m->base.ops = &mock_ops;
    m->loop = loop;
    m->closed_flag = closed_flag;
    return m;
}

static void mock_feed(mock *m, const uint8_t *data, size_t len)
{
    assert_true(m->reading);
    m->base.on_read(&m->base, (ssize_t)len, data);
}

/* ------------------------------------------------------------ server side */

static int echo_calls;

static void h_echo(ttrpc_call *c, void *opaque)
{
    (void)opaque;
    echo_calls++;
    size_t len;
    const uint8_t *p = ttrpc_call_payload(c, &len);
    ttrpc_call_reply(c, p, len);
}

static const ttrpc_method_entry methods[] = {{"Echo", h_echo}};

static void on_done(void *opaque)
{
    *(bool *)opaque = true;
}

static bool flag_set(void *arg)
{
    return *(bool *)arg;
}

static void test_write_backpressure(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    ttrpc_server *s;
    assert_int_equal(ttrpc_server_new(&loop, &s, NULL), 0);
    assert_int_equal(ttrpc_server_register(s, "t.S", methods, 1, NULL, NULL), 0);
    bool closed = false;
    mock *m = mock_new(&loop, &closed);
    assert_int_equal(ttrpc_server_adopt(s, &m->base, NULL), 0);
    assert_true(m->reading);

    /* 8 Echo requests of 300 KiB in one chunk: 2.4 MiB of replies. */
    const size_t pl = 300 * 1024, n = 8;
    uint8_t *payload = xcalloc(1, pl);
    size_t bl;
    uint8_t *body = ttrpc_request_encode("t.S", "Echo", payload, pl, 0, NULL, 0, &bl);
    uint8_t *all = xmalloc(n * (TTRPC_HEADER_SIZE + bl));
    for (size_t i = 0; i < n; i++) {
        uint8_t *f = all + i * (TTRPC_HEADER_SIZE + bl);
        ttrpc_frame_header h = {.length = (uint32_t)bl, .stream_id = (uint32_t)(2 * i + 1), .type = 1};
        ttrpc_header_encode(&h, f);
        memcpy(f + TTRPC_HEADER_SIZE, body, bl);
    }
    echo_calls = 0;
    mock_feed(m, all, n * (TTRPC_HEADER_SIZE + bl));
    assert_int_equal(echo_calls, n);
    assert_int_equal(m->n_pending, n);
    /* Over TTRPC_CONN_WRITE_HIGH queued: the peer is no longer read. */
    assert_false(m->reading);
    assert_int_equal(m->stops, 1);

    /* Draining below the mark resumes reading. */
    size_t reply_len = m->pending[0]->len;
    size_t queued = n * reply_len;
    while (queued > TTRPC_CONN_WRITE_HIGH) {
        assert_false(m->reading);
        mock_complete(m, 0);
        queued -= reply_len;
    }
    assert_true(m->reading);
    assert_int_equal(m->starts, 2);
    while (m->n_pending > 0)
        mock_complete(m, 0);
    assert_int_equal(m->written, n * reply_len);

    /* A failed write breaks the connection. */
    size_t fl;
    uint8_t *frame = ttrpc_frame_build(99, 1, 0, body, bl, &fl);
    mock_feed(m, frame, fl);
    assert_int_equal(m->n_pending, 1);
    mock_complete(m, -EPIPE);
    assert_true(m->closing);
    assert_true(tu_run_until(&loop, flag_set, &closed, 10000));
    assert_int_equal(ttrpc_server_connection_count(s), 0);

    bool done = false;
    ttrpc_server_close(s, on_done, &done);
    tu_loop_finish(&loop);
    assert_true(done);
    free(frame);
    free(all);
    free(body);
    free(payload);
}

/* ------------------------------------------------------------ client side */

typedef struct result {
    int done;
    int status;
    int code;
} result;

static void on_res(const ttrpc_result *r, void *opaque)
{
    result *x = opaque;
    x->done++;
    x->status = r->status;
    x->code = r->grpc_code;
}

static void test_client_on_mock(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    bool closed = false;
    mock *m = mock_new(&loop, &closed);
    ttrpc_client *c;
    assert_int_equal(ttrpc_client_new_on_transport(&loop, &m->base, &c, NULL), 0);
    result r1 = {0}, r2 = {0};
    assert_int_equal(ttrpc_client_call(c, "a.B", "C", NULL, 0, 0, NULL, 0, on_res, &r1, NULL), 0);
    assert_int_equal(ttrpc_client_call(c, "a.B", "C", NULL, 0, 0, NULL, 0, on_res, &r2, NULL), 0);
    assert_int_equal(m->n_pending, 2);
    /* stream ids 1 and 3 in submission order */
    ttrpc_frame_header h;
    ttrpc_header_decode(m->pending[0]->data, &h);
    assert_int_equal(h.stream_id, 1);
    ttrpc_header_decode(m->pending[1]->data, &h);
    assert_int_equal(h.stream_id, 3);
    mock_complete(m, 0);
    mock_complete(m, 0);
    /* answer 3 with an error, in two pieces */
    size_t len;
    uint8_t *resp = tu_hex("0000000a 00000003 02 00 0a08 0805 1204 6e6f7065", &len);
    mock_feed(m, resp, 7);
    assert_int_equal(r2.done, 0);
    mock_feed(m, resp + 7, len - 7);
    assert_int_equal(r2.done, 1);
    assert_int_equal(r2.code, GRPC_NOT_FOUND);
    free(resp);
    /* EOF fails the rest with -ECONNRESET */
    m->base.on_read(&m->base, UV_EOF, NULL);
    assert_true(tu_run_until(&loop, flag_set, &closed, 10000));
    assert_int_equal(r1.done, 1);
    assert_int_equal(r1.status, -ECONNRESET);
    ttrpc_client_close(c);
    tu_loop_finish(&loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_backpressure),
        cmocka_unit_test(test_client_on_mock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
