/* The relay (agent-protocol/relay/relay.c) between our own ttRPC client and
 * server on unix sockets, one loop: pass-through, rewrites, waiting for an
 * upstream (flush, expiry, deadline shortened by the wait), DOWN, upstream
 * breaking with calls in flight, downstream leaving with calls in flight,
 * and close with work pending (leaks show under ASan/valgrind). */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "relay.h"
#include "ttrpc-test-util.h"
#include "ttrpc.h"
#include "xalloc.h"

#define SVC "t.S"
#define MAX_HELD 8

typedef struct upstream {
    ttrpc_server *s;
    ttrpc_call *held[MAX_HELD];
    size_t n_held;
    int64_t last_timeout_ns;
    char last_payload[64];
    bool closed;
} upstream;

typedef struct result {
    bool done;
    int status;
    int code;
    char msg[200];
    char payload[128];
    size_t len;
} result;

typedef struct fx {
    uv_loop_t loop;
    char *dir, *up_path, *down_path;
    upstream up;
    caa_relay *relay;
    ttrpc_client *down;
    ttrpc_client *upc; /* upstream client being connected */
    bool upc_done;
    int lost, wanted;
    bool relay_closed;
    caa_relay_rewrite rw[3];
} fx;

/* ------------------------------------------------------------ upstream server */

static void h_echo(ttrpc_call *c, void *opaque)
{
    (void)opaque;
    size_t n;
    const uint8_t *p = ttrpc_call_payload(c, &n);
    ttrpc_call_reply(c, p, n);
}

static void h_record(ttrpc_call *c, void *opaque)
{
    upstream *u = opaque;
    size_t n;
    const uint8_t *p = ttrpc_call_payload(c, &n);
    snprintf(u->last_payload, sizeof(u->last_payload), "%.*s", (int)n, p ? (const char *)p : "");
    u->last_timeout_ns = ttrpc_call_timeout_ns(c);
    ttrpc_call_reply(c, p, n);
}

static void h_hold(ttrpc_call *c, void *opaque)
{
    upstream *u = opaque;
    assert_true(u->n_held < MAX_HELD);
    u->held[u->n_held++] = c;
}

static const ttrpc_method_entry methods[] = {
    {"Echo", h_echo}, {"Rewrite", h_record}, {"Record", h_record},
    {"Hold", h_hold}, {"Reject", h_echo},    {"Grow", h_echo},
};

static void on_up_closed(void *opaque)
{
    ((upstream *)opaque)->closed = true;
}

static void upstream_start(fx *f)
{
    memset(&f->up, 0, sizeof(f->up));
    assert_int_equal(ttrpc_server_new(&f->loop, &f->up.s, NULL), 0);
    assert_int_equal(ttrpc_server_register(f->up.s, SVC, methods, CAA_ARRAY_SIZE(methods), &f->up, NULL), 0);
    assert_int_equal(ttrpc_server_listen_unix(f->up.s, f->up_path, 0600, NULL), 0);
}

static bool up_closed(void *arg)
{
    return ((fx *)arg)->up.closed;
}

static void upstream_stop(fx *f)
{
    ttrpc_server_close(f->up.s, on_up_closed, &f->up);
    assert_true(tu_run_until(&f->loop, up_closed, f, 5000));
    /* Held calls were released by the server's close (their connection ended). */
    for (size_t i = 0; i < f->up.n_held; i++)
        ttrpc_call_reply(f->up.held[i], NULL, 0);
    f->up.n_held = 0;
}

static bool up_held(void *arg)
{
    fx *f = arg;
    return f->up.n_held > 0;
}

/* ------------------------------------------------------------ rewrites */

static int rw_prefix(void *opaque, const uint8_t *p, size_t n, uint8_t **ret, size_t *ret_len,
                     caa_error **err)
{
    (void)opaque;
    (void)err;
    *ret = xmalloc(n + 3);
    memcpy(*ret, "rw:", 3);
    memcpy(*ret + 3, p, n);
    *ret_len = n + 3;
    return 0;
}

static int rw_reject(void *opaque, const uint8_t *p, size_t n, uint8_t **ret, size_t *ret_len,
                     caa_error **err)
{
    (void)opaque;
    (void)p;
    (void)n;
    (void)ret;
    (void)ret_len;
    return caa_error_set(err, -EINVAL, "not a message");
}

static int rw_grow(void *opaque, const uint8_t *p, size_t n, uint8_t **ret, size_t *ret_len, caa_error **err)
{
    (void)opaque;
    (void)p;
    (void)n;
    (void)err;
    *ret_len = 5u << 20;
    *ret = xmalloc(*ret_len);
    memset(*ret, 'g', *ret_len);
    return 0;
}

