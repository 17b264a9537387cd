/* An asynchronous HTTP client for cloud providers: libcurl's multi-socket API
 * driven by uv_poll_t handles and one uv_timer_t on the caller's libuv loop.
 *
 * - Callbacks run on the loop thread; nothing blocks the loop.
 * - Every request has a timeout (whole transfer) and a response-size cap that
 *   is enforced while the body arrives (a 100 MB answer is cut off at the cap,
 *   not buffered first).
 * - A client runs at most max_active transfers at once; further requests wait
 *   in a FIFO queue (their timeout starts when they leave it).
 * - TLS peer and host verification are always on. Plain http:// is accepted
 *   only for loopback hosts (127.0.0.0/8, ::1, localhost) and, with
 *   CAA_HTTP_ALLOW_LINK_LOCAL, for link-local metadata services.
 * - Redirects are not followed.
 *
 * Async contract: caa_http_request_start() either fails synchronously (the
 * callback is never called) or calls the callback exactly once, later, on the
 * loop thread. See docs/http-client.md. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "error.h"

#define CAA_HTTP_DEFAULT_MAX_ACTIVE 64
#define CAA_HTTP_DEFAULT_MAX_RESPONSE (16u << 20)
#define CAA_HTTP_DEFAULT_TIMEOUT_MS 60000
#define CAA_HTTP_DEFAULT_CONNECT_TIMEOUT_MS 10000

typedef struct caa_http_client caa_http_client;
typedef struct caa_http_request caa_http_request;

typedef struct caa_http_client_options {
    unsigned max_active;         /* concurrent transfers; 0: CAA_HTTP_DEFAULT_MAX_ACTIVE */
    size_t max_response;         /* body bytes; 0: CAA_HTTP_DEFAULT_MAX_RESPONSE */
    uint64_t timeout_ms;         /* whole transfer; 0: CAA_HTTP_DEFAULT_TIMEOUT_MS */
    uint64_t connect_timeout_ms; /* 0: CAA_HTTP_DEFAULT_CONNECT_TIMEOUT_MS */
    const char *ca_file;         /* trust anchors (PEM) instead of the system store; NULL: the system store */
    const char *user_agent;      /* NULL: "cloud-api-adaptor/<version>" */
    /* PEM text, copied (a kubeconfig's *-data fields): trust anchors (used
     * instead of ca_file), and a client certificate and its key for mutual
     * TLS. The key copy is wiped when the client is freed. */
    const char *ca_pem;
    const char *client_cert_pem;
    const char *client_key_pem;
    /* Skip peer verification (kubeconfig insecure-skip-tls-verify, an
     * explicit operator choice; logged as a warning by the caller). */
    bool insecure_skip_verify;
} caa_http_client_options;

enum {
    /* Also allow plain http:// to link-local hosts (169.254.0.0/16,
     * fe80::/10, fd00:ec2::254): instance metadata services. */
    CAA_HTTP_ALLOW_LINK_LOCAL = 1 << 0,
};

/* Streaming sink for a 2xx answer's body: called from inside libcurl's
 * processing with each piece as it arrives, so it must only copy the bytes
 * (never call into the HTTP client). Returns 0, or < 0 to abort the
 * transfer, which then ends with that code and *err. */
typedef int (*caa_http_data_cb)(const char *data, size_t len, void *opaque, caa_error **err);

typedef struct caa_http_request_info {
    const char *method; /* GET, POST, PUT, DELETE, PATCH, HEAD */
    const char *url;
    char *const *headers; /* "Name: value" lines, NULL-terminated; may be NULL */
    const void *body;     /* copied; may be NULL */
    size_t body_len;
    uint64_t timeout_ms; /* 0: the client's */
    size_t max_response; /* 0: the client's */
    unsigned flags;      /* CAA_HTTP_* */
    /* Set: a 2xx body goes to on_data instead of resp->body, and
     * max_response does not bound it (the sink caps what it keeps); other
     * answers are buffered (and capped) as usual. */
    caa_http_data_cb on_data;
    void *data_opaque;
} caa_http_request_info;

typedef struct caa_http_response {
    long status;        /* HTTP status code */
    char *content_type; /* NULL when the server sent none */
    char **headers;     /* "name: value" with the name lower-cased, NULL-terminated */
    char *body;         /* NUL-terminated (the NUL is not counted) */
    size_t body_len;
} caa_http_response;

/* status 0: resp holds the answer, whatever its HTTP status. status < 0: no
 * usable answer (err says why): -ETIMEDOUT, -EMSGSIZE (over the size cap),
 * -ECONNREFUSED, -ECONNRESET, -EHOSTUNREACH, -EACCES (TLS verification),
 * -EPROTO, -ECANCELED (cancelled or client closed), -EIO. resp and err belong
 * to the callback. */
typedef void (*caa_http_cb)(int status, caa_http_response *resp, caa_error *err, void *opaque);

int caa_http_client_new(uv_loop_t *loop, const caa_http_client_options *opts, caa_http_client **ret,
                        caa_error **err);
/* Cancels every request (their callbacks run later with -ECANCELED), then
 * closes the handles and frees the client from their close callbacks: keep
 * running the loop. NULL-safe; safe to call from a request callback. */
void caa_http_client_close(caa_http_client *c);

/* Starts (or queues) a request. *ret_req (optional) identifies it for
 * caa_http_request_cancel() until its callback has run. */
int caa_http_request_start(caa_http_client *c, const caa_http_request_info *info, caa_http_cb cb,
                           void *opaque, caa_http_request **ret_req, caa_error **err);
/* The callback runs later with -ECANCELED. Only before the callback ran. */
void caa_http_request_cancel(caa_http_request *req);

/* Transfers running / waiting in the queue (tests, metrics). */
unsigned caa_http_client_active(const caa_http_client *c);
unsigned caa_http_client_queued(const caa_http_client *c);

/* Case-insensitive lookup of a response header; the last value wins. */
const char *caa_http_response_header(const caa_http_response *resp, const char *name);
void caa_http_response_free(caa_http_response *resp);
CAA_DEFINE_CLEANUP(caa_http_response *, caa_http_response_free)

/* The scheme/host policy above, as a pure check: 0 or -EINVAL (https or
 * allowed http) / -EACCES (plain http to a non-loopback host) with a message. */
int caa_http_url_check(const char *url, unsigned flags, caa_error **err);
/* True for 127.0.0.0/8, ::1 (with or without brackets) and "localhost". */
bool caa_http_host_is_loopback(const char *host);
