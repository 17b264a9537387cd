/* EC2/STS Query calls: sign, send, read AWS's error documents, retry with
 * capped, jittered exponential backoff (see aws-api.h). */
#define LOG_COMPONENT "provider/aws"
#include "aws-api-internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cleanup.h"
#include "ec2-xml.h"
#include "log.h"
#include "strv.h"
#include "xalloc.h"
#include "refcount.h"
#include "timeutil.h"

#define DEFAULT_BACKOFF_BASE_MS 200
#define DEFAULT_BACKOFF_CAP_MS 20000
#define MAX_MESSAGE 400

int64_t aws_wall_ms(void)
{
    return caa_clock_ms(CLOCK_REALTIME);
}

/* ---- errors ---- */

static bool code_in(const char *code, const char *const *list, size_t n)
{
    for (size_t i = 0; code && i < n; i++)
        if (strcmp(code, list[i]) == 0)
            return true;
    return false;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static const char *const retry_codes[] = {
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "Unavailable",
    "RequestTimeout",
    "RequestTimeoutException",
    "IDPCommunicationError",
};

bool aws_error_retryable(const char *code, long http_status)
{
    if (code_in(code, retry_codes, CAA_ARRAY_SIZE(retry_codes)))
        return true;
    /* EC2 sends some definite answers with a 5xx status (e.g.
     * InsufficientInstanceCapacity with 500): those are not retried. */
    if (code && aws_error_class(code, 0) != -EIO)
        return false;
    return http_status == 429 || http_status == 500 || http_status == 502 || http_status == 503 ||
           http_status == 504;
}

int aws_error_class(const char *code, long http_status)
{
    static const char *const denied[] = {
        "AuthFailure",
        "UnauthorizedOperation",
        "SignatureDoesNotMatch",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "AccessDenied",
        "AccessDeniedException",
        "OptInRequired",
        "Blocked",
        "InvalidIdentityToken",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "RequestExpired",
        "PendingVerification",
    };
    static const char *const capacity[] = {
        "InsufficientInstanceCapacity",
        "InsufficientCapacity",
        "InstanceLimitExceeded",
        "VcpuLimitExceeded",
        "InsufficientAddressCapacity",
        "AddressLimitExceeded",
        "InsufficientFreeAddressesInSubnet",
        "MaxSpotInstanceCountExceeded",
        "InsufficientHostCapacity",
        "InsufficientReservedInstanceCapacity",
    };
    if (code) {
        if (code_in(code, denied, CAA_ARRAY_SIZE(denied)))
            return -EACCES;
        if (code_in(code, capacity, CAA_ARRAY_SIZE(capacity)))
            return -ENOSPC;
        if (ends_with(code, ".NotFound") || ends_with(code, "NotFoundException") ||
            strcmp(code, "NotFound") == 0)
            return -ENOENT;
        if (ends_with(code, ".Malformed") || strncmp(code, "InvalidParameter", 16) == 0 ||
            strcmp(code, "MissingParameter") == 0 || strcmp(code, "MissingAction") == 0 ||
            strcmp(code, "InvalidAction") == 0 || strcmp(code, "IdempotentParameterMismatch") == 0 ||
            strcmp(code, "Unsupported") == 0 || strcmp(code, "UnsupportedOperation") == 0 ||
            strcmp(code, "ValidationError") == 0 || strncmp(code, "Invalid", 7) == 0)
            return -EINVAL;
        if (code_in(code, retry_codes, CAA_ARRAY_SIZE(retry_codes)))
            return -EAGAIN;
    }
    if (http_status == 429 || http_status == 503)
        return -EAGAIN;
    if (http_status == 401 || http_status == 403)
        return -EACCES;
    if (http_status == 404)
        return -ENOENT;
    return -EIO;
}

/* AWS's message, made safe for one log line. */
static char *clean_message(const char *m)
{
    if (!m)
        return xstrdup("");
    size_t n = strlen(m);
    if (n > MAX_MESSAGE)
        n = MAX_MESSAGE;
    char *out = xstrndup(m, n);
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    return out;
}

static const char *svc_name(aws_service svc)
{
    return svc == AWS_SVC_STS ? "STS" : "EC2";
}

/* ---- api object ---- */

int aws_api_new(uv_loop_t *loop, const aws_api_settings *s, aws_api **ret, caa_error **err)
{
    aws_api *api = xcalloc(1, sizeof(*api));
    api->loop = loop;
    api->set = *s;
    if (!api->set.max_attempts)
        api->set.max_attempts = 1;
    if (!api->set.backoff_base_ms)
        api->set.backoff_base_ms = DEFAULT_BACKOFF_BASE_MS;
    if (!api->set.backoff_cap_ms)
        api->set.backoff_cap_ms = DEFAULT_BACKOFF_CAP_MS;
    if (!api->set.imds_timeout_ms)
        api->set.imds_timeout_ms = 3000;
    api->ca_file = s->ca_file && *s->ca_file ? xstrdup(s->ca_file) : NULL;
    api->set.ca_file = api->ca_file;
    api->imds_endpoint = s->imds_endpoint && *s->imds_endpoint ? xstrdup(s->imds_endpoint) : NULL;
    api->set.imds_endpoint = api->imds_endpoint;
    if (api->imds_endpoint) {
        size_t l = strlen(api->imds_endpoint);
        while (l > 0 && api->imds_endpoint[l - 1] == '/')
            api->imds_endpoint[--l] = '\0';
        int r = caa_http_url_check(api->imds_endpoint, CAA_HTTP_ALLOW_LINK_LOCAL, err);
        if (r < 0) {
            caa_error_prefix(err, "instance metadata endpoint");
            free(api->imds_endpoint);
            free(api->ca_file);
            free(api);
            return r;
        }
    }
    caa_http_client_options ho = {
        .max_active = s->max_concurrent,
        .max_response = s->max_response,
        .timeout_ms = s->timeout_ms,
        .ca_file = api->ca_file,
    };
    int r = caa_http_client_new(loop, &ho, &api->http, err);
    if (r < 0) {
        free(api->imds_endpoint);
        free(api->ca_file);
        free(api);
        return r;
    }
    caa_refcount_init(&api->pending, 1); /* the creator's reference */
    api->rng = (uint64_t)aws_wall_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)api;
    *ret = api;
    return 0;
}

