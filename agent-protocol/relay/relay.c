/* ttRPC request relay (see relay.h).
 *
 * Per request the relay keeps one small record (relay_call) from arrival to
 * the upstream answer. When the downstream connection goes away first the
 * downstream call is released at once and only the record waits for the
 * upstream answer (the ttRPC protocol has no way to cancel a request), so an
 * abandoned long-poll costs a few dozen bytes, not its request body. */
#define LOG_COMPONENT "agent/relay"

#include "relay.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "log.h"
#include "xalloc.h"
#include "refcount.h"
#include "timeutil.h"

typedef struct relay_call {
    caa_relay *r;
    ttrpc_call *call; /* NULL once the downstream side is gone */
    uint8_t *body;    /* rewritten Request body; NULL: the call's own */
    size_t body_len;
    uint64_t arrival_ns; /* uv_hrtime() */
    uint64_t expiry_ms;  /* loop time at which waiting ends */
    int64_t timeout_ns;  /* the Request's timeout_nano (0: none) */
    bool queued;
    struct relay_call *qprev, *qnext;
} relay_call;

struct caa_relay {
    uv_loop_t *loop;
    char *name;
    const caa_relay_rewrite *rewrites;
    size_t n_rewrites;
    void *rewrite_opaque;
    int64_t max_wait_ns;
    void (*upstream_lost)(caa_relay *r, void *opaque);
    void (*upstream_wanted)(caa_relay *r, void *opaque);
    void *opaque;

    ttrpc_server *server;
    ttrpc_client *up;
    caa_relay_upstream_state state;

    relay_call *qhead, *qtail;
    size_t n_queued;
    uv_timer_t queue_timer;
    bool timer_armed;
    uint64_t timer_due;

    size_t inflight;
    uint64_t relayed, rewritten, failed;

    bool closing;
    caa_refcount pending; /* server + timer not yet closed */
    void (*done)(void *opaque);
    void *done_opaque;
};

static void send_upstream(relay_call *rc);

/* ------------------------------------------------------------ helpers */

static void rc_free(relay_call *rc)
{
    free(rc->body);
    free(rc);
}

