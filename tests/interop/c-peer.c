/* c-peer: our ttRPC library in the two roles the Go peers play
 * (tests/interop/go/src/caa-interop), for interop tests and benchmarks.
 *
 *   c-peer server <unix:/path | tcp:host:port>
 *       serves caa.interop.Test (Echo, Fail, Sleep, Metadata, Deadline,
 *       Expire; payload formats in go/src/caa-interop/peer/peer.go) and
 *       hypervisor.Hypervisor/Version; prints "LISTENING <addr>"; exits on
 *       SIGTERM/SIGINT.
 *   c-peer client <addr> <scenario> [args]
 *       basic | errors | metadata | deadline | unknown | ooo | abandon |
 *       conns N M | inflight K | throughput C D
 *       prints "PASS <scenario> ..." (exit 0) or "FAIL <scenario>: why" (exit 1).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "cleanup.h"
#include "error.h"
#include "hypervisor.pb-c.h"
#include "parse.h"
#include "ttrpc.h"
#include "xalloc.h"

#define TEST_SERVICE "caa.interop.Test"
#define HYPERVISOR_SERVICE "hypervisor.Hypervisor"

/* VersionRequest{version "0.0.0"} and VersionResponse{version "0.0.0"}. */
static const uint8_t version000[] = {0x0a, 0x05, '0', '.', '0', '.', '0'};

static const char *scenario = "";

static _Noreturn void failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static _Noreturn void failf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL %s: ", scenario);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    exit(1);
}

/* ------------------------------------------------------------ addresses */

typedef struct peer_addr {
    bool unix_socket;
    char *path; /* unix */
    char *host; /* tcp */
    uint16_t port;
} peer_addr;

static int peer_addr_parse(const char *s, peer_addr *ret)
{
    *ret = (peer_addr){0};
    if (strncmp(s, "unix:", 5) == 0 && s[5]) {
        ret->unix_socket = true;
        ret->path = xstrdup(s + 5);
        return 0;
    }
    if (strncmp(s, "tcp:", 4) == 0) {
        const char *colon = strrchr(s + 4, ':');
        uint64_t port;
        if (!colon || colon == s + 4 || caa_parse_uint64(colon + 1, UINT16_MAX, &port) < 0)
            return -EINVAL;
        ret->host = xstrndup(s + 4, colon - (s + 4));
        ret->port = (uint16_t)port;
        return 0;
    }
    return -EINVAL;
}

static void peer_addr_done(peer_addr *a)
{
    free(a->path);
    free(a->host);
}

/* ------------------------------------------------------------ server */

/* A call answered later, from a timer (Sleep, Expire). */
typedef struct timed_call {
    uv_timer_t timer;
    ttrpc_call *call;
    bool expire; /* answer DEADLINE_EXCEEDED instead of echoing */
} timed_call;

static void timed_call_free(uv_handle_t *h)
{
    free(h->data);
}

static void timed_call_finish(timed_call *t)
{
    if (t->expire) {
        ttrpc_call_reply_error(t->call, GRPC_DEADLINE_EXCEEDED, "context deadline exceeded");
    } else {
        size_t len;
        const uint8_t *p = ttrpc_call_payload(t->call, &len);
        ttrpc_call_reply(t->call, p, len);
    }
    t->call = NULL;
    uv_close((uv_handle_t *)&t->timer, timed_call_free);
}

static void timed_call_fire(uv_timer_t *timer)
{
    timed_call_finish(timer->data);
}

/* The connection went away: answer now (the reply only frees the call). */
static void timed_call_cancel(ttrpc_call *call, void *opaque)
{
    timed_call *t = opaque;
    (void)call;
    uv_timer_stop(&t->timer);
    timed_call_finish(t);
}

static void timed_call_start(ttrpc_call *call, uint64_t ms, bool expire)
{
    timed_call *t = xnew0(timed_call, 1);
    t->call = call;
    t->expire = expire;
    uv_timer_init(uv_default_loop(), &t->timer);
    t->timer.data = t;
    ttrpc_call_set_cancel_cb(call, timed_call_cancel, t);
    uv_timer_start(&t->timer, timed_call_fire, ms, 0);
}

/* Payload as a NUL-terminated string. */
static char *payload_string(ttrpc_call *call)
{
    size_t len;
    const uint8_t *p = ttrpc_call_payload(call, &len);
    return xstrndup(p ? (const char *)p : "", len);
}

