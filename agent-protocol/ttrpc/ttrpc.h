/* ttRPC over libuv: server with a service/method table and a client with
 * stream-id allocation, in-flight table and deadlines.
 *
 * Threading: everything runs on the loop thread that owns the object.
 * Async contract: a function taking a callback either fails synchronously
 * (negative return, callback never called) or calls it exactly once later,
 * never from inside the starting call.
 *
 * Writes go to sockets with write(2): a program using this library must
 * ignore SIGPIPE (a peer that hangs up mid-reply would otherwise kill it). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <protobuf-c/protobuf-c.h>
#include <uv.h>

#include "error.h"
#include "ttrpc-codec.h"

/* Byte-stream transport (ttrpc-transport.h): lets a TLS or other stream be
 * served or used by a client without the connection code knowing. */
typedef struct ttrpc_transport ttrpc_transport;

/* ---------------------------------------------------------------- server */

typedef struct ttrpc_server ttrpc_server;
typedef struct ttrpc_call ttrpc_call;

/* Called on the loop thread for each Request. The handler (or whoever it
 * hands the call to) must finish the call with exactly one ttrpc_call_reply*
 * call, now or later; the reply frees the call. */
typedef void (*ttrpc_handler)(ttrpc_call *call, void *opaque);

typedef struct ttrpc_method_entry {
    const char *name; /* bare method name, e.g. "CreateVM" */
    ttrpc_handler handler;
} ttrpc_method_entry;

int ttrpc_server_new(uv_loop_t *loop, ttrpc_server **ret, caa_error **err);
/* Registers a service ("hypervisor.Hypervisor"). methods must outlive the server. */
int ttrpc_server_register(ttrpc_server *s, const char *service, const ttrpc_method_entry *methods,
                          size_t n_methods, void *opaque, caa_error **err);
/* Handler for requests whose service or method is not registered (a relay
 * uses this). Without one the server answers UNIMPLEMENTED like the Go server. */
void ttrpc_server_set_fallback(ttrpc_server *s, ttrpc_handler handler, void *opaque);
/* Listens on a unix socket: replaces a stale socket file, binds, sets `mode`. */
int ttrpc_server_listen_unix(ttrpc_server *s, const char *path, mode_t mode, caa_error **err);
/* Listens on TCP; port 0 picks a free port, see ttrpc_server_tcp_port(). */
int ttrpc_server_listen_tcp(ttrpc_server *s, const char *host, uint16_t port, caa_error **err);
uint16_t ttrpc_server_tcp_port(const ttrpc_server *s);
/* Serves one already-connected transport (a TLS session, a socketpair end);
 * takes ownership of t, also on failure. */
int ttrpc_server_adopt(ttrpc_server *s, ttrpc_transport *t, caa_error **err);
size_t ttrpc_server_connection_count(const ttrpc_server *s);
/* Stops listening (the unix socket file is removed), closes every
 * connection (pending calls see their cancel callback; later replies are
 * dropped), and frees the server once every handle is closed; then done(). */
void ttrpc_server_close(ttrpc_server *s, void (*done)(void *opaque), void *opaque);

const char *ttrpc_call_service(const ttrpc_call *c);
const char *ttrpc_call_method(const ttrpc_call *c);
const uint8_t *ttrpc_call_payload(const ttrpc_call *c, size_t *ret_len);
/* Raw Request body as received (for relays). */
const uint8_t *ttrpc_call_request(const ttrpc_call *c, size_t *ret_len);
/* The handler is done with the request bytes (a relay that has passed
 * them on): they are freed, or never copied out of the read buffer when
 * this runs during the handler. ttrpc_call_request() and
 * ttrpc_call_payload() give NULL and 0 afterwards; service, method,
 * timeout and metadata stay. The server's in-flight byte count keeps the
 * request until the reply, so its caps do not change. */
