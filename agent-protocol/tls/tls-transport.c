/* TLS over an inner ttRPC transport. */
#define LOG_COMPONENT "agent-protocol/tls"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "cleanup.h"
#include "log.h"
#include "tls-transport.h"
#include "xalloc.h"

/* Plaintext handed to the owner per on_read call: several records, as
 * much as one read of the plain transport (ttrpc-transport-uv.c), so a
 * frame with a 64 KiB payload usually arrives whole, and the owner's caps
 * stay soft by the same amount. */
#define PLAINTEXT_CHUNK (68 * 1024)

/* One plaintext buffer per thread, used only inside deliver_plaintext. */
static _Thread_local uint8_t *thread_plain_buf;
static _Thread_local bool thread_plain_buf_busy;

/* A write of the owner, done once `mark` ciphertext bytes are written. */
typedef struct pending_write {
    struct pending_write *next;
    ttrpc_write_req *req;
    uint64_t mark;
    bool marked; /* false while its plaintext waits for the handshake */
} pending_write;

/* Ciphertext handed to the inner transport. */
typedef struct cipher_chunk {
    ttrpc_write_req req;
    struct tls_transport *t;
    uint8_t data[];
} cipher_chunk;

typedef struct tls_transport {
    ttrpc_transport base;
    ttrpc_transport *inner;
    caa_tls_engine *engine;
    uv_idle_t idle; /* deferred work: buffered plaintext, zero-length writes, failures */

    caa_tls_transport_handshake_cb hs_cb;
    void *hs_opaque;
    void (*shutdown_cb)(ttrpc_transport *t, int status);
    caa_tls_transport_error_cb error_cb;
    void *error_opaque;

    pending_write *head, *tail;
    uint64_t submitted, written; /* ciphertext bytes handed to / written by inner */

    caa_error *error;
    int fail_code;

    ttrpc_write_req now_req; /* inner write_now request, when not in use */
    bool now_req_busy;

    bool started;
    bool reading;       /* the owner wants plaintext */
    bool inner_reading; /* inner read_start is active */
    bool inner_eof;
    bool hs_reported;
    bool eof_delivered;
    bool failed;
    bool failure_delivered; /* to on_read or the handshake callback */
    bool inner_write_failed;
    bool shutting_down;
    bool closing;
    bool inner_closed;
    bool idle_closed;
} tls_transport;

static tls_transport *from_base(ttrpc_transport *b)
{
    return (tls_transport *)b;
}

static void pump(tls_transport *t);

static void on_idle(uv_idle_t *h)
{
    tls_transport *t = CAA_CONTAINER_OF(h, tls_transport, idle);
    uv_idle_stop(h);
    pump(t);
}

static void kick(tls_transport *t)
{
    if (!t->closing)
        uv_idle_start(&t->idle, on_idle);
}

static void set_failed(tls_transport *t, int code, caa_error *err)
{
    if (t->failed) {
        caa_error_free(err);
        return;
    }
    t->failed = true;
    t->fail_code = code < 0 ? code : -EIO;
    t->error = err ? err : caa_error_new(t->fail_code, "TLS transport failed: %s", uv_strerror(t->fail_code));
}

static void fail_writes(tls_transport *t, int status)
{
    while (t->head) {
        pending_write *w = t->head;
        t->head = w->next;
        if (!t->head)
            t->tail = NULL;
        ttrpc_write_req *req = w->req;
        free(w);
        req->cb(req, status);
    }
}

static void complete_writes(tls_transport *t)
{
    while (t->head && t->head->marked && t->head->mark <= t->written) {
        pending_write *w = t->head;
        t->head = w->next;
        if (!t->head)
            t->tail = NULL;
        ttrpc_write_req *req = w->req;
        free(w);
        req->cb(req, 0);
    }
}

static void after_inner_write(tls_transport *t, size_t len, int status)
{
    if (status < 0) {
        t->inner_write_failed = true;
        set_failed(t, status,
                   caa_error_new(status, "TLS transport: sending failed: %s", uv_strerror(status)));
        fail_writes(t, status);
    } else {
        t->written += len;
        complete_writes(t);
    }
    pump(t);
}

