/* ttRPC client against a raw peer: matching by stream id, deadlines,
 * connection loss, close, both success encodings, relaying raw Requests. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>
#include <cmocka.h>

#include "ttrpc-test-util.h"
#include "ttrpc.h"
#include "xalloc.h"

typedef struct slot {
    int done;
    int status;
    int code;
    char msg[160];
    uint8_t payload[64];
    size_t payload_len;
    uint8_t response[64];
    size_t response_len;
} slot;

typedef struct fixture {
    uv_loop_t loop;
    char *dir;
    char *path;
    tu_raw_server *rs;
    tu_raw *peer;
    ttrpc_client *c;
    bool connected;
    int connect_status;
    int connect_err_code;
    int close_cbs;
    bool in_connect_call;
} fixture;

static void on_connect(ttrpc_client *c, int status, const caa_error *err, void *opaque)
{
    fixture *f = opaque;
    assert_false(f->in_connect_call); /* never from inside the starting call */
    f->c = c;
    f->connect_status = status;
    f->connect_err_code = err ? err->code : 0;
    f->connected = true;
    if (status == 0)
        assert_non_null(c);
    else
        assert_null(c);
}

static bool connected(void *arg)
{
    return ((fixture *)arg)->connected;
}

static void on_close(ttrpc_client *c, void *opaque)
{
    fixture *f = opaque;
    assert_ptr_equal(c, f->c);
    f->close_cbs++;
}

static int setup(void **state)
{
    fixture *f = xnew0(fixture, 1);
    uv_loop_init(&f->loop);
    f->dir = caa_test_tmpdir_new("ttrpc-test");
    f->path = tu_path(f->dir, "peer.sock");
    f->rs = tu_raw_server_new(&f->loop, f->path);
    f->in_connect_call = true;
    assert_int_equal(ttrpc_client_connect_unix(&f->loop, f->path, on_connect, f, NULL), 0);
    f->in_connect_call = false;
    assert_true(tu_run_until(&f->loop, connected, f, 10000));
    assert_int_equal(f->connect_status, 0);
    ttrpc_client_set_close_cb(f->c, on_close, f);
    f->peer = tu_raw_server_accept(f->rs);
    assert_non_null(f->peer);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->c)
        ttrpc_client_close(f->c);
    if (f->peer)
        tu_raw_close(f->peer);
    tu_raw_server_close(f->rs);
    tu_loop_finish(&f->loop);
    if (f->c)
        assert_int_equal(f->close_cbs, 1);
    free(f->path);
    caa_test_tmpdir_remove(f->dir);
    free(f);
    return 0;
}

static void on_res(const ttrpc_result *r, void *opaque)
{
    slot *s = opaque;
    s->done++;
    s->status = r->status;
    s->code = r->grpc_code;
    assert_non_null(r->message);
    snprintf(s->msg, sizeof(s->msg), "%s", r->message);
    s->payload_len = r->payload_len;
    assert_true(r->payload_len <= sizeof(s->payload));
    if (r->payload_len)
        memcpy(s->payload, r->payload, r->payload_len);
    s->response_len = r->response_len;
    if (r->response_len <= sizeof(s->response) && r->response_len)
        memcpy(s->response, r->response, r->response_len);
}

static bool slot_done(void *arg)
{
    return ((slot *)arg)->done > 0;
}

static void call(fixture *f, slot *s, const char *payload, int64_t timeout_ns)
{
    assert_int_equal(ttrpc_client_call(f->c, "svc.S", "M", (const uint8_t *)payload,
                                       payload ? strlen(payload) : 0, timeout_ns, NULL, 0, on_res, s, NULL),
                     0);
}

/* Reads one Request frame from the peer; returns its stream id. */
static uint32_t peer_read_request(fixture *f, Ttrpc__Request **ret)
{
    assert_true(tu_raw_wait(f->peer, TTRPC_HEADER_SIZE));
    ttrpc_frame_header h;
    ttrpc_header_decode(f->peer->buf, &h);
    assert_int_equal(h.type, TTRPC_TYPE_REQUEST);
    assert_int_equal(h.flags, 0);
    assert_true(tu_raw_wait(f->peer, TTRPC_HEADER_SIZE + h.length));
    if (ret) {
        *ret = ttrpc_request_decode(f->peer->buf + TTRPC_HEADER_SIZE, h.length, NULL);
        assert_non_null(*ret);
    }
    tu_raw_consume(f->peer, TTRPC_HEADER_SIZE + h.length);
    return h.stream_id;
}