static void handle_echo(ttrpc_call *call, void *opaque)
{
    size_t len;
    const uint8_t *p = ttrpc_call_payload(call, &len);
    (void)opaque;
    ttrpc_call_reply(call, p, len);
}

static void handle_fail(ttrpc_call *call, void *opaque)
{
    _cleanup_free_ char *s = payload_string(call);
    char *colon = strchr(s, ':');
    int64_t code;
    (void)opaque;
    if (!colon) {
        ttrpc_call_reply_error(call, GRPC_INVALID_ARGUMENT, "bad Fail payload");
        return;
    }
    *colon = '\0';
    if (caa_parse_int64(s, 0, 16, &code) < 0) {
        ttrpc_call_reply_error(call, GRPC_INVALID_ARGUMENT, "bad Fail payload");
        return;
    }
    ttrpc_call_reply_error(call, (int)code, "%s", colon + 1);
}

static void handle_sleep(ttrpc_call *call, void *opaque)
{
    _cleanup_free_ char *s = payload_string(call);
    char *colon = strchr(s, ':');
    uint64_t ms;
    (void)opaque;
    if (colon)
        *colon = '\0';
    if (caa_parse_uint64(s, 60000, &ms) < 0) {
        ttrpc_call_reply_error(call, GRPC_INVALID_ARGUMENT, "bad Sleep payload");
        return;
    }
    timed_call_start(call, ms, false);
}

typedef struct md_entry {
    const char *key;
    const char *value;
    size_t index;
} md_entry;

/* By key, then arrival order: the Go server's map keeps values in order. */
static int md_entry_cmp(const void *a, const void *b)
{
    const md_entry *x = a, *y = b;
    int r = strcmp(x->key, y->key);
    if (r)
        return r;
    return x->index < y->index ? -1 : x->index > y->index;
}

static void handle_metadata(ttrpc_call *call, void *opaque)
{
    size_t n = ttrpc_call_metadata_count(call);
    _cleanup_free_ md_entry *entries = xnew0(md_entry, n + 1);
    size_t len = 0;
    (void)opaque;
    for (size_t i = 0; i < n; i++) {
        entries[i] = (md_entry){ttrpc_call_metadata_key(call, i), ttrpc_call_metadata_value(call, i), i};
        len += strlen(entries[i].key) + strlen(entries[i].value) + 2;
    }
    qsort(entries, n, sizeof(*entries), md_entry_cmp);
    _cleanup_free_ char *out = xmalloc(len + 1);
    char *w = out;
    for (size_t i = 0; i < n; i++)
        w += sprintf(w, "%s=%s\n", entries[i].key, entries[i].value);
    ttrpc_call_reply(call, (const uint8_t *)out, (size_t)(w - out));
}

static void handle_deadline(ttrpc_call *call, void *opaque)
{
    int64_t ns = ttrpc_call_timeout_ns(call);
    char buf[32];
    (void)opaque;
    if (ns <= 0)
        snprintf(buf, sizeof(buf), "none");
    else
        snprintf(buf, sizeof(buf), "%" PRId64, ns / 1000000);
    ttrpc_call_reply(call, (const uint8_t *)buf, strlen(buf));
}

static void handle_expire(ttrpc_call *call, void *opaque)
{
    int64_t ns = ttrpc_call_timeout_ns(call);
    (void)opaque;
    if (ns <= 0) {
        ttrpc_call_reply_error(call, GRPC_INVALID_ARGUMENT, "no deadline");
        return;
    }
    timed_call_start(call, (uint64_t)(ns + 999999) / 1000000, true);
}

static void handle_version(ttrpc_call *call, void *opaque)
{
    size_t len;
    const uint8_t *p = ttrpc_call_payload(call, &len);
    (void)opaque;
    Hypervisor__VersionRequest *req = hypervisor__version_request__unpack(NULL, len, p);
    if (!req) {
        ttrpc_call_reply_error(call, GRPC_INVALID_ARGUMENT, "VersionRequest: cannot decode");
        return;
    }
    hypervisor__version_request__free_unpacked(req, NULL);
    Hypervisor__VersionResponse resp = HYPERVISOR__VERSION_RESPONSE__INIT;
    resp.version = "0.0.0";
    ttrpc_call_reply_message(call, &resp.base);
}

