/* A TLS endpoint over memory buffers: it never blocks and never touches a
 * socket, so any transport (a libuv stream, a test's byte pipe, a fuzzer)
 * can carry it.
 *
 *   bytes from the peer  --caa_tls_engine_feed()-->        engine --caa_tls_engine_read()--> plaintext
 *   plaintext            --caa_tls_engine_write()-->       engine --caa_tls_engine_take_output()--> bytes to
 * send
 *
 * Rules for the transport:
 *  - after EVERY call (including failed ones: a failure usually leaves an
 *    alert to deliver) send what caa_tls_engine_output_pending() reports;
 *  - after a feed, call caa_tls_engine_read() until it returns 0;
 *  - a client starts the handshake with caa_tls_engine_handshake() (that
 *    queues the ClientHello); a server needs nothing until bytes arrive;
 *  - plaintext written before the handshake completes is queued and sent
 *    when it does;
 *  - at transport EOF call caa_tls_engine_feed_eof(): a missing close_notify
 *    is then reported as an error (truncation), a clean close as EOF.
 *
 * Errors carry OpenSSL's error-queue text and, for a rejected certificate,
 * the verification result ("certificate has expired", "hostname mismatch").
 * Codes: -EACCES (certificate rejected, missing or refused by the peer),
 * -EPROTO (not TLS, no common version or cipher, malformed data),
 * -ECONNRESET (transport closed without close_notify), -EPIPE (write after
 * shutdown), -EINVAL (misuse). Once failed, every call returns the same error.
 *
 * With TLS 1.3 the client finishes its handshake before the server has
 * checked the client certificate: a rejected client learns it on its first
 * read (an alert such as "certificate required"), not from the handshake. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <openssl/ssl.h>

#include "error.h"

typedef struct caa_tls_engine caa_tls_engine;

typedef enum caa_tls_role {
    CAA_TLS_ROLE_CLIENT,
    CAA_TLS_ROLE_SERVER,
} caa_tls_role;

/* Creates an endpoint from a context of caa_tls_client_ctx_new() (role
 * client) or caa_tls_server_ctx_new() (role server); it takes its own
 * reference on ctx. server_name (client only) is sent as SNI and verified
 * against the certificate's DNS SANs (an IP literal against IP SANs); it is
 * required when the context verifies the server. */
int caa_tls_engine_new(SSL_CTX *ctx, caa_tls_role role, const char *server_name, caa_tls_engine **ret,
                       caa_error **err);
void caa_tls_engine_free(caa_tls_engine *e);

/* Advances the handshake: 1 when complete, 0 when it waits for peer bytes,
 * negative on failure. */
int caa_tls_engine_handshake(caa_tls_engine *e, caa_error **err);
bool caa_tls_engine_handshake_done(const caa_tls_engine *e);

/* Takes ciphertext received from the peer and advances the handshake. */
int caa_tls_engine_feed(caa_tls_engine *e, const void *data, size_t len, caa_error **err);
/* As caa_tls_engine_feed, without copying: data is read in place until
 * caa_tls_engine_feed_done(), which must follow (after the reads) before
 * data goes away; it keeps a copy of what was not read yet. */
int caa_tls_engine_feed_borrowed(caa_tls_engine *e, const void *data, size_t len, caa_error **err);
void caa_tls_engine_feed_done(caa_tls_engine *e);
/* The transport reached EOF. During the handshake this fails at once. */
int caa_tls_engine_feed_eof(caa_tls_engine *e, caa_error **err);
/* Ciphertext fed but not yet decrypted (for back-pressure decisions). */
size_t caa_tls_engine_input_pending(const caa_tls_engine *e);

/* Decrypted plaintext: > 0 bytes copied to buf, 0 when none is available
 * now (see caa_tls_engine_peer_closed() for a clean end), negative on error. */
ssize_t caa_tls_engine_read(caa_tls_engine *e, void *buf, size_t cap, caa_error **err);
/* True once the peer's close_notify has been read: no more plaintext comes. */
bool caa_tls_engine_peer_closed(const caa_tls_engine *e);

/* Queues plaintext for the peer (all of it; it is encrypted as soon as the
 * handshake is complete). */
int caa_tls_engine_write(caa_tls_engine *e, const void *data, size_t len, caa_error **err);
/* As caa_tls_engine_write for the concatenation of iov; small pieces
 * share TLS records (up to 16 KiB each) instead of one record each. */
int caa_tls_engine_writev(caa_tls_engine *e, const struct iovec *iov, size_t n, caa_error **err);
/* Plaintext accepted by write() but not yet encrypted (before the handshake). */
size_t caa_tls_engine_write_pending(const caa_tls_engine *e);

/* Ciphertext waiting to be sent. */
size_t caa_tls_engine_output_pending(const caa_tls_engine *e);
/* Moves up to cap bytes of it to buf; returns the count. */
size_t caa_tls_engine_take_output(caa_tls_engine *e, void *buf, size_t cap);

/* All waiting ciphertext in place (NULL when none), valid until the next
 * call on the engine; then consume what was sent. Saves the copy of
 * take_output. */
const uint8_t *caa_tls_engine_output_peek(const caa_tls_engine *e, size_t *ret_len);
void caa_tls_engine_output_consume(caa_tls_engine *e, size_t n);

/* Encrypts queued plaintext and queues close_notify; later writes fail with
 * -EPIPE. Before the handshake completes it only marks the engine closed
 * (queued plaintext is dropped). Idempotent. */
int caa_tls_engine_shutdown(caa_tls_engine *e, caa_error **err);

/* After the handshake: "TLSv1.3", the cipher ("TLS_AES_128_GCM_SHA256"),
 * and the peer certificate's subject (RFC 2253, newly allocated, NULL when
 * the peer presented none). */
const char *caa_tls_engine_protocol(const caa_tls_engine *e);
const char *caa_tls_engine_cipher(const caa_tls_engine *e);
char *caa_tls_engine_peer_subject(const caa_tls_engine *e);

static inline void caa_tls_engine_freep(caa_tls_engine **p)
{
    caa_tls_engine_free(*p);
    *p = NULL;
}
#define _cleanup_tls_engine_ _cleanup_(caa_tls_engine_freep)