/* ------------------------------------------------------------ relay + clients */

static void on_lost(caa_relay *r, void *opaque)
{
    (void)r;
    ((fx *)opaque)->lost++;
}

static void on_wanted(caa_relay *r, void *opaque)
{
    (void)r;
    ((fx *)opaque)->wanted++;
}

static void relay_start(fx *f, int64_t max_wait_ns)
{
    f->rw[0] = (caa_relay_rewrite){SVC, "Rewrite", rw_prefix};
    f->rw[1] = (caa_relay_rewrite){SVC, "Reject", rw_reject};
    f->rw[2] = (caa_relay_rewrite){SVC, "Grow", rw_grow};
    caa_relay_config cfg = {
        .name = "test-upstream",
        .rewrites = f->rw,
        .n_rewrites = 3,
        .max_wait_ns = max_wait_ns,
        .upstream_lost = on_lost,
        .upstream_wanted = on_wanted,
        .opaque = f,
    };
    assert_int_equal(caa_relay_new(&f->loop, &cfg, &f->relay, NULL), 0);
    assert_int_equal(ttrpc_server_listen_unix(caa_relay_server(f->relay), f->down_path, 0600, NULL), 0);
}

static void on_connect(ttrpc_client *c, int status, const caa_error *err, void *opaque)
{
    (void)err;
    ttrpc_client **slot = opaque;
    assert_int_equal(status, 0);
    *slot = c;
}

static bool have_client(void *arg)
{
    return *(ttrpc_client **)arg != NULL;
}

static ttrpc_client *connect_to(fx *f, const char *path)
{
    ttrpc_client *c = NULL;
    assert_int_equal(ttrpc_client_connect_unix(&f->loop, path, on_connect, &c, NULL), 0);
    assert_true(tu_run_until(&f->loop, have_client, &c, 5000));
    return c;
}

static void connect_upstream(fx *f)
{
    caa_relay_set_upstream(f->relay, connect_to(f, f->up_path));
}

static void on_result(const ttrpc_result *res, void *opaque)
{
    result *r = opaque;
    r->done = true;
    r->status = res->status;
    r->code = res->grpc_code;
    snprintf(r->msg, sizeof(r->msg), "%s", res->message);
    r->len = res->payload_len;
    snprintf(r->payload, sizeof(r->payload), "%.*s", (int)(res->payload_len < 127 ? res->payload_len : 127),
             res->payload ? (const char *)res->payload : "");
}

static void call(fx *f, const char *method, const char *payload, int64_t timeout_ms, result *r)
{
    memset(r, 0, sizeof(*r));
    assert_int_equal(ttrpc_client_call(f->down, SVC, method, (const uint8_t *)payload, strlen(payload),
                                       timeout_ms * 1000000, NULL, 0, on_result, r, NULL),
                     0);
}

static bool is_done(void *arg)
{
    return ((result *)arg)->done;
}

static bool never(void *arg)
{
    (void)arg;
    return false;
}

static void wait_done(fx *f, result *r)
{
    assert_true(tu_run_until(&f->loop, is_done, r, 5000));
}

static int setup(void **state)
{
    fx *f = xnew0(fx, 1);
    uv_loop_init(&f->loop);
    f->dir = caa_test_tmpdir_new("ttrpc-test");
    f->up_path = tu_path(f->dir, "up.sock");
    f->down_path = tu_path(f->dir, "down.sock");
    *state = f;
    return 0;
}

static void on_relay_closed(void *opaque)
{
    ((fx *)opaque)->relay_closed = true;
}

static bool relay_closed(void *arg)
{
    return ((fx *)arg)->relay_closed;
}

static int teardown(void **state)
{
    fx *f = *state;
    if (f->down)
        ttrpc_client_close(f->down);
    if (f->relay) {
        caa_relay_close(f->relay, on_relay_closed, f);
        assert_true(tu_run_until(&f->loop, relay_closed, f, 5000));
    }
    if (f->up.s && !f->up.closed)
        upstream_stop(f);
    tu_loop_finish(&f->loop);
    free(f->up_path);
    free(f->down_path);
    caa_test_tmpdir_remove(f->dir);
    free(f);
    return 0;
}

/* ------------------------------------------------------------ tests */

