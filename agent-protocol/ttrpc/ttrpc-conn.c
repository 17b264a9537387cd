/* Per-connection ttRPC framing shared by server and client. */
#include "ttrpc-conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "ttrpc-flush.h"
#include "xalloc.h"

/* One frame handed to the transport: the request, and (for a transport
 * without write_now) the bytes, in one allocation. */
typedef struct out_frame {
    ttrpc_write_req req;
    ttrpc_conn *conn;
    size_t len; /* counted in write_queued */
    uint8_t data[];
} out_frame;

/* Messages up to this size are packed on the stack before sending. */
#define SEND_STACK_MAX 1024
/* Coalescing: frames up to BATCH_FRAME_MAX are gathered, up to BATCH_MAX
 * in all; a larger frame goes out on its own (after what was gathered). */
#define BATCH_FRAME_MAX (16 * 1024)
#define BATCH_MAX (64 * 1024)

static void update_reading(ttrpc_conn *c)
{
    bool want = !c->closing && !c->held && c->write_queued <= TTRPC_CONN_WRITE_HIGH;
    if (want == c->reading)
        return;
    if (want) {
        int r = ttrpc_transport_read_start(c->t);
        if (r < 0) {
            if (!c->reason)
                c->reason = r;
            ttrpc_conn_close(c);
            return;
        }
    } else if (!c->closing) {
        ttrpc_transport_read_stop(c->t);
    }
    c->reading = want;
}

static void conn_break(ttrpc_conn *c, int reason)
{
    if (c->closing)
        return;
    c->reason = reason ? reason : -ECONNRESET;
    ttrpc_conn_close(c);
}

static void on_transport_read(ttrpc_transport *t, ssize_t nread, const uint8_t *data)
{
    ttrpc_conn *c = t->owner;
    if (nread < 0) {
        conn_break(c, (int)nread);
        return;
    }
    size_t len = (size_t)nread;
    /* The whole chunk is parsed even if a handler holds the connection:
     * the caps are soft by at most one read buffer. */
    while (!c->closing) {
        ttrpc_frame_header h;
        const uint8_t *body;
        int r = ttrpc_frame_reader_next(&c->reader, &data, &len, &h, &body);
        if (r == TTRPC_READ_MORE)
            break;
        if (r == TTRPC_READ_FRAME)
            c->ev->frame(c, &h, body);
        else
            c->ev->oversize(c, &h);
    }
    update_reading(c);
}

static void on_transport_close(ttrpc_transport *t)
{
    ttrpc_conn *c = t->owner;
    c->t = NULL;
    ttrpc_frame_reader_done(&c->reader);
    c->ev->closed(c, c->reason);
}

void ttrpc_conn_init(ttrpc_conn *c, ttrpc_transport *t, const ttrpc_conn_events *ev, void *owner)
{
    memset(c, 0, sizeof(*c));
    c->t = t;
    c->ev = ev;
    c->owner = owner;
    t->owner = c;
    t->on_read = on_transport_read;
    t->on_close = on_transport_close;
    ttrpc_frame_reader_init(&c->reader);
}

int ttrpc_conn_start(ttrpc_conn *c)
{
    if (c->closing)
        return -ENOTCONN;
    update_reading(c);
    return c->closing ? -ENOTCONN : 0;
}

static void on_frame_written(ttrpc_write_req *req, int status)
{
    out_frame *f = CAA_CONTAINER_OF(req, out_frame, req);
    ttrpc_conn *c = f->conn;
    c->write_queued -= f->len;
    free(f);
    if (status < 0)
        conn_break(c, status);
    else
        update_reading(c);
}

static out_frame *frame_new(ttrpc_conn *c, uint32_t stream_id, uint8_t type, uint8_t flags, size_t len)
{
    out_frame *f = xmalloc(sizeof(*f) + TTRPC_HEADER_SIZE + len);
    memset(&f->req, 0, sizeof(f->req));
    f->conn = c;
    f->len = TTRPC_HEADER_SIZE + len;
    f->req.data = f->data;
    f->req.len = TTRPC_HEADER_SIZE + len;
    f->req.cb = on_frame_written;
    ttrpc_frame_header h = {.length = (uint32_t)len, .stream_id = stream_id, .type = type, .flags = flags};
    ttrpc_header_encode(&h, f->data);
    return f;
}

static int frame_submit(ttrpc_conn *c, out_frame *f)
{
    size_t len = f->req.len;
    c->write_queued += len;
    int r = ttrpc_transport_write(c->t, &f->req);
    if (r < 0) {
        c->write_queued -= len;
        free(f);
        conn_break(c, r);
        return r;
    }
    update_reading(c);
    return 0;
}

/* Hands bufs (total bytes, already counted in write_queued) to the
 * transport; it copies only what the socket does not take at once. */
static int write_now_counted(ttrpc_conn *c, const uv_buf_t *bufs, unsigned n, size_t total)
{
    out_frame *f = xmalloc(sizeof(*f));
    memset(&f->req, 0, sizeof(f->req));
    f->conn = c;
    f->len = total;
    f->req.len = total;
    f->req.cb = on_frame_written;
    int r = c->t->ops->write_now(c->t, &f->req, bufs, n);
    if (r == 0) {
        update_reading(c);
        return 0;
    }
    c->write_queued -= total;
    free(f);
    if (r < 0) {
        conn_break(c, r);
        return r;
    }
    return 0;
}

/* Batch buffers live only while frames are gathered; one spare per thread
 * saves the malloc, and idle connections hold none. */
