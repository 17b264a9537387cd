/* Entra ID token source (see azure-token.h). */
#define LOG_COMPONENT "provider/azure"
#include "azure-token.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "azure-json.h"
#include "cleanup.h"
#include "fs.h"
#include "log.h"
#include "strv.h"
#include "xalloc.h"

#define FEDERATED_TOKEN_MAX (64u << 10)
#define TOKEN_RESPONSE_MAX (256u << 10)
#define BACKOFF_BASE_MS 500

struct az_tokens {
    uv_loop_t *loop;
    caa_http_client *http;
    const az_config *cfg;
    const az_settings *set;

    char *token;
    uint64_t refresh_at; /* loop ms: refresh in the background from here */
    uint64_t expires_at; /* loop ms: unusable from here */

    bool refreshing;
    unsigned attempt;
    caa_http_request *req;
    uv_timer_t timer; /* first attempt (deferred) and retry waits */
    caa_error *last_error;

    caa_list waiters; /* az_token_waiter, oldest first */
    unsigned requests;

    bool closing;
    bool timer_closed;
    void (*done)(void *opaque);
    void *done_opaque;
};

static const char *method_name(const az_tokens *t)
{
    switch (t->set->auth) {
    case AZ_AUTH_CLIENT_SECRET:
        return "client secret";
    case AZ_AUTH_WORKLOAD_IDENTITY:
        return "workload identity";
    case AZ_AUTH_MANAGED_IDENTITY:
    default:
        return "managed identity";
    }
}

static void waiter_remove(az_token_waiter *w)
{
    caa_list_remove(&w->node);
    w->queued = false;
}

/* Calls every queued waiter once: with the token, or with a copy of err. */
static void notify(az_tokens *t, int status, const caa_error *err)
{
    while (!caa_list_empty(&t->waiters)) {
        az_token_waiter *w = caa_list_entry(t->waiters.next, az_token_waiter, node);
        waiter_remove(w);
        if (status == 0)
            w->cb(0, t->token, NULL, w->opaque);
        else
            w->cb(status, NULL, err ? caa_error_copy(err) : caa_error_new(status, "no token"), w->opaque);
    }
}

static void maybe_free(az_tokens *t)
{
    if (!t->closing || !t->timer_closed || t->req)
        return;
    void (*done)(void *) = t->done;
    void *opaque = t->done_opaque;
    free(t->token);
    caa_error_free(t->last_error);
    free(t);
    if (done)
        done(opaque);
}

static void refresh_done(az_tokens *t, int status, caa_error *err)
{
    t->refreshing = false;
    caa_error_free(t->last_error);
    t->last_error = err;
    if (status < 0)
        log_debug("token request (%s) failed: %s", method_name(t), caa_error_msg(err));
    notify(t, status, err);
}

static void send_request(az_tokens *t);

static void on_timer(uv_timer_t *h)
{
    az_tokens *t = h->data;
    if (!t->closing && t->refreshing)
        send_request(t);
}

/* A failed attempt: wait and retry when the failure is transient. */
static void attempt_failed(az_tokens *t, int status, caa_error *err, int64_t retry_after_ms)
{
    bool transient = status == -EAGAIN || status == -ECONNREFUSED || status == -ECONNRESET ||
                     status == -ETIMEDOUT || status == -EHOSTUNREACH || status == -EIO;
    if (!transient || t->attempt >= t->set->max_retries || t->closing) {
        refresh_done(t, status, err);
        return;
    }
    uint64_t delay = retry_after_ms >= 0 ? (uint64_t)retry_after_ms : (uint64_t)BACKOFF_BASE_MS << t->attempt;
    if (delay > t->set->retry_max_delay_ms)
        delay = t->set->retry_max_delay_ms;
    t->attempt++;
    log_debug("token request (%s) failed (%s), retry %u in %llu ms", method_name(t), caa_error_msg(err),
              t->attempt, (unsigned long long)delay);
    caa_error_free(err);
    uv_timer_start(&t->timer, on_timer, delay, 0);
}

