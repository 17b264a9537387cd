/* ttRPC server: dispatch, handler API, listeners, bad input, load and
 * clean shutdown (uv_loop_close() must succeed after every test). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "ttrpc-test-util.h"
#include "ttrpc-transport.h"
#include "ttrpc.h"
#include "xalloc.h"

#define MAX_HELD 8192

typedef struct fixture {
    uv_loop_t loop;
    char *dir;
    char *path;
    ttrpc_server *server;
    bool server_done;
    /* handler state */
    ttrpc_call *held[MAX_HELD];
    size_t n_held;
    size_t max_held;
    int cancelled;
    int fallback_calls;
    char last_md[64];
    int64_t last_timeout;
    uint32_t last_stream;
    uv_timer_t later;
} fixture;

static fixture *F; /* the handlers' view of the running test */

/* ---------------------------------------------------------- handlers */

static void h_echo(ttrpc_call *c, void *opaque)
{
    (void)opaque;
    size_t len;
    const uint8_t *p = ttrpc_call_payload(c, &len);
    ttrpc_call_reply(c, p, len);
}

static void h_md(ttrpc_call *c, void *opaque)
{
    (void)opaque;
    const char *v = ttrpc_call_metadata_get(c, "X-Trace");
    snprintf(F->last_md, sizeof(F->last_md), "%zu:%s:%s=%s", ttrpc_call_metadata_count(c), v ? v : "(none)",
             ttrpc_call_metadata_key(c, 1) ? ttrpc_call_metadata_key(c, 1) : "",
             ttrpc_call_metadata_value(c, 1) ? ttrpc_call_metadata_value(c, 1) : "");
    F->last_timeout = ttrpc_call_timeout_ns(c);
    F->last_stream = ttrpc_call_stream_id(c);
    assert_null(ttrpc_call_metadata_key(c, 99));
    assert_null(ttrpc_call_metadata_get(c, "absent"));
    ttrpc_call_reply(c, (const uint8_t *)"ok", 2);
}

static void on_cancel(ttrpc_call *c, void *opaque)
{
    (void)opaque;
    assert_false(ttrpc_call_connection_alive(c));
    F->cancelled++;
}

/* Keeps the call for the test to answer later. */
static void h_hold(ttrpc_call *c, void *opaque)
{
    (void)opaque;
    assert_true(ttrpc_call_connection_alive(c));
    assert_true(F->n_held < MAX_HELD);
    ttrpc_call_set_cancel_cb(c, on_cancel, NULL);
    F->held[F->n_held++] = c;
    if (F->n_held > F->max_held)
        F->max_held = F->n_held;
}

static void on_later(uv_timer_t *t)
{
    ttrpc_call *c = t->data;
    ttrpc_call_reply(c, (const uint8_t *)"later", 5);
}

static void h_later(ttrpc_call *c, void *opaque)
{
    (void)opaque;
    F->later.data = c;
    uv_timer_start(&F->later, on_later, 20, 0);
}

static void h_raw(ttrpc_call *c, void *opaque)
{
    (void)opaque;
    size_t len;
    const uint8_t *req = ttrpc_call_request(c, &len);
    /* Relay-style: answer with a ready-made Response carrying the raw Request. */
    size_t rl;
    uint8_t *resp = ttrpc_response_encode(GRPC_OK, NULL, req, len, &rl);
    ttrpc_call_reply_response(c, resp, rl);
    free(resp);
}

static void h_nil(ttrpc_call *c, void *opaque)
{
    (void)opaque;
    ttrpc_call_reply_message(c, NULL);
}

static void h_fallback(ttrpc_call *c, void *opaque)
{
    assert_ptr_equal(opaque, F);
    F->fallback_calls++;
    ttrpc_call_reply_error(c, GRPC_PERMISSION_DENIED, "fallback %s/%s", ttrpc_call_service(c),
                           ttrpc_call_method(c));
}

static const ttrpc_method_entry test_methods[] = {
    {"Echo", h_echo}, {"Md", h_md}, {"Hold", h_hold}, {"Later", h_later}, {"Raw", h_raw}, {"Nil", h_nil},
};