static void on_chunk_written(ttrpc_write_req *req, int status)
{
    cipher_chunk *c = CAA_CONTAINER_OF(req, cipher_chunk, req);
    tls_transport *t = c->t;
    size_t len = req->len;
    free(c);
    after_inner_write(t, len, status);
}

/* Ciphertext handed to write_now that the socket did not take at once. */
typedef struct cipher_req {
    ttrpc_write_req req;
    tls_transport *t;
} cipher_req;

static void on_now_written(ttrpc_write_req *req, int status)
{
    tls_transport *t;
    size_t len = req->len;
    if (req->data) { /* the embedded request (data marks it) */
        t = CAA_CONTAINER_OF(req, tls_transport, now_req);
        t->now_req_busy = false;
    } else {
        cipher_req *c = CAA_CONTAINER_OF(req, cipher_req, req);
        t = c->t;
        free(c);
    }
    after_inner_write(t, len, status);
}

static void inner_write_failed(tls_transport *t, int r)
{
    t->inner_write_failed = true;
    set_failed(t, r, caa_error_new(r, "TLS transport: sending failed: %s", uv_strerror(r)));
    kick(t);
}

/* Sends the engine's ciphertext from where it lies: copied only if the
 * socket does not take it all at once. */
static void flush_output_now(tls_transport *t)
{
    size_t n;
    const uint8_t *p;

    while (!t->closing && !t->inner_write_failed && (p = caa_tls_engine_output_peek(t->engine, &n))) {
        ttrpc_write_req *req;
        if (!t->now_req_busy) {
            req = &t->now_req;
            t->now_req_busy = true;
            req->data = (const uint8_t *)t; /* marks the embedded request */
        } else {
            cipher_req *c = xnew0(cipher_req, 1);
            c->t = t;
            req = &c->req;
        }
        req->len = n;
        req->cb = on_now_written;
        uv_buf_t buf = uv_buf_init((char *)p, (unsigned)n);
        t->submitted += n;
        int r = t->inner->ops->write_now(t->inner, req, &buf, 1);
        caa_tls_engine_output_consume(t->engine, n);
        if (r == 0)
            continue;
        if (req == &t->now_req)
            t->now_req_busy = false;
        else
            free(CAA_CONTAINER_OF(req, cipher_req, req));
        if (r < 0) {
            t->submitted -= n;
            inner_write_failed(t, r);
            return;
        }
        t->written += n;
    }
}

/* Hands all ciphertext to the inner transport and marks the owner's writes
 * whose plaintext is now encrypted. */
static void flush_output(tls_transport *t)
{
    size_t n;

    if (t->inner && t->inner->ops->write_now)
        flush_output_now(t);
    while (!t->closing && !t->inner_write_failed && (n = caa_tls_engine_output_pending(t->engine)) > 0) {
        cipher_chunk *c = xmalloc(sizeof(*c) + n);
        memset(&c->req, 0, sizeof(c->req));
        c->t = t;
        c->req.len = caa_tls_engine_take_output(t->engine, c->data, n);
        c->req.data = c->data;
        c->req.cb = on_chunk_written;
        t->submitted += c->req.len;
        int r = t->inner->ops->write(t->inner, &c->req);
        if (r < 0) {
            t->submitted -= c->req.len;
            free(c);
            t->inner_write_failed = true;
            set_failed(t, r, caa_error_new(r, "TLS transport: sending failed: %s", uv_strerror(r)));
            kick(t);
            return;
        }
    }
    if (caa_tls_engine_write_pending(t->engine) == 0)
        for (pending_write *w = t->head; w; w = w->next)
            if (!w->marked) {
                w->mark = t->submitted;
                w->marked = true;
            }
}

static void update_inner_reading(tls_transport *t)
{
    bool want = t->started && !t->closing && !t->failed && !t->inner_eof && (!t->hs_reported || t->reading);
    if (want == t->inner_reading)
        return;
    if (want) {
        int r = t->inner->ops->read_start(t->inner);
        if (r < 0) {
            set_failed(t, r, caa_error_new(r, "TLS transport: reading failed: %s", uv_strerror(r)));
            kick(t);
            return;
        }
    } else if (!t->closing) {
        t->inner->ops->read_stop(t->inner);
    }
    t->inner_reading = want;
}