static void test_passthrough_and_rewrites(void **state)
{
    fx *f = *state;
    upstream_start(f);
    relay_start(f, 5000000000LL);
    connect_upstream(f);
    f->down = connect_to(f, f->down_path);
    result r;

    call(f, "Echo", "hello", 0, &r);
    wait_done(f, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.code, 0);
    assert_string_equal(r.payload, "hello");

    call(f, "Rewrite", "abc", 3000, &r);
    wait_done(f, &r);
    assert_int_equal(r.code, 0);
    assert_string_equal(f->up.last_payload, "rw:abc");
    assert_true(f->up.last_timeout_ns > 2000000000LL && f->up.last_timeout_ns <= 3000000000LL);

    call(f, "Reject", "abc", 0, &r);
    wait_done(f, &r);
    assert_int_equal(r.code, GRPC_INTERNAL);
    assert_non_null(strstr(r.msg, "not a message"));

    call(f, "Grow", "abc", 0, &r);
    wait_done(f, &r);
    assert_int_equal(r.code, GRPC_RESOURCE_EXHAUSTED);

    /* Unknown methods are the upstream's business. */
    call(f, "Nope", "x", 0, &r);
    wait_done(f, &r);
    assert_int_equal(r.code, GRPC_UNIMPLEMENTED);
    assert_string_equal(r.msg, "method Nope");

    caa_relay_stats st;
    caa_relay_get_stats(f->relay, &st);
    assert_int_equal(st.relayed, 3);
    assert_int_equal(st.rewritten, 1);
    assert_int_equal(st.failed, 2);
    assert_int_equal(st.connections, 1);
    assert_int_equal(st.inflight, 0);
}

static void test_wait_then_flush(void **state)
{
    fx *f = *state;
    upstream_start(f);
    relay_start(f, 5000000000LL);
    assert_int_equal(caa_relay_upstream_state_get(f->relay), CAA_RELAY_UPSTREAM_CONNECTING);
    f->down = connect_to(f, f->down_path);

    result a, b;
    call(f, "Echo", "queued", 0, &a);
    call(f, "Record", "timed", 2000, &b);
    tu_run_until(&f->loop, is_done, &a, 300); /* nothing can answer yet */
    assert_false(a.done);
    caa_relay_stats st;
    caa_relay_get_stats(f->relay, &st);
    assert_int_equal(st.queued, 2);

    connect_upstream(f);
    wait_done(f, &a);
    wait_done(f, &b);
    assert_int_equal(a.code, 0);
    assert_string_equal(a.payload, "queued");
    assert_int_equal(b.code, 0);
    /* The ~300 ms spent waiting came off the deadline the upstream sees. */
    assert_true(f->up.last_timeout_ns < 1800000000LL);
    assert_true(f->up.last_timeout_ns > 1000000000LL);
}

static void test_wait_expires(void **state)
{
    fx *f = *state;
    relay_start(f, 200000000LL); /* 200 ms */
    f->down = connect_to(f, f->down_path);
    result nodl, shortdl;
    call(f, "Echo", "x", 0, &nodl);
    call(f, "Echo", "y", 50, &shortdl);
    uint64_t t0 = uv_now(&f->loop);
    wait_done(f, &shortdl);
    /* The client's own deadline fires at the same moment as the relay's. */
    assert_true(shortdl.status == -ETIMEDOUT || shortdl.code == GRPC_DEADLINE_EXCEEDED);
    wait_done(f, &nodl);
    uint64_t dt = uv_now(&f->loop) - t0;
    assert_int_equal(nodl.code, GRPC_UNAVAILABLE);
    assert_non_null(strstr(nodl.msg, "test-upstream"));
    assert_true(dt >= 150 && dt < 2000);
    caa_relay_stats st;
    caa_relay_get_stats(f->relay, &st);
    assert_int_equal(st.failed, 2); /* both answered by the relay itself */
    assert_int_equal(st.queued, 0);
}

static void test_down_fails_at_once(void **state)
{
    fx *f = *state;
    relay_start(f, 0);
    assert_int_equal(caa_relay_upstream_state_get(f->relay), CAA_RELAY_UPSTREAM_DOWN);
    f->down = connect_to(f, f->down_path);
    result r;
    call(f, "Echo", "x", 0, &r);
    wait_done(f, &r);
    assert_int_equal(r.code, GRPC_UNAVAILABLE);
    assert_int_equal(f->wanted, 1);

    /* CONNECTING -> DOWN fails what waits. */
    caa_relay_set_upstream_state(f->relay, CAA_RELAY_UPSTREAM_CONNECTING);
    assert_int_equal(caa_relay_upstream_state_get(f->relay),
                     CAA_RELAY_UPSTREAM_DOWN); /* max_wait 0: no waiting */
}