static size_t peer_read_request_raw_len(fixture *f)
{
    assert_true(tu_raw_wait(f->peer, TTRPC_HEADER_SIZE));
    ttrpc_frame_header h;
    ttrpc_header_decode(f->peer->buf, &h);
    assert_true(tu_raw_wait(f->peer, TTRPC_HEADER_SIZE + h.length));
    tu_raw_consume(f->peer, TTRPC_HEADER_SIZE + h.length);
    return h.length;
}

static void peer_respond(fixture *f, uint32_t sid, const char *body_hex)
{
    size_t bl;
    uint8_t *body = tu_hex(body_hex, &bl);
    size_t fl;
    uint8_t *frame = ttrpc_frame_build(sid, TTRPC_TYPE_RESPONSE, 0, body, bl, &fl);
    tu_raw_send(f->peer, frame, fl);
    free(frame);
    free(body);
}

static void test_out_of_order(void **state)
{
    fixture *f = *state;
    slot s[3] = {0};
    for (int i = 0; i < 3; i++)
        call(f, &s[i], "x", 0);
    assert_int_equal(ttrpc_client_inflight(f->c), 3);
    assert_int_equal(peer_read_request(f, NULL), 1);
    assert_int_equal(peer_read_request(f, NULL), 3);
    assert_int_equal(peer_read_request(f, NULL), 5);
    peer_respond(f, 5, "1201 35"); /* payload "5" */
    peer_respond(f, 1, "1201 31");
    peer_respond(f, 3, "1201 33");
    assert_true(tu_run_until(&f->loop, slot_done, &s[1], 10000));
    const char want[3] = {'1', '3', '5'};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(s[i].done, 1);
        assert_int_equal(s[i].status, 0);
        assert_int_equal(s[i].payload_len, 1);
        assert_int_equal(s[i].payload[0], want[i]);
    }
    assert_int_equal(ttrpc_client_inflight(f->c), 0);
}

static void test_success_encodings(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *body;
        int status, code;
        const char *msg;
        size_t payload_len;
    } cases[] = {
        {"", 0, 0, "", 0},               /* Go, empty message: 0-byte Response */
        {"1202 0801", 0, 0, "", 2},      /* Go, payload only */
        {"0a00 1202 0801", 0, 0, "", 2}, /* Rust: explicit OK status */
        {"0a02 0800", 0, 0, "", 0},      /* explicit code 0 */
        {"0a08 0805 1204 6e6f7065", 0, GRPC_NOT_FOUND, "nope", 0},
        {"0a05 0805 12", -EPROTO, 0, "", 0}, /* undecodable Response */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        slot s = {0};
        call(f, &s, NULL, 0);
        uint32_t sid = peer_read_request(f, NULL);
        assert_int_equal(sid, 2 * i + 1);
        peer_respond(f, sid, cases[i].body);
        assert_true(tu_run_until(&f->loop, slot_done, &s, 10000));
        assert_int_equal(s.status, cases[i].status);
        assert_int_equal(s.code, cases[i].code);
        assert_string_equal(s.msg, cases[i].msg);
        assert_int_equal(s.payload_len, cases[i].payload_len);
        if (s.status == 0) {
            /* the raw Response body is handed on for relays */
            size_t bl;
            uint8_t *b = tu_hex(cases[i].body, &bl);
            assert_int_equal(s.response_len, bl);
            if (bl)
                assert_memory_equal(s.response, b, bl);
            free(b);
        }
    }
}