/* Tells the owner about a failure. A handshake failure waits until the
 * alert for the peer is written (a few bytes), so that closing from the
 * callback still tells the peer why; later failures do not wait, since
 * megabytes may sit unwritten in front of the alert. */
static void deliver_failure(tls_transport *t)
{
    if (t->failure_delivered)
        return;
    if (!t->hs_reported && t->written < t->submitted && !t->inner_write_failed)
        return;
    fail_writes(t, t->fail_code);
    if (t->closing)
        return;
    if (t->hs_cb) {
        caa_tls_transport_handshake_cb cb = t->hs_cb;
        t->hs_cb = NULL;
        t->failure_delivered = true;
        cb(&t->base, t->fail_code, t->error, t->hs_opaque);
    } else if (t->reading) {
        t->failure_delivered = true;
        log_debug("%s", caa_error_msg(t->error));
        if (t->error_cb) {
            t->error_cb(&t->base, t->error, t->error_opaque);
            if (t->closing || !t->reading)
                return;
        }
        t->base.on_read(&t->base, t->fail_code, NULL);
    }
}

static void deliver_plaintext_into(tls_transport *t, uint8_t *buf)
{
    while (t->reading && !t->closing && !t->failed && !t->eof_delivered) {
        caa_error *err = NULL;
        size_t have = 0;
        ssize_t n = 0;
        while (have < PLAINTEXT_CHUNK) {
            n = caa_tls_engine_read(t->engine, buf + have, PLAINTEXT_CHUNK - have, &err);
            if (n <= 0)
                break;
            have += (size_t)n;
        }
        if (have > 0) {
            caa_error_free(err); /* a failure sticks: the next read reports it */
            t->base.on_read(&t->base, (ssize_t)have, buf);
            /* Drained (the last read found nothing): no need to ask again
             * unless an end or a failure is still to be reported. */
            if (n == 0 && !caa_tls_engine_peer_closed(t->engine))
                return;
            continue;
        }
        if (n < 0) {
            set_failed(t, (int)n, err);
            return;
        }
        if (caa_tls_engine_peer_closed(t->engine)) {
            t->eof_delivered = true;
            t->base.on_read(&t->base, UV_EOF, NULL);
        }
        return;
    }
}

static void deliver_plaintext(tls_transport *t)
{
    if (thread_plain_buf_busy) { /* not expected: TLS inside TLS */
        uint8_t *buf = xmalloc(PLAINTEXT_CHUNK);
        deliver_plaintext_into(t, buf);
        free(buf);
        return;
    }
    if (!thread_plain_buf)
        thread_plain_buf = xmalloc(PLAINTEXT_CHUNK);
    thread_plain_buf_busy = true;
    deliver_plaintext_into(t, thread_plain_buf);
    thread_plain_buf_busy = false;
}

/* Moves everything along after any event. Safe to re-enter: every callback
 * into the owner is followed by a check of `closing`. */
static void pump(tls_transport *t)
{
    if (t->closing)
        return;
    complete_writes(t);
    flush_output(t);
    if (!t->failed && !t->hs_reported && caa_tls_engine_handshake_done(t->engine)) {
        t->hs_reported = true;
        update_inner_reading(t);
        if (t->hs_cb) {
            caa_tls_transport_handshake_cb cb = t->hs_cb;
            t->hs_cb = NULL;
            cb(&t->base, 0, NULL, t->hs_opaque);
            if (t->closing)
                return;
        }
    }
    if (!t->failed && t->hs_reported)
        deliver_plaintext(t);
    if (t->closing)
        return;
    flush_output(t); /* reads may answer (alerts, key updates) */
    if (t->failed) {
        update_inner_reading(t);
        deliver_failure(t);
        return;
    }
    update_inner_reading(t);
}

static void on_inner_read(ttrpc_transport *inner, ssize_t nread, const uint8_t *data)
{
    tls_transport *t = inner->owner;
    caa_error *err = NULL;
    int r = 0;

    if (t->closing || t->failed)
        return;
    if (nread > 0) {
        /* Read in place; feed_done below keeps what is left. */
        r = caa_tls_engine_feed_borrowed(t->engine, data, (size_t)nread, &err);
        if (r < 0)
            set_failed(t, r, err);
        pump(t);
        caa_tls_engine_feed_done(t->engine);
        return;
    } else if (nread == UV_EOF) {
        t->inner_eof = true;
        t->inner_reading = false;
        r = caa_tls_engine_feed_eof(t->engine, &err);
    } else if (nread < 0) {
        t->inner_eof = true;
        t->inner_reading = false;
        r = (int)nread;
        err = caa_error_new(r, "TLS transport: receiving failed: %s", uv_strerror(r));
    }
    if (r < 0)
        set_failed(t, r, err);
    pump(t);
}