static void api_free(aws_api *api)
{
    aws_creds_done(api);
    aws_imds_done(api);
    free(api->ca_file);
    free(api->region);
    free(api->ec2_endpoint);
    free(api->sts_endpoint);
    free(api->ec2_host);
    free(api->sts_host);
    free(api->imds_endpoint);
    free(api);
}

void aws_api_release(aws_api *api)
{
    if (caa_unref(&api->pending) && api->closing)
        api_free(api);
}

void aws_api_unref(aws_api *api)
{
    if (api)
        aws_api_release(api);
}

void aws_api_close(aws_api *api)
{
    if (!api || api->closing)
        return;
    api->closing = true;
    caa_ref(&api->pending); /* held while cancelling */
    for (aws_call *c = api->calls, *next; c; c = next) {
        next = c->next;
        aws_call_cancel(c);
    }
    aws_imds_cancel_all(api);
    caa_http_client_close(api->http);
    api->http = NULL;
    aws_api_release(api);
}

/* Host header value of an endpoint: host, plus the port when one is given. */
static int endpoint_host(const char *url, char **ret, caa_error **err)
{
    CURLU *u = curl_url();
    if (!u)
        caa_oom();
    char *host = NULL, *port = NULL;
    int r = 0;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        r = caa_error_set(err, -EINVAL, "malformed endpoint URL \"%.200s\"", url);
    } else {
        if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK && port)
            *ret = xasprintf("%s:%s", host, port);
        else
            *ret = xstrdup(host);
    }
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return r;
}

static int set_endpoint(const char *given, const char *svc, const char *region, char **url, char **host,
                        caa_error **err)
{
    _cleanup_free_ char *u = NULL;
    if (given && *given) {
        u = xstrdup(given);
    } else {
        const char *suffix = strncmp(region, "cn-", 3) == 0 ? "amazonaws.com.cn" : "amazonaws.com";
        u = xasprintf("https://%s.%s.%s/", svc, region, suffix);
    }
    int r = caa_http_url_check(u, 0, err);
    if (r < 0)
        return caa_error_prefix(err, "%s endpoint", svc);
    _cleanup_free_ char *h = NULL;
    r = endpoint_host(u, &h, err);
    if (r < 0)
        return r;
    free(*url);
    free(*host);
    *url = TAKE_PTR(u);
    *host = TAKE_PTR(h);
    return 0;
}