static const ttrpc_method_entry test_methods[] = {
    {"Echo", handle_echo},         {"Fail", handle_fail},         {"Sleep", handle_sleep},
    {"Metadata", handle_metadata}, {"Deadline", handle_deadline}, {"Expire", handle_expire},
};
static const ttrpc_method_entry hypervisor_methods[] = {
    {"Version", handle_version},
};

typedef struct server_state {
    ttrpc_server *server;
    uv_signal_t sigterm, sigint;
} server_state;

static void server_closed(void *opaque)
{
    server_state *st = opaque;
    uv_close((uv_handle_t *)&st->sigterm, NULL);
    uv_close((uv_handle_t *)&st->sigint, NULL);
}

static void server_on_signal(uv_signal_t *h, int signum)
{
    server_state *st = h->data;
    (void)signum;
    uv_signal_stop(&st->sigterm);
    uv_signal_stop(&st->sigint);
    if (st->server) {
        ttrpc_server_close(st->server, server_closed, st);
        st->server = NULL;
    }
}

static int run_server(const char *addr_s)
{
    uv_loop_t *loop = uv_default_loop();
    _cleanup_error_ caa_error *err = NULL;
    server_state st = {0};
    peer_addr addr;

    scenario = "server";
    if (peer_addr_parse(addr_s, &addr) < 0)
        failf("bad address %s", addr_s);
    if (ttrpc_server_new(loop, &st.server, &err) < 0 ||
        ttrpc_server_register(st.server, TEST_SERVICE, test_methods,
                              sizeof(test_methods) / sizeof(test_methods[0]), NULL, &err) < 0 ||
        ttrpc_server_register(st.server, HYPERVISOR_SERVICE, hypervisor_methods,
                              sizeof(hypervisor_methods) / sizeof(hypervisor_methods[0]), NULL, &err) < 0)
        failf("server: %s", caa_error_msg(err));
    if (addr.unix_socket) {
        if (ttrpc_server_listen_unix(st.server, addr.path, 0600, &err) < 0)
            failf("listen %s: %s", addr_s, caa_error_msg(err));
        printf("LISTENING unix:%s\n", addr.path);
    } else {
        if (ttrpc_server_listen_tcp(st.server, addr.host, addr.port, &err) < 0)
            failf("listen %s: %s", addr_s, caa_error_msg(err));
        printf("LISTENING tcp:%s:%u\n", addr.host, ttrpc_server_tcp_port(st.server));
    }
    fflush(stdout);
    peer_addr_done(&addr);

    uv_signal_init(loop, &st.sigterm);
    uv_signal_init(loop, &st.sigint);
    st.sigterm.data = st.sigint.data = &st;
    uv_signal_start(&st.sigterm, server_on_signal, SIGTERM);
    uv_signal_start(&st.sigint, server_on_signal, SIGINT);

    uv_run(loop, UV_RUN_DEFAULT);
    if (uv_loop_close(loop) != 0)
        failf("handles left open at exit");
    return 0;
}

/* ------------------------------------------------------------ client */

static peer_addr target;

static void connect_to(ttrpc_connect_cb cb, void *opaque)
{
    _cleanup_error_ caa_error *err = NULL;
    int r;
    if (target.unix_socket)
        r = ttrpc_client_connect_unix(uv_default_loop(), target.path, cb, opaque, &err);
    else
        r = ttrpc_client_connect_tcp(uv_default_loop(), target.host, target.port, cb, opaque, &err);
    if (r < 0)
        failf("connect: %s", caa_error_msg(err));
}

static void check_connected(int status, const caa_error *err)
{
    if (status < 0)
        failf("connect: %s", err ? caa_error_msg(err) : strerror(-status));
}

static void start_call(ttrpc_client *c, const char *service, const char *method, const uint8_t *payload,
                       size_t len, int64_t timeout_ns, const ttrpc_kv *md, size_t n_md, ttrpc_response_cb cb,
                       void *opaque)
{
    _cleanup_error_ caa_error *err = NULL;
    if (ttrpc_client_call(c, service, method, payload, len, timeout_ns, md, n_md, cb, opaque, &err) < 0)
        failf("%s/%s: %s", service, method, caa_error_msg(err));
}

