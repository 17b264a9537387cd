/* Entra ID access tokens for ARM: client secret, workload identity
 * (federated token file) or managed identity (IMDS).
 *
 * One cached token. A token near its end is refreshed in the background
 * while callers keep using it; without a usable token callers wait, and all
 * of them wait on one request. Failed requests are retried when the failure
 * is transient (429, 5xx, network). Tokens and secrets are never logged. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "azure-config.h"
#include "error.h"
#include "http.h"
#include "list.h"

typedef struct az_tokens az_tokens;

typedef void (*az_token_cb)(int status, const char *token, caa_error *err, void *opaque);

/* Embedded in the caller; owned by the token source while queued. */
typedef struct az_token_waiter {
    caa_list node; /* in the token source's queue */
    az_token_cb cb;
    void *opaque;
    bool queued;
} az_token_waiter;

az_tokens *az_tokens_new(uv_loop_t *loop, caa_http_client *http, const az_config *cfg,
                         const az_settings *set);
/* Returns 1 and sets *ret_token (valid until control returns to the loop)
 * when a token is at hand; else returns 0 and queues w: cb runs later, once,
 * unless az_tokens_cancel_wait() removes w first. -ECANCELED once closed. */
int az_tokens_get(az_tokens *t, az_token_waiter *w, az_token_cb cb, void *opaque, const char **ret_token);
/* Removes a queued waiter without calling it. */
void az_tokens_cancel_wait(az_tokens *t, az_token_waiter *w);
/* ARM said 401 for this token: forget it (if still the current one). */
void az_tokens_invalidate(az_tokens *t, const char *token);
/* Fails queued waiters with -ECANCELED, cancels the request in flight and
 * frees t once its timer is closed; done(opaque) runs then. */
void az_tokens_close(az_tokens *t, void (*done)(void *opaque), void *opaque);

/* Token requests made so far (tests). */
unsigned az_tokens_requests(const az_tokens *t);
