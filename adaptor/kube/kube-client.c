/* Kubernetes API calls: one caa_kube_call per logical request, owning its
 * attempts (HTTP requests) and its backoff timer. A call ends exactly once,
 * in finish(), which runs from an HTTP callback or from the call's timer,
 * never inside caa_kube_call_start() or caa_kube_call_cancel(). */
#define LOG_COMPONENT "adaptor/kube"
#include "kube-client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fs.h"
#include "http.h"
#include "kube-status.h"
#include "list.h"
#include "log.h"
#include "metrics.h"
#include "parse.h"
#include "strv.h"
#include "xalloc.h"

/* client-go re-reads a rotating service account token about every minute. */
#define TOKEN_REREAD_MS 60000

struct caa_kube_client {
    uv_loop_t *loop;
    caa_http_client *http;
    char *server;
    char *namespace;
    char *token;      /* current bearer token; NULL: none */
    char *token_file; /* NULL: the token is static */
    uint64_t token_read_at;
    caa_list calls;
    unsigned n_calls;
    bool closing;
};

typedef enum { CALL_IDLE, CALL_HTTP, CALL_WAIT, CALL_DONE } call_state;

struct caa_kube_call {
    caa_list node;
    caa_kube_client *c;
    uv_timer_t timer; /* backoff, and delivery of cancellations */
    caa_http_request *http_req;
    call_state state;
    char *verb, *path, *url, *content_type;
    char *body;
    size_t body_len;
    unsigned attempt, max_attempts;
    uint64_t timeout_ms;
    uint64_t backoff_ms;
    bool cancelled;
    bool token_retry_used;
    caa_kube_cb cb;
    void *opaque;
    /* Streaming calls: bytes received, waiting for the loop to hand them on. */
    caa_kube_data_cb on_data;
    caa_buf pending;
    bool sink_failed; /* on_data refused: the outcome is set, the transfer being cancelled */
    /* The outcome, delivered by finish(). */
    int status;
    json_t *obj;
    caa_error *err;
};

static void secret_free(char *s)
{
    if (s)
        explicit_bzero(s, strlen(s));
    free(s);
}

/* ---------------------------------------------------------------- token */

/* Re-reads the token file; true when the token changed. A failed read keeps
 * the old token (the file is replaced atomically by the kubelet). */
static bool reload_token(caa_kube_client *c)
{
    if (!c->token_file)
        return false;
    c->token_read_at = uv_now(c->loop);
    char *text = NULL;
    size_t len;
    _cleanup_error_ caa_error *e = NULL;
    if (caa_read_file(c->token_file, CAA_KUBE_TOKEN_MAX, 0, &text, &len, &e) < 0) {
        log_warn("reading the API token: %s", caa_error_msg(e));
        return false;
    }
    text[strcspn(text, "\r\n")] = '\0';
    if (c->token && strcmp(c->token, text) == 0) {
        secret_free(text);
        return false;
    }
    secret_free(c->token);
    c->token = text;
    return true;
}

/* ---------------------------------------------------------------- calls */

static void on_call_closed(uv_handle_t *h)
{
    caa_kube_call *call = h->data;
    caa_kube_client *c = call->c;
    free(call->verb);
    free(call->path);
    free(call->url);
    free(call->content_type);
    secret_free(call->body); /* may hold a secret's contents (never here today, but cheap) */
    caa_buf_done(&call->pending);
    free(call);
    if (--c->n_calls == 0 && c->closing) {
        caa_http_client_close(c->http);
        free(c->server);
        free(c->namespace);
        secret_free(c->token);
        free(c->token_file);
        free(c);
    }
}

static void set_outcome(caa_kube_call *call, int status, json_t *obj, caa_error *err)
{
    json_decref(call->obj);
    caa_error_free(call->err);
    call->status = status;
    call->obj = obj;
    call->err = err;
}

static void finish(caa_kube_call *call)
{
    call->state = CALL_DONE;
    caa_list_remove(&call->node);
    uv_timer_stop(&call->timer);
    if (call->cancelled)
        set_outcome(call, -ECANCELED, NULL,
                    caa_error_new(-ECANCELED, "%s %s: cancelled", call->verb, call->path));
    call->cb(call->status, TAKE_PTR(call->obj), TAKE_PTR(call->err), call->opaque);
    uv_close((uv_handle_t *)&call->timer, on_call_closed);
}

