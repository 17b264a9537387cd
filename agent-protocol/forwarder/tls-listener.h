/* TLS listener of the forwarder: accepts TCP connections, runs the TLS
 * server handshake (agent-protocol/tls/tls-transport.h) and hands each
 * established session to the relay's ttRPC server. A failed handshake is
 * logged (peer address and reason) and the connection dropped. */
#pragma once

#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "error.h"
#include "ttrpc.h"

typedef struct fwd_tls_listener fwd_tls_listener;

/* host "" or NULL: every address. port 0: a free port (fwd_tls_listener_port). */
int fwd_tls_listen(uv_loop_t *loop, ttrpc_server *server, SSL_CTX *ctx, const char *host, uint16_t port,
                   fwd_tls_listener **ret, caa_error **err);
uint16_t fwd_tls_listener_port(const fwd_tls_listener *l);

/* A connection whose TLS handshake is not complete by then is closed (logged
 * at debug level): a client that connects and sends nothing holds nothing. */
#define FWD_TLS_HANDSHAKE_TIMEOUT_MS 10000
/* For connections accepted from now on; 0: no deadline. */
void fwd_tls_listener_set_handshake_timeout(fwd_tls_listener *l, uint64_t ms);
/* Stops accepting and drops handshakes in progress; done runs later, once. */
void fwd_tls_listener_close(fwd_tls_listener *l, void (*done)(void *opaque), void *opaque);
