/* A small HTTP/1.1 server on a libuv loop, with TLS (caa_tls_engine over
 * memory buffers, OpenSSL) or, for loopback probe/metrics ports, without.
 *
 * One request at a time per connection, answered in order (pipelining
 * works); keep-alive unless the client asks to close. Each connection has an
 * idle timeout, and the server a connection limit, so slow or idle clients
 * cannot pin it. The handler runs on the loop thread and must not block. */
#pragma once

#include <openssl/ssl.h>
#include <uv.h>

#include "error.h"
#include "http-request.h"

typedef struct caa_http_server caa_http_server;

typedef struct caa_http_response {
    int status;
    const char *content_type; /* static string */
    char *body;               /* taken over by the server (free()) */
    size_t body_len;
} caa_http_response;

typedef void (*caa_http_handler)(const caa_http_request *req, caa_http_response *resp, void *opaque);
/* The TLS context for a new connection (a reference is taken per
 * connection); NULL refuses the connection. Lets the caller swap
 * certificates without restarting. */
typedef SSL_CTX *(*caa_http_tls_ctx_cb)(void *opaque);

typedef struct caa_http_server_config {
    const char *host;            /* "0.0.0.0", "127.0.0.1", "::" ... */
    int port;                    /* 0: any free port (see caa_http_server_port) */
    caa_http_tls_ctx_cb tls_ctx; /* NULL: plain HTTP */
    caa_http_handler handler;
    void *opaque;    /* for handler and tls_ctx */
    size_t max_body; /* Content-Length limit */
    unsigned max_connections;
    uint64_t idle_timeout_ms;
    /* The server's handles do not keep the loop running (uv_unref): for an
     * endpoint beside the loop's real work, such as the daemon's probes. */
    bool background;
    /* SO_REUSEPORT on the listener, so a rolling update's new process can
     * bind while the old one still listens. */
    bool reuse_port;
} caa_http_server_config;

int caa_http_server_start(uv_loop_t *loop, const caa_http_server_config *cfg, caa_http_server **ret,
                          caa_error **err);
int caa_http_server_port(const caa_http_server *s);
/* Stops listening and closes every connection; the server frees itself once
 * all handles are closed (run the loop). */
void caa_http_server_close(caa_http_server *s);

/* A bind address as upstream's manager takes it: "host:port", ":port" (all
 * interfaces), or "0" (off: *ret_host NULL). IPv6 hosts in brackets. flag
 * names the option in errors. */
int caa_http_parse_bind_address(const char *flag, const char *value, char **ret_host, int *ret_port,
                                caa_error **err);
