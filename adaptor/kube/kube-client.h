/* Asynchronous Kubernetes API client on the libcurl/libuv HTTP client
 * (providers/common/http.h): JSON in and out through jansson, bearer token
 * (re-read from its file when it rotates) or client certificate, Status
 * objects turned into clear errors (kube-status.h), and retries:
 *
 * - 429 and 500/502/503/504 and "no answer" (refused, reset, timeout) are
 *   retried with exponential backoff (250 ms doubling, at most 8 s), or after
 *   the server's Retry-After (capped at 30 s), up to max_attempts;
 * - 401 re-reads the token file and retries once when the token changed;
 * - every attempt has its own timeout; every answer is size-capped.
 *
 * Async contract as the HTTP client: caa_kube_call_start() either fails
 * synchronously or calls the callback exactly once, later, on the loop. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "error.h"
#include "kube-config.h"

#define CAA_KUBE_DEFAULT_ATTEMPTS 5
#define CAA_KUBE_DEFAULT_TIMEOUT_MS 30000
#define CAA_KUBE_MAX_RESPONSE (4u << 20)
#define CAA_KUBE_BACKOFF_FIRST_MS 250
#define CAA_KUBE_BACKOFF_MAX_MS 8000
#define CAA_KUBE_RETRY_AFTER_MAX_MS 30000

#define CAA_KUBE_JSON_PATCH "application/json-patch+json"
#define CAA_KUBE_MERGE_PATCH "application/merge-patch+json"

typedef struct caa_kube_client caa_kube_client;
typedef struct caa_kube_call caa_kube_call;

typedef struct caa_kube_request {
    const char *verb;         /* GET, POST, PUT, PATCH, DELETE */
    const char *path;         /* "/api/v1/...": names in it checked with caa_kube_name_valid() */
    const char *content_type; /* PATCH: CAA_KUBE_JSON_PATCH or CAA_KUBE_MERGE_PATCH; NULL: JSON */
    const json_t *body;       /* serialised at start; NULL: none */
    unsigned max_attempts;    /* 0: CAA_KUBE_DEFAULT_ATTEMPTS; UINT32_MAX: until cancelled */
    uint64_t timeout_ms;      /* per attempt; 0: CAA_KUBE_DEFAULT_TIMEOUT_MS */
} caa_kube_request;

/* status 0: obj is the decoded 2xx answer (NULL for an empty body); it
 * belongs to the callback. status < 0: err says why (kube-status.h codes;
 * -ECANCELED when cancelled or the client closed; transport codes of the
 * HTTP client when the last attempt got no answer). */
typedef void (*caa_kube_cb)(int status, json_t *obj, caa_error *err, void *opaque);

/* Copies what it needs from cfg (reads the token file once now). */
int caa_kube_client_new(uv_loop_t *loop, const caa_kube_config *cfg, caa_kube_client **ret, caa_error **err);
/* Cancels every call (callbacks run later with -ECANCELED); the client frees
 * itself once its handles are closed: keep running the loop. NULL-safe. */
void caa_kube_client_close(caa_kube_client *c);

int caa_kube_call_start(caa_kube_client *c, const caa_kube_request *req, caa_kube_cb cb, void *opaque,
                        caa_kube_call **ret, caa_error **err);
/* Streaming GET (a watch): the body of a 2xx answer is handed to on_data as
 * it arrives, on the loop (never from inside the HTTP client), in pieces of
 * any size; on_data returns 0, or < 0 (with *err) to end the call with that
 * code. on_end runs exactly once after the last piece: status 0 when the
 * server ended the stream, else as caa_kube_cb (a non-2xx answer is the
 * Status error, 410 Gone is -ESTALE). One attempt (the caller reconnects);
 * timeout_ms bounds the whole stream; at most CAA_KUBE_MAX_STREAM_PENDING
 * bytes wait for on_data (-EMSGSIZE beyond). Cancel with
 * caa_kube_call_cancel(). */
#define CAA_KUBE_MAX_STREAM_PENDING (8u << 20)
typedef int (*caa_kube_data_cb)(const char *data, size_t len, void *opaque, caa_error **err);
int caa_kube_stream_start(caa_kube_client *c, const char *path, uint64_t timeout_ms, caa_kube_data_cb on_data,
                          caa_kube_cb on_end, void *opaque, caa_kube_call **ret, caa_error **err);

/* Only before the callback ran; the callback then runs later with -ECANCELED. */
void caa_kube_call_cancel(caa_kube_call *call);

uv_loop_t *caa_kube_client_loop(const caa_kube_client *c);
/* The configured default namespace. */
const char *caa_kube_client_namespace(const caa_kube_client *c);
/* Calls in flight (tests). */
unsigned caa_kube_client_calls(const caa_kube_client *c);

/* Retry-After header value (seconds, as the API server sends it) in ms;
 * -1 when absent or malformed. Capped at CAA_KUBE_RETRY_AFTER_MAX_MS. */
int64_t caa_kube_retry_after_ms(const char *value);