static void maybe_free(tls_transport *t)
{
    if (!t->inner_closed || !t->idle_closed)
        return;
    if (t->base.on_close)
        t->base.on_close(&t->base);
    caa_tls_engine_free(t->engine);
    caa_error_free(t->error);
    free(t);
}

static void on_inner_close(ttrpc_transport *inner)
{
    tls_transport *t = inner->owner;
    t->inner = NULL;
    t->inner_closed = true;
    fail_writes(t, UV_ECANCELED);
    if (t->hs_cb) {
        caa_tls_transport_handshake_cb cb = t->hs_cb;
        _cleanup_error_ caa_error *err =
            caa_error_new(-ECANCELED, "TLS transport closed during the handshake");
        t->hs_cb = NULL;
        cb(&t->base, -ECANCELED, err, t->hs_opaque);
    }
    maybe_free(t);
}

static void on_idle_close(uv_handle_t *h)
{
    tls_transport *t = CAA_CONTAINER_OF((uv_idle_t *)h, tls_transport, idle);
    t->idle_closed = true;
    maybe_free(t);
}

static int start(tls_transport *t, caa_error **err)
{
    if (t->started)
        return 0;
    t->started = true;
    update_inner_reading(t);
    if (t->failed)
        return caa_error_propagate(err, &(caa_error *){caa_error_copy(t->error)});
    int r = caa_tls_engine_handshake(t->engine, err);
    if (r < 0)
        return r;
    flush_output(t);
    if (t->failed)
        return caa_error_propagate(err, &(caa_error *){caa_error_copy(t->error)});
    return 0;
}

static int tlst_read_start(ttrpc_transport *base)
{
    tls_transport *t = from_base(base);
    if (t->closing)
        return -ENOTCONN;
    if (t->failed && t->failure_delivered)
        return t->fail_code;
    int r = start(t, NULL);
    if (r < 0)
        return r;
    t->reading = true;
    update_inner_reading(t);
    /* Plaintext, EOF or a failure may be waiting: hand them over later,
     * not from inside this call. */
    kick(t);
    return 0;
}

static void tlst_read_stop(ttrpc_transport *base)
{
    tls_transport *t = from_base(base);
    t->reading = false;
    update_inner_reading(t);
}

static int tlst_write(ttrpc_transport *base, ttrpc_write_req *req)
{
    tls_transport *t = from_base(base);
    if (t->closing)
        return -ENOTCONN;
    if (t->failed)
        return t->fail_code;
    if (t->shutting_down)
        return -EPIPE;
    int r = start(t, NULL);
    if (r < 0)
        return r;
    r = caa_tls_engine_write(t->engine, req->data, req->len, NULL);
    if (r < 0)
        return r;
    pending_write *w = xnew0(pending_write, 1);
    w->req = req;
    if (t->tail)
        t->tail->next = w;
    else
        t->head = w;
    t->tail = w;
    flush_output(t);
    if (req->len == 0 || t->failed)
        kick(t); /* completes (or fails) it later */
    return 0;
}

/* Fast path: with nothing queued, the plaintext is encrypted straight from
 * the caller's buffers and the records go to the socket from where OpenSSL
 * put them; the write is then complete on return. */
static int tlst_write_now(ttrpc_transport *base, ttrpc_write_req *req, const uv_buf_t *bufs, unsigned nbufs)
{
    tls_transport *t = from_base(base);
    if (t->closing)
        return -ENOTCONN;
    if (t->failed)
        return t->fail_code;
    if (t->shutting_down)
        return -EPIPE;
    int r = start(t, NULL);
    if (r < 0)
        return r;
    bool idle = !t->head && t->written == t->submitted;
    size_t total = 0;
    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    /* uv_buf_t is laid out as struct iovec on Unix. */
    r = caa_tls_engine_writev(t->engine, (const struct iovec *)bufs, nbufs, NULL);
    if (r < 0)
        return r;
    pending_write *w = xnew0(pending_write, 1);
    w->req = req;
    if (t->tail)
        t->tail->next = w;
    else
        t->head = w;
    t->tail = w;
    flush_output(t);
    if (idle && !t->failed && w->marked && t->written == t->submitted && t->head == w) {
        t->head = t->tail = NULL;
        free(w);
        return 1;
    }
    if (total == 0 || t->failed)
        kick(t); /* completes (or fails) it later */
    return 0;
}