static void expect_ok(const ttrpc_result *r, const char *what)
{
    if (r->status < 0)
        failf("%s: no response: %s", what, strerror(-r->status));
    if (r->grpc_code != GRPC_OK)
        failf("%s: status %d %s", what, r->grpc_code, r->message);
}

static void expect_payload(const ttrpc_result *r, const char *what, const void *want, size_t want_len)
{
    expect_ok(r, what);
    if (r->payload_len != want_len || (want_len && memcmp(r->payload, want, want_len) != 0))
        failf("%s: payload of %zu bytes, want %zu (%.*s)", what, r->payload_len, want_len,
              (int)(r->payload_len > 80 ? 80 : r->payload_len), r->payload ? (const char *)r->payload : "");
}

static void expect_status(const ttrpc_result *r, const char *what, int code, const char *msg)
{
    if (r->status < 0)
        failf("%s: no response: %s", what, strerror(-r->status));
    if (r->grpc_code != code || strcmp(r->message, msg) != 0)
        failf("%s: status %d \"%.100s\", want %d \"%.100s\"", what, r->grpc_code, r->message, code, msg);
}

/* A scenario that runs calls one after another on one connection. */
typedef struct step step;
typedef struct seq seq;
struct step {
    const char *service;
    const char *method;
    char *payload;
    size_t len;
    int64_t timeout_ns;
    const ttrpc_kv *md;
    size_t n_md;
    void (*check)(seq *s, const step *st, const ttrpc_result *r);
    int want_code; /* for check_status */
    char *want;    /* for check_status / check_payload (NULL: echo of payload) */
    size_t want_len;
};

struct seq {
    ttrpc_client *c;
    step *steps;
    size_t n, i;
    uint64_t started_ns; /* when the current step was sent */
    char summary[128];
};

static void seq_next(seq *s);

static void seq_on_response(const ttrpc_result *r, void *opaque)
{
    seq *s = opaque;
    const step *st = &s->steps[s->i];
    st->check(s, st, r);
    s->i++;
    seq_next(s);
}

static void seq_next(seq *s)
{
    if (s->i == s->n) {
        ttrpc_client_close(s->c);
        return;
    }
    step *st = &s->steps[s->i];
    s->started_ns = uv_hrtime();
    start_call(s->c, st->service, st->method, (const uint8_t *)st->payload, st->len, st->timeout_ns, st->md,
               st->n_md, seq_on_response, s);
}

static void seq_on_connect(ttrpc_client *c, int status, const caa_error *err, void *opaque)
{
    seq *s = opaque;
    check_connected(status, err);
    s->c = c;
    seq_next(s);
}

static void check_payload(seq *s, const step *st, const ttrpc_result *r)
{
    char what[96];
    (void)s;
    snprintf(what, sizeof(what), "%s/%s[%zu bytes]", st->service, st->method, st->len);
    if (st->want)
        expect_payload(r, what, st->want, st->want_len);
    else
        expect_payload(r, what, st->payload, st->len);
}

static void check_status(seq *s, const step *st, const ttrpc_result *r)
{
    char what[96];
    (void)s;
    snprintf(what, sizeof(what), "%s/%s", st->service, st->method);
    expect_status(r, what, st->want_code, st->want);
}

static step mkstep(const char *service, const char *method, const void *payload, size_t len,
                   void (*check)(seq *, const step *, const ttrpc_result *))
{
    return (step){
        .service = service,
        .method = method,
        .payload = len ? xmemdup(payload, len) : NULL,
        .len = len,
        .check = check,
    };
}

static step mktext(const char *method, const char *text,
                   void (*check)(seq *, const step *, const ttrpc_result *))
{
    return mkstep(TEST_SERVICE, method, text, strlen(text), check);
}

static step mkstatus(const char *service, const char *method, const char *payload, int code, const char *msg)
{
    step st = mkstep(service, method, payload, strlen(payload), check_status);
    st.want_code = code;
    st.want = xstrdup(msg);
    return st;
}

static void seq_run(seq *s)
{
    connect_to(seq_on_connect, s);
    uv_run(uv_default_loop(), UV_RUN_DEFAULT);
    if (s->i != s->n)
        failf("stopped after %zu of %zu calls", s->i, s->n);
    for (size_t i = 0; i < s->n; i++) {
        free(s->steps[i].payload);
        free(s->steps[i].want);
    }
    free(s->steps);
}