/* Answers the downstream call with an error and forgets the record. */
static void rc_fail(relay_call *rc, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void rc_fail(relay_call *rc, int code, const char *fmt, ...)
{
    if (rc->call) {
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *msg = xvasprintf(fmt, ap);
        va_end(ap);
        ttrpc_call_set_cancel_cb(rc->call, NULL, NULL);
        ttrpc_call_reply_error(rc->call, code, "%s", msg);
        rc->r->failed++;
    }
    rc_free(rc);
}

static const caa_relay_rewrite *find_rewrite(const caa_relay *r, const char *service, const char *method)
{
    for (size_t i = 0; i < r->n_rewrites; i++)
        if (strcmp(r->rewrites[i].service, service) == 0 && strcmp(r->rewrites[i].method, method) == 0)
            return &r->rewrites[i];
    return NULL;
}

/* Re-encodes a Request body with another payload and/or timeout (NULL
 * payload: keep it). Metadata and fields we do not know are kept. */
static uint8_t *reencode(const uint8_t *body, size_t len, const uint8_t *payload, size_t payload_len,
                         bool set_timeout, int64_t timeout_ns, size_t *ret_len)
{
    Ttrpc__Request *req = ttrpc_request_decode(body, len, NULL);
    if (!req)
        return NULL; /* the server decoded it already: cannot happen */
    ProtobufCBinaryData saved = req->payload;
    if (payload) {
        req->payload.data = (uint8_t *)payload;
        req->payload.len = payload_len;
    }
    if (set_timeout)
        req->timeout_nano = timeout_ns;
    uint8_t *out = ttrpc_pack(&req->base, ret_len);
    req->payload = saved;
    ttrpc_request_free(req);
    return out;
}

/* ------------------------------------------------------------ wait queue */

static void queue_unlink(relay_call *rc)
{
    caa_relay *r = rc->r;
    if (!rc->queued)
        return;
    if (rc->qprev)
        rc->qprev->qnext = rc->qnext;
    else
        r->qhead = rc->qnext;
    if (rc->qnext)
        rc->qnext->qprev = rc->qprev;
    else
        r->qtail = rc->qprev;
    rc->qprev = rc->qnext = NULL;
    rc->queued = false;
    r->n_queued--;
}

static void on_queue_timer(uv_timer_t *t);

static void arm_timer(caa_relay *r)
{
    if (r->closing)
        return;
    uint64_t due = UINT64_MAX;
    for (relay_call *rc = r->qhead; rc; rc = rc->qnext)
        if (rc->expiry_ms < due)
            due = rc->expiry_ms;
    if (due == UINT64_MAX) {
        if (r->timer_armed)
            uv_timer_stop(&r->queue_timer);
        r->timer_armed = false;
        return;
    }
    if (r->timer_armed && r->timer_due == due)
        return;
    uint64_t now = uv_now(r->loop);
    uv_timer_start(&r->queue_timer, on_queue_timer, due > now ? due - now : 0, 0);
    r->timer_armed = true;
    r->timer_due = due;
}

static void enqueue(relay_call *rc)
{
    caa_relay *r = rc->r;
    int64_t limit = r->max_wait_ns;
    if (rc->timeout_ns > 0 && rc->timeout_ns < limit)
        limit = rc->timeout_ns;
    rc->expiry_ms = uv_now(r->loop) + caa_ns_to_ms_ceil(limit);
    rc->queued = true;
    rc->qprev = r->qtail;
    rc->qnext = NULL;
    if (r->qtail)
        r->qtail->qnext = rc;
    else
        r->qhead = rc;
    r->qtail = rc;
    r->n_queued++;
    if (!r->timer_armed || rc->expiry_ms < r->timer_due)
        arm_timer(r);
}

static void fail_expired(relay_call *rc)
{
    caa_relay *r = rc->r;
    uint64_t waited = uv_hrtime() - rc->arrival_ns;
    if (rc->timeout_ns > 0 && rc->timeout_ns <= r->max_wait_ns)
        rc_fail(rc, GRPC_DEADLINE_EXCEEDED, "context deadline exceeded");
    else
        rc_fail(rc, GRPC_UNAVAILABLE, "no connection to %s within %.1f s", r->name, (double)waited / 1e9);
}

static void on_queue_timer(uv_timer_t *t)
{
    caa_relay *r = CAA_CONTAINER_OF(t, caa_relay, queue_timer);
    r->timer_armed = false;
    uint64_t now = uv_now(r->loop);
    for (relay_call *rc = r->qhead, *next; rc; rc = next) {
        next = rc->qnext;
        if (rc->expiry_ms <= now) {
            queue_unlink(rc);
            fail_expired(rc);
        }
    }
    arm_timer(r);
}

static void fail_queue(caa_relay *r, const char *why)
{
    while (r->qhead) {
        relay_call *rc = r->qhead;
        queue_unlink(rc);
        rc_fail(rc, GRPC_UNAVAILABLE, "%s", why);
    }
    arm_timer(r);
}

static void flush_queue(caa_relay *r)
{
    /* Arrival order; a send that finds the connection gone re-queues at
     * the tail, so stop after one pass. */
    size_t n = r->n_queued;
    while (n-- > 0 && r->qhead && r->state == CAA_RELAY_UPSTREAM_UP) {
        relay_call *rc = r->qhead;
        queue_unlink(rc);
        send_upstream(rc);
    }
    arm_timer(r);
}

/* ------------------------------------------------------------ upstream */

static void on_upstream_response(const ttrpc_result *res, void *opaque)
{
    relay_call *rc = opaque;
    caa_relay *r = rc->r;
    r->inflight--;
    if (!rc->call) {
        rc_free(rc);
        return;
    }
    if (res->status == 0 && res->response) {
        ttrpc_call_set_cancel_cb(rc->call, NULL, NULL);
        ttrpc_call_reply_response(rc->call, res->response, res->response_len);
        rc_free(rc);
        return;
    }
    switch (res->status) {
    case 0: /* an oversize Response: the client made up the status */
        rc_fail(rc, res->grpc_code, "%s", res->message);
        break;
    case -ETIMEDOUT:
        rc_fail(rc, GRPC_DEADLINE_EXCEEDED, "context deadline exceeded");
        break;
    case -EPROTO:
        rc_fail(rc, GRPC_INTERNAL, "invalid response from %s", r->name);
        break;
    default:
        rc_fail(rc, GRPC_UNAVAILABLE, "connection to %s lost", r->name);
        break;
    }
}

static void send_upstream(relay_call *rc)
{
    caa_relay *r = rc->r;
    const uint8_t *body = rc->body;
    size_t len = rc->body_len;
    if (!body)
        body = ttrpc_call_request(rc->call, &len);

    /* Time spent waiting for a connection comes off the deadline. */
    if (rc->timeout_ns > 0) {
        int64_t waited = (int64_t)(uv_hrtime() - rc->arrival_ns);
        if (waited >= rc->timeout_ns) {
            rc_fail(rc, GRPC_DEADLINE_EXCEEDED, "context deadline exceeded");
            return;
        }
        if (waited > CAA_NSEC_PER_MSEC) { /* re-encode only for a wait worth mentioning */
            size_t n;
            uint8_t *b = reencode(body, len, NULL, 0, true, rc->timeout_ns - waited, &n);
            if (b) {
                free(rc->body);
                rc->body = b;
                rc->body_len = n;
                body = b;
                len = n;
            }
        }
    }

    _cleanup_error_ caa_error *e = NULL;
    int ret = ttrpc_client_call_raw(r->up, body, len, on_upstream_response, rc, &e);
    if (ret == 0) {
        r->inflight++;
        r->relayed++;
        if (rc->body)
            r->rewritten++;
        free(rc->body);
        rc->body = NULL;
        /* Sent: the request bytes are no longer needed here (nor copied,
         * when this runs as the request arrives). */
        if (rc->call)
            ttrpc_call_release_request(rc->call);
        return;
    }
    if (ret == -EMSGSIZE) {
        char msg[128];
        ttrpc_oversize_message((uint32_t)(len > UINT32_MAX ? UINT32_MAX : len), msg, sizeof(msg));
        rc_fail(rc, GRPC_RESOURCE_EXHAUSTED, "%s", msg);
        return;
    }
    /* The connection broke and the client has not told us yet: wait for
     * the reconnect like any call arriving now. */
    log_debug("%s: send failed (%s), waiting for a new connection", r->name, caa_error_msg(e));
    if (r->max_wait_ns > 0)
        enqueue(rc);
    else
        rc_fail(rc, GRPC_UNAVAILABLE, "connection to %s lost", r->name);
}

static void drop_upstream(caa_relay *r)
{
    ttrpc_client *c = TAKE_PTR(r->up);
    if (!c)
        return;
    ttrpc_client_set_close_cb(c, NULL, NULL);
    ttrpc_client_close(c); /* in-flight calls fail with -ECANCELED now */
}

static void on_upstream_closed(ttrpc_client *c, void *opaque)
{
    caa_relay *r = opaque;
    if (r->up != c)
        return;
    log_debug("%s: upstream connection closed", r->name);
    drop_upstream(r);
    if (r->closing)
        return;
    r->state = r->max_wait_ns > 0 ? CAA_RELAY_UPSTREAM_CONNECTING : CAA_RELAY_UPSTREAM_DOWN;
    if (r->upstream_lost)
        r->upstream_lost(r, r->opaque);
}

void caa_relay_set_upstream(caa_relay *r, ttrpc_client *c)
{
    if (r->closing) {
        ttrpc_client_close(c);
        return;
    }
    if (r->up != c)
        drop_upstream(r);
    r->up = c;
    ttrpc_client_set_close_cb(c, on_upstream_closed, r);
    r->state = CAA_RELAY_UPSTREAM_UP;
    flush_queue(r);
}

void caa_relay_set_upstream_state(caa_relay *r, caa_relay_upstream_state state)
{
    if (state == CAA_RELAY_UPSTREAM_UP)
        return; /* only caa_relay_set_upstream() brings it up */
    if (state == CAA_RELAY_UPSTREAM_CONNECTING && r->max_wait_ns == 0)
        state = CAA_RELAY_UPSTREAM_DOWN; /* nothing may wait */
    drop_upstream(r);
    r->state = state;
    if (state == CAA_RELAY_UPSTREAM_DOWN) {
        _cleanup_free_ char *why = xasprintf("no connection to %s", r->name);
        fail_queue(r, why);
    }
}

caa_relay_upstream_state caa_relay_upstream_state_get(const caa_relay *r)
{
    return r->state;
}

/* ------------------------------------------------------------ downstream */

static void on_call_cancelled(ttrpc_call *call, void *opaque)
{
    relay_call *rc = opaque;
    /* Releasing the call now frees its request copy; a record already sent
     * upstream stays until the answer (or the connection's end) arrives. */
    rc->call = NULL;
    ttrpc_call_reply_error(call, GRPC_CANCELLED, "connection closed");
    if (rc->queued) {
        queue_unlink(rc);
        rc_free(rc);
    }
}

static void on_request(ttrpc_call *call, void *opaque)
{
    caa_relay *r = opaque;
    const char *service = ttrpc_call_service(call);
    const char *method = ttrpc_call_method(call);

    relay_call *rc = xnew0(relay_call, 1);
    rc->r = r;
    rc->call = call;
    rc->arrival_ns = uv_hrtime();
    rc->timeout_ns = ttrpc_call_timeout_ns(call);

    const caa_relay_rewrite *rw = find_rewrite(r, service, method);
    if (rw) {
        size_t plen, rlen;
        const uint8_t *payload = ttrpc_call_payload(call, &plen);
        _cleanup_free_ uint8_t *out = NULL;
        _cleanup_error_ caa_error *e = NULL;
        int ret = rw->fn(r->rewrite_opaque, payload ? payload : (const uint8_t *)"", plen, &out, &rlen, &e);
        if (ret < 0) {
            log_debug("%s: %s/%s: payload rejected: %s", r->name, service, method, caa_error_msg(e));
            rc_fail(rc, GRPC_INTERNAL, "ttrpc: error unmarshalling payload: %s", caa_error_msg(e));
            return;
        }
        if (ret == 0) {
            size_t blen;
            const uint8_t *body = ttrpc_call_request(call, &blen);
            rc->body = reencode(body, blen, out ? out : (const uint8_t *)"", rlen, false, 0, &rc->body_len);
        }
    }

    switch (r->state) {
    case CAA_RELAY_UPSTREAM_UP:
        ttrpc_call_set_cancel_cb(call, on_call_cancelled, rc);
        send_upstream(rc);
        break;
    case CAA_RELAY_UPSTREAM_CONNECTING:
        ttrpc_call_set_cancel_cb(call, on_call_cancelled, rc);
        enqueue(rc);
        break;
    case CAA_RELAY_UPSTREAM_DOWN:
        rc_fail(rc, GRPC_UNAVAILABLE, "no connection to %s", r->name);
        if (r->upstream_wanted)
            r->upstream_wanted(r, r->opaque);
        break;
    }
}

/* ------------------------------------------------------------ lifetime */

int caa_relay_new(uv_loop_t *loop, const caa_relay_config *cfg, caa_relay **ret, caa_error **err)
{
    if (!loop || !cfg || !ret || (cfg->n_rewrites && !cfg->rewrites) || cfg->max_wait_ns < 0)
        return caa_error_set(err, -EINVAL, "relay: bad configuration");
    for (size_t i = 0; i < cfg->n_rewrites; i++)
        if (!cfg->rewrites[i].service || !cfg->rewrites[i].method || !cfg->rewrites[i].fn)
            return caa_error_set(err, -EINVAL, "relay: rewrite entry %zu incomplete", i);

    caa_relay *r = xnew0(caa_relay, 1);
    r->loop = loop;
    r->name = xstrdup(cfg->name ? cfg->name : "upstream");
    r->rewrites = cfg->rewrites;
    r->n_rewrites = cfg->n_rewrites;
    r->rewrite_opaque = cfg->rewrite_opaque;
    r->max_wait_ns = cfg->max_wait_ns;
    r->upstream_lost = cfg->upstream_lost;
    r->upstream_wanted = cfg->upstream_wanted;
    r->opaque = cfg->opaque;
    r->state = r->max_wait_ns > 0 ? CAA_RELAY_UPSTREAM_CONNECTING : CAA_RELAY_UPSTREAM_DOWN;

    int rv = ttrpc_server_new(loop, &r->server, err);
    if (rv < 0) {
        free(r->name);
        free(r);
        return rv;
    }
    ttrpc_server_set_fallback(r->server, on_request, r);
    uv_timer_init(loop, &r->queue_timer);
    *ret = r;
    return 0;
}

ttrpc_server *caa_relay_server(caa_relay *r)
{
    return r->server;
}

void caa_relay_get_stats(const caa_relay *r, caa_relay_stats *ret)
{
    *ret = (caa_relay_stats){
        .connections = r->server ? ttrpc_server_connection_count(r->server) : 0,
        .inflight = r->inflight,
        .queued = r->n_queued,
        .relayed = r->relayed,
        .rewritten = r->rewritten,
        .failed = r->failed,
    };
}

static void maybe_free(caa_relay *r)
{
    if (!caa_unref(&r->pending))
        return;
    void (*done)(void *) = r->done;
    void *opaque = r->done_opaque;
    free(r->name);
    free(r);
    if (done)
        done(opaque);
}

static void on_server_closed(void *opaque)
{
    caa_relay *r = opaque;
    r->server = NULL;
    maybe_free(r);
}

static void on_timer_closed(uv_handle_t *h)
{
    maybe_free(CAA_CONTAINER_OF((uv_timer_t *)h, caa_relay, queue_timer));
}

void caa_relay_close(caa_relay *r, void (*done)(void *opaque), void *opaque)
{
    if (!r || r->closing)
        return;
    r->closing = true;
    r->done = done;
    r->done_opaque = opaque;
    r->state = CAA_RELAY_UPSTREAM_DOWN;
    fail_queue(r, "shutting down");
    caa_refcount_init(&r->pending, 2);
    /* Downstream first: the cancel callbacks detach every record, so the
     * upstream close below only frees them. */
    ttrpc_server_close(r->server, on_server_closed, r);
    drop_upstream(r);
    uv_timer_stop(&r->queue_timer);
    uv_close((uv_handle_t *)&r->queue_timer, on_timer_closed);
}