static void test_ignored_frames_and_oversize(void **state)
{
    fixture *f = *state;
    slot s = {0}, s2 = {0};
    call(f, &s, NULL, 0);
    assert_int_equal(peer_read_request(f, NULL), 1);
    /* A Response for a stream never opened, a Data frame and an unknown type: dropped. */
    peer_respond(f, 99, "1201 39");
    tu_raw_send_hex(f->peer, "00000001 00000001 03 00 00");
    tu_raw_send_hex(f->peer, "00000000 00000001 09 00");
    /* An oversize Response fails that call with RESOURCE_EXHAUSTED. */
    uint8_t hdr[TTRPC_HEADER_SIZE];
    ttrpc_frame_header h = {
        .length = TTRPC_MESSAGE_LENGTH_MAX + 1, .stream_id = 1, .type = TTRPC_TYPE_RESPONSE};
    ttrpc_header_encode(&h, hdr);
    tu_raw_send(f->peer, hdr, sizeof(hdr));
    uint8_t *junk = xcalloc(1, h.length);
    tu_raw_send(f->peer, junk, h.length);
    free(junk);
    assert_true(tu_run_until(&f->loop, slot_done, &s, 10000));
    assert_int_equal(s.status, 0);
    assert_int_equal(s.code, GRPC_RESOURCE_EXHAUSTED);
    assert_string_equal(s.msg, "message length 4194305 exceed maximum message size of 4194304");
    /* The connection still works. */
    call(f, &s2, NULL, 0);
    assert_int_equal(peer_read_request(f, NULL), 3);
    peer_respond(f, 3, "1201 32");
    assert_true(tu_run_until(&f->loop, slot_done, &s2, 10000));
    assert_int_equal(s2.payload[0], '2');
    assert_int_equal(s.done, 1);
}

static void test_deadline_then_late_response(void **state)
{
    fixture *f = *state;
    slot s = {0}, s2 = {0};
    call(f, &s, "slow", 50 * 1000 * 1000);
    Ttrpc__Request *req;
    assert_int_equal(peer_read_request(f, &req), 1);
    assert_int_equal(req->timeout_nano, 50 * 1000 * 1000);
    ttrpc_request_free(req);
    assert_true(tu_run_until(&f->loop, slot_done, &s, 10000));
    assert_int_equal(s.status, -ETIMEDOUT);
    assert_int_equal(ttrpc_client_inflight(f->c), 0);
    /* The late answer is dropped; the next call is unaffected. */
    peer_respond(f, 1, "1201 31");
    call(f, &s2, "next", 10LL * 1000 * 1000 * 1000);
    assert_int_equal(peer_read_request(f, NULL), 3);
    peer_respond(f, 3, "1201 33");
    assert_true(tu_run_until(&f->loop, slot_done, &s2, 10000));
    assert_int_equal(s2.status, 0);
    assert_int_equal(s2.payload[0], '3');
    assert_int_equal(s.done, 1);
}

static bool closed_once(void *arg)
{
    return ((fixture *)arg)->close_cbs > 0;
}

static void test_connection_loss(void **state)
{
    fixture *f = *state;
    slot s[3] = {0};
    call(f, &s[0], NULL, 0);
    call(f, &s[1], NULL, 60LL * 1000 * 1000 * 1000); /* timer pending */
    call(f, &s[2], NULL, 0);
    assert_int_equal(peer_read_request(f, NULL), 1);
    tu_raw_close(f->peer);
    f->peer = NULL;
    assert_true(tu_run_until(&f->loop, closed_once, f, 10000));
    for (int i = 0; i < 3; i++) {
        assert_int_equal(s[i].done, 1);
        assert_int_equal(s[i].status, -ECONNRESET);
    }
    assert_int_equal(ttrpc_client_inflight(f->c), 0);
    caa_error *err = NULL;
    assert_int_equal(ttrpc_client_call(f->c, "a", "b", NULL, 0, 0, NULL, 0, on_res, &s[0], &err), -ENOTCONN);
    assert_non_null(err);
    caa_error_free(err);
    assert_int_equal(s[0].done, 1);
    /* teardown closes the client: the close cb must not run again */
}

static void test_close_cancels(void **state)
{
    fixture *f = *state;
    slot s[2] = {0};
    call(f, &s[0], NULL, 0);
    call(f, &s[1], NULL, 1000LL * 1000 * 1000);
    ttrpc_client_close(f->c);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(s[i].done, 1);
        assert_int_equal(s[i].status, -ECANCELED);
    }
    assert_int_equal(f->close_cbs, 0); /* later, on the loop */
    assert_true(tu_run_until(&f->loop, closed_once, f, 10000));
    f->c = NULL; /* freed */
    assert_true(tu_raw_wait_eof(f->peer));
}

static void close_from_cb(const ttrpc_result *r, void *opaque)
{
    fixture *f = opaque;
    assert_int_equal(r->status, 0);
    ttrpc_client_close(f->c);
}

