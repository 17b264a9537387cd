/* One ARM request with a bearer token, retries and a deadline.
 *
 * - 429 and 5xx answers and transient network errors are retried after
 *   Retry-After (or exponential back-off), capped by -retry-max-delay, at
 *   most -max-retries times and never past the deadline;
 * - a 401 drops the cached token and retries once with a fresh one;
 * - every request's timeout is min(-request-timeout, time to the deadline).
 *
 * Async contract: az_arm_start() either fails synchronously or calls cb once,
 * later, on the loop thread. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "azure-config.h"
#include "azure-token.h"
#include "error.h"
#include "http.h"

/* What every Azure operation needs. */
typedef struct az_ctx {
    uv_loop_t *loop;
    caa_http_client *http;
    az_tokens *tokens;
    const az_config *cfg;
    const az_settings *set;
} az_ctx;

typedef struct az_arm_call az_arm_call;

/* status 0: resp is a 2xx answer. status < 0: err says why (ARM errors are
 * mapped by az_arm_error); resp is the last answer when ARM sent one. resp
 * and err belong to the callback. */
typedef void (*az_arm_cb)(int status, caa_http_response *resp, caa_error *err, void *opaque);

enum {
    /* Also retry 409 Conflict (another operation on the resource is still
     * running), with the back-off of 5xx answers. */
    AZ_ARM_RETRY_CONFLICT = 1 << 0,
};

/* url: absolute; body: JSON text or NULL; deadline: loop time in ms. */
int az_arm_start(az_ctx *ctx, const char *method, const char *url, const char *body, uint64_t deadline,
                 unsigned flags, az_arm_cb cb, void *opaque, az_arm_call **ret, caa_error **err);
/* The callback runs later with -ECANCELED. Only before the callback ran. */
void az_arm_cancel(az_arm_call *c);

/* True when url has the scheme, host and port of base: tokens go only to
 * the configured ARM endpoint, whatever a response header says. */
bool az_same_origin(const char *url, const char *base);