/* ---------------------------------------------------------- fixture */

static int setup(void **state)
{
    fixture *f = xnew0(fixture, 1);
    F = f;
    uv_loop_init(&f->loop);
    uv_timer_init(&f->loop, &f->later);
    f->dir = caa_test_tmpdir_new("ttrpc-test");
    f->path = tu_path(f->dir, "srv.sock");
    assert_int_equal(ttrpc_server_new(&f->loop, &f->server, NULL), 0);
    assert_int_equal(ttrpc_server_register(f->server, "test.Svc", test_methods, 6, NULL, NULL), 0);
    assert_int_equal(ttrpc_server_listen_unix(f->server, f->path, 0660, NULL), 0);
    *state = f;
    return 0;
}

static void on_server_done(void *opaque)
{
    ((fixture *)opaque)->server_done = true;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->server)
        ttrpc_server_close(f->server, on_server_done, f);
    /* Calls outlive the server: answering them now only frees them. */
    for (size_t i = 0; i < f->n_held; i++)
        ttrpc_call_reply(f->held[i], NULL, 0);
    uv_close((uv_handle_t *)&f->later, NULL);
    tu_loop_finish(&f->loop);
    assert_true(f->server_done);
    struct stat st;
    assert_int_equal(stat(f->path, &st), -1); /* socket removed */
    free(f->path);
    caa_test_tmpdir_remove(f->dir);
    free(f);
    F = NULL;
    return 0;
}

/* A client helper that collects results by call index. */
typedef struct res_slot {
    int done;
    int status;
    int code;
    char msg[160];
    uint8_t payload[256];
    size_t payload_len;
} res_slot;

typedef struct cl {
    ttrpc_client *c;
    bool connected;
    bool closed;
    int connect_status;
} cl;

static void on_connect(ttrpc_client *c, int status, const caa_error *err, void *opaque)
{
    (void)err;
    cl *x = opaque;
    x->c = c;
    x->connect_status = status;
    x->connected = true;
}

static bool cl_ready(void *arg)
{
    return ((cl *)arg)->connected;
}

static void cl_connect(fixture *f, cl *x)
{
    memset(x, 0, sizeof(*x));
    assert_int_equal(ttrpc_client_connect_unix(&f->loop, f->path, on_connect, x, NULL), 0);
    assert_true(tu_run_until(&f->loop, cl_ready, x, 10000));
    assert_int_equal(x->connect_status, 0);
}

static void on_res(const ttrpc_result *r, void *opaque)
{
    res_slot *s = opaque;
    s->done++;
    s->status = r->status;
    s->code = r->grpc_code;
    snprintf(s->msg, sizeof(s->msg), "%s", r->message);
    s->payload_len = r->payload_len < sizeof(s->payload) ? r->payload_len : sizeof(s->payload);
    if (r->payload_len)
        memcpy(s->payload, r->payload, s->payload_len);
}

static bool slot_done(void *arg)
{
    return ((res_slot *)arg)->done > 0;
}

static void call_and_wait(fixture *f, cl *x, const char *svc, const char *method, const char *payload,
                          res_slot *s)
{
    memset(s, 0, sizeof(*s));
    assert_int_equal(ttrpc_client_call(x->c, svc, method, (const uint8_t *)payload,
                                       payload ? strlen(payload) : 0, 0, NULL, 0, on_res, s, NULL),
                     0);
    assert_true(tu_run_until(&f->loop, slot_done, s, 10000));
    assert_int_equal(s->done, 1);
    assert_int_equal(s->status, 0);
}

typedef struct count_arg {
    size_t *v;
    size_t want;
} count_arg;

static bool count_reached(void *arg)
{
    count_arg *a = arg;
    return *a->v >= a->want;
}

static bool server_done(void *arg)
{
    return ((fixture *)arg)->server_done;
}

static bool one_conn(void *arg)
{
    return ttrpc_server_connection_count(arg) == 1;
}

static bool conns_zero(void *arg)
{
    return ttrpc_server_connection_count(arg) == 0;
}