static void test_state_down_fails_queue(void **state)
{
    fx *f = *state;
    relay_start(f, 5000000000LL);
    f->down = connect_to(f, f->down_path);
    result r;
    call(f, "Echo", "x", 0, &r);
    tu_run_until(&f->loop, is_done, &r, 100);
    assert_false(r.done);
    caa_relay_set_upstream_state(f->relay, CAA_RELAY_UPSTREAM_DOWN);
    wait_done(f, &r);
    assert_int_equal(r.code, GRPC_UNAVAILABLE);
}

static void test_upstream_breaks(void **state)
{
    fx *f = *state;
    upstream_start(f);
    relay_start(f, 5000000000LL);
    connect_upstream(f);
    f->down = connect_to(f, f->down_path);

    result held, later;
    call(f, "Hold", "h", 0, &held);
    assert_true(tu_run_until(&f->loop, up_held, f, 5000));
    upstream_stop(f); /* the upstream goes away with the call */
    wait_done(f, &held);
    assert_int_equal(held.code, GRPC_UNAVAILABLE);
    assert_non_null(strstr(held.msg, "lost"));
    assert_int_equal(f->lost, 1);
    assert_int_equal(caa_relay_upstream_state_get(f->relay), CAA_RELAY_UPSTREAM_CONNECTING);

    /* A call now waits for the next upstream. */
    call(f, "Echo", "after", 0, &later);
    tu_run_until(&f->loop, is_done, &later, 100);
    assert_false(later.done);
    upstream_start(f);
    connect_upstream(f);
    wait_done(f, &later);
    assert_int_equal(later.code, 0);
    assert_string_equal(later.payload, "after");
}

static void test_downstream_leaves(void **state)
{
    fx *f = *state;
    upstream_start(f);
    relay_start(f, 5000000000LL);
    connect_upstream(f);
    f->down = connect_to(f, f->down_path);
    result held, queued_gone;
    call(f, "Hold", "h", 0, &held);
    assert_true(tu_run_until(&f->loop, up_held, f, 5000));
    ttrpc_client_close(TAKE_PTR(f->down));
    wait_done(f, &held); /* -ECANCELED locally */
    /* The relay keeps only its record; the late answer is dropped. */
    caa_relay_stats st;
    caa_relay_get_stats(f->relay, &st);
    assert_int_equal(st.inflight, 1);
    ttrpc_call_reply(f->up.held[0], (const uint8_t *)"late", 4);
    f->up.n_held = 0;
    tu_run_until(&f->loop, never, NULL, 100);
    caa_relay_get_stats(f->relay, &st);
    assert_int_equal(st.inflight, 0);

    /* A call waiting for an upstream whose client leaves is dropped too. */
    caa_relay_set_upstream_state(f->relay, CAA_RELAY_UPSTREAM_CONNECTING);
    f->down = connect_to(f, f->down_path);
    call(f, "Echo", "q", 0, &queued_gone);
    tu_run_until(&f->loop, is_done, &queued_gone, 100);
    caa_relay_get_stats(f->relay, &st);
    assert_int_equal(st.queued, 1);
    ttrpc_client_close(TAKE_PTR(f->down));
    wait_done(f, &queued_gone);
    tu_run_until(&f->loop, never, NULL, 100);
    caa_relay_get_stats(f->relay, &st);
    assert_int_equal(st.queued, 0);
}

static void test_close_with_work_pending(void **state)
{
    fx *f = *state;
    upstream_start(f);
    relay_start(f, 5000000000LL);
    connect_upstream(f);
    f->down = connect_to(f, f->down_path);
    result held, queued;
    call(f, "Hold", "h", 0, &held);
    assert_true(tu_run_until(&f->loop, up_held, f, 5000));
    caa_relay_set_upstream_state(f->relay, CAA_RELAY_UPSTREAM_CONNECTING); /* held call: UNAVAILABLE */
    wait_done(f, &held);
    assert_int_equal(held.code, GRPC_UNAVAILABLE);
    call(f, "Echo", "q", 0, &queued);
    tu_run_until(&f->loop, is_done, &queued, 100);
    assert_false(queued.done);
    caa_relay_close(TAKE_PTR(f->relay), on_relay_closed, f);
    assert_true(tu_run_until(&f->loop, relay_closed, f, 5000));
    wait_done(f, &queued);
    assert_true(queued.status < 0 || queued.code == GRPC_UNAVAILABLE);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_passthrough_and_rewrites, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_then_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_expires, setup, teardown),
        cmocka_unit_test_setup_teardown(test_down_fails_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_down_fails_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upstream_breaks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_downstream_leaves, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_with_work_pending, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
