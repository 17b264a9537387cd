/* ttRPC transport running TLS (caa_tls_engine) over another ttRPC transport,
 * normally a plain uv TCP stream (ttrpc_transport_uv_new). It keeps the
 * transport contract of ttrpc-transport.h: plaintext is delivered through
 * on_read in order, write callbacks run once, in order, after the
 * ciphertext carrying the bytes was written by the inner transport, and
 * close() completes pending writes with an error before on_close.
 *
 * Typical use (worker side):
 *     inner = ttrpc_transport_uv_new(loop, UV_TCP, &err); uv_tcp_connect(...);
 *     on connect: t = caa_tls_transport_new(loop, inner, ctx, CAA_TLS_ROLE_CLIENT, name, &err);
 *                 caa_tls_transport_handshake(t, on_handshake, opaque, &err);
 *     on_handshake(status 0): hand t to the ttRPC connection (it calls read_start).
 * A handshake failure (certificate rejected, plain-TCP peer...) is reported to
 * the handshake callback with the engine's error, after the TLS alert for the
 * peer has been written, so closing right there still tells the peer why.
 *
 * After the handshake, a TLS failure (e.g. a TLS 1.3 client learning that its
 * certificate was refused, a truncated stream) reaches on_read as a negative
 * errno code; caa_tls_transport_error() has the message. A clean close_notify
 * reaches on_read as UV_EOF. */
#pragma once

#include <openssl/ssl.h>
#include <uv.h>

#include "error.h"
#include "tls-engine.h"
#include "ttrpc-transport.h"

/* status 0: handshake complete; negative: failed, err says why (valid during
 * the call). Runs once, later, on the loop thread; -ECANCELED when the
 * transport is closed first. */
typedef void (*caa_tls_transport_handshake_cb)(ttrpc_transport *t, int status, const caa_error *err,
                                               void *opaque);

/* Wraps inner (owned from now on, only on success). ctx: from
 * caa_tls_client_ctx_new()/caa_tls_server_ctx_new() (a reference is taken).
 * server_name: see caa_tls_engine_new(). */
ttrpc_transport *caa_tls_transport_new(uv_loop_t *loop, ttrpc_transport *inner, SSL_CTX *ctx,
                                       caa_tls_role role, const char *server_name, caa_error **err);
/* Starts reading the inner transport and the handshake. Fails synchronously
 * (cb not called) when already started or when the first flight cannot be
 * sent. read_start()/write() also start the handshake, without a callback. */
int caa_tls_transport_handshake(ttrpc_transport *t, caa_tls_transport_handshake_cb cb, void *opaque,
                                caa_error **err);
/* The engine (protocol, cipher, peer subject after the handshake). */
caa_tls_engine *caa_tls_transport_engine(ttrpc_transport *t);
/* The error that broke the TLS connection, NULL while none. */
const caa_error *caa_tls_transport_error(ttrpc_transport *t);

/* Called once, on the loop thread, just before a TLS failure after the
 * handshake reaches on_read (which only carries a code, and which a ttRPC
 * connection turns into "connection lost"): lets the owner of the ttRPC
 * client or server record why, e.g. "the server requires a client
 * certificate and none is configured". Set it before handing the transport
 * on; err is valid during the call. */
typedef void (*caa_tls_transport_error_cb)(ttrpc_transport *t, const caa_error *err, void *opaque);
void caa_tls_transport_set_error_cb(ttrpc_transport *t, caa_tls_transport_error_cb cb, void *opaque);
