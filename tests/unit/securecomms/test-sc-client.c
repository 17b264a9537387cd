/* The libssh2 client on the libuv loop against a real OpenSSH sshd on
 * loopback: host key pinning, public key auth, direct-tcpip with
 * permitopen, remote forwarding with permitlisten, refusals, and the
 * reconnect after the server's processes are killed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <uv.h>

#include "sc-client.h"
#include "sc-test-sshd.h"
#include "xalloc.h"

static uv_loop_t loop;
static caa_sc_key worker_key, stranger_key;

/* ------------------------------------------------------------ loop helpers */

static void on_deadline(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

/* Runs the loop until *flag (or pred) or timeout_ms; returns whether it held. */
static bool run_until(bool (*pred)(void *), void *arg, unsigned timeout_ms)
{
    bool expired = false;
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    t.data = &expired;
    uv_timer_start(&t, on_deadline, timeout_ms, 0);
    while (!pred(arg) && !expired)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return pred(arg);
}

static bool never(void *arg)
{
    (void)arg;
    return false;
}

static bool client_ready(void *arg)
{
    return caa_sc_client_is_ready(arg);
}

/* ------------------------------------------------------------ echo server */

typedef struct echo_conn {
    uv_tcp_t tcp;
} echo_conn;

static uv_tcp_t echo_server;
static uint16_t echo_port;

static void echo_alloc(uv_handle_t *h, size_t n, uv_buf_t *buf)
{
    (void)h;
    buf->base = xmalloc(n);
    buf->len = n;
}

static void echo_written(uv_write_t *w, int status)
{
    (void)status;
    free(w->data);
    free(w);
}

static void echo_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    if (n > 0) {
        uv_write_t *w = xnew0(uv_write_t, 1);
        w->data = buf->base;
        uv_buf_t b = uv_buf_init(buf->base, (unsigned)n);
        uv_write(w, s, &b, 1, echo_written);
        return;
    }
    free(buf->base);
    if (n < 0)
        uv_close((uv_handle_t *)s, (uv_close_cb)free);
}

static void echo_accept(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    echo_conn *c = xnew0(echo_conn, 1);
    uv_tcp_init(&loop, &c->tcp);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) == 0)
        uv_read_start((uv_stream_t *)&c->tcp, echo_alloc, echo_read);
    else
        uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
}

