/* ARM requests with token, retries and deadline (see azure-arm.h). */
#define LOG_COMPONENT "provider/azure"
#include "azure-arm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "azure-json.h"
#include "cleanup.h"
#include "log.h"
#include "strv.h"
#include "xalloc.h"

#define ARM_RESPONSE_MAX (8u << 20)
#define BACKOFF_BASE_MS 1000

typedef enum call_state {
    CALL_TOKEN,   /* waiting for a token */
    CALL_HTTP,    /* request in flight */
    CALL_WAIT,    /* retry timer running */
    CALL_CLOSING, /* decided; timer closing */
} call_state;

struct az_arm_call {
    az_ctx *ctx;
    char *method;
    char *url;
    char *what; /* "METHOD /path" for messages */
    char *body;
    uint64_t deadline;
    unsigned flags;
    az_arm_cb cb;
    void *opaque;

    call_state state;
    az_token_waiter waiter;
    caa_http_request *req;
    uv_timer_t timer;
    unsigned attempt;
    unsigned paced_waits; /* 429s with a Retry-After waited out (see retry_or_finish) */
    bool reauthed;
    bool cancelled;
    char *token_used;

    int status;
    caa_http_response *resp;
    caa_error *err;
};

bool az_same_origin(const char *url, const char *base)
{
    /* base is "scheme://host[:port]"; skip the scheme's "//". */
    const char *b = strstr(base, "://");
    const char *u = strstr(url, "://");
    if (!b || !u || (size_t)(b - base) != (size_t)(u - url) ||
        strncasecmp(base, url, (size_t)(b - base)) != 0)
        return false;
    b += 3;
    u += 3;
    size_t bl = strcspn(b, "/?#");
    size_t ul = strcspn(u, "/?#");
    return bl == ul && strncasecmp(b, u, bl) == 0 && !memchr(u, '@', ul);
}

static void on_closed(uv_handle_t *h)
{
    az_arm_call *c = h->data;
    c->cb(c->status, c->resp, c->err, c->opaque);
    free(c->method);
    free(c->url);
    free(c->what);
    free(c->body);
    free(c->token_used);
    free(c);
}

static void finish(az_arm_call *c, int status, caa_http_response *resp, caa_error *err)
{
    c->state = CALL_CLOSING;
    c->status = status;
    c->resp = resp;
    c->err = err;
    if (status < 0 && !c->err)
        c->err = caa_error_new(status, "%s failed", c->what);
    uv_close((uv_handle_t *)&c->timer, on_closed);
}

static void send_with_token(az_arm_call *c, const char *token);
static void get_token(az_arm_call *c);

static void on_timer(uv_timer_t *h)
{
    az_arm_call *c = h->data;
    get_token(c);
}

static bool transient(int status)
{
    return status == -ECONNREFUSED || status == -ECONNRESET || status == -ETIMEDOUT ||
           status == -EHOSTUNREACH || status == -EIO;
}

/* A 429 whose Retry-After asks for a wait of a second or more is ARM's rate
 * limit pacing a storm (its token buckets refill at a fixed rate), not a
 * failure: it is waited out within the call's deadline and does not use up
 * one of the -max-retries, which are for failures. Counted, a storm of a few
 * hundred pods gives up after -max-retries waits of about a second each. */
#define PACED_MIN_MS 1000

/* Retries after delay_ms (-1: back-off) when allowed; else finishes. */
static void retry_or_finish(az_arm_call *c, int status, caa_http_response *resp, caa_error *err,
                            int64_t delay_ms)
{
    uint64_t now = uv_now(c->ctx->loop);
    const az_settings *s = c->ctx->set;
    bool paced = resp && resp->status == 429 && delay_ms >= PACED_MIN_MS;
    uint64_t delay =
        delay_ms >= 0 ? (uint64_t)delay_ms : (uint64_t)BACKOFF_BASE_MS << (c->attempt < 16 ? c->attempt : 16);
    if (delay > s->retry_max_delay_ms)
        delay = s->retry_max_delay_ms;
    if (c->cancelled || (!paced && c->attempt >= s->max_retries) || now + delay >= c->deadline) {
        if (!c->cancelled && (c->attempt > 0 || c->paced_waits > 0))
            caa_error_prefix(&err, "after %u retries and %u rate-limit waits", c->attempt, c->paced_waits);
        finish(c, status, resp, err);
        return;
    }
    if (paced)
        c->paced_waits++;
    else
        c->attempt++;
    log_debug("%s: %s; %s %u in %llu ms", c->what, caa_error_msg(err), paced ? "rate-limit wait" : "retry",
              paced ? c->paced_waits : c->attempt, (unsigned long long)delay);
    caa_http_response_free(resp);
    caa_error_free(err);
    c->state = CALL_WAIT;
    uv_timer_start(&c->timer, on_timer, delay, 0);
}

