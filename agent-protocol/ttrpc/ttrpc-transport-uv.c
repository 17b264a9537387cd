/* Plain uv_stream_t transport (unix socket or TCP) for ttRPC connections. */
#include "ttrpc-transport.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "xalloc.h"

/* One read buffer per thread, shared by all its connections: the owner
 * consumes every chunk (parses it, or copies a partial frame) before the
 * read callback returns, so idle connections hold no read buffer and busy
 * ones allocate nothing per read. 64 KiB plus room for a frame header and
 * envelope: a frame carrying a 64 KiB payload (a common stdin/stdout
 * chunk) fits one read and is used in place, not reassembled. Its size is
 * also the most a connection parses past its in-flight caps (see
 * ttrpc-server.c). */
#define UV_TRANSPORT_READ_SIZE (68 * 1024)

typedef struct uv_transport {
    ttrpc_transport base;
    ttrpc_uv_socket h;
    bool closing;
    void (*shutdown_cb)(ttrpc_transport *t, int status);
    uv_shutdown_t shutdown_req;
} uv_transport;

static _Thread_local uint8_t *thread_read_buf;
static _Thread_local bool thread_read_buf_busy;

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    if (thread_read_buf_busy) {
        /* Not expected (libuv never nests reads); stay correct anyway. */
        buf->base = xmalloc(UV_TRANSPORT_READ_SIZE);
    } else {
        if (!thread_read_buf)
            thread_read_buf = xmalloc(UV_TRANSPORT_READ_SIZE);
        thread_read_buf_busy = true;
        buf->base = (char *)thread_read_buf;
    }
    buf->len = UV_TRANSPORT_READ_SIZE;
}

static void on_uv_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    uv_transport *t = CAA_CONTAINER_OF(s, uv_transport, h.stream);
    if (nread != 0 && !t->closing)
        t->base.on_read(&t->base, nread, (const uint8_t *)buf->base);
    if (buf->base == (char *)thread_read_buf)
        thread_read_buf_busy = false;
    else
        free(buf->base);
}

static int uvt_read_start(ttrpc_transport *base)
{
    uv_transport *t = (uv_transport *)base;
    if (t->closing)
        return -ENOTCONN;
    return uv_read_start(&t->h.stream, on_alloc, on_uv_read);
}

static void uvt_read_stop(ttrpc_transport *base)
{
    uv_transport *t = (uv_transport *)base;
    if (!t->closing)
        uv_read_stop(&t->h.stream);
}

static void on_uv_write(uv_write_t *w, int status)
{
    ttrpc_write_req *req = CAA_CONTAINER_OF(w, ttrpc_write_req, uv);
    req->cb(req, status);
}

static int uvt_write(ttrpc_transport *base, ttrpc_write_req *req)
{
    uv_transport *t = (uv_transport *)base;
    if (t->closing)
        return -ENOTCONN;
    uv_buf_t buf = uv_buf_init((char *)req->data, (unsigned)req->len);
    return uv_write(&req->uv, &t->h.stream, &buf, 1, on_uv_write);
}

/* The part of a write_now() that the socket did not take at once. */
typedef struct uv_pending_write {
    uv_write_t uv;
    ttrpc_write_req *req;
    uint8_t data[];
} uv_pending_write;

static void on_pending_written(uv_write_t *w, int status)
{
    uv_pending_write *p = CAA_CONTAINER_OF(w, uv_pending_write, uv);
    ttrpc_write_req *req = p->req;
    free(p);
    req->cb(req, status);
}