static int start_attempt(caa_kube_call *call, caa_error **err);

/* A later attempt that cannot even start (only a bad URL): the call ends. */
static void start_attempt_or_finish(caa_kube_call *call)
{
    caa_error *err = NULL;
    if (start_attempt(call, &err) < 0) {
        set_outcome(call, err->code, NULL, err);
        finish(call);
    }
}

static void on_timer(uv_timer_t *t)
{
    caa_kube_call *call = t->data;
    if (call->cancelled || call->state == CALL_DONE || call->c->closing) {
        if (call->state != CALL_DONE)
            finish(call);
        return;
    }
    start_attempt_or_finish(call);
}

static void retry_later(caa_kube_call *call, int64_t retry_after_ms)
{
    uint64_t delay = call->backoff_ms;
    call->backoff_ms =
        call->backoff_ms * 2 > CAA_KUBE_BACKOFF_MAX_MS ? CAA_KUBE_BACKOFF_MAX_MS : call->backoff_ms * 2;
    if (retry_after_ms >= 0)
        delay = (uint64_t)retry_after_ms;
    call->state = CALL_WAIT;
    uv_timer_start(&call->timer, on_timer, delay, 0);
}

static bool attempts_left(const caa_kube_call *call)
{
    return call->max_attempts == UINT32_MAX || call->attempt < call->max_attempts;
}

