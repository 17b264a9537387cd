/* Long-running operation follower (see azure-lro.h). */
#define LOG_COMPONENT "provider/azure"
#include "azure-lro.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "azure-json.h"
#include "cleanup.h"
#include "log.h"
#include "parse.h"
#include "xalloc.h"

typedef enum lro_mode {
    MODE_OPERATION, /* Operation-Location / Azure-AsyncOperation */
    MODE_LOCATION,  /* Location */
    MODE_BODY,      /* the resource's provisioningState */
} lro_mode;

struct az_lro {
    az_ctx *ctx;
    lro_mode mode;
    char *poll_url;
    char *what;
    uint64_t started;
    uint64_t deadline;
    uv_timer_t timer;
    az_arm_call *call;
    bool cancelled;
    bool closing;
    unsigned polls;

    int status;
    caa_error *err;
    az_lro_cb cb;
    void *opaque;
};

static void on_closed(uv_handle_t *h)
{
    az_lro *l = h->data;
    l->cb(l->status, l->err, l->opaque);
    free(l->poll_url);
    free(l->what);
    free(l);
}

static void finish(az_lro *l, int status, caa_error *err)
{
    l->closing = true;
    l->status = status;
    l->err = err;
    if (status < 0 && !err)
        l->err = caa_error_new(status, "operation on %s failed", l->what);
    uv_close((uv_handle_t *)&l->timer, on_closed);
}

static const char *poll_header(const caa_http_response *r, lro_mode *ret_mode)
{
    const char *u = caa_http_response_header(r, "operation-location");
    if (!u)
        u = caa_http_response_header(r, "azure-asyncoperation");
    if (u) {
        *ret_mode = MODE_OPERATION;
        return u;
    }
    u = caa_http_response_header(r, "location");
    if (u)
        *ret_mode = MODE_LOCATION;
    return u;
}

static void poll(uv_timer_t *h);

/* Reads left in ARM's subscription budget at or above which an operation
 * without Retry-After is polled at -poll-interval-fast: 200 leaves four
 * fifths of the documented 250-read bucket to everything else, and a storm
 * that drains it falls back to -poll-interval by itself. */
#define FAST_POLL_MIN_READS_LEFT 200

/* Whether ARM's answer says the subscription has reads to spare. */
static bool reads_to_spare(const caa_http_response *r)
{
    const char *v = r ? caa_http_response_header(r, "x-ms-ratelimit-remaining-subscription-reads") : NULL;
    uint64_t left;
    return v && caa_parse_uint64(v, UINT64_MAX, &left) >= 0 && left >= FAST_POLL_MIN_READS_LEFT;
}

/* Waits before the next poll: Retry-After (capped) or the poll interval,
 * never past the deadline. */
static bool past_deadline(az_lro *l)
{
    if (uv_now(l->ctx->loop) < l->deadline)
        return false;
    finish(l, -ETIMEDOUT,
           caa_error_new(-ETIMEDOUT, "operation on %s did not finish within %llu ms (%u polls)", l->what,
                         (unsigned long long)(l->deadline - l->started), l->polls));
    return true;
}

static void schedule(az_lro *l, const caa_http_response *r)
{
    uint64_t now = uv_now(l->ctx->loop);
    if (l->cancelled) {
        finish(l, -ECANCELED, caa_error_new(-ECANCELED, "operation on %s: cancelled", l->what));
        return;
    }
    if (past_deadline(l))
        return;
    int64_t ra = r ? az_parse_retry_after(caa_http_response_header(r, "retry-after"), time(NULL)) : -1;
    uint64_t delay = ra >= 0             ? (uint64_t)ra
                     : reads_to_spare(r) ? l->ctx->set->poll_interval_fast_ms
                                         : l->ctx->set->poll_interval_ms;
    if (delay > l->ctx->set->retry_max_delay_ms)
        delay = l->ctx->set->retry_max_delay_ms;
    if (delay > l->deadline - now)
        delay = l->deadline - now;
    uv_timer_start(&l->timer, poll, delay, 0);
}