static void echo_start(void)
{
    uv_tcp_init(&loop, &echo_server);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(uv_tcp_bind(&echo_server, (struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&echo_server, 16, echo_accept), 0);
    int l = sizeof(a);
    uv_tcp_getsockname(&echo_server, (struct sockaddr *)&a, &l);
    echo_port = ntohs(a.sin_port);
}

/* ------------------------------------------------------------ a stream reader */

typedef struct reader {
    ttrpc_transport *t;
    uint8_t *data;
    size_t len;
    ssize_t end; /* 0 while open; UV_EOF or an error */
    bool closed;
    int open_status;
    bool opened;
} reader;

static void reader_on_read(ttrpc_transport *t, ssize_t n, const uint8_t *data)
{
    reader *r = t->owner;
    if (n < 0) {
        r->end = n;
        return;
    }
    r->data = xrealloc(r->data, r->len + (size_t)n);
    memcpy(r->data + r->len, data, (size_t)n);
    r->len += (size_t)n;
}

static void reader_on_close(ttrpc_transport *t)
{
    ((reader *)t->owner)->closed = true;
}

static void reader_attach(reader *r, ttrpc_transport *t)
{
    r->t = t;
    t->owner = r;
    t->on_read = reader_on_read;
    t->on_close = reader_on_close;
    assert_int_equal(ttrpc_transport_read_start(t), 0);
}

static void on_open(int status, ttrpc_transport *t, caa_error *err, void *opaque)
{
    reader *r = opaque;
    r->opened = true;
    r->open_status = status;
    if (err) {
        fprintf(stderr, "# open: %s\n", caa_error_msg(err));
        caa_error_free(err);
    }
    if (t)
        reader_attach(r, t);
}

static bool reader_opened(void *arg)
{
    return ((reader *)arg)->opened;
}

static size_t want_len;
static bool reader_has_want(void *arg)
{
    reader *r = arg;
    return r->len >= want_len || r->end;
}

static bool reader_ended(void *arg)
{
    return ((reader *)arg)->end != 0;
}

static bool reader_closed(void *arg)
{
    return ((reader *)arg)->closed;
}

static void write_done(ttrpc_write_req *req, int status)
{
    (void)status;
    free((void *)req->data);
    free(req);
}

static void send_bytes(ttrpc_transport *t, const void *data, size_t len)
{
    ttrpc_write_req *w = xnew0(ttrpc_write_req, 1);
    w->data = xmemdup(data, len);
    w->len = len;
    w->cb = write_done;
    assert_int_equal(ttrpc_transport_write(t, w), 0);
}

static void reader_close(reader *r)
{
    ttrpc_transport_close(r->t);
    assert_true(run_until(reader_closed, r, 5000));
    free(r->data);
    memset(r, 0, sizeof(*r));
}

/* Opens a channel and checks the echo of len patterned bytes. */
static void echo_through(caa_sc_client *c, size_t len)
{
    reader r = {0};
    assert_int_equal(caa_sc_client_open(c, "127.0.0.1", echo_port, on_open, &r, NULL, NULL), 0);
    assert_true(run_until(reader_opened, &r, 5000));
    assert_int_equal(r.open_status, 0);
    uint8_t *buf = xmalloc(len);
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(i * 7 + i / 251);
    send_bytes(r.t, buf, len);
    want_len = len;
    assert_true(run_until(reader_has_want, &r, 20000));
    assert_int_equal(r.len, len);
    assert_memory_equal(r.data, buf, len);
    free(buf);
    reader_close(&r);
}

static void on_connected(uv_connect_t *req, int status)
{
    (void)req;
    assert_int_equal(status, 0);
}

/* ------------------------------------------------------------ fixtures */

static const char *user_name(void)
{
    struct passwd *pw = getpwuid(getuid());
    return pw ? pw->pw_name : "root";
}

static char *authorized_line(const char *options, const caa_sc_key *k)
{
    return xasprintf("%s %s", options, k->public_line);
}

static caa_sc_client *client_for(const sc_test_sshd *d, const caa_sc_key *key, const caa_sc_key *pinned,
                                 const caa_sc_remote_forward *fw, size_t n_fw)
{
    uint8_t blob[CAA_SC_ED25519_BLOB_LEN];
    assert_int_equal(caa_sc_public_line_blob(pinned->public_line, strlen(pinned->public_line), blob, NULL),
                     0);
    caa_sc_client_config cfg = {
        .id = "test-pod",
        .host = "127.0.0.1",
        .port = d->port,
        .user = user_name(),
        .client_private_pem = key->private_pem,
        .host_key_blob = blob,
        .forwards = fw,
        .n_forwards = n_fw,
        .handshake_timeout_ms = 5000,
        .keepalive_ms = 1000,
    };
    caa_sc_client *c = NULL;
    assert_int_equal(caa_sc_client_new(&loop, &cfg, &c, NULL), 0);
    return c;
}

static void client_free(caa_sc_client *c)
{
    caa_sc_client_free(c);
    run_until(never, NULL, 50);
}

/* ------------------------------------------------------------ tests */

static void test_tunnels_and_forwards(void **state)
{
    (void)state;
    uint16_t allowed_listen = sc_test_free_port(), other_listen = sc_test_free_port();
    _cleanup_free_ char *opts = xasprintf("restrict,port-forwarding,permitopen=\"127.0.0.1:%u\","
                                          "permitlisten=\"127.0.0.1:%u\"",
                                          (unsigned)echo_port, (unsigned)allowed_listen);
    _cleanup_free_ char *line = authorized_line(opts, &worker_key);
    sc_test_sshd d;
    assert_int_equal(sc_test_sshd_start(&d, line, NULL), 0);

    caa_sc_remote_forward fw[] = {
        {"KBS", allowed_listen, "127.0.0.1", echo_port},
        {"NOTALLOWED", other_listen, "127.0.0.1", echo_port},
    };
    caa_sc_client *c = client_for(&d, &worker_key, &d.host_key, fw, 2);
    assert_true(run_until(client_ready, c, 10000));
    assert_int_equal(caa_sc_client_connections(c), 1);

    echo_through(c, 5);
    echo_through(c, 3 * 1024 * 1024 + 17); /* many windows' worth */

    /* A tunnel outside permitopen: refused, nothing opened. */
    reader r = {0};
    assert_int_equal(caa_sc_client_open(c, "127.0.0.1", (uint16_t)(echo_port + 1), on_open, &r, NULL, NULL),
                     0);
    assert_true(run_until(reader_opened, &r, 5000));
    assert_int_equal(r.open_status, -ECONNREFUSED);
    assert_null(r.t);
    _cleanup_free_ char *denied_open = xasprintf(
        "to connect to host 127.0.0.1 port %u, but the request was denied", (unsigned)(echo_port + 1));
    assert_true(sc_test_sshd_log_has(&d, denied_open));

    /* The VM side connects to its loopback listener: the worker's target answers. */
    ttrpc_transport *vm = ttrpc_transport_uv_new(&loop, UV_TCP, NULL);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", allowed_listen, &a);
    uv_connect_t creq;
    assert_int_equal(
        uv_tcp_connect(&creq, (uv_tcp_t *)ttrpc_transport_uv_stream(vm), (struct sockaddr *)&a, on_connected),
        0);
    reader vr = {0};
    reader_attach(&vr, vm);
    send_bytes(vm, "through the KBS tunnel", 22);
    want_len = 22;
    assert_true(run_until(reader_has_want, &vr, 5000));
    assert_memory_equal(vr.data, "through the KBS tunnel", 22);
    reader_close(&vr);

    /* The forward outside permitlisten was refused by sshd and is not listening. */
    _cleanup_free_ char *denied_listen = xasprintf(
        "to remote forward to host 127.0.0.1 port %u, but the request was denied", (unsigned)other_listen);
    assert_true(sc_test_sshd_log_has(&d, denied_listen));
    assert_true(caa_sc_client_is_ready(c));

    client_free(c);
    sc_test_sshd_stop(&d);
}

static void test_wrong_host_key(void **state)
{
    (void)state;
    _cleanup_free_ char *line = authorized_line("restrict,port-forwarding", &worker_key);
    sc_test_sshd d;
    assert_int_equal(sc_test_sshd_start(&d, line, NULL), 0);
    caa_sc_client *c = client_for(&d, &worker_key, &stranger_key, NULL, 0);
    assert_false(run_until(client_ready, c, 1500));
    assert_int_equal(caa_sc_client_connections(c), 0);
    /* A channel cannot be had. */
    reader r = {0};
    assert_int_equal(caa_sc_client_open(c, "127.0.0.1", echo_port, on_open, &r, NULL, NULL), 0);
    assert_true(run_until(reader_opened, &r, 5000));
    assert_int_equal(r.open_status, -ENOTCONN);
    /* The worker never authenticated. */
    assert_false(sc_test_sshd_log_has(&d, "Accepted publickey"));
    client_free(c);
    sc_test_sshd_stop(&d);
}

static void test_wrong_client_key(void **state)
{
    (void)state;
    _cleanup_free_ char *line = authorized_line("restrict,port-forwarding", &worker_key);
    sc_test_sshd d;
    assert_int_equal(sc_test_sshd_start(&d, line, NULL), 0);
    caa_sc_client *c = client_for(&d, &stranger_key, &d.host_key, NULL, 0);
    assert_false(run_until(client_ready, c, 1500));
    assert_int_equal(caa_sc_client_connections(c), 0);
    assert_false(sc_test_sshd_log_has(&d, "Accepted publickey"));
    client_free(c);
    sc_test_sshd_stop(&d);
}

static void test_reconnect_and_fail_fast(void **state)
{
    (void)state;
    _cleanup_free_ char *opts =
        xasprintf("restrict,port-forwarding,permitopen=\"127.0.0.1:%u\"", (unsigned)echo_port);
    _cleanup_free_ char *line = authorized_line(opts, &worker_key);
    sc_test_sshd d;
    assert_int_equal(sc_test_sshd_start(&d, line, NULL), 0);
    caa_sc_client *c = client_for(&d, &worker_key, &d.host_key, NULL, 0);
    assert_true(run_until(client_ready, c, 10000));

    reader r = {0};
    assert_int_equal(caa_sc_client_open(c, "127.0.0.1", echo_port, on_open, &r, NULL, NULL), 0);
    assert_true(run_until(reader_opened, &r, 5000));
    assert_int_equal(r.open_status, 0);

    /* The server goes away: the open channel ends at once with an error. */
    uint64_t t0 = uv_now(&loop);
    sc_test_sshd_kill(&d);
    assert_true(run_until(reader_ended, &r, 5000));
    assert_true(r.end < 0);
    assert_true(uv_now(&loop) - t0 < 3000);
    reader_close(&r);

    /* While it is down, opens fail fast. */
    reader down = {0};
    assert_int_equal(caa_sc_client_open(c, "127.0.0.1", echo_port, on_open, &down, NULL, NULL), 0);
    assert_true(run_until(reader_opened, &down, 5000));
    assert_int_equal(down.open_status, -ENOTCONN);

    /* Back: the client reconnects by itself and tunnels work again. */
    assert_int_equal(sc_test_sshd_restart(&d), 0);
    assert_true(run_until(client_ready, c, 15000));
    assert_int_equal(caa_sc_client_connections(c), 2);
    echo_through(c, 1000);
    client_free(c);
    sc_test_sshd_stop(&d);
}

static int setup(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    echo_start();
    if (caa_sc_key_generate("worker", &worker_key, NULL) < 0 ||
        caa_sc_key_generate("stranger", &stranger_key, NULL) < 0)
        return -1;
    return 0;
}

static void close_walk(uv_handle_t *h, void *arg)
{
    /* Only the echo server should be left; anything else is a leak. */
    if (h != (uv_handle_t *)&echo_server)
        *(int *)arg += 1;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static int teardown(void **state)
{
    (void)state;
    int left = 0;
    uv_walk(&loop, close_walk, &left);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (left)
        fprintf(stderr, "# %d handle(s) left open\n", left);
    caa_sc_key_done(&worker_key);
    caa_sc_key_done(&stranger_key);
    return uv_loop_close(&loop) == 0 && left == 0 ? 0 : -1;
}

int main(void)
{
    if (access("/usr/sbin/sshd", X_OK) != 0) {
        printf("1..0 # SKIP /usr/sbin/sshd not installed (openssh-server)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tunnels_and_forwards),
        cmocka_unit_test(test_wrong_host_key),
        cmocka_unit_test(test_wrong_client_key),
        cmocka_unit_test(test_reconnect_and_fail_fast),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