static void on_inner_shutdown(ttrpc_transport *inner, int status)
{
    tls_transport *t = inner->owner;
    void (*cb)(ttrpc_transport *, int) = t->shutdown_cb;
    t->shutdown_cb = NULL;
    if (cb && !t->closing)
        cb(&t->base, status);
}

static int tlst_shutdown(ttrpc_transport *base, void (*cb)(ttrpc_transport *t, int status))
{
    tls_transport *t = from_base(base);
    if (t->closing || t->failed || t->shutting_down)
        return -ENOTCONN;
    int r = caa_tls_engine_shutdown(t->engine, NULL);
    if (r < 0)
        return r;
    t->shutting_down = true;
    flush_output(t);
    r = t->inner->ops->shutdown(t->inner, on_inner_shutdown);
    if (r < 0)
        return r;
    t->shutdown_cb = cb;
    return 0;
}

static void tlst_close(ttrpc_transport *base)
{
    tls_transport *t = from_base(base);
    if (t->closing)
        return;
    t->closing = true;
    uv_close((uv_handle_t *)&t->idle, on_idle_close);
    t->inner->ops->close(t->inner);
}

static const ttrpc_transport_ops tls_transport_ops = {
    .name = "tls",
    .read_start = tlst_read_start,
    .read_stop = tlst_read_stop,
    .write = tlst_write,
    .shutdown = tlst_shutdown,
    .close = tlst_close,
    .write_now = tlst_write_now,
};

ttrpc_transport *caa_tls_transport_new(uv_loop_t *loop, ttrpc_transport *inner, SSL_CTX *ctx,
                                       caa_tls_role role, const char *server_name, caa_error **err)
{
    caa_tls_engine *engine = NULL;

    if (!inner)
        return caa_error_set(err, -EINVAL, "TLS transport: no inner transport"), NULL;
    if (caa_tls_engine_new(ctx, role, server_name, &engine, err) < 0)
        return NULL;
    tls_transport *t = xnew0(tls_transport, 1);
    int r = uv_idle_init(loop, &t->idle);
    if (r < 0) {
        caa_tls_engine_free(engine);
        free(t);
        return caa_error_set(err, r, "TLS transport: %s", uv_strerror(r)), NULL;
    }
    t->base.ops = &tls_transport_ops;
    t->inner = inner;
    t->engine = engine;
    inner->owner = t;
    inner->on_read = on_inner_read;
    inner->on_close = on_inner_close;
    return &t->base;
}

int caa_tls_transport_handshake(ttrpc_transport *base, caa_tls_transport_handshake_cb cb, void *opaque,
                                caa_error **err)
{
    tls_transport *t = from_base(base);
    if (base->ops != &tls_transport_ops)
        return caa_error_set(err, -EINVAL, "not a TLS transport");
    if (t->started || t->closing)
        return caa_error_set(err, -EALREADY, "TLS transport: handshake already started");
    int r = start(t, err);
    if (r < 0)
        return r;
    t->hs_cb = cb;
    t->hs_opaque = opaque;
    return 0;
}

caa_tls_engine *caa_tls_transport_engine(ttrpc_transport *base)
{
    return base->ops == &tls_transport_ops ? from_base(base)->engine : NULL;
}

const caa_error *caa_tls_transport_error(ttrpc_transport *base)
{
    return base->ops == &tls_transport_ops ? from_base(base)->error : NULL;
}

void caa_tls_transport_set_error_cb(ttrpc_transport *base, caa_tls_transport_error_cb cb, void *opaque)
{
    if (base->ops != &tls_transport_ops)
        return;
    from_base(base)->error_cb = cb;
    from_base(base)->error_opaque = opaque;
}