static void on_response(int status, caa_http_response *resp, caa_error *err, void *opaque)
{
    az_tokens *t = opaque;
    _cleanup_(caa_http_response_freep) caa_http_response *r = resp;
    t->req = NULL;
    t->requests++;
    if (t->closing) {
        caa_error_free(err);
        maybe_free(t);
        return;
    }
    _cleanup_free_ char *what = xasprintf("getting an Entra ID token (%s)", method_name(t));
    if (status < 0) {
        caa_error_prefix(&err, "%s", what);
        attempt_failed(t, status, err, -1);
        return;
    }
    caa_error *e = NULL;
    if (r->status != 200) {
        int code = az_token_error(r->status, r->body, r->body_len, what, &e);
        /* IMDS answers 404/410 while the identity is being set up. */
        if (t->set->auth == AZ_AUTH_MANAGED_IDENTITY && (r->status == 404 || r->status == 410))
            code = e->code = -EAGAIN;
        attempt_failed(t, code, e,
                       az_parse_retry_after(caa_http_response_header(r, "retry-after"), time(NULL)));
        return;
    }
    char *token = NULL;
    int64_t lifetime;
    if (az_parse_token(r->body, r->body_len, time(NULL), &token, &lifetime, &e) < 0) {
        caa_error_prefix(&e, "%s", what);
        refresh_done(t, e->code, e);
        return;
    }
    uint64_t now = uv_now(t->loop);
    uint64_t life_ms = (uint64_t)lifetime * 1000;
    uint64_t margin = life_ms / 2 < 300000 ? life_ms / 2 : 300000;
    uint64_t skew = life_ms / 10 < 30000 ? life_ms / 10 : 30000;
    free(t->token);
    t->token = token;
    t->refresh_at = now + life_ms - margin;
    t->expires_at = now + life_ms - skew;
    log_debug("got an Entra ID token (%s), valid for %lld s", method_name(t), (long long)lifetime);
    refresh_done(t, 0, NULL);
}

static int build_request(az_tokens *t, caa_http_request_info *info, char ***headers, char **url, char **body,
                         caa_error **err)
{
    const az_config *c = t->cfg;
    const az_settings *s = t->set;
    _cleanup_free_ char *scope = az_url_encode(s->scope);
    _cleanup_free_ char *client = az_url_encode(c->client_id ? c->client_id : "");
    switch (s->auth) {
    case AZ_AUTH_CLIENT_SECRET: {
        _cleanup_free_ char *secret = az_url_encode(c->client_secret);
        *body = xasprintf("grant_type=client_credentials&client_id=%s&client_secret=%s&scope=%s", client,
                          secret, scope);
        /* The encoded secret is freed by the cleanup; wipe it first. */
        explicit_bzero(secret, strlen(secret));
        break;
    }
    case AZ_AUTH_WORKLOAD_IDENTITY: {
        /* Re-read every time: the kubelet rotates the projected token. */
        _cleanup_free_ char *assertion = NULL;
        size_t len;
        int r = caa_read_file(s->token_file, FEDERATED_TOKEN_MAX, 0, &assertion, &len, err);
        if (r < 0)
            return caa_error_prefix(err, "reading the federated token file");
        size_t n = strcspn(assertion, " \t\r\n");
        assertion[n] = '\0';
        if (n == 0)
            return caa_error_set(err, -EACCES, "the federated token file %s is empty", s->token_file);
        _cleanup_free_ char *enc = az_url_encode(assertion);
        *body = xasprintf(
            "grant_type=client_credentials&client_id=%s&client_assertion_type=urn%%3Aietf%%3Aparams%%"
            "3Aoauth%%3Aclient-assertion-type%%3Ajwt-bearer&client_assertion=%s&scope=%s",
            client, enc, scope);
        break;
    }
    case AZ_AUTH_MANAGED_IDENTITY: {
        _cleanup_free_ char *resource = az_url_encode(s->resource);
        if (c->client_id && *c->client_id)
            *url = xasprintf("%s/metadata/identity/oauth2/token?api-version=%s&resource=%s&client_id=%s",
                             s->imds, AZ_IMDS_API_VERSION, resource, client);
        else
            *url = xasprintf("%s/metadata/identity/oauth2/token?api-version=%s&resource=%s", s->imds,
                             AZ_IMDS_API_VERSION, resource);
        caa_strv_push(headers, "Metadata: true");
        caa_strv_push(headers, "Accept: application/json");
        info->method = "GET";
        info->flags = CAA_HTTP_ALLOW_LINK_LOCAL;
        return 0;
    }
    }
    *url = xasprintf("%s/%s/oauth2/v2.0/token", s->authority, c->tenant_id);
    caa_strv_push(headers, "Content-Type: application/x-www-form-urlencoded");
    caa_strv_push(headers, "Accept: application/json");
    info->method = "POST";
    info->body = *body;
    info->body_len = strlen(*body);
    return 0;
}