/* Applies one answer (initial or poll): new polling URL, status. */
static void handle(az_lro *l, const caa_http_response *r, bool initial)
{
    lro_mode m = l->mode;
    const char *u = NULL;
    if (l->mode != MODE_BODY)
        u = poll_header(r, &m);
    if (u && (m == l->mode || initial)) {
        if (!az_same_origin(u, l->ctx->set->arm)) {
            finish(
                l, -EPROTO,
                caa_error_new(-EPROTO, "operation on %s: polling URL outside %s", l->what, l->ctx->set->arm));
            return;
        }
        free(l->poll_url);
        l->poll_url = xstrdup(u);
    }
    if (initial) {
        /* The first answer only starts the operation, except in body mode. */
        if (l->mode != MODE_BODY) {
            schedule(l, r);
            return;
        }
    }
    az_op_status st;
    caa_error *op_err = NULL, *e = NULL;
    int rc;
    switch (l->mode) {
    case MODE_OPERATION:
        rc = az_parse_operation(r->status, r->body, r->body_len, &st, &op_err, &e);
        break;
    case MODE_BODY:
        rc = az_parse_provisioning(r->status, r->body, r->body_len, &st, &op_err, &e);
        break;
    case MODE_LOCATION:
    default:
        rc = 0;
        st = r->status == 202 ? AZ_OP_RUNNING : AZ_OP_SUCCEEDED;
        break;
    }
    if (rc < 0) {
        caa_error_prefix(&e, "operation on %s", l->what);
        finish(l, rc, e);
        return;
    }
    switch (st) {
    case AZ_OP_RUNNING:
        schedule(l, r);
        return;
    case AZ_OP_SUCCEEDED:
        finish(l, 0, NULL);
        return;
    case AZ_OP_FAILED:
    case AZ_OP_CANCELED:
    default:
        caa_error_prefix(&op_err, "%s", l->what);
        finish(l, op_err->code, op_err);
        return;
    }
}

static void on_poll(int status, caa_http_response *resp, caa_error *err, void *opaque)
{
    az_lro *l = opaque;
    _cleanup_(caa_http_response_freep) caa_http_response *r = resp;
    l->call = NULL;
    l->polls++;
    if (l->cancelled) {
        caa_error_free(err);
        finish(l, -ECANCELED, caa_error_new(-ECANCELED, "operation on %s: cancelled", l->what));
        return;
    }
    if (status < 0) {
        caa_error_prefix(&err, "polling the operation on %s", l->what);
        finish(l, status, err);
        return;
    }
    handle(l, r, false);
}

static void poll(uv_timer_t *h)
{
    az_lro *l = h->data;
    if (past_deadline(l))
        return;
    caa_error *e = NULL;
    int r = az_arm_start(l->ctx, "GET", l->poll_url, NULL, l->deadline, 0, on_poll, l, &l->call, &e);
    if (r < 0) {
        l->call = NULL;
        finish(l, r, e);
    }
}

int az_lro_start(az_ctx *ctx, const char *method, const char *resource_url, const caa_http_response *initial,
                 uint64_t deadline, az_lro_cb cb, void *opaque, az_lro **ret, caa_error **err)
{
    lro_mode mode = MODE_BODY;
    const char *u = poll_header(initial, &mode);
    if (u && !az_same_origin(u, ctx->set->arm))
        return caa_error_set(err, -EPROTO, "%s %s: polling URL outside %s", method, resource_url,
                             ctx->set->arm);
    if (!u && strcmp(method, "PUT") != 0)
        mode = MODE_LOCATION; /* polled once more at most: see below */

    az_lro *l = xcalloc(1, sizeof(*l));
    l->ctx = ctx;
    l->mode = mode;
    l->poll_url = xstrdup(u ? u : resource_url);
    const char *path = strstr(resource_url, "://");
    path = path ? path + 3 + strcspn(path + 3, "/") : resource_url;
    l->what = xstrndup(path, strcspn(path, "?#"));
    l->started = uv_now(ctx->loop);
    l->deadline = deadline;
    l->cb = cb;
    l->opaque = opaque;
    uv_timer_init(ctx->loop, &l->timer);
    l->timer.data = l;
    if (ret)
        *ret = l;
    if (!u && strcmp(method, "PUT") != 0) {
        /* Nothing to follow: the first answer was the result (a 202 without
         * a URL is as done as the SDKs consider it). */
        finish(l, 0, NULL);
        return 0;
    }
    handle(l, initial, true);
    return 0;
}

void az_lro_cancel(az_lro *l)
{
    if (!l || l->cancelled || l->closing)
        return;
    l->cancelled = true;
    if (l->call) {
        az_arm_cancel(l->call); /* on_poll finishes */
        return;
    }
    uv_timer_stop(&l->timer);
    finish(l, -ECANCELED, caa_error_new(-ECANCELED, "operation on %s: cancelled", l->what));
}