static void scenario_basic(void)
{
    static const size_t sizes[] = {0, 1, 127, 128, 4096, 65536, 1 << 20};
    size_t n = sizeof(sizes) / sizeof(sizes[0]);
    seq s = {.steps = xnew0(step, n + 1)};
    for (size_t k = 0; k < n; k++) {
        _cleanup_free_ uint8_t *p = xmalloc(sizes[k] + 1);
        for (size_t i = 0; i < sizes[k]; i++)
            p[i] = (uint8_t)(i * 7 + sizes[k]);
        s.steps[s.n++] = mkstep(TEST_SERVICE, "Echo", p, sizes[k], check_payload);
    }
    Hypervisor__VersionRequest req = HYPERVISOR__VERSION_REQUEST__INIT;
    req.version = "0.0.0";
    uint8_t packed[16];
    size_t len = hypervisor__version_request__pack(&req, packed);
    s.steps[s.n] = mkstep(HYPERVISOR_SERVICE, "Version", packed, len, check_payload);
    s.steps[s.n].want = xmemdup(version000, sizeof(version000));
    s.steps[s.n].want_len = sizeof(version000);
    s.n++;
    seq_run(&s);
    printf("PASS basic echo sizes=0..1MiB version=0.0.0\n");
}

static void scenario_errors(void)
{
    seq s = {.steps = xnew0(step, 18)};
    for (int code = 1; code <= 16; code++) {
        _cleanup_free_ char *msg = xasprintf("failure %d: ünïcode ✓, colons: kept", code);
        _cleanup_free_ char *payload = xasprintf("%d:%s", code, msg);
        s.steps[s.n++] = mkstatus(TEST_SERVICE, "Fail", payload, code, msg);
    }
    _cleanup_free_ char *longmsg = xmalloc(10001);
    memset(longmsg, 'x', 10000);
    longmsg[10000] = '\0';
    _cleanup_free_ char *payload = xasprintf("2:%s", longmsg);
    s.steps[s.n++] = mkstatus(TEST_SERVICE, "Fail", payload, GRPC_UNKNOWN, longmsg);
    s.steps[s.n++] = mktext("Echo", "still-alive", check_payload);
    seq_run(&s);
    printf("PASS errors codes=1..16\n");
}