static void on_response(int status, caa_http_response *resp, caa_error *err, void *opaque)
{
    az_arm_call *c = opaque;
    c->req = NULL;
    if (c->cancelled) {
        caa_http_response_free(resp);
        caa_error_free(err);
        finish(c, -ECANCELED, NULL, caa_error_new(-ECANCELED, "%s: cancelled", c->what));
        return;
    }
    if (status < 0) {
        if (transient(status))
            retry_or_finish(c, status, NULL, err, -1);
        else
            finish(c, status, NULL, err);
        return;
    }
    if (resp->status >= 200 && resp->status < 300) {
        finish(c, 0, resp, NULL);
        return;
    }
    caa_error *e = NULL;
    int code = az_arm_error(resp->status, resp->body, resp->body_len, c->what, &e);
    if (resp->status == 401 && !c->reauthed) {
        /* The token may have been revoked or expired early: once more with a new one. */
        c->reauthed = true;
        az_tokens_invalidate(c->ctx->tokens, c->token_used);
        caa_http_response_free(resp);
        caa_error_free(e);
        get_token(c);
        return;
    }
    if (resp->status == 429 || resp->status >= 500 ||
        (resp->status == 409 && (c->flags & AZ_ARM_RETRY_CONFLICT))) {
        int64_t ra = az_parse_retry_after(caa_http_response_header(resp, "retry-after"), time(NULL));
        retry_or_finish(c, code, resp, e, ra);
        return;
    }
    finish(c, code, resp, e);
}

static void send_with_token(az_arm_call *c, const char *token)
{
    uint64_t now = uv_now(c->ctx->loop);
    if (now >= c->deadline) {
        finish(c, -ETIMEDOUT, NULL, caa_error_new(-ETIMEDOUT, "%s: deadline passed", c->what));
        return;
    }
    uint64_t timeout = c->ctx->set->request_timeout_ms;
    if (c->deadline - now < timeout)
        timeout = c->deadline - now;
    free(c->token_used);
    c->token_used = xstrdup(token);
    _cleanup_free_ char *auth = xasprintf("Authorization: Bearer %s", token);
    char *headers[] = {auth, "Accept: application/json", c->body ? "Content-Type: application/json" : NULL,
                       NULL};
    caa_http_request_info info = {
        .method = c->method,
        .url = c->url,
        .headers = headers,
        .body = c->body,
        .body_len = c->body ? strlen(c->body) : 0,
        .timeout_ms = timeout,
        .max_response = ARM_RESPONSE_MAX,
    };
    caa_error *e = NULL;
    c->state = CALL_HTTP;
    int r = caa_http_request_start(c->ctx->http, &info, on_response, c, &c->req, &e);
    explicit_bzero(auth, strlen(auth));
    if (r < 0) {
        c->req = NULL;
        finish(c, r, NULL, e);
    }
}

static void on_token(int status, const char *token, caa_error *err, void *opaque)
{
    az_arm_call *c = opaque;
    if (status < 0) {
        caa_error_prefix(&err, "%s", c->what);
        finish(c, status, NULL, err);
        return;
    }
    send_with_token(c, token);
}

static void get_token(az_arm_call *c)
{
    const char *token = NULL;
    c->state = CALL_TOKEN;
    int r = az_tokens_get(c->ctx->tokens, &c->waiter, on_token, c, &token);
    if (r == 1)
        send_with_token(c, token);
    else if (r < 0)
        finish(c, -ECANCELED, NULL,
               caa_error_new(-ECANCELED, "%s: the Azure provider is shutting down", c->what));
}

int az_arm_start(az_ctx *ctx, const char *method, const char *url, const char *body, uint64_t deadline,
                 unsigned flags, az_arm_cb cb, void *opaque, az_arm_call **ret, caa_error **err)
{
    int r = caa_http_url_check(url, 0, err);
    if (r < 0)
        return r;
    if (!az_same_origin(url, ctx->set->arm))
        return caa_error_set(err, -EPROTO, "refusing to send an ARM token to a URL outside %s",
                             ctx->set->arm);
    az_arm_call *c = xcalloc(1, sizeof(*c));
    c->ctx = ctx;
    c->method = xstrdup(method);
    c->url = xstrdup(url);
    const char *path = strstr(url, "://");
    path = path ? path + 3 + strcspn(path + 3, "/") : url;
    c->what = xasprintf("%s %.*s", method, (int)strcspn(path, "?#"), path);
    c->body = body ? xstrdup(body) : NULL;
    c->deadline = deadline;
    c->flags = flags;
    c->cb = cb;
    c->opaque = opaque;
    uv_timer_init(ctx->loop, &c->timer);
    c->timer.data = c;
    /* Always through the timer: the token may be at hand, but the start
     * must not make requests whose failure would call cb right here. */
    c->state = CALL_WAIT;
    uv_timer_start(&c->timer, on_timer, 0, 0);
    if (ret)
        *ret = c;
    return 0;
}

void az_arm_cancel(az_arm_call *c)
{
    if (!c || c->cancelled || c->state == CALL_CLOSING)
        return;
    c->cancelled = true;
    switch (c->state) {
    case CALL_TOKEN:
        az_tokens_cancel_wait(c->ctx->tokens, &c->waiter);
        finish(c, -ECANCELED, NULL, caa_error_new(-ECANCELED, "%s: cancelled", c->what));
        break;
    case CALL_HTTP:
        caa_http_request_cancel(c->req); /* on_response finishes */
        break;
    case CALL_WAIT:
        uv_timer_stop(&c->timer);
        finish(c, -ECANCELED, NULL, caa_error_new(-ECANCELED, "%s: cancelled", c->what));
        break;
    case CALL_CLOSING:
        break;
    }
}