void ttrpc_call_release_request(ttrpc_call *c);
uint32_t ttrpc_call_stream_id(const ttrpc_call *c);
/* timeout_nano from the Request (0 = no deadline). */
int64_t ttrpc_call_timeout_ns(const ttrpc_call *c);
size_t ttrpc_call_metadata_count(const ttrpc_call *c);
const char *ttrpc_call_metadata_key(const ttrpc_call *c, size_t i);
const char *ttrpc_call_metadata_value(const ttrpc_call *c, size_t i);
/* First value for key (keys are compared case-insensitively), or NULL. */
const char *ttrpc_call_metadata_get(const ttrpc_call *c, const char *key);
/* False once the connection the call arrived on has closed. */
bool ttrpc_call_connection_alive(const ttrpc_call *c);
/* cb runs at most once, when the connection closes before the reply. The
 * call must still be finished with a reply (which then only frees it).
 * Set it before returning to the loop; if the connection is already gone
 * it is not called (see ttrpc_call_connection_alive). */
void ttrpc_call_set_cancel_cb(ttrpc_call *c, void (*cb)(ttrpc_call *c, void *opaque), void *opaque);

/* Success with a serialized payload (len 0: empty message). Go-compatible: no status field. */
void ttrpc_call_reply(ttrpc_call *c, const uint8_t *payload, size_t len);
void ttrpc_call_reply_message(ttrpc_call *c, const ProtobufCMessage *msg);
/* Error with a gRPC code (see ttrpc-codec.h) and message. */
void ttrpc_call_reply_error(ttrpc_call *c, int grpc_code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Sends a ready-made Response body (relays pass upstream answers through). */
void ttrpc_call_reply_response(ttrpc_call *c, const uint8_t *response, size_t len);

/* ---------------------------------------------------------------- client */

typedef struct ttrpc_client ttrpc_client;

/* ttrpc_kv (metadata entry) is defined in ttrpc-codec.h. */

typedef struct ttrpc_result {
    /* 0: a Response arrived (see grpc_code); negative: no Response —
     * -ETIMEDOUT (deadline passed), -ECONNRESET (connection lost),
     * -ECANCELED (client closed), -EPROTO (undecodable Response). */
    int status;
    int grpc_code;       /* 0 when status==0 and the call succeeded */
    const char *message; /* status message, "" when none */
    const uint8_t *payload;
    size_t payload_len;
    const uint8_t *response; /* raw Response body, for relays */
    size_t response_len;
} ttrpc_result;

/* The result and its buffers are valid only during the callback. */
typedef void (*ttrpc_response_cb)(const ttrpc_result *res, void *opaque);
typedef void (*ttrpc_connect_cb)(ttrpc_client *c, int status, const caa_error *err, void *opaque);

/* Connects; on success cb receives the client (status 0), else c == NULL. */
int ttrpc_client_connect_unix(uv_loop_t *loop, const char *path, ttrpc_connect_cb cb, void *opaque,
                              caa_error **err);
int ttrpc_client_connect_tcp(uv_loop_t *loop, const char *host, uint16_t port, ttrpc_connect_cb cb,
                             void *opaque, caa_error **err);
/* A client over an already-connected transport; takes ownership of t, also
 * on failure. Synchronous: the client is usable on return. */
int ttrpc_client_new_on_transport(uv_loop_t *loop, ttrpc_transport *t, ttrpc_client **ret, caa_error **err);
/* Sends a unary Request. timeout_ns > 0 sets timeout_nano and a local
 * deadline after which cb gets -ETIMEDOUT and a late Response is dropped. */
int ttrpc_client_call(ttrpc_client *c, const char *service, const char *method, const uint8_t *payload,
                      size_t len, int64_t timeout_ns, const ttrpc_kv *md, size_t n_md, ttrpc_response_cb cb,
                      void *opaque, caa_error **err);
/* Sends a ready-made Request body on a fresh stream id (relays); the local
 * deadline is taken from its timeout_nano. */
int ttrpc_client_call_raw(ttrpc_client *c, const uint8_t *request, size_t len, ttrpc_response_cb cb,
                          void *opaque, caa_error **err);
size_t ttrpc_client_inflight(const ttrpc_client *c);
/* cb runs once when the connection breaks or is closed (after in-flight calls failed).
 * After a break the client stays allocated (calls fail with -ENOTCONN) until
 * ttrpc_client_close(), which may be called from inside cb. */
void ttrpc_client_set_close_cb(ttrpc_client *c, void (*cb)(ttrpc_client *c, void *opaque), void *opaque);
/* Fails in-flight calls with -ECANCELED, closes, frees asynchronously. */
void ttrpc_client_close(ttrpc_client *c);