static void scenario_metadata(void)
{
    /* Sent in an order different from the sorted reply on purpose. */
    static const ttrpc_kv md[] = {
        {"x-unicode", "wert ✓ with spaces"},
        {"k-multi", "first"},
        {"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
        {"k-multi", "second"},
        {"empty", ""},
        {"k-multi", "third"},
    };
    static const char want[] = "empty=\n"
                               "k-multi=first\nk-multi=second\nk-multi=third\n"
                               "traceparent=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\n"
                               "x-unicode=wert ✓ with spaces\n";
    seq s = {.steps = xnew0(step, 2)};
    s.steps[0] = mkstep(TEST_SERVICE, "Metadata", NULL, 0, check_payload);
    s.steps[0].md = md;
    s.steps[0].n_md = sizeof(md) / sizeof(md[0]);
    s.steps[0].want = xstrdup(want);
    s.steps[0].want_len = strlen(want);
    s.steps[1] = mkstep(TEST_SERVICE, "Metadata", NULL, 0, check_payload);
    s.steps[1].want = xstrdup("");
    s.n = 2;
    seq_run(&s);
    printf("PASS metadata\n");
}

static void check_deadline_arrived(seq *s, const step *st, const ttrpc_result *r)
{
    _cleanup_free_ char *text = NULL;
    int64_t ms;
    (void)st;
    expect_ok(r, "Deadline");
    text = xstrndup(r->payload ? (const char *)r->payload : "", r->payload_len);
    if (caa_parse_int64(text, 0, INT64_MAX, &ms) < 0 || ms <= 3000 || ms > 5000)
        failf("5 s deadline arrived as \"%s\" ms", text);
    snprintf(s->summary, sizeof(s->summary), "arrived=%sms", text);
}

static void check_expired(seq *s, const step *st, const ttrpc_result *r)
{
    uint64_t elapsed_ms = (uv_hrtime() - s->started_ns) / 1000000;
    size_t len = strlen(s->summary);
    (void)st;
    /* Our own deadline (-ETIMEDOUT) or the server's DEADLINE_EXCEEDED,
     * whichever comes first. */
    if (!(r->status == -ETIMEDOUT || (r->status == 0 && r->grpc_code == GRPC_DEADLINE_EXCEEDED)))
        failf("Expire with 200 ms deadline: status %d code %d %s", r->status, r->grpc_code,
              r->message ? r->message : "");
    if (elapsed_ms < 190 || elapsed_ms > 3000)
        failf("Expire returned after %" PRIu64 " ms", elapsed_ms);
    snprintf(s->summary + len, sizeof(s->summary) - len, " expired-after=%" PRIu64 "ms (%s)", elapsed_ms,
             r->status == -ETIMEDOUT ? "ETIMEDOUT" : "DEADLINE_EXCEEDED");
}

static void scenario_deadline(void)
{
    seq s = {.steps = xnew0(step, 5)};
    s.steps[s.n] = mktext("Deadline", "", check_payload);
    s.steps[s.n].want = xstrdup("none");
    s.steps[s.n++].want_len = 4;
    s.steps[s.n] = mktext("Deadline", "", check_deadline_arrived);
    s.steps[s.n++].timeout_ns = 5 * 1000000000LL;
    s.steps[s.n] = mktext("Expire", "", check_expired);
    s.steps[s.n++].timeout_ns = 200 * 1000000LL;
    /* The late answer to the expired stream must not disturb later calls. */
    s.steps[s.n++] = mktext("Sleep", "300:after-expire", check_payload);
    s.steps[s.n++] = mktext("Echo", "x", check_payload);
    seq_run(&s);
    printf("PASS deadline %s\n", s.summary);
}

static void scenario_unknown(void)
{
    seq s = {.steps = xnew0(step, 3)};
    s.steps[s.n++] =
        mkstatus("caa.interop.Nope", "Echo", "x", GRPC_UNIMPLEMENTED, "service caa.interop.Nope");
    s.steps[s.n++] = mkstatus(TEST_SERVICE, "Nope", "x", GRPC_UNIMPLEMENTED, "method Nope");
    s.steps[s.n++] = mktext("Echo", "y", check_payload);
    seq_run(&s);
    printf("PASS unknown\n");
}

/* ---- calls issued together on one connection (ooo, inflight) */

typedef struct batch_call {
    struct batch *b;
    char *payload;
} batch_call;

typedef struct batch {
    ttrpc_client *c;
    batch_call *calls;
    size_t n, done;
    char order[64]; /* ooo: tags in completion order */
    bool record_order;
} batch;

static void batch_on_response(const ttrpc_result *r, void *opaque)
{
    batch_call *bc = opaque;
    batch *b = bc->b;
    expect_payload(r, "Sleep", bc->payload, strlen(bc->payload));
    if (b->record_order) {
        size_t len = strlen(b->order);
        snprintf(b->order + len, sizeof(b->order) - len, "%s%s", len ? "," : "",
                 strchr(bc->payload, ':') + 1);
    }
    if (++b->done == b->n)
        ttrpc_client_close(b->c);
}

static void batch_on_connect(ttrpc_client *c, int status, const caa_error *err, void *opaque)
{
    batch *b = opaque;
    check_connected(status, err);
    b->c = c;
    /* All sent in one loop iteration, in this order. */
    for (size_t i = 0; i < b->n; i++)
        start_call(c, TEST_SERVICE, "Sleep", (const uint8_t *)b->calls[i].payload,
                   strlen(b->calls[i].payload), 0, NULL, 0, batch_on_response, &b->calls[i]);
    if (ttrpc_client_inflight(c) != b->n)
        failf("%zu calls in flight, want %zu", ttrpc_client_inflight(c), b->n);
}

static void batch_run(batch *b)
{
    connect_to(batch_on_connect, b);
    uv_run(uv_default_loop(), UV_RUN_DEFAULT);
    if (b->done != b->n)
        failf("%zu of %zu calls answered", b->done, b->n);
    for (size_t i = 0; i < b->n; i++)
        free(b->calls[i].payload);
    free(b->calls);
}

static void scenario_ooo(void)
{
    static const char *tags[] = {"800:a", "400:b", "0:c"};
    batch b = {.n = 3, .record_order = true};
    b.calls = xnew0(batch_call, b.n);
    for (size_t i = 0; i < b.n; i++)
        b.calls[i] = (batch_call){&b, xstrdup(tags[i])};
    batch_run(&b);
    if (strcmp(b.order, "c,b,a") != 0)
        failf("completion order %s, want c,b,a", b.order);
    printf("PASS ooo order=c,b,a\n");
}

static void scenario_inflight(size_t k)
{
    batch b = {.n = k};
    uint64_t t0 = uv_hrtime();
    b.calls = xnew0(batch_call, b.n);
    for (size_t i = 0; i < b.n; i++)
        b.calls[i] = (batch_call){&b, xasprintf("%zu:inflight-%zu", (i * 7) % 50, i)};
    batch_run(&b);
    printf("PASS inflight k=%zu in %" PRIu64 "ms\n", k, (uv_hrtime() - t0) / 1000000);
}

/* ---- abandon: close a connection with calls in flight */

typedef struct abandon {
    ttrpc_client *c;
    uv_timer_t timer;
    size_t sent, cancelled;
} abandon;

static void abandon_on_response(const ttrpc_result *r, void *opaque)
{
    abandon *a = opaque;
    if (r->status != -ECANCELED)
        failf("in-flight call at close: status %d code %d, want -ECANCELED", r->status, r->grpc_code);
    a->cancelled++;
}

static void abandon_on_timer(uv_timer_t *t)
{
    abandon *a = t->data;
    ttrpc_client_close(a->c);
    uv_close((uv_handle_t *)&a->timer, NULL);
}

static void abandon_on_connect(ttrpc_client *c, int status, const caa_error *err, void *opaque)
{
    abandon *a = opaque;
    check_connected(status, err);
    a->c = c;
    for (; a->sent < 10; a->sent++) {
        _cleanup_free_ char *p = xasprintf("300:abandon-%zu", a->sent);
        start_call(c, TEST_SERVICE, "Sleep", (const uint8_t *)p, strlen(p), 0, NULL, 0, abandon_on_response,
                   a);
    }
    /* Let the requests reach the server before hanging up. */
    uv_timer_init(uv_default_loop(), &a->timer);
    a->timer.data = a;
    uv_timer_start(&a->timer, abandon_on_timer, 50, 0);
}

static void scenario_abandon(void)
{
    abandon a = {0};
    connect_to(abandon_on_connect, &a);
    uv_run(uv_default_loop(), UV_RUN_DEFAULT);
    if (a.cancelled != a.sent)
        failf("%zu of %zu in-flight calls cancelled", a.cancelled, a.sent);

    /* The server finished (or dropped) the abandoned calls without harm. */
    seq s = {.steps = xnew0(step, 2)};
    s.steps[s.n++] = mktext("Sleep", "400:after-abandon", check_payload);
    s.steps[s.n++] = mktext("Echo", "z", check_payload);
    seq_run(&s);
    printf("PASS abandon calls=%zu\n", a.sent);
}

/* ---- many connections (conns, throughput) */

typedef struct conn_run {
    struct multi *m;
    ttrpc_client *c;
    size_t index, calls;
    char *payload;
} conn_run;

typedef struct multi {
    conn_run *runs;
    size_t n, per_conn, connected, finished;
    bool throughput;
    uint64_t duration_ns, start_ns, end_ns;
    uint64_t total;
} multi;

static void conn_next(conn_run *cr);

static void conn_on_response(const ttrpc_result *r, void *opaque)
{
    conn_run *cr = opaque;
    if (cr->m->throughput)
        expect_payload(r, "Version", version000, sizeof(version000));
    else
        expect_payload(r, "Echo", cr->payload, strlen(cr->payload));
    cr->calls++;
    conn_next(cr);
}

static void conn_next(conn_run *cr)
{
    multi *m = cr->m;
    free(cr->payload);
    cr->payload = NULL;
    if (m->throughput ? uv_hrtime() >= m->end_ns : cr->calls == m->per_conn) {
        m->total += cr->calls;
        m->finished++;
        ttrpc_client_close(cr->c);
        return;
    }
    if (m->throughput) {
        start_call(cr->c, HYPERVISOR_SERVICE, "Version", version000, sizeof(version000), 0, NULL, 0,
                   conn_on_response, cr);
    } else {
        cr->payload = xasprintf("conn-%zu-call-%zu", cr->index, cr->calls);
        start_call(cr->c, TEST_SERVICE, "Echo", (const uint8_t *)cr->payload, strlen(cr->payload), 0, NULL, 0,
                   conn_on_response, cr);
    }
}

static void conn_on_connect(ttrpc_client *c, int status, const caa_error *err, void *opaque)
{
    conn_run *cr = opaque;
    multi *m = cr->m;
    check_connected(status, err);
    cr->c = c;
    if (!m->throughput) {
        conn_next(cr);
        return;
    }
    /* Throughput runs start the clock once every connection is up. */
    if (++m->connected == m->n) {
        m->start_ns = uv_hrtime();
        m->end_ns = m->start_ns + m->duration_ns;
        for (size_t i = 0; i < m->n; i++)
            conn_next(&m->runs[i]);
    }
}

/* Returns the time from the start of the calls to the last answer. */
static uint64_t multi_run(multi *m)
{
    m->runs = xnew0(conn_run, m->n);
    m->start_ns = uv_hrtime();
    for (size_t i = 0; i < m->n; i++) {
        m->runs[i] = (conn_run){.m = m, .index = i};
        connect_to(conn_on_connect, &m->runs[i]);
    }
    uv_run(uv_default_loop(), UV_RUN_DEFAULT);
    uint64_t elapsed = uv_hrtime() - m->start_ns;
    if (m->finished != m->n)
        failf("%zu of %zu connections finished", m->finished, m->n);
    free(m->runs);
    return elapsed;
}

static void scenario_conns(size_t n, size_t per_conn)
{
    multi m = {.n = n, .per_conn = per_conn};
    uint64_t ns = multi_run(&m);
    if (m.total != n * per_conn)
        failf("%" PRIu64 " calls answered, want %zu", m.total, n * per_conn);
    printf("PASS conns n=%zu m=%zu in %" PRIu64 "ms\n", n, per_conn, ns / 1000000);
}

static void scenario_throughput(size_t conns, uint64_t seconds)
{
    multi m = {.n = conns, .throughput = true, .duration_ns = seconds * 1000000000ULL};
    double secs = (double)multi_run(&m) / 1e9;
    printf("PASS throughput conns=%zu seconds=%.3f calls=%" PRIu64 " rate=%.0f\n", conns, secs, m.total,
           (double)m.total / secs);
}

static size_t count_arg(int argc, char **argv, int i, size_t def)
{
    uint64_t v;
    if (argc <= i)
        return def;
    if (caa_parse_uint64(argv[i], 1000000, &v) < 0 || v == 0)
        failf("bad number %s", argv[i]);
    return (size_t)v;
}

static int run_client(int argc, char **argv)
{
    /* argv: client <addr> <scenario> [args] */
    scenario = argv[2];
    if (peer_addr_parse(argv[1], &target) < 0)
        failf("bad address %s", argv[1]);
    if (strcmp(scenario, "basic") == 0)
        scenario_basic();
    else if (strcmp(scenario, "errors") == 0)
        scenario_errors();
    else if (strcmp(scenario, "metadata") == 0)
        scenario_metadata();
    else if (strcmp(scenario, "deadline") == 0)
        scenario_deadline();
    else if (strcmp(scenario, "unknown") == 0)
        scenario_unknown();
    else if (strcmp(scenario, "ooo") == 0)
        scenario_ooo();
    else if (strcmp(scenario, "abandon") == 0)
        scenario_abandon();
    else if (strcmp(scenario, "conns") == 0)
        scenario_conns(count_arg(argc, argv, 3, 100), count_arg(argc, argv, 4, 10));
    else if (strcmp(scenario, "inflight") == 0)
        scenario_inflight(count_arg(argc, argv, 3, 1000));
    else if (strcmp(scenario, "throughput") == 0)
        scenario_throughput(count_arg(argc, argv, 3, 1), count_arg(argc, argv, 4, 5));
    else
        failf("unknown scenario");
    peer_addr_done(&target);
    if (uv_loop_close(uv_default_loop()) != 0)
        failf("handles left open at exit");
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    /* Peer deaths show up as call errors, not as SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    if (argc == 3 && strcmp(argv[1], "server") == 0)
        return run_server(argv[2]);
    if (argc >= 4 && strcmp(argv[1], "client") == 0)
        return run_client(argc - 1, argv + 1);
    fprintf(stderr, "usage: c-peer server <unix:/path|tcp:host:port>\n"
                    "       c-peer client <addr> <scenario> [args]\n");
    return 2;
}