int aws_api_set_region(aws_api *api, const char *region, const char *ec2_endpoint, const char *sts_endpoint,
                       caa_error **err)
{
    int r = set_endpoint(ec2_endpoint, "ec2", region, &api->ec2_endpoint, &api->ec2_host, err);
    if (r >= 0)
        r = set_endpoint(sts_endpoint, "sts", region, &api->sts_endpoint, &api->sts_host, err);
    if (r < 0)
        return r;
    free(api->region);
    api->region = xstrdup(region);
    return 0;
}

const char *aws_api_region(const aws_api *api)
{
    return api->region;
}

const char *aws_api_endpoint(const aws_api *api, aws_service svc)
{
    return svc == AWS_SVC_STS ? api->sts_endpoint : api->ec2_endpoint;
}

/* ---- calls ---- */

static void call_closed(uv_handle_t *h)
{
    aws_call *c = CAA_CONTAINER_OF((uv_timer_t *)h, aws_call, timer);
    aws_api *api = c->api;
    caa_error_free(c->err);
    free(c->action);
    free(c->body);
    free(c);
    aws_api_release(api);
}

static void call_finish(aws_call *c, int status, caa_http_response *resp, const char *code, caa_error *e)
{
    aws_api *api = c->api;
    if (c->finishing) {
        caa_http_response_free(resp);
        caa_error_free(e);
        return;
    }
    c->finishing = true;
    if (c->waiting_creds)
        aws_creds_unwait(api, c);
    if (c->prev)
        c->prev->next = c->next;
    else
        api->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    uv_timer_stop(&c->timer);
    if (status < 0 && !e)
        e = caa_error_new(status, "%s %s failed", svc_name(c->svc), c->action);
    c->cb(status, resp, code, e, c->opaque);
    uv_close((uv_handle_t *)&c->timer, call_closed);
}

static void on_deferred(uv_timer_t *t)
{
    aws_call *c = CAA_CONTAINER_OF(t, aws_call, timer);
    call_finish(c, c->status, NULL, NULL, TAKE_PTR(c->err));
}

/* Finishes from the timer: the callback never runs inside the caller. */
static void call_finish_later(aws_call *c, int status, caa_error *e)
{
    caa_error_free(c->err);
    c->status = status;
    c->err = e;
    uv_timer_start(&c->timer, on_deferred, 0, 0);
}

static void call_send(aws_call *c);

static void on_backoff(uv_timer_t *t)
{
    aws_call *c = CAA_CONTAINER_OF(t, aws_call, timer);
    call_send(c);
}