/* ---------------------------------------------------------- dispatch */

static void test_dispatch(void **state)
{
    fixture *f = *state;
    cl x;
    cl_connect(f, &x);
    res_slot s;

    call_and_wait(f, &x, "test.Svc", "Echo", "hello", &s);
    assert_int_equal(s.code, 0);
    assert_int_equal(s.payload_len, 5);
    assert_memory_equal(s.payload, "hello", 5);

    call_and_wait(f, &x, "test.Svc", "Missing", "x", &s);
    assert_int_equal(s.code, GRPC_UNIMPLEMENTED);
    assert_string_equal(s.msg, "method Missing");

    call_and_wait(f, &x, "test.Other", "Echo", "x", &s);
    assert_int_equal(s.code, GRPC_UNIMPLEMENTED);
    assert_string_equal(s.msg, "service test.Other");

    call_and_wait(f, &x, "test.Svc", "Nil", NULL, &s);
    assert_int_equal(s.code, GRPC_UNKNOWN);
    assert_string_equal(s.msg, "ttrpc: marshal called with nil");

    /* Registration errors. */
    caa_error *err = NULL;
    assert_int_equal(ttrpc_server_register(f->server, "test.Svc", test_methods, 1, NULL, &err), -EEXIST);
    caa_error_free(err);

    /* The fallback takes both unknown services and unknown methods. */
    ttrpc_server_set_fallback(f->server, h_fallback, f);
    call_and_wait(f, &x, "test.Other", "Echo", "x", &s);
    assert_int_equal(s.code, GRPC_PERMISSION_DENIED);
    assert_string_equal(s.msg, "fallback test.Other/Echo");
    call_and_wait(f, &x, "test.Svc", "Missing", "x", &s);
    assert_string_equal(s.msg, "fallback test.Svc/Missing");
    assert_int_equal(f->fallback_calls, 2);
    call_and_wait(f, &x, "test.Svc", "Echo", "y", &s);
    assert_int_equal(s.code, 0);

    /* Raw Request bytes and a ready-made Response pass through. */
    call_and_wait(f, &x, "test.Svc", "Raw", "zz", &s);
    size_t want_len;
    uint8_t *want = ttrpc_request_encode("test.Svc", "Raw", (const uint8_t *)"zz", 2, 0, NULL, 0, &want_len);
    assert_int_equal(s.payload_len, want_len);
    assert_memory_equal(s.payload, want, want_len);
    free(want);

    ttrpc_client_close(x.c);
}

static void test_metadata_and_deadline(void **state)
{
    fixture *f = *state;
    cl x;
    cl_connect(f, &x);
    res_slot s = {0};
    ttrpc_kv md[] = {{"x-trace", "abc"}, {"k2", "v2"}, {"x-trace", "second"}};
    assert_int_equal(ttrpc_client_call(x.c, "test.Svc", "Md", NULL, 0, 5000000000LL, md, 3, on_res, &s, NULL),
                     0);
    assert_true(tu_run_until(&f->loop, slot_done, &s, 10000));
    assert_int_equal(s.code, 0);
    assert_string_equal(f->last_md, "3:abc:k2=v2");
    assert_true(f->last_timeout == 5000000000LL);
    assert_int_equal(f->last_stream, 1);
    ttrpc_client_close(x.c);
}

static void test_reply_later(void **state)
{
    fixture *f = *state;
    cl x;
    cl_connect(f, &x);
    res_slot s;
    call_and_wait(f, &x, "test.Svc", "Later", NULL, &s);
    assert_int_equal(s.payload_len, 5);
    assert_memory_equal(s.payload, "later", 5);
    ttrpc_client_close(x.c);
}

