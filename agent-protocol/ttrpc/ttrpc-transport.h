/* Byte-stream seam under the ttRPC connection code.
 *
 * The framing logic (ttrpc-conn.c) only talks to this vtable, so a transport
 * that is not a plain uv stream (TLS over memory BIOs, an SSH channel) can be
 * slotted in without touching it. Contract every transport keeps:
 *  - bytes are delivered through on_read in order; nread < 0 (UV_EOF or a
 *    negative errno) ends reading for good;
 *  - write() either fails synchronously (cb not called) or calls req->cb
 *    exactly once later; writes complete in submission order;
 *  - close() may be called once at any time; pending writes then complete
 *    with an error before on_close runs; after on_close returns the
 *    transport memory is gone. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "error.h"

/* A libuv socket of either kind (unix or TCP), seen as a handle or a stream
 * (the server's listeners and the uv transport's connections). */
typedef union ttrpc_uv_socket {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_pipe_t pipe;
    uv_tcp_t tcp;
} ttrpc_uv_socket;

typedef struct ttrpc_transport ttrpc_transport;
typedef struct ttrpc_write_req ttrpc_write_req;

typedef void (*ttrpc_write_cb)(ttrpc_write_req *req, int status);

/* Allocated and owned by the writer; must stay valid until cb. */
struct ttrpc_write_req {
    uv_write_t uv; /* scratch for the transport */
    const uint8_t *data;
    size_t len;
    ttrpc_write_cb cb;
};

typedef struct ttrpc_transport_ops {
    const char *name;
    int (*read_start)(ttrpc_transport *t);
    void (*read_stop)(ttrpc_transport *t);
    int (*write)(ttrpc_transport *t, ttrpc_write_req *req);
    /* Half-closes the write side after queued writes; cb(status) once. */
    int (*shutdown)(ttrpc_transport *t, void (*cb)(ttrpc_transport *t, int status));
    void (*close)(ttrpc_transport *t);
    /* Optional (NULL: callers use write). Writes the concatenation of bufs,
     * now if it can: 1 = every byte is written (req unused, cb never
     * called); 0 = the transport took the bytes, copying what it could not
     * write yet, and calls req->cb once later, as write() would; negative =
     * failed (cb not called). The transport keeps no reference to bufs. A
     * write error after the bytes were taken is reported through req->cb,
     * as with write(). Writes complete in submission order across both
     * operations. */
    int (*write_now)(ttrpc_transport *t, ttrpc_write_req *req, const uv_buf_t *bufs, unsigned nbufs);
} ttrpc_transport_ops;

struct ttrpc_transport {
    const ttrpc_transport_ops *ops;
    /* Set by the owner before read_start. */
    void (*on_read)(ttrpc_transport *t, ssize_t nread, const uint8_t *data);
    void (*on_close)(ttrpc_transport *t);
    void *owner;
};

static inline int ttrpc_transport_read_start(ttrpc_transport *t)
{
    return t->ops->read_start(t);
}
static inline void ttrpc_transport_read_stop(ttrpc_transport *t)
{
    t->ops->read_stop(t);
}
static inline int ttrpc_transport_write(ttrpc_transport *t, ttrpc_write_req *req)
{
    return t->ops->write(t, req);
}
static inline void ttrpc_transport_close(ttrpc_transport *t)
{
    t->ops->close(t);
}

/* ------------------------------------------------- plain uv stream transport */

/* A transport owning a fresh, initialised uv handle of `type` (UV_NAMED_PIPE
 * or UV_TCP) on loop. Use ttrpc_transport_uv_stream() to accept or connect
 * it; closing the transport closes the handle. */
ttrpc_transport *ttrpc_transport_uv_new(uv_loop_t *loop, uv_handle_type type, caa_error **err);
uv_stream_t *ttrpc_transport_uv_stream(ttrpc_transport *t);
/* A transport over an already-connected unix stream socket fd (socketpair
 * end, inherited fd); takes ownership of fd, also on failure. */
ttrpc_transport *ttrpc_transport_uv_from_fd(uv_loop_t *loop, int fd, caa_error **err);
