/* Instance metadata (IMDSv2): a session token from PUT /latest/api/token,
 * then GETs carrying it. One token fetch at a time; reads that need a token
 * wait for it. A 401 (token expired on the service's side) drops the token
 * and the read goes round once more. */
#define LOG_COMPONENT "provider/aws"
#include "aws-api-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "log.h"
#include "xalloc.h"
#include "refcount.h"

#define TOKEN_TTL_S 21600
#define MAX_IMDS_ANSWER (64u << 10)

struct imds_req {
    aws_api *api;
    char *path;
    aws_imds_cb cb;
    void *opaque;
    caa_http_request *http;
    bool retried_401;
    bool is_token; /* the token PUT itself */
    imds_req *next_wait;
    imds_req *prev, *next; /* api->imds_reqs */
};

bool aws_imds_enabled(const aws_api *api)
{
    return api->imds_endpoint != NULL;
}

static void req_unlink(aws_api *api, imds_req *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        api->imds_reqs = q->next;
    if (q->next)
        q->next->prev = q->prev;
    q->prev = q->next = NULL;
}

static void req_free(imds_req *q)
{
    aws_api *api = q->api;
    req_unlink(api, q);
    free(q->path);
    free(q);
    aws_api_release(api);
}

static void req_finish(imds_req *q, int status, char *body, caa_error *e)
{
    if (status < 0 && !e)
        e = caa_error_new(status, "instance metadata %s failed", q->path);
    if (q->cb)
        q->cb(status, body, e, q->opaque);
    else {
        free(body);
        caa_error_free(e);
    }
    req_free(q);
}

static imds_req *req_new(aws_api *api, const char *path, aws_imds_cb cb, void *opaque)
{
    imds_req *q = xcalloc(1, sizeof(*q));
    q->api = api;
    q->path = xstrdup(path);
    q->cb = cb;
    q->opaque = opaque;
    q->next = api->imds_reqs;
    if (api->imds_reqs)
        api->imds_reqs->prev = q;
    api->imds_reqs = q;
    caa_ref(&api->pending);
    return q;
}

static void send_get(imds_req *q);
static void fetch_token(aws_api *api);

static bool token_valid(aws_api *api)
{
    return api->imds_token && uv_now(api->loop) < (uint64_t)api->imds_token_until_ms;
}

/* Token fetch ended: start or fail the reads that waited for it. */
static void wake_waiters(aws_api *api, int status, const caa_error *e)
{
    imds_req *w = api->imds_waiting;
    api->imds_waiting = NULL;
    while (w) {
        imds_req *next = w->next_wait;
        w->next_wait = NULL;
        if (status < 0)
            req_finish(w, status, NULL,
                       caa_error_new(status, "instance metadata token: %s", e ? caa_error_msg(e) : "failed"));
        else
            send_get(w);
        w = next;
    }
}

static void on_token(int status, caa_http_response *resp, caa_error *e, void *opaque)
{
    imds_req *q = opaque;
    aws_api *api = q->api;
    _cleanup_(caa_http_response_freep) caa_http_response *r = resp;
    q->http = NULL;
    api->imds_token_fetching = false;
    if (status >= 0 &&
        (r->status != 200 || r->body_len == 0 || r->body_len > 4096 || strpbrk(r->body, "\r\n"))) {
        status = r->status == 200 ? -EPROTO : (r->status == 403 ? -EACCES : -EIO);
        e = caa_error_new(status, "PUT %s/latest/api/token: HTTP %ld", api->imds_endpoint, r->status);
    }
    if (status >= 0) {
        free(api->imds_token);
        api->imds_token = xstrdup(r->body);
        /* Renew a minute before the service would. */
        api->imds_token_until_ms = (int64_t)uv_now(api->loop) + (TOKEN_TTL_S - 60) * 1000;
    }
    wake_waiters(api, status, e);
    caa_error_free(e);
    req_free(q);
}

static void fetch_token(aws_api *api)
{
    if (api->imds_token_fetching)
        return;
    imds_req *q = req_new(api, "/latest/api/token", NULL, NULL);
    q->is_token = true;
    _cleanup_free_ char *url = xasprintf("%s/latest/api/token", api->imds_endpoint);
    char ttl[64];
    snprintf(ttl, sizeof(ttl), "X-aws-ec2-metadata-token-ttl-seconds: %d", TOKEN_TTL_S);
    char *headers[] = {ttl, NULL};
    caa_http_request_info info = {
        .method = "PUT",
        .url = url,
        .headers = headers,
        .timeout_ms = api->set.imds_timeout_ms,
        .max_response = 4096,
        .flags = CAA_HTTP_ALLOW_LINK_LOCAL,
    };
    caa_error *e = NULL;
    api->imds_token_fetching = true;
    int r = caa_http_request_start(api->http, &info, on_token, q, &q->http, &e);
    if (r < 0) {
        api->imds_token_fetching = false;
        wake_waiters(api, r, e);
        caa_error_free(e);
        req_free(q);
    }
}