static void test_close_inside_callback(void **state)
{
    fixture *f = *state;
    slot s = {0};
    assert_int_equal(ttrpc_client_call(f->c, "a", "b", NULL, 0, 0, NULL, 0, close_from_cb, f, NULL), 0);
    call(f, &s, NULL, 0);
    peer_read_request(f, NULL);
    peer_read_request(f, NULL);
    /* both answers in one chunk: the second arrives after the close */
    tu_raw_send_hex(f->peer, "00000000 00000001 02 00 00000000 00000003 02 00");
    assert_true(tu_run_until(&f->loop, closed_once, f, 10000));
    assert_int_equal(s.done, 1);
    assert_int_equal(s.status, -ECANCELED);
    f->c = NULL;
}

static void test_call_raw(void **state)
{
    fixture *f = *state;
    slot s = {0}, s2 = {0};
    size_t bl;
    /* A relayed Request with its own deadline (30 ms) and metadata. */
    ttrpc_kv md[] = {{"k", "v"}};
    uint8_t *body = ttrpc_request_encode("grpc.AgentService", "ExecProcess", (const uint8_t *)"\x0a\x01x", 3,
                                         30 * 1000 * 1000, md, 1, &bl);
    assert_int_equal(ttrpc_client_call_raw(f->c, body, bl, on_res, &s, NULL), 0);
    assert_true(tu_raw_wait(f->peer, TTRPC_HEADER_SIZE + bl));
    ttrpc_frame_header h;
    ttrpc_header_decode(f->peer->buf, &h);
    assert_int_equal(h.stream_id, 1);
    assert_int_equal(h.length, bl);
    assert_memory_equal(f->peer->buf + TTRPC_HEADER_SIZE, body, bl); /* passed through untouched */
    tu_raw_consume(f->peer, TTRPC_HEADER_SIZE + bl);
    assert_true(tu_run_until(&f->loop, slot_done, &s, 10000));
    assert_int_equal(s.status, -ETIMEDOUT);
    free(body);

    /* Undecodable bytes are still relayed (the server answers them). */
    assert_int_equal(ttrpc_client_call_raw(f->c, (const uint8_t *)"\x0a\x05", 2, on_res, &s2, NULL), 0);
    assert_int_equal(peer_read_request_raw_len(f), 2);
    peer_respond(f, 3, "0a02 0803");
    assert_true(tu_run_until(&f->loop, slot_done, &s2, 10000));
    assert_int_equal(s2.code, GRPC_INVALID_ARGUMENT);
}

static void test_sync_failures(void **state)
{
    fixture *f = *state;
    caa_error *err = NULL;
    slot s = {0};
    size_t big = TTRPC_MESSAGE_LENGTH_MAX;
    uint8_t *payload = xcalloc(1, big);
    assert_int_equal(ttrpc_client_call(f->c, "a", "b", payload, big, 0, NULL, 0, on_res, &s, &err),
                     -EMSGSIZE);
    assert_non_null(err);
    caa_error_free(err);
    free(payload);
    /* no stream id was used up */
    call(f, &s, NULL, 0);
    assert_int_equal(peer_read_request(f, NULL), 1);
    peer_respond(f, 1, "");
    assert_true(tu_run_until(&f->loop, slot_done, &s, 10000));
    assert_int_equal(s.done, 1);
}

static void test_connect_failures(void **state)
{
    fixture *f = *state;
    /* missing socket file */
    char *missing = tu_path(f->dir, "missing.sock");
    fixture g = {0};
    g.in_connect_call = true;
    assert_int_equal(ttrpc_client_connect_unix(&f->loop, missing, on_connect, &g, NULL), 0);
    g.in_connect_call = false;
    assert_true(tu_run_until(&f->loop, connected, &g, 10000));
    assert_true(g.connect_status < 0);
    assert_int_equal(g.connect_err_code, g.connect_status);
    free(missing);

    /* TCP: a bound port nobody listens on refuses */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t sl = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    memset(&g, 0, sizeof(g));
    g.in_connect_call = true;
    assert_int_equal(
        ttrpc_client_connect_tcp(&f->loop, "127.0.0.1", ntohs(sa.sin_port), on_connect, &g, NULL), 0);
    g.in_connect_call = false;
    assert_true(tu_run_until(&f->loop, connected, &g, 10000));
    assert_int_equal(g.connect_status, -ECONNREFUSED);
    close(fd);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_out_of_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_success_encodings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ignored_frames_and_oversize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline_then_late_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_loss, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_cancels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_inside_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_call_raw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_failures, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