static void send_request(az_tokens *t)
{
    caa_http_request_info info = {.timeout_ms = t->set->request_timeout_ms,
                                  .max_response = TOKEN_RESPONSE_MAX};
    _cleanup_strv_ char **headers = NULL;
    _cleanup_free_ char *url = NULL;
    char *body = NULL;
    caa_error *e = NULL;
    int r = build_request(t, &info, &headers, &url, &body, &e);
    if (r >= 0) {
        info.url = url;
        info.headers = headers;
        r = caa_http_request_start(t->http, &info, on_response, t, &t->req, &e);
    }
    if (body) {
        explicit_bzero(body, strlen(body));
        free(body);
    }
    if (r < 0) {
        t->req = NULL;
        caa_error_prefix(&e, "getting an Entra ID token (%s)", method_name(t));
        refresh_done(t, r, e);
    }
}

static void start_refresh(az_tokens *t)
{
    if (t->refreshing || t->closing)
        return;
    t->refreshing = true;
    t->attempt = 0;
    /* Deferred, so a waiter is never called from inside az_tokens_get(). */
    uv_timer_start(&t->timer, on_timer, 0, 0);
}

az_tokens *az_tokens_new(uv_loop_t *loop, caa_http_client *http, const az_config *cfg, const az_settings *set)
{
    az_tokens *t = xcalloc(1, sizeof(*t));
    caa_list_init(&t->waiters);
    t->loop = loop;
    t->http = http;
    t->cfg = cfg;
    t->set = set;
    uv_timer_init(loop, &t->timer);
    t->timer.data = t;
    return t;
}

int az_tokens_get(az_tokens *t, az_token_waiter *w, az_token_cb cb, void *opaque, const char **ret_token)
{
    if (t->closing)
        return -ECANCELED;
    uint64_t now = uv_now(t->loop);
    if (t->token && now < t->expires_at) {
        if (now >= t->refresh_at)
            start_refresh(t);
        *ret_token = t->token;
        return 1;
    }
    w->cb = cb;
    w->opaque = opaque;
    w->queued = true;
    caa_list_append(&t->waiters, &w->node);
    start_refresh(t);
    return 0;
}

void az_tokens_cancel_wait(az_tokens *t, az_token_waiter *w)
{
    (void)t;
    if (w->queued)
        waiter_remove(w);
}

void az_tokens_invalidate(az_tokens *t, const char *token)
{
    if (t->token && token && strcmp(t->token, token) == 0) {
        free(t->token);
        t->token = NULL;
    }
}

unsigned az_tokens_requests(const az_tokens *t)
{
    return t->requests;
}

static void on_timer_closed(uv_handle_t *h)
{
    az_tokens *t = h->data;
    t->timer_closed = true;
    maybe_free(t);
}

void az_tokens_close(az_tokens *t, void (*done)(void *opaque), void *opaque)
{
    if (!t || t->closing)
        return;
    t->closing = true;
    t->done = done;
    t->done_opaque = opaque;
    caa_error *e = caa_error_new(-ECANCELED, "the Azure provider is shutting down");
    t->refreshing = false;
    notify(t, -ECANCELED, e);
    caa_error_free(e);
    if (t->req)
        caa_http_request_cancel(t->req);
    uv_close((uv_handle_t *)&t->timer, on_timer_closed);
}