static bool retryable_http(long status)
{
    return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

static bool retryable_transport(int status)
{
    return status == -ECONNREFUSED || status == -ECONNRESET || status == -ETIMEDOUT ||
           status == -EHOSTUNREACH;
}

/* ---------------------------------------------------------------- streams */

/* Inside libcurl: only copy, and wake the loop to hand the bytes on. */
static int on_stream_bytes(const char *data, size_t len, void *opaque, caa_error **err)
{
    caa_kube_call *call = opaque;
    if (len > CAA_KUBE_MAX_STREAM_PENDING - call->pending.len)
        return caa_error_set(err, -EMSGSIZE, "%s %s: the consumer fell more than %u bytes behind", call->verb,
                             call->path, CAA_KUBE_MAX_STREAM_PENDING);
    caa_buf_append(&call->pending, data, len);
    return 0;
}

/* Hands the pending bytes to on_data; false when it refused them (the
 * outcome is then set). */
static bool deliver_pending(caa_kube_call *call)
{
    if (call->pending.len == 0 || call->cancelled || call->sink_failed)
        return !call->sink_failed;
    size_t len;
    char *data = caa_buf_steal(&call->pending, &len);
    caa_error *err = NULL;
    int r = call->on_data(data, len, call->opaque, &err);
    free(data);
    if (r < 0) {
        if (!err)
            err = caa_error_new(r, "%s %s: the stream consumer stopped", call->verb, call->path);
        set_outcome(call, r, NULL, err);
        call->sink_failed = true;
        return false;
    }
    caa_error_free(err);
    return true;
}

static void on_stream_timer(uv_timer_t *t)
{
    caa_kube_call *call = t->data;
    if (call->state != CALL_HTTP || call->cancelled)
        return;
    if (!deliver_pending(call) && call->http_req)
        caa_http_request_cancel(call->http_req); /* on_http_done finishes with the sink's outcome */
}

static int on_stream_data(const char *data, size_t len, void *opaque, caa_error **err)
{
    caa_kube_call *call = opaque;
    int r = on_stream_bytes(data, len, opaque, err);
    if (r == 0 && !uv_is_active((uv_handle_t *)&call->timer))
        uv_timer_start(&call->timer, on_stream_timer, 0, 0);
    return r;
}

static void on_http_done(int status, caa_http_response *resp_in, caa_error *err_in, void *opaque)
{
    caa_kube_call *call = opaque;
    _cleanup_(caa_http_response_freep) caa_http_response *resp = resp_in;
    _cleanup_error_ caa_error *err = err_in;
    caa_kube_client *c = call->c;
    call->http_req = NULL;
    caa_metrics_kube_request(call->verb, status == 0 ? resp->status : 0);
    if (call->on_data) {
        /* What arrived before the end is handed on first. */
        uv_timer_stop(&call->timer);
        if (status == 0 && resp->status >= 200 && resp->status < 300 && !c->closing)
            deliver_pending(call);
        if (call->sink_failed) {
            finish(call);
            return;
        }
    }

    if (status < 0) {
        /* The HTTP client's message already names the method and the URL (without its query). */
        if (!call->cancelled && !c->closing && status != -ECANCELED && retryable_transport(status) &&
            attempts_left(call)) {
            log_debug("%s (attempt %u, retrying)", caa_error_msg(err), call->attempt);
            set_outcome(call, status, NULL, TAKE_PTR(err));
            retry_later(call, -1);
            return;
        }
        set_outcome(call, call->cancelled ? -ECANCELED : status, NULL, TAKE_PTR(err));
        finish(call);
        return;
    }
    if (resp->status >= 200 && resp->status < 300) {
        json_t *obj = NULL;
        if (resp->body_len) {
            json_error_t jerr;
            obj = json_loadb(resp->body, resp->body_len, JSON_REJECT_DUPLICATES, &jerr);
            if (!json_is_object(obj)) {
                json_decref(obj);
                set_outcome(
                    call, -EPROTO, NULL,
                    caa_error_new(-EPROTO, "%s %s: the answer is not a JSON object", call->verb, call->path));
                finish(call);
                return;
            }
        }
        set_outcome(call, 0, obj, NULL);
        finish(call);
        return;
    }
    caa_error *serr = caa_kube_status_error(resp->status, resp->body, resp->body_len, call->verb, call->path);
    set_outcome(call, serr->code, NULL, serr);
    if (call->cancelled || c->closing) {
        finish(call);
        return;
    }
    if (resp->status == 401 && !call->token_retry_used && reload_token(c)) {
        /* The token rotated under us: one immediate retry with the new one. */
        call->token_retry_used = true;
        log_info("%s %s: 401, retrying with the rotated token", call->verb, call->path);
        start_attempt_or_finish(call);
        return;
    }
    if (retryable_http(resp->status) && attempts_left(call)) {
        retry_later(call, caa_kube_retry_after_ms(caa_http_response_header(resp, "retry-after")));
        return;
    }
    finish(call);
}

static int start_attempt(caa_kube_call *call, caa_error **err)
{
    caa_kube_client *c = call->c;
    if (c->token_file && uv_now(c->loop) - c->token_read_at >= TOKEN_REREAD_MS)
        reload_token(c);
    call->attempt++;
    char *headers[4] = {0};
    size_t nh = 0;
    headers[nh++] = xstrdup("Accept: application/json");
    if (call->body)
        headers[nh++] = xasprintf("Content-Type: %s", call->content_type);
    if (c->token)
        headers[nh++] = xasprintf("Authorization: Bearer %s", c->token);
    caa_http_request_info info = {
        .on_data = call->on_data ? on_stream_data : NULL,
        .data_opaque = call,
        .method = call->verb,
        .url = call->url,
        .headers = headers,
        .body = call->body,
        .body_len = call->body_len,
        .timeout_ms = call->timeout_ms,
        .max_response = CAA_KUBE_MAX_RESPONSE,
    };
    int r = caa_http_request_start(c->http, &info, on_http_done, call, &call->http_req, err);
    for (size_t i = 0; i < nh; i++)
        secret_free(headers[i]);
    if (r < 0)
        return r;
    call->state = CALL_HTTP;
    return 0;
}

static int call_start(caa_kube_client *c, const caa_kube_request *req, caa_kube_data_cb on_data,
                      caa_kube_cb cb, void *opaque, caa_kube_call **ret, caa_error **err)
{
    if (c->closing)
        return caa_error_set(err, -ECANCELED, "%s %s: the Kubernetes client is closing", req->verb,
                             req->path);
    if (!req->path || req->path[0] != '/')
        return caa_error_set(err, -EINVAL, "%s: the API path must start with /", req->verb);
    caa_kube_call *call = xnew0(caa_kube_call, 1);
    call->c = c;
    call->verb = xstrdup(req->verb);
    call->path = xstrdup(req->path);
    call->url = xasprintf("%s%s", c->server, req->path);
    call->content_type = xstrdup(req->content_type ? req->content_type : "application/json");
    if (req->body) {
        call->body = json_dumps(req->body, JSON_COMPACT);
        if (!call->body)
            caa_oom();
        call->body_len = strlen(call->body);
    }
    call->max_attempts = req->max_attempts ? req->max_attempts : CAA_KUBE_DEFAULT_ATTEMPTS;
    call->timeout_ms = req->timeout_ms ? req->timeout_ms : CAA_KUBE_DEFAULT_TIMEOUT_MS;
    call->backoff_ms = CAA_KUBE_BACKOFF_FIRST_MS;
    call->cb = cb;
    call->on_data = on_data;
    call->opaque = opaque;
    uv_timer_init(c->loop, &call->timer);
    call->timer.data = call;
    caa_list_init(&call->node);
    caa_list_append(&c->calls, &call->node);
    c->n_calls++;
    int r = start_attempt(call, err);
    if (r < 0) {
        /* Fails synchronously: the callback never runs. */
        call->state = CALL_DONE;
        caa_list_remove(&call->node);
        uv_close((uv_handle_t *)&call->timer, on_call_closed);
        return r;
    }
    if (ret)
        *ret = call;
    return 0;
}

int caa_kube_call_start(caa_kube_client *c, const caa_kube_request *req, caa_kube_cb cb, void *opaque,
                        caa_kube_call **ret, caa_error **err)
{
    return call_start(c, req, NULL, cb, opaque, ret, err);
}

int caa_kube_stream_start(caa_kube_client *c, const char *path, uint64_t timeout_ms, caa_kube_data_cb on_data,
                          caa_kube_cb on_end, void *opaque, caa_kube_call **ret, caa_error **err)
{
    caa_kube_request req = {.verb = "GET", .path = path, .max_attempts = 1, .timeout_ms = timeout_ms};
    return call_start(c, &req, on_data, on_end, opaque, ret, err);
}

void caa_kube_call_cancel(caa_kube_call *call)
{
    if (!call || call->cancelled || call->state == CALL_DONE)
        return;
    call->cancelled = true;
    if (call->state == CALL_HTTP && call->http_req) {
        caa_http_request_cancel(call->http_req); /* on_http_done finishes */
    } else {
        uv_timer_stop(&call->timer);
        uv_timer_start(&call->timer, on_timer, 0, 0);
    }
}

/* ---------------------------------------------------------------- client */

int caa_kube_client_new(uv_loop_t *loop, const caa_kube_config *cfg, caa_kube_client **ret, caa_error **err)
{
    caa_http_client_options opts = {
        .max_active = 16,
        .max_response = CAA_KUBE_MAX_RESPONSE,
        .timeout_ms = CAA_KUBE_DEFAULT_TIMEOUT_MS,
        .connect_timeout_ms = 5000,
        .ca_pem = cfg->ca_pem,
        .client_cert_pem = cfg->cert_pem,
        .client_key_pem = cfg->key_pem,
        .insecure_skip_verify = cfg->insecure_skip_verify,
    };
    caa_http_client *http;
    int r = caa_http_client_new(loop, &opts, &http, err);
    if (r < 0)
        return r;
    caa_kube_client *c = xnew0(caa_kube_client, 1);
    c->loop = loop;
    c->http = http;
    c->server = xstrdup(cfg->server);
    c->namespace = xstrdup(cfg->namespace ? cfg->namespace : "default");
    c->token = cfg->token ? xstrdup(cfg->token) : NULL;
    c->token_file = cfg->token_file ? xstrdup(cfg->token_file) : NULL;
    caa_list_init(&c->calls);
    reload_token(c);
    *ret = c;
    return 0;
}

void caa_kube_client_close(caa_kube_client *c)
{
    if (!c || c->closing)
        return;
    c->closing = true;
    caa_list *pos, *tmp;
    caa_list_foreach_safe(pos, tmp, &c->calls)
    {
        caa_kube_call_cancel(caa_list_entry(pos, caa_kube_call, node));
    }
    if (c->n_calls == 0) {
        caa_http_client_close(c->http);
        free(c->server);
        free(c->namespace);
        secret_free(c->token);
        free(c->token_file);
        free(c);
    }
}

uv_loop_t *caa_kube_client_loop(const caa_kube_client *c)
{
    return c->loop;
}

const char *caa_kube_client_namespace(const caa_kube_client *c)
{
    return c->namespace;
}

unsigned caa_kube_client_calls(const caa_kube_client *c)
{
    return c->n_calls;
}

int64_t caa_kube_retry_after_ms(const char *value)
{
    if (!value)
        return -1;
    int64_t s;
    if (caa_parse_int64(value, 0, INT32_MAX, &s) < 0)
        return -1;
    return s * 1000 > CAA_KUBE_RETRY_AFTER_MAX_MS ? CAA_KUBE_RETRY_AFTER_MAX_MS : s * 1000;
}