/* Many calls in flight, answered in reverse order. */
static void test_out_of_order_many_inflight(void **state)
{
    fixture *f = *state;
    cl x;
    cl_connect(f, &x);
    const size_t n = 1000;
    res_slot *slots = xnew0(res_slot, n);
    for (size_t i = 0; i < n; i++) {
        char p[16];
        snprintf(p, sizeof(p), "%zu", i);
        assert_int_equal(ttrpc_client_call(x.c, "test.Svc", "Hold", (const uint8_t *)p, strlen(p), 0, NULL, 0,
                                           on_res, &slots[i], NULL),
                         0);
    }
    assert_int_equal(ttrpc_client_inflight(x.c), n);
    count_arg a = {&f->n_held, n};
    assert_true(tu_run_until(&f->loop, count_reached, &a, 20000));
    while (f->n_held > 0) {
        ttrpc_call *c = f->held[--f->n_held];
        size_t len;
        const uint8_t *p = ttrpc_call_payload(c, &len);
        ttrpc_call_reply(c, p, len); /* echo the index */
    }
    size_t done = 0;
    for (size_t i = 0; i < n; i++) {
        /* run until this slot is done */
        assert_true(tu_run_until(&f->loop, slot_done, &slots[i], 10000));
        char p[16];
        snprintf(p, sizeof(p), "%zu", i);
        assert_int_equal(slots[i].payload_len, strlen(p));
        assert_memory_equal(slots[i].payload, p, strlen(p));
        done++;
    }
    assert_int_equal(done, n);
    assert_int_equal(ttrpc_client_inflight(x.c), 0);
    free(slots);
    ttrpc_client_close(x.c);
}

