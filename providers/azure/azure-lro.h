/* Following an ARM long-running operation the way the Azure SDKs do
 * (@azure/core-lro, azcore runtime pollers):
 *
 *  - Operation-Location, else Azure-AsyncOperation header: poll that URL and
 *    read {"status": ...} (no status: 202 running, other 2xx done);
 *  - else Location: poll it, 202 running, other 2xx done;
 *  - else a PUT: poll the resource and read properties.provisioningState;
 *  - else (DELETE/POST without headers): done with the first answer.
 *
 * Each answer may move the polling URL. Waits between polls follow
 * Retry-After (capped by -retry-max-delay), else -poll-interval, and end at
 * the deadline (-ETIMEDOUT). Polling URLs must be on the ARM endpoint. */
#pragma once

#include <stdint.h>

#include "azure-arm.h"

typedef struct az_lro az_lro;

/* status 0: the operation succeeded. Otherwise err says why: the
 * operation's own error for Failed/Canceled (class code from its ARM code,
 * -ECANCELED when Azure gave none), -ETIMEDOUT at the deadline, or the error
 * of a poll request. */
typedef void (*az_lro_cb)(int status, caa_error *err, void *opaque);

/* initial: the 2xx answer to method on resource_url (not taken over). */
int az_lro_start(az_ctx *ctx, const char *method, const char *resource_url, const caa_http_response *initial,
                 uint64_t deadline, az_lro_cb cb, void *opaque, az_lro **ret, caa_error **err);
/* The callback runs later with -ECANCELED. */
void az_lro_cancel(az_lro *l);