static uint64_t next_rand(aws_api *api)
{
    /* xorshift64*: jitter only, nothing secret */
    uint64_t x = api->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    api->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static void call_retry_later(aws_call *c)
{
    aws_api *api = c->api;
    uint64_t ceiling = api->set.backoff_base_ms;
    for (int i = 1; i < c->attempt && ceiling < api->set.backoff_cap_ms; i++)
        ceiling *= 2;
    if (ceiling > api->set.backoff_cap_ms)
        ceiling = api->set.backoff_cap_ms;
    /* "Full jitter": anywhere in [ceiling/4, ceiling). */
    uint64_t low = ceiling / 4;
    uint64_t delay = low + (ceiling > low ? next_rand(api) % (ceiling - low) : 0);
    uv_timer_start(&c->timer, on_backoff, delay, 0);
}

static bool xml_content(const caa_http_response *resp)
{
    const char *ct = resp->content_type;
    return ct && (strncasecmp(ct, "text/xml", 8) == 0 || strncasecmp(ct, "application/xml", 15) == 0);
}

static void on_http(int status, caa_http_response *resp, caa_error *e, void *opaque)
{
    aws_call *c = opaque;
    _cleanup_(caa_http_response_freep) caa_http_response *r = resp;
    c->http = NULL;
    if (c->cancelled || status == -ECANCELED) {
        caa_error_free(e);
        call_finish(c, -ECANCELED, NULL, NULL,
                    caa_error_new(-ECANCELED, "%s %s: cancelled", svc_name(c->svc), c->action));
        return;
    }
    bool last = c->attempt >= c->api->set.max_attempts;
    if (status < 0) {
        bool transient = status == -ETIMEDOUT || status == -ECONNRESET || status == -ECONNREFUSED;
        if (transient && !last) {
            log_debug("%s %s attempt %d: %s; retrying", svc_name(c->svc), c->action, c->attempt,
                      caa_error_msg(e));
            caa_error_free(e);
            call_retry_later(c);
            return;
        }
        caa_error_prefix(&e, "%s %s", svc_name(c->svc), c->action);
        call_finish(c, status, NULL, NULL, e);
        return;
    }
    caa_error_free(e);
    if (r->status >= 200 && r->status < 300) {
        if (!xml_content(r)) {
            call_finish(c, -EPROTO, NULL, NULL,
                        caa_error_new(-EPROTO, "%s %s: unexpected answer: HTTP %ld with content type %.80s",
                                      svc_name(c->svc), c->action, r->status,
                                      r->content_type ? r->content_type : "(none)"));
            return;
        }
        call_finish(c, 0, TAKE_PTR(r), NULL, NULL);
        return;
    }
    ec2_error ae;
    bool parsed = xml_content(r) && ec2_parse_error(r->body, r->body_len, &ae) == 0;
    if (!parsed)
        memset(&ae, 0, sizeof(ae));
    const char *code = ae.code && *ae.code ? ae.code : NULL;
    if (code && (strcmp(code, "ExpiredToken") == 0 || strcmp(code, "ExpiredTokenException") == 0) &&
        !(c->flags & AWS_CALL_UNSIGNED) && !c->creds_retry_done && aws_creds_invalidate(c->api)) {
        /* Temporary credentials ran out under us: fetch new ones, once. */
        c->creds_retry_done = true;
        ec2_error_done(&ae);
        call_send(c);
        return;
    }
    if (aws_error_retryable(code, r->status) && !last) {
        log_debug("%s %s attempt %d: %s (HTTP %ld); retrying", svc_name(c->svc), c->action, c->attempt,
                  code ? code : "no error code", r->status);
        ec2_error_done(&ae);
        call_retry_later(c);
        return;
    }
    int cls = aws_error_class(code, r->status);
    caa_error *fe;
    if (parsed) {
        _cleanup_free_ char *msg = clean_message(ae.message);
        _cleanup_free_ char *rid = clean_message(ae.request_id);
        fe = caa_error_new(cls, "%s %s: %s: %s (HTTP %ld%s%s%s)", svc_name(c->svc), c->action,
                           code ? code : "error", msg, r->status, *rid ? ", request id " : "", rid,
                           c->attempt > 1 ? ", after retries" : "");
    } else {
        fe = caa_error_new(cls, "%s %s: HTTP %ld%s%.80s%s", svc_name(c->svc), c->action, r->status,
                           r->content_type ? " (" : "", r->content_type ? r->content_type : "",
                           r->content_type ? ")" : "");
    }
    call_finish(c, cls, NULL, code, fe);
    ec2_error_done(&ae);
}

static void call_send(aws_call *c)
{
    aws_api *api = c->api;
    if (c->cancelled) {
        call_finish(c, -ECANCELED, NULL, NULL,
                    caa_error_new(-ECANCELED, "%s %s: cancelled", svc_name(c->svc), c->action));
        return;
    }
    const aws_credentials *creds = NULL;
    if (!(c->flags & AWS_CALL_UNSIGNED)) {
        creds = aws_creds_current(api);
        if (!creds) {
            aws_creds_wait(api, c);
            return;
        }
    }
    c->attempt++;
    const char *endpoint = aws_api_endpoint(api, c->svc);
    const char *host = c->svc == AWS_SVC_STS ? api->sts_host : api->ec2_host;
    static const char content_type[] = "application/x-www-form-urlencoded; charset=utf-8";
    char *headers[8] = {0};
    size_t nh = 0;
    aws_sigv4_result sig = {0};
    headers[nh++] = xasprintf("Host: %s", host);
    headers[nh++] = xasprintf("Content-Type: %s", content_type);
    if (creds) {
        aws_kv sh[] = {{"host", host}, {"content-type", content_type}};
        aws_sigv4_request sr = {
            .method = "POST",
            .path = "/",
            .headers = sh,
            .n_headers = CAA_ARRAY_SIZE(sh),
            .payload = c->body,
            .payload_len = strlen(c->body),
            .region = api->region,
            .service = c->svc == AWS_SVC_STS ? "sts" : "ec2",
            .when = time(NULL),
        };
        caa_error *e = NULL;
        if (aws_sigv4_sign(&sr, creds, &sig, &e) < 0) {
            for (size_t i = 0; i < nh; i++)
                free(headers[i]);
            call_finish(c, e->code, NULL, NULL, e);
            return;
        }
        headers[nh++] = xasprintf("X-Amz-Date: %s", sig.amz_date);
        if (creds->session_token && *creds->session_token)
            headers[nh++] = xasprintf("X-Amz-Security-Token: %s", creds->session_token);
        headers[nh++] = xasprintf("Authorization: %s", sig.authorization);
    }
    caa_http_request_info info = {
        .method = "POST",
        .url = endpoint,
        .headers = headers,
        .body = c->body,
        .body_len = strlen(c->body),
    };
    caa_error *e = NULL;
    int r = caa_http_request_start(api->http, &info, on_http, c, &c->http, &e);
    for (size_t i = 0; i < nh; i++)
        free(headers[i]);
    aws_sigv4_result_done(&sig);
    if (r < 0) {
        caa_error_prefix(&e, "%s %s", svc_name(c->svc), c->action);
        call_finish(c, r, NULL, NULL, e);
    }
}

void aws_call_creds_ready(aws_call *c, int status, const caa_error *err)
{
    c->waiting_creds = false;
    if (status < 0) {
        call_finish(c, status, NULL, NULL,
                    caa_error_new(status, "%s %s: no AWS credentials: %s", svc_name(c->svc), c->action,
                                  err ? caa_error_msg(err) : "unknown error"));
        return;
    }
    call_send(c);
}

int aws_call_start(aws_api *api, aws_service svc, aws_params *params, unsigned flags, aws_call_cb cb,
                   void *opaque, aws_call **ret, caa_error **err)
{
    if (api->closing) {
        aws_params_done(params);
        return caa_error_set(err, -ESHUTDOWN, "the AWS client is shutting down");
    }
    if (!aws_api_endpoint(api, svc)) {
        aws_params_done(params);
        return caa_error_set(err, -EINVAL, "no %s endpoint: the region is not known yet", svc_name(svc));
    }
    if (!(flags & AWS_CALL_UNSIGNED) && !api->have_source) {
        aws_params_done(params);
        return caa_error_set(err, -EACCES, "no AWS credentials configured");
    }
    aws_call *c = xcalloc(1, sizeof(*c));
    c->api = api;
    c->svc = svc;
    c->flags = flags;
    const char *action = aws_params_get(params, "Action");
    c->action = xstrdup(action ? action : "?");
    c->body = aws_params_encode(params);
    aws_params_done(params);
    c->cb = cb;
    c->opaque = opaque;
    uv_timer_init(api->loop, &c->timer);
    caa_ref(&api->pending);
    c->next = api->calls;
    if (api->calls)
        api->calls->prev = c;
    api->calls = c;
    if (ret)
        *ret = c;
    /* Sending (and signing) from the timer keeps the callback "later" even
     * when something fails at once. */
    uv_timer_start(&c->timer, on_backoff, 0, 0);
    return 0;
}

void aws_call_cancel(aws_call *c)
{
    if (!c || c->finishing || c->cancelled)
        return;
    c->cancelled = true;
    if (c->http) {
        caa_http_request_cancel(c->http); /* on_http finishes it */
        return;
    }
    if (c->waiting_creds) {
        aws_creds_unwait(c->api, c);
        c->waiting_creds = false;
    }
    uv_timer_stop(&c->timer);
    call_finish_later(c, -ECANCELED,
                      caa_error_new(-ECANCELED, "%s %s: cancelled", svc_name(c->svc), c->action));
}