/* Reading stops at the in-flight cap and resumes when calls finish. */
static void test_inflight_cap(void **state)
{
    fixture *f = *state;
    tu_raw *r = tu_raw_connect(&f->loop, f->path);
    assert_non_null(r);
    const size_t n = 6000;
    /* "test.Svc"/"Hold" Request frames, written in one go. */
    size_t bl;
    uint8_t *body = ttrpc_request_encode("test.Svc", "Hold", NULL, 0, 0, NULL, 0, &bl);
    size_t fl = TTRPC_HEADER_SIZE + bl;
    uint8_t *all = xmalloc(n * fl);
    for (size_t i = 0; i < n; i++) {
        ttrpc_frame_header h = {.length = (uint32_t)bl, .stream_id = (uint32_t)(2 * i + 1), .type = 1};
        ttrpc_header_encode(&h, all + i * fl);
        memcpy(all + i * fl + TTRPC_HEADER_SIZE, body, bl);
    }
    tu_raw_send(r, all, n * fl);
    free(all);
    free(body);

    count_arg a = {&f->n_held, 4096};
    assert_true(tu_run_until(&f->loop, count_reached, &a, 20000));
    /* Give the loop a moment: nothing more may be read while held. */
    for (int i = 0; i < 50; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_true(f->n_held < n);
    /* Soft cap: at most one read buffer of extra frames. */
    assert_true(f->n_held <= 4096 + 65536 / fl + 1);
    size_t first = f->n_held;

    /* Finish them: the rest comes in. */
    while (f->n_held > 0)
        ttrpc_call_reply(f->held[--f->n_held], NULL, 0);
    a.want = n - first;
    assert_true(tu_run_until(&f->loop, count_reached, &a, 20000));
    assert_int_equal(f->n_held, n - first);
    while (f->n_held > 0)
        ttrpc_call_reply(f->held[--f->n_held], NULL, 0);
    /* Every reply is an empty success Response. */
    assert_true(tu_raw_wait(r, n * 10));
    assert_int_equal(r->len, n * 10);
    tu_raw_close(r);
}

static bool cancelled_one(void *arg)
{
    return ((fixture *)arg)->cancelled > 0;
}

static void test_cancel_on_disconnect(void **state)
{
    fixture *f = *state;
    cl x;
    cl_connect(f, &x);
    res_slot s = {0};
    assert_int_equal(ttrpc_client_call(x.c, "test.Svc", "Hold", NULL, 0, 0, NULL, 0, on_res, &s, NULL), 0);
    count_arg a = {&f->n_held, 1};
    assert_true(tu_run_until(&f->loop, count_reached, &a, 10000));
    ttrpc_client_close(x.c);
    assert_int_equal(s.status, -ECANCELED);
    assert_true(tu_run_until(&f->loop, cancelled_one, f, 10000));
    assert_int_equal(f->cancelled, 1);
    ttrpc_call *c = f->held[--f->n_held];
    assert_false(ttrpc_call_connection_alive(c));
    ttrpc_call_reply(c, (const uint8_t *)"late", 4); /* only frees */
    assert_true(tu_run_until(&f->loop, conns_zero, f->server, 10000));
}

/* Closing the server with calls pending: cancel callbacks run, the
 * handlers' later replies just free, and the loop ends clean. */
static void test_close_with_pending_calls(void **state)
{
    fixture *f = *state;
    cl x;
    cl_connect(f, &x);
    res_slot s[3] = {0};
    for (int i = 0; i < 3; i++)
        assert_int_equal(ttrpc_client_call(x.c, "test.Svc", "Hold", NULL, 0, 0, NULL, 0, on_res, &s[i], NULL),
                         0);
    count_arg a = {&f->n_held, 3};
    assert_true(tu_run_until(&f->loop, count_reached, &a, 10000));
    ttrpc_server_close(f->server, on_server_done, f);
    f->server = NULL;
    assert_true(tu_run_until(&f->loop, slot_done, &s[2], 10000));
    assert_int_equal(f->cancelled, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(s[i].status, -ECONNRESET);
    assert_true(f->server_done);
    ttrpc_client_close(x.c);
}

/* ---------------------------------------------------------- listeners */

static void test_unix_listener(void **state)
{
    fixture *f = *state;
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0660);

    /* A stale socket file is replaced. */
    char *stale = tu_path(f->dir, "stale.sock");
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", stale);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(fd);
    assert_int_equal(ttrpc_server_listen_unix(f->server, stale, 0600, NULL), 0);
    assert_int_equal(stat(stale, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    tu_raw *r = tu_raw_connect(&f->loop, stale);
    assert_non_null(r);
    tu_raw_send_hex(r, "00000000 00000001 01 00");
    tu_raw_expect_hex(r, "0000000e 00000001 02 00 0a0c 080c 1208 7365727669636520");
    tu_raw_close(r);

    /* A regular file is not removed. */
    char *reg = tu_path(f->dir, "regular");
    FILE *fp = fopen(reg, "w");
    fclose(fp);
    caa_error *err = NULL;
    assert_int_equal(ttrpc_server_listen_unix(f->server, reg, 0600, &err), -EEXIST);
    assert_non_null(err);
    caa_error_free(err);
    assert_int_equal(stat(reg, &st), 0);

    ttrpc_server_close(f->server, on_server_done, f);
    f->server = NULL;
    assert_false(f->server_done); /* never from inside the close call */
    assert_true(tu_run_until(&f->loop, server_done, f, 10000));
    assert_int_equal(stat(stale, &st), -1);
    assert_int_equal(stat(f->path, &st), -1);
    free(stale);
    free(reg);
}

static void test_tcp_listener(void **state)
{
    fixture *f = *state;
    assert_int_equal(ttrpc_server_tcp_port(f->server), 0);
    assert_int_equal(ttrpc_server_listen_tcp(f->server, "127.0.0.1", 0, NULL), 0);
    uint16_t port = ttrpc_server_tcp_port(f->server);
    assert_true(port > 0);
    caa_error *err = NULL;
    assert_int_equal(ttrpc_server_listen_tcp(f->server, "not-an-ip", 0, &err), -EINVAL);
    caa_error_free(err);

    cl x = {0};
    assert_int_equal(ttrpc_client_connect_tcp(&f->loop, "127.0.0.1", port, on_connect, &x, NULL), 0);
    assert_true(tu_run_until(&f->loop, cl_ready, &x, 10000));
    assert_int_equal(x.connect_status, 0);
    res_slot s;
    call_and_wait(f, &x, "test.Svc", "Echo", "tcp", &s);
    assert_memory_equal(s.payload, "tcp", 3);
    ttrpc_client_close(x.c);

    /* by name */
    memset(&x, 0, sizeof(x));
    assert_int_equal(ttrpc_client_connect_tcp(&f->loop, "localhost", port, on_connect, &x, NULL), 0);
    assert_true(tu_run_until(&f->loop, cl_ready, &x, 10000));
    if (x.connect_status == 0) {
        call_and_wait(f, &x, "test.Svc", "Echo", "name", &s);
        ttrpc_client_close(x.c);
    }
}

/* Server and client over a socketpair through the transport seam. */
static void test_adopt_socketpair(void **state)
{
    fixture *f = *state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    ttrpc_transport *ts = ttrpc_transport_uv_from_fd(&f->loop, sv[0], NULL);
    ttrpc_transport *tc = ttrpc_transport_uv_from_fd(&f->loop, sv[1], NULL);
    assert_non_null(ts);
    assert_non_null(tc);
    assert_int_equal(ttrpc_server_adopt(f->server, ts, NULL), 0);
    assert_int_equal(ttrpc_server_connection_count(f->server), 1);
    cl x = {.connected = true};
    assert_int_equal(ttrpc_client_new_on_transport(&f->loop, tc, &x.c, NULL), 0);
    res_slot s;
    call_and_wait(f, &x, "test.Svc", "Echo", "pair", &s);
    assert_int_equal(s.payload_len, 4);
    assert_memory_equal(s.payload, "pair", 4);
    ttrpc_client_close(x.c);
    assert_true(tu_run_until(&f->loop, conns_zero, f->server, 10000));

    /* a bad fd fails and is not leaked */
    caa_error *err = NULL;
    assert_null(ttrpc_transport_uv_from_fd(&f->loop, -1, &err));
    assert_non_null(err);
    caa_error_free(err);
}

/* ---------------------------------------------------------- bad input */

/* Expected error Response frame, encoded by hand (independent of protobuf-c). */
static void expect_status(tu_raw *r, uint32_t sid, int code, const char *msg)
{
    size_t ml = strlen(msg);
    assert_true(ml < 120);
    uint8_t f[160];
    size_t sl = 4 + ml;
    ttrpc_frame_header h = {.length = (uint32_t)(2 + sl), .stream_id = sid, .type = TTRPC_TYPE_RESPONSE};
    ttrpc_header_encode(&h, f);
    uint8_t *b = f + TTRPC_HEADER_SIZE;
    b[0] = 0x0a;
    b[1] = (uint8_t)sl;
    b[2] = 0x08;
    b[3] = (uint8_t)code;
    b[4] = 0x12;
    b[5] = (uint8_t)ml;
    memcpy(b + 6, msg, ml);
    size_t len = TTRPC_HEADER_SIZE + 2 + sl;
    assert_true(tu_raw_wait(r, len));
    assert_memory_equal(r->buf, f, len);
    tu_raw_consume(r, len);
}

static void send_request(tu_raw *r, uint32_t sid, const char *svc, const char *method, const char *payload)
{
    size_t bl;
    uint8_t *body = ttrpc_request_encode(svc, method, (const uint8_t *)payload, payload ? strlen(payload) : 0,
                                         0, NULL, 0, &bl);
    size_t fl;
    uint8_t *frame = ttrpc_frame_build(sid, TTRPC_TYPE_REQUEST, 0, body, bl, &fl);
    tu_raw_send(r, frame, fl);
    free(frame);
    free(body);
}

static void expect_echo(tu_raw *r, uint32_t sid, const char *payload)
{
    size_t pl = strlen(payload);
    uint8_t f[64];
    ttrpc_frame_header h = {.length = (uint32_t)(2 + pl), .stream_id = sid, .type = TTRPC_TYPE_RESPONSE};
    ttrpc_header_encode(&h, f);
    f[10] = 0x12;
    f[11] = (uint8_t)pl;
    memcpy(f + 12, payload, pl);
    assert_true(tu_raw_wait(r, 12 + pl));
    assert_memory_equal(r->buf, f, 12 + pl);
    tu_raw_consume(r, 12 + pl);
}

static void test_bad_frames_keep_connection(void **state)
{
    fixture *f = *state;
    tu_raw *r = tu_raw_connect(&f->loop, f->path);
    assert_non_null(r);

    /* undecodable Request */
    tu_raw_send_hex(r, "00000002 00000001 01 00 0a05");
    expect_status(r, 1, GRPC_INVALID_ARGUMENT,
                  "unmarshal request error: proto: cannot parse invalid wire-format data");
    /* Data frame on a stream that is not active */
    tu_raw_send_hex(r, "00000001 00000063 03 00 00");
    expect_status(r, 0x63, GRPC_INVALID_ARGUMENT, "StreamID is no longer active");
    /* unknown frame type: ignored, the next answer is for the next request */
    tu_raw_send_hex(r, "00000003 00000065 07 00 010203");
    send_request(r, 0x67, "test.Svc", "Echo", "a");
    expect_echo(r, 0x67, "a");
    assert_int_equal(r->len, 0);
    /* even and reused stream ids */
    send_request(r, 0x68, "test.Svc", "Echo", "b");
    expect_status(r, 0x68, GRPC_INVALID_ARGUMENT, "StreamID must be odd for client initiated streams");
    send_request(r, 0x67, "test.Svc", "Echo", "c");
    expect_status(r, 0x67, GRPC_INVALID_ARGUMENT, "StreamID cannot be re-used and must increment");
    send_request(r, 0x01, "test.Svc", "Echo", "c");
    expect_status(r, 0x01, GRPC_INVALID_ARGUMENT, "StreamID cannot be re-used and must increment");
    /* unknown service and method */
    send_request(r, 0x69, "nope.Svc", "Echo", NULL);
    expect_status(r, 0x69, GRPC_UNIMPLEMENTED, "service nope.Svc");
    send_request(r, 0x6b, "test.Svc", "Nope", NULL);
    expect_status(r, 0x6b, GRPC_UNIMPLEMENTED, "method Nope");

    /* over 4 MiB: RESOURCE_EXHAUSTED on that stream, body discarded */
    const uint32_t big = 5u << 20;
    uint8_t hdr[TTRPC_HEADER_SIZE];
    ttrpc_frame_header h = {.length = big, .stream_id = 0x6d, .type = TTRPC_TYPE_REQUEST};
    ttrpc_header_encode(&h, hdr);
    tu_raw_send(r, hdr, sizeof(hdr));
    uint8_t *junk = xcalloc(1, big);
    tu_raw_send(r, junk, big);
    free(junk);
    expect_status(r, 0x6d, GRPC_RESOURCE_EXHAUSTED,
                  "message length 5242880 exceed maximum message size of 4194304");
    /* ... and the connection keeps working */
    send_request(r, 0x6f, "test.Svc", "Echo", "still");
    expect_echo(r, 0x6f, "still");

    /* Data on a live (held) unary stream is ignored. */
    send_request(r, 0x71, "test.Svc", "Hold", NULL);
    count_arg a = {&f->n_held, 1};
    assert_true(tu_run_until(&f->loop, count_reached, &a, 10000));
    tu_raw_send_hex(r, "00000001 00000071 03 01 00");
    send_request(r, 0x73, "test.Svc", "Echo", "d");
    expect_echo(r, 0x73, "d");
    ttrpc_call_reply(f->held[--f->n_held], (const uint8_t *)"e", 1);
    expect_echo(r, 0x71, "e");
    assert_int_equal(ttrpc_server_connection_count(f->server), 1);
    tu_raw_close(r);
    assert_true(tu_run_until(&f->loop, conns_zero, f->server, 10000));
}

static void test_truncated_then_disconnect(void **state)
{
    fixture *f = *state;
    static const char *const partial[] = {
        "000000",                               /* truncated header */
        "00000064 00000001 01 00 0a0474657374", /* body cut short */
        "00500000 00000001 01 00 00000000",     /* inside an oversize body */
    };
    for (size_t i = 0; i < sizeof(partial) / sizeof(partial[0]); i++) {
        tu_raw *r = tu_raw_connect(&f->loop, f->path);
        assert_non_null(r);
        tu_raw_send_hex(r, partial[i]);
        assert_true(tu_run_until(&f->loop, one_conn, f->server, 10000));
        tu_raw_close(r);
        assert_true(tu_run_until(&f->loop, conns_zero, f->server, 10000));
    }
    /* still serving */
    tu_raw *r = tu_raw_connect(&f->loop, f->path);
    send_request(r, 1, "test.Svc", "Echo", "ok");
    expect_echo(r, 1, "ok");
    tu_raw_close(r);
}

/* ---------------------------------------------------------- churn */

typedef struct churn {
    const char *path;
    size_t n;
    size_t failed;
    uv_async_t async;
    bool finished;
    /* steady client */
    cl x;
    res_slot slot;
    size_t answers;
    bool stop;
} churn;

static void *churn_thread(void *arg)
{
    churn *c = arg;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", c->path);
    static const uint8_t partial_hdr[] = {0, 0, 0};
    static const uint8_t partial_body[] = {0, 0, 0, 100, 0, 0, 0, 1, 1, 0, 0x0a, 0x04};
    static const uint8_t even[] = {0, 0, 0, 0, 0, 0, 0, 2, 1, 0};
    for (size_t i = 0; i < c->n; i++) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
            c->failed++;
            if (fd >= 0)
                close(fd);
            continue;
        }
        ssize_t w = 0;
        switch (i % 4) {
        case 1:
            w = write(fd, partial_hdr, sizeof(partial_hdr));
            break;
        case 2:
            w = write(fd, partial_body, sizeof(partial_body));
            break;
        case 3:
            w = write(fd, even, sizeof(even)); /* answered into a closed socket */
            break;
        }
        (void)w;
        close(fd);
    }
    uv_async_send(&c->async);
    return NULL;
}

static void on_churn_done(uv_async_t *a)
{
    churn *c = a->data;
    c->finished = true;
}

static void on_steady(const ttrpc_result *r, void *opaque)
{
    churn *c = opaque;
    assert_int_equal(r->status, 0);
    assert_int_equal(r->grpc_code, 0);
    assert_int_equal(r->payload_len, 6);
    assert_memory_equal(r->payload, "steady", 6);
    c->answers++;
    if (!c->stop)
        assert_int_equal(ttrpc_client_call(c->x.c, "test.Svc", "Echo", (const uint8_t *)"steady", 6, 0, NULL,
                                           0, on_steady, c, NULL),
                         0);
}

static bool churn_finished(void *arg)
{
    churn *c = arg;
    return c->finished && c->answers >= 10;
}

static bool steady_idle(void *arg)
{
    churn *c = arg;
    return ttrpc_client_inflight(c->x.c) == 0;
}

static void test_connection_churn(void **state)
{
    fixture *f = *state;
    churn c = {.path = f->path, .n = tu_under_valgrind() ? 300 : 10000};
    uv_async_init(&f->loop, &c.async, on_churn_done);
    c.async.data = &c;
    cl_connect(f, &c.x);
    assert_int_equal(ttrpc_client_call(c.x.c, "test.Svc", "Echo", (const uint8_t *)"steady", 6, 0, NULL, 0,
                                       on_steady, &c, NULL),
                     0);

    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, churn_thread, &c), 0);
    bool ok = tu_run_until(&f->loop, churn_finished, &c, 120000);
    pthread_join(t, NULL);
    assert_true(ok);
    assert_int_equal(c.failed, 0);
    c.stop = true;
    assert_true(tu_run_until(&f->loop, steady_idle, &c, 10000));
    assert_true(tu_run_until(&f->loop, one_conn, f->server, 20000));
    fprintf(stderr, "# %zu connections churned, %zu answers meanwhile\n", c.n, c.answers);
    ttrpc_client_close(c.x.c);
    uv_close((uv_handle_t *)&c.async, NULL);
    assert_true(tu_run_until(&f->loop, conns_zero, f->server, 10000));
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dispatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metadata_and_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reply_later, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_order_many_inflight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inflight_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_on_disconnect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_with_pending_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unix_listener, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tcp_listener, setup, teardown),
        cmocka_unit_test_setup_teardown(test_adopt_socketpair, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_frames_keep_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_then_disconnect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_churn, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