static void wait_token(imds_req *q)
{
    aws_api *api = q->api;
    q->next_wait = api->imds_waiting;
    api->imds_waiting = q;
    fetch_token(api);
}

static void on_get(int status, caa_http_response *resp, caa_error *e, void *opaque)
{
    imds_req *q = opaque;
    aws_api *api = q->api;
    _cleanup_(caa_http_response_freep) caa_http_response *r = resp;
    q->http = NULL;
    if (status < 0) {
        caa_error_prefix(&e, "instance metadata");
        req_finish(q, status, NULL, e);
        return;
    }
    if (r->status == 401 && !q->retried_401 && !api->closing) {
        q->retried_401 = true;
        free(api->imds_token);
        api->imds_token = NULL;
        wait_token(q);
        return;
    }
    if (r->status == 404) {
        req_finish(q, -ENOENT, NULL, caa_error_new(-ENOENT, "instance metadata %s: not found", q->path));
        return;
    }
    if (r->status != 200) {
        int code = r->status == 401 || r->status == 403 ? -EACCES : -EIO;
        req_finish(q, code, NULL, caa_error_new(code, "instance metadata %s: HTTP %ld", q->path, r->status));
        return;
    }
    char *body = TAKE_PTR(r->body);
    req_finish(q, 0, body, NULL);
}

static void send_get(imds_req *q)
{
    aws_api *api = q->api;
    if (api->closing) {
        req_finish(q, -ECANCELED, NULL,
                   caa_error_new(-ECANCELED, "instance metadata %s: cancelled", q->path));
        return;
    }
    if (!token_valid(api)) {
        wait_token(q);
        return;
    }
    _cleanup_free_ char *url = xasprintf("%s%s", api->imds_endpoint, q->path);
    _cleanup_free_ char *tok = xasprintf("X-aws-ec2-metadata-token: %s", api->imds_token);
    char *headers[] = {tok, NULL};
    caa_http_request_info info = {
        .method = "GET",
        .url = url,
        .headers = headers,
        .timeout_ms = api->set.imds_timeout_ms,
        .max_response = MAX_IMDS_ANSWER,
        .flags = CAA_HTTP_ALLOW_LINK_LOCAL,
    };
    caa_error *e = NULL;
    int r = caa_http_request_start(api->http, &info, on_get, q, &q->http, &e);
    if (r < 0)
        req_finish(q, r, NULL, e);
}

/* Starts the read from a zero timer of the HTTP client's making: the read
 * always begins with either a token fetch or a GET, both asynchronous, so
 * the callback can never run inside aws_imds_get(). */
int aws_imds_get(aws_api *api, const char *path, aws_imds_cb cb, void *opaque, caa_error **err)
{
    if (!api->imds_endpoint)
        return caa_error_set(err, -EHOSTUNREACH, "instance metadata is disabled");
    if (api->closing)
        return caa_error_set(err, -ESHUTDOWN, "the AWS client is shutting down");
    if (!path || path[0] != '/' || strpbrk(path, "\r\n "))
        return caa_error_set(err, -EINVAL, "bad instance metadata path");
    imds_req *q = req_new(api, path, cb, opaque);
    if (!token_valid(api)) {
        q->next_wait = api->imds_waiting;
        api->imds_waiting = q;
        if (!api->imds_token_fetching) {
            /* Starting the fetch can fail only synchronously on a closed
             * client, which was checked above. */
            fetch_token(api);
        }
        return 0;
    }
    _cleanup_free_ char *url = xasprintf("%s%s", api->imds_endpoint, path);
    _cleanup_free_ char *tok = xasprintf("X-aws-ec2-metadata-token: %s", api->imds_token);
    char *headers[] = {tok, NULL};
    caa_http_request_info info = {
        .method = "GET",
        .url = url,
        .headers = headers,
        .timeout_ms = api->set.imds_timeout_ms,
        .max_response = MAX_IMDS_ANSWER,
        .flags = CAA_HTTP_ALLOW_LINK_LOCAL,
    };
    int r = caa_http_request_start(api->http, &info, on_get, q, &q->http, err);
    if (r < 0) {
        q->cb = NULL;
        req_free(q);
    }
    return r;
}

void aws_imds_cancel_all(aws_api *api)
{
    for (imds_req *q = api->imds_reqs; q; q = q->next)
        if (q->http)
            caa_http_request_cancel(q->http); /* its callback finishes it */
}

void aws_imds_done(aws_api *api)
{
    if (api->imds_token) {
        memset(api->imds_token, 0, strlen(api->imds_token));
        free(api->imds_token);
        api->imds_token = NULL;
    }
}