static _Thread_local uint8_t *spare_batch;

static void batch_release(ttrpc_conn *c)
{
    if (!spare_batch)
        spare_batch = c->batch;
    else
        free(c->batch);
    c->batch = NULL;
    c->batch_len = c->batch_cap = 0;
}

static int batch_write(ttrpc_conn *c)
{
    if (c->batch_len == 0)
        return 0;
    uint8_t *batch = c->batch;
    size_t len = c->batch_len;
    uv_buf_t buf = uv_buf_init((char *)batch, (unsigned)len);
    c->batch = NULL;
    c->batch_len = c->batch_cap = 0;
    int r = write_now_counted(c, &buf, 1, len);
    if (!spare_batch)
        spare_batch = batch;
    else
        free(batch);
    return r;
}

static void batch_drop(ttrpc_conn *c)
{
    if (c->flusher)
        ttrpc_flusher_remove(c->flusher, c);
    if (c->batch)
        batch_release(c);
}

/* Header and body straight from the caller's memory (writev), or gathered
 * with the other frames of this loop iteration (ttrpc-flush.h). */
static int frame_write_now(ttrpc_conn *c, uint32_t stream_id, uint8_t type, uint8_t flags,
                           const uint8_t *body, size_t len)
{
    uint8_t hdr[TTRPC_HEADER_SIZE];
    ttrpc_frame_header h = {.length = (uint32_t)len, .stream_id = stream_id, .type = type, .flags = flags};
    ttrpc_header_encode(&h, hdr);
    size_t total = TTRPC_HEADER_SIZE + len;

    if (c->flusher) {
        if (!c->tick) {
            /* The first frame of the iteration goes out at once. */
            c->tick = ttrpc_flusher_add(c->flusher, c);
        } else if (len <= BATCH_FRAME_MAX) {
            if (c->batch_len + total > BATCH_MAX) {
                int r = batch_write(c);
                if (r < 0)
                    return r;
            }
            if (!c->batch) {
                c->batch = spare_batch ? spare_batch : xmalloc(BATCH_MAX);
                spare_batch = NULL;
                c->batch_cap = BATCH_MAX;
            }
            memcpy(c->batch + c->batch_len, hdr, TTRPC_HEADER_SIZE);
            if (len)
                memcpy(c->batch + c->batch_len + TTRPC_HEADER_SIZE, body, len);
            c->batch_len += total;
            c->write_queued += total;
            update_reading(c);
            return 0;
        } else {
            int r = batch_write(c); /* keeps the order */
            if (r < 0)
                return r;
        }
    }
    uv_buf_t bufs[2] = {uv_buf_init((char *)hdr, TTRPC_HEADER_SIZE),
                        uv_buf_init((char *)body, (unsigned)len)};
    c->write_queued += total;
    return write_now_counted(c, bufs, len ? 2 : 1, total);
}

void ttrpc_conn_set_flusher(ttrpc_conn *c, ttrpc_flusher *f)
{
    if (c->t && c->t->ops->write_now)
        c->flusher = f;
}

void ttrpc_conn_flush(ttrpc_conn *c)
{
    c->tick = false;
    if (!c->closing)
        batch_write(c);
}

int ttrpc_conn_send(ttrpc_conn *c, uint32_t stream_id, uint8_t type, uint8_t flags, const uint8_t *body,
                    size_t len)
{
    if (c->closing)
        return -ENOTCONN;
    if (len > TTRPC_MESSAGE_LENGTH_MAX)
        return -EMSGSIZE;
    if (c->t->ops->write_now)
        return frame_write_now(c, stream_id, type, flags, body, len);
    out_frame *f = frame_new(c, stream_id, type, flags, len);
    if (len)
        memcpy(f->data + TTRPC_HEADER_SIZE, body, len);
    return frame_submit(c, f);
}

int ttrpc_conn_send_message(ttrpc_conn *c, uint32_t stream_id, uint8_t type, uint8_t flags,
                            const ProtobufCMessage *m)
{
    if (c->closing)
        return -ENOTCONN;
    size_t len = protobuf_c_message_get_packed_size(m);
    if (len > TTRPC_MESSAGE_LENGTH_MAX)
        return -EMSGSIZE;
    if (c->t->ops->write_now) {
        uint8_t stack[SEND_STACK_MAX];
        uint8_t *buf = len <= sizeof(stack) ? stack : xmalloc(len);
        protobuf_c_message_pack(m, buf);
        int r = frame_write_now(c, stream_id, type, flags, buf, len);
        if (buf != stack)
            free(buf);
        return r;
    }
    out_frame *f = frame_new(c, stream_id, type, flags, len);
    protobuf_c_message_pack(m, f->data + TTRPC_HEADER_SIZE);
    return frame_submit(c, f);
}

uint8_t *ttrpc_conn_take_body(ttrpc_conn *c, const uint8_t *body)
{
    return ttrpc_frame_reader_take_body(&c->reader, body);
}

void ttrpc_conn_hold(ttrpc_conn *c, bool hold)
{
    if (c->held == hold)
        return;
    c->held = hold;
    update_reading(c);
}

void ttrpc_conn_close(ttrpc_conn *c)
{
    if (c->closing)
        return;
    /* Gathered frames go with the queued ones: the peer is going away. */
    c->write_queued -= c->batch_len;
    batch_drop(c);
    c->closing = true;
    c->reading = false;
    ttrpc_transport_close(c->t);
}

bool ttrpc_conn_is_open(const ttrpc_conn *c)
{
    return !c->closing;
}