static int uvt_write_now(ttrpc_transport *base, ttrpc_write_req *req, const uv_buf_t *bufs, unsigned nbufs)
{
    uv_transport *t = (uv_transport *)base;
    if (t->closing)
        return -ENOTCONN;
    size_t total = 0;
    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    /* One writev, no copy, no write request: the common case. */
    int n = uv_try_write(&t->h.stream, bufs, nbufs);
    size_t done = n > 0 ? (size_t)n : 0;
    if (done == total)
        return 1;
    /* Queue the rest behind whatever is queued, as write() would; an error
     * of the socket (n < 0 other than EAGAIN) then reaches req->cb. */
    uv_pending_write *p = xmalloc(sizeof(*p) + (total - done));
    size_t off = 0;
    for (unsigned i = 0; i < nbufs; i++) {
        size_t len = bufs[i].len;
        if (done >= len) {
            done -= len;
            continue;
        }
        memcpy(p->data + off, bufs[i].base + done, len - done);
        off += len - done;
        done = 0;
    }
    p->req = req;
    uv_buf_t rest = uv_buf_init((char *)p->data, (unsigned)off);
    int r = uv_write(&p->uv, &t->h.stream, &rest, 1, on_pending_written);
    if (r < 0) {
        free(p);
        return r;
    }
    return 0;
}

static void on_uv_shutdown(uv_shutdown_t *req, int status)
{
    uv_transport *t = CAA_CONTAINER_OF(req, uv_transport, shutdown_req);
    void (*cb)(ttrpc_transport *, int) = t->shutdown_cb;
    t->shutdown_cb = NULL;
    if (cb)
        cb(&t->base, status);
}

static int uvt_shutdown(ttrpc_transport *base, void (*cb)(ttrpc_transport *t, int status))
{
    uv_transport *t = (uv_transport *)base;
    if (t->closing || t->shutdown_cb)
        return -ENOTCONN;
    int r = uv_shutdown(&t->shutdown_req, &t->h.stream, on_uv_shutdown);
    if (r == 0)
        t->shutdown_cb = cb;
    return r;
}

static void on_uv_close(uv_handle_t *h)
{
    uv_transport *t = CAA_CONTAINER_OF(h, uv_transport, h.handle);
    if (t->base.on_close)
        t->base.on_close(&t->base);
    free(t);
}

static void uvt_close(ttrpc_transport *base)
{
    uv_transport *t = (uv_transport *)base;
    if (t->closing)
        return;
    t->closing = true;
    uv_close(&t->h.handle, on_uv_close);
}

static const ttrpc_transport_ops uv_transport_ops = {
    .name = "uv",
    .read_start = uvt_read_start,
    .read_stop = uvt_read_stop,
    .write = uvt_write,
    .shutdown = uvt_shutdown,
    .close = uvt_close,
    .write_now = uvt_write_now,
};

ttrpc_transport *ttrpc_transport_uv_new(uv_loop_t *loop, uv_handle_type type, caa_error **err)
{
    _cleanup_free_ uv_transport *t = xnew0(uv_transport, 1);
    int r;

    t->base.ops = &uv_transport_ops;
    if (type == UV_NAMED_PIPE)
        r = uv_pipe_init(loop, &t->h.pipe, 0);
    else if (type == UV_TCP)
        r = uv_tcp_init(loop, &t->h.tcp);
    else
        return caa_error_set(err, -EINVAL, "uv transport: unsupported handle type %d", (int)type), NULL;
    if (r < 0)
        return caa_error_set(err, r, "uv transport: init: %s", uv_strerror(r)), NULL;
    return &TAKE_PTR(t)->base;
}

uv_stream_t *ttrpc_transport_uv_stream(ttrpc_transport *base)
{
    return &((uv_transport *)base)->h.stream;
}

ttrpc_transport *ttrpc_transport_uv_from_fd(uv_loop_t *loop, int fd, caa_error **err)
{
    ttrpc_transport *t = ttrpc_transport_uv_new(loop, UV_NAMED_PIPE, err);
    if (!t) {
        close(fd);
        return NULL;
    }
    int r = uv_pipe_open((uv_pipe_t *)ttrpc_transport_uv_stream(t), fd);
    if (r < 0) {
        close(fd);
        ttrpc_transport_close(t);
        return caa_error_set(err, r, "uv transport: open fd %d: %s", fd, uv_strerror(r)), NULL;
    }
    return t;
}
