/* Plain uv_stream_t transport (unix socket or TCP) for ttRPC connections. */
#include "ttrpc-transport.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "cleanup.h"
#include "xalloc.h"

/* Read buffers are allocated per read and freed right after the data is
 * handed on, so idle connections hold no read buffer at all. */
#define UV_TRANSPORT_READ_SIZE (64 * 1024)

typedef struct uv_transport {
    ttrpc_transport base;
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_pipe_t pipe;
        uv_tcp_t tcp;
    } h;
    bool closing;
    void (*shutdown_cb)(ttrpc_transport *t, int status);
    uv_shutdown_t shutdown_req;
} uv_transport;

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    buf->base = xmalloc(UV_TRANSPORT_READ_SIZE);
    buf->len = UV_TRANSPORT_READ_SIZE;
}

static void on_uv_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    uv_transport *t = CAA_CONTAINER_OF(s, uv_transport, h.stream);
    if (nread != 0 && !t->closing)
        t->base.on_read(&t->base, nread, (const uint8_t *)buf->base);
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
