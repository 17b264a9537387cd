/* HTTP client: libcurl multi-socket API on a libuv loop (see http.h).
 *
 * curl tells us which sockets to watch (socket callback -> uv_poll_t per
 * socket) and when to call it back (timer callback -> one uv_timer_t). Done
 * transfers are collected after each curl_multi_socket_action() and their
 * callbacks run after curl has returned, so a callback may start or cancel
 * requests or close the client. Cancelled requests are delivered from a
 * second, zero-delay timer so their callback never runs inside the call that
 * cancelled them. */
#define LOG_COMPONENT "providers/http"
#include "http.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "caa-version.h"
#include "cleanup.h"
#include "log.h"
#include "strv.h"
#include "buf.h"
#include "xalloc.h"

#define MAX_HEADER_BYTES (64u << 10)

typedef enum req_state {
    REQ_QUEUED,
    REQ_ACTIVE,
    REQ_DONE, /* waiting for its callback */
} req_state;

struct caa_http_request {
    caa_http_client *c;
    req_state state;
    caa_http_request *prev, *next; /* in one of the client's lists */

    char *method;
    char *url;
    char *what; /* "METHOD scheme://host/path" for messages (no query) */
    char **headers;
    char *body;
    size_t body_len;
    uint64_t timeout_ms;
    size_t max_response;
    unsigned flags;

    CURL *easy;
    struct curl_slist *slist;
    char errbuf[CURL_ERROR_SIZE];

    caa_buf rbody;
    char **rheaders;
    size_t rheader_bytes;
    bool too_large;
    caa_http_data_cb on_data;
    void *data_opaque;
    int data_status; /* < 0: on_data aborted the transfer */
    caa_error *data_err;

    int status;
    caa_error *err;
    caa_http_response *resp;

    caa_http_cb cb;
    void *opaque;
};

typedef struct req_list {
    caa_http_request *head, *tail;
    unsigned n;
} req_list;

typedef struct sock_ctx {
    uv_poll_t poll;
    caa_http_client *c;
    curl_socket_t fd;
    struct sock_ctx *prev, *next;
} sock_ctx;

struct caa_http_client {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer; /* curl's timeout */
    uv_timer_t defer; /* delivers cancelled requests */
    unsigned max_active;
    size_t max_response;
    uint64_t timeout_ms;
    uint64_t connect_timeout_ms;
    char *ca_file;
    char *user_agent;
    char *ca_pem, *cert_pem, *key_pem; /* NULL when not given */
    bool insecure_skip_verify;

    req_list queued, active, done;
    sock_ctx *socks;
    unsigned open_handles; /* uv handles not yet closed */
    unsigned dispatching;  /* nesting depth of callback dispatch */
    bool closing;
    bool finalized;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void curl_global_setup(void)
{
    curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- lists ---- */

static void list_push(req_list *l, caa_http_request *r)
{
    r->prev = l->tail;
    r->next = NULL;
    if (l->tail)
        l->tail->next = r;
    else
        l->head = r;
    l->tail = r;
    l->n++;
}

static void list_remove(req_list *l, caa_http_request *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        l->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        l->tail = r->prev;
    r->prev = r->next = NULL;
    l->n--;
}

static caa_http_request *list_pop(req_list *l)
{
    caa_http_request *r = l->head;
    if (r)
        list_remove(l, r);
    return r;
}

static req_list *list_of(caa_http_client *c, req_state s)
{
    switch (s) {
    case REQ_QUEUED:
        return &c->queued;
    case REQ_ACTIVE:
        return &c->active;
    case REQ_DONE:
    default:
        return &c->done;
    }
}

/* ---- responses ---- */

void caa_http_response_free(caa_http_response *resp)
{
    if (!resp)
        return;
    free(resp->content_type);
    caa_strv_free(resp->headers);
    free(resp->body);
    free(resp);
}

const char *caa_http_response_header(const caa_http_response *resp, const char *name)
{
    const char *found = NULL;
    size_t n = strlen(name);
    for (size_t i = 0; resp && resp->headers && resp->headers[i]; i++) {
        const char *h = resp->headers[i];
        if (strncasecmp(h, name, n) == 0 && h[n] == ':') {
            found = h + n + 1;
            while (*found == ' ')
                found++;
        }
    }
    return found;
}

static void request_free(caa_http_request *r)
{
    if (r->easy)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->slist);
    free(r->method);
    free(r->url);
    free(r->what);
    caa_strv_free(r->headers);
    free(r->body);
    caa_buf_done(&r->rbody);
    caa_strv_free(r->rheaders);
    caa_error_free(r->err);
    caa_error_free(r->data_err);
    caa_http_response_free(r->resp);
    free(r);
}

/* ---- curl callbacks for one transfer ---- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    caa_http_request *r = userp;
    size_t n = size * nmemb;
    if (r->on_data) {
        long code = 0;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
        if (code >= 200 && code < 300) {
            r->data_status = r->on_data(data, n, r->data_opaque, &r->data_err);
            if (r->data_status < 0 && !r->data_err)
                r->data_err = caa_error_new(r->data_status, "%s: the body sink refused the data", r->what);
            return r->data_status < 0 ? 0 : n;
        }
    }
    if (n > r->max_response - r->rbody.len) {
        r->too_large = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    caa_buf_append(&r->rbody, data, n);
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
    caa_http_request *r = userp;
    size_t n = size * nmemb;
    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        /* A new response (after 100 Continue or an auth round): start over. */
        caa_strv_free(r->rheaders);
        r->rheaders = NULL;
        r->rheader_bytes = 0;
        return n;
    }
    r->rheader_bytes += n;
    if (r->rheader_bytes > MAX_HEADER_BYTES) {
        r->too_large = true;
        return 0;
    }
    const char *colon = memchr(data, ':', n);
    if (!colon || colon == data)
        return n; /* blank line or folded continuation: ignored */
    size_t name_len = (size_t)(colon - data);
    const char *v = colon + 1;
    const char *end = data + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    char *line = xmalloc(name_len + 2 + (size_t)(end - v) + 1);
    for (size_t i = 0; i < name_len; i++)
        line[i] = (char)tolower((unsigned char)data[i]);
    memcpy(line + name_len, ": ", 2);
    memcpy(line + name_len + 2, v, (size_t)(end - v));
    line[name_len + 2 + (size_t)(end - v)] = '\0';
    caa_strv_push(&r->rheaders, line);
    free(line);
    return n;
}

/* ---- completion ---- */

static int errno_of_curl(CURLcode rc)
{
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_COULDNT_CONNECT:
        return -ECONNREFUSED;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return -EHOSTUNREACH;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        return -EACCES;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_BAD_CONTENT_ENCODING:
        return -EPROTO;
    case CURLE_FILESIZE_EXCEEDED:
        return -EMSGSIZE;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        return -ECONNRESET;
    default:
        return -EIO;
    }
}

static void finish_transfer(caa_http_request *r, CURLcode rc)
{
    if (rc == CURLE_OK) {
        caa_http_response *resp = xcalloc(1, sizeof(*resp));
        char *ct = NULL;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &resp->status);
        if (curl_easy_getinfo(r->easy, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
            resp->content_type = xstrdup(ct);
        resp->headers = TAKE_PTR(r->rheaders);
        if (!resp->headers)
            resp->headers = xcalloc(1, sizeof(char *));
        resp->body = caa_buf_steal(&r->rbody, &resp->body_len);
        r->status = 0;
        r->resp = resp;
        return;
    }
    if (r->data_status < 0) {
        r->status = r->data_status;
        r->err = TAKE_PTR(r->data_err);
        return;
    }
    if (r->too_large || rc == CURLE_FILESIZE_EXCEEDED) {
        r->status = caa_error_set(&r->err, -EMSGSIZE, "%s: response larger than the limit of %zu bytes",
                                  r->what, r->max_response);
        return;
    }
    int code = errno_of_curl(rc);
    const char *detail = r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc);
    if (code == -ETIMEDOUT)
        r->status = caa_error_set(&r->err, code, "%s: no complete answer within %llu ms (%s)", r->what,
                                  (unsigned long long)r->timeout_ms, detail);
    else
        r->status = caa_error_set(&r->err, code, "%s: %s", r->what, detail);
}

static void maybe_finalize(caa_http_client *c);
static void start_queued(caa_http_client *c);

/* Runs the callbacks of every request in the done list. */
static void dispatch_done(caa_http_client *c)
{
    c->dispatching++;
    caa_http_request *r;
    while ((r = list_pop(&c->done))) {
        caa_http_response *resp = TAKE_PTR(r->resp);
        caa_error *e = TAKE_PTR(r->err);
        if (r->status < 0 && !e)
            e = caa_error_new(r->status, "%s failed", r->what);
        r->cb(r->status, resp, e, r->opaque);
        request_free(r);
    }
    c->dispatching--;
    maybe_finalize(c);
}

static void mark_done(caa_http_client *c, caa_http_request *r)
{
    list_remove(list_of(c, r->state), r);
    r->state = REQ_DONE;
    list_push(&c->done, r);
}

/* Reads curl's finished transfers, refills the active set from the queue,
 * then runs the callbacks. */
static void check_multi(caa_http_client *c)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        caa_http_request *r = NULL;
        CURL *easy = msg->easy_handle;
        CURLcode rc = msg->data.result;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&r);
        curl_multi_remove_handle(c->multi, easy);
        finish_transfer(r, rc);
        mark_done(c, r);
    }
    start_queued(c);
    if (c->done.n && !c->dispatching)
        dispatch_done(c);
}

/* ---- curl <-> libuv glue ---- */

static void client_free(caa_http_client *c)
{
    free(c->ca_file);
    free(c->user_agent);
    free(c->ca_pem);
    free(c->cert_pem);
    if (c->key_pem)
        explicit_bzero(c->key_pem, strlen(c->key_pem));
    free(c->key_pem);
    free(c);
}

static void client_handle_closed(caa_http_client *c)
{
    if (--c->open_handles == 0 && c->finalized)
        client_free(c);
}

static void on_sock_closed(uv_handle_t *h)
{
    sock_ctx *sc = CAA_CONTAINER_OF((uv_poll_t *)h, sock_ctx, poll);
    caa_http_client *c = sc->c;
    free(sc);
    client_handle_closed(c);
}

static void sock_close(sock_ctx *sc)
{
    caa_http_client *c = sc->c;
    if (sc->prev)
        sc->prev->next = sc->next;
    else
        c->socks = sc->next;
    if (sc->next)
        sc->next->prev = sc->prev;
    uv_poll_stop(&sc->poll);
    uv_close((uv_handle_t *)&sc->poll, on_sock_closed);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    sock_ctx *sc = CAA_CONTAINER_OF(h, sock_ctx, poll);
    caa_http_client *c = sc->c;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running;
    curl_multi_socket_action(c->multi, sc->fd, flags, &running);
    check_multi(c);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    caa_http_client *c = userp;
    sock_ctx *sc = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (sc) {
            if (!c->finalized)
                curl_multi_assign(c->multi, fd, NULL);
            sock_close(sc);
        }
        return 0;
    }
    if (!sc) {
        if (c->finalized)
            return -1;
        sc = xcalloc(1, sizeof(*sc));
        sc->c = c;
        sc->fd = fd;
        if (uv_poll_init_socket(c->loop, &sc->poll, fd) < 0) {
            free(sc);
            return -1; /* curl fails the transfer */
        }
        c->open_handles++;
        sc->next = c->socks;
        if (c->socks)
            c->socks->prev = sc;
        c->socks = sc;
        curl_multi_assign(c->multi, fd, sc);
    }
    int events = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    uv_poll_start(&sc->poll, events, on_poll);
    return 0;
}

static void on_curl_timeout(uv_timer_t *t)
{
    caa_http_client *c = CAA_CONTAINER_OF(t, caa_http_client, timer);
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_multi(c);
}

static int on_timer_set(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    caa_http_client *c = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_curl_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

static void on_defer(uv_timer_t *t)
{
    caa_http_client *c = CAA_CONTAINER_OF(t, caa_http_client, defer);
    if (!c->dispatching)
        dispatch_done(c);
}

/* ---- starting transfers ---- */

static int setup_easy(caa_http_client *c, caa_http_request *r)
{
    CURL *e = curl_easy_init();
    if (!e)
        return caa_error_set(&r->err, -ENOMEM, "%s: curl_easy_init failed", r->what);
    r->easy = e;
    for (size_t i = 0; r->headers && r->headers[i]; i++)
        r->slist = curl_slist_append(r->slist, r->headers[i]);
    /* No "Expect: 100-continue" round trip for request bodies. */
    r->slist = curl_slist_append(r->slist, "Expect:");
    if (!r->slist)
        caa_oom();

    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                                        \
    do {                                                                                                     \
        if (rc == CURLE_OK)                                                                                  \
            rc = curl_easy_setopt(e, opt, val);                                                              \
    } while (0)
    SET(CURLOPT_URL, r->url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_SSL_VERIFYPEER, c->insecure_skip_verify ? 0L : 1L);
    SET(CURLOPT_SSL_VERIFYHOST, c->insecure_skip_verify ? 0L : 2L);
    if (c->ca_pem) {
        struct curl_blob blob = {c->ca_pem, strlen(c->ca_pem), CURL_BLOB_COPY};
        SET(CURLOPT_CAINFO_BLOB, &blob);
    } else if (c->ca_file) {
        SET(CURLOPT_CAINFO, c->ca_file);
    }
    if (c->cert_pem && c->key_pem) {
        struct curl_blob cert = {c->cert_pem, strlen(c->cert_pem), CURL_BLOB_COPY};
        struct curl_blob key = {c->key_pem, strlen(c->key_pem), CURL_BLOB_COPY};
        SET(CURLOPT_SSLCERT_BLOB, &cert);
        SET(CURLOPT_SSLCERTTYPE, "PEM");
        SET(CURLOPT_SSLKEY_BLOB, &key);
        SET(CURLOPT_SSLKEYTYPE, "PEM");
    }
    SET(CURLOPT_TIMEOUT_MS, (long)r->timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)c->connect_timeout_ms);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)(r->on_data ? 0 : r->max_response));
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, r);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, r);
    SET(CURLOPT_PRIVATE, r);
    SET(CURLOPT_ERRORBUFFER, r->errbuf);
    SET(CURLOPT_HTTPHEADER, r->slist);
    SET(CURLOPT_USERAGENT, c->user_agent);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_ACCEPT_ENCODING, "");
    if (strcmp(r->method, "GET") == 0) {
        SET(CURLOPT_HTTPGET, 1L);
    } else if (strcmp(r->method, "HEAD") == 0) {
        SET(CURLOPT_NOBODY, 1L);
    } else {
        if (strcmp(r->method, "POST") != 0)
            SET(CURLOPT_CUSTOMREQUEST, r->method);
        if (r->body || strcmp(r->method, "POST") == 0 || strcmp(r->method, "PUT") == 0 ||
            strcmp(r->method, "PATCH") == 0) {
            SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
            SET(CURLOPT_POSTFIELDS, r->body ? r->body : "");
        }
    }
#undef SET
    if (rc != CURLE_OK)
        return caa_error_set(&r->err, -EIO, "%s: %s", r->what, curl_easy_strerror(rc));
    return 0;
}

static void activate(caa_http_client *c, caa_http_request *r)
{
    list_remove(&c->queued, r);
    r->state = REQ_ACTIVE;
    list_push(&c->active, r);
    int status = setup_easy(c, r);
    if (status >= 0 && curl_multi_add_handle(c->multi, r->easy) != CURLM_OK)
        status = caa_error_set(&r->err, -EIO, "%s: curl_multi_add_handle failed", r->what);
    if (status < 0) {
        r->status = status;
        mark_done(c, r);
        uv_timer_start(&c->defer, on_defer, 0, 0);
    }
}

static void start_queued(caa_http_client *c)
{
    while (!c->closing && c->queued.head && c->active.n < c->max_active)
        activate(c, c->queued.head);
}

/* ---- public API ---- */

int caa_http_client_new(uv_loop_t *loop, const caa_http_client_options *opts, caa_http_client **ret,
                        caa_error **err)
{
    pthread_once(&curl_once, curl_global_setup);
    if (curl_init_result != CURLE_OK)
        return caa_error_set(err, -EIO, "curl_global_init: %s", curl_easy_strerror(curl_init_result));
    caa_http_client_options o = opts ? *opts : (caa_http_client_options){0};
    caa_http_client *c = xcalloc(1, sizeof(*c));
    c->loop = loop;
    c->max_active = o.max_active ? o.max_active : CAA_HTTP_DEFAULT_MAX_ACTIVE;
    c->max_response = o.max_response ? o.max_response : CAA_HTTP_DEFAULT_MAX_RESPONSE;
    c->timeout_ms = o.timeout_ms ? o.timeout_ms : CAA_HTTP_DEFAULT_TIMEOUT_MS;
    c->connect_timeout_ms = o.connect_timeout_ms ? o.connect_timeout_ms : CAA_HTTP_DEFAULT_CONNECT_TIMEOUT_MS;
    c->ca_file = o.ca_file ? xstrdup(o.ca_file) : NULL;
    c->user_agent = o.user_agent ? xstrdup(o.user_agent) : xstrdup("cloud-api-adaptor/" CAA_VERSION);
    c->ca_pem = o.ca_pem ? xstrdup(o.ca_pem) : NULL;
    c->cert_pem = o.client_cert_pem ? xstrdup(o.client_cert_pem) : NULL;
    c->key_pem = o.client_key_pem ? xstrdup(o.client_key_pem) : NULL;
    c->insecure_skip_verify = o.insecure_skip_verify;
    c->multi = curl_multi_init();
    if (!c->multi) {
        client_free(c);
        return caa_error_set(err, -ENOMEM, "curl_multi_init failed");
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer_set);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)c->max_active);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)c->max_active);
    uv_timer_init(loop, &c->timer);
    uv_timer_init(loop, &c->defer);
    c->open_handles = 2;
    *ret = c;
    return 0;
}

int caa_http_request_start(caa_http_client *c, const caa_http_request_info *info, caa_http_cb cb,
                           void *opaque, caa_http_request **ret_req, caa_error **err)
{
    if (!c || !info || !cb || !info->method || !info->url)
        return caa_error_set(err, -EINVAL, "HTTP request without client, method, URL or callback");
    if (c->closing)
        return caa_error_set(err, -ESHUTDOWN, "the HTTP client is closed");
    static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"};
    bool known = false;
    for (size_t i = 0; i < CAA_ARRAY_SIZE(methods); i++)
        known = known || strcmp(info->method, methods[i]) == 0;
    if (!known)
        return caa_error_set(err, -EINVAL, "HTTP method \"%.16s\" is not supported", info->method);
    int r = caa_http_url_check(info->url, info->flags, err);
    if (r < 0)
        return r;
    for (size_t i = 0; info->headers && info->headers[i]; i++)
        if (strpbrk(info->headers[i], "\r\n") || !strchr(info->headers[i], ':'))
            return caa_error_set(err, -EINVAL, "malformed HTTP request header");

    caa_http_request *req = xcalloc(1, sizeof(*req));
    req->c = c;
    req->method = xstrdup(info->method);
    req->url = xstrdup(info->url);
    size_t path_end = strcspn(info->url, "?#");
    req->what = xasprintf("%s %.*s", info->method, (int)(path_end > 512 ? 512 : path_end), info->url);
    req->headers = caa_strv_copy(info->headers);
    if (info->body) {
        req->body = xmalloc(info->body_len + 1);
        memcpy(req->body, info->body, info->body_len);
        req->body[info->body_len] = '\0';
        req->body_len = info->body_len;
    }
    req->timeout_ms = info->timeout_ms ? info->timeout_ms : c->timeout_ms;
    req->max_response = info->max_response ? info->max_response : c->max_response;
    req->flags = info->flags;
    req->on_data = info->on_data;
    req->data_opaque = info->data_opaque;
    req->cb = cb;
    req->opaque = opaque;
    req->state = REQ_QUEUED;
    list_push(&c->queued, req);
    if (ret_req)
        *ret_req = req;
    start_queued(c);
    return 0;
}

void caa_http_request_cancel(caa_http_request *r)
{
    if (!r || r->state == REQ_DONE)
        return;
    caa_http_client *c = r->c;
    if (r->state == REQ_ACTIVE)
        curl_multi_remove_handle(c->multi, r->easy);
    caa_error_free(r->err);
    r->err = NULL;
    r->status = caa_error_set(&r->err, -ECANCELED, "%s: cancelled", r->what);
    mark_done(c, r);
    uv_timer_start(&c->defer, on_defer, 0, 0);
    start_queued(c);
}

unsigned caa_http_client_active(const caa_http_client *c)
{
    return c ? c->active.n : 0;
}

unsigned caa_http_client_queued(const caa_http_client *c)
{
    return c ? c->queued.n : 0;
}

static void on_client_handle_closed(uv_handle_t *h)
{
    client_handle_closed(h->data);
}

/* Once closing and every callback has been delivered: release curl and the
 * uv handles; the client is freed by the last close callback. */
static void maybe_finalize(caa_http_client *c)
{
    if (!c->closing || c->dispatching || c->done.n || c->active.n || c->queued.n)
        return;
    if (!c->finalized) {
        c->finalized = true;
        curl_multi_cleanup(c->multi); /* may report sockets to remove */
        c->multi = NULL;
        while (c->socks)
            sock_close(c->socks);
        c->timer.data = c;
        c->defer.data = c;
        uv_close((uv_handle_t *)&c->timer, on_client_handle_closed);
        uv_close((uv_handle_t *)&c->defer, on_client_handle_closed);
    }
}

void caa_http_client_close(caa_http_client *c)
{
    if (!c || c->closing)
        return;
    c->closing = true;
    caa_http_request *r;
    while ((r = c->queued.head))
        caa_http_request_cancel(r);
    while ((r = c->active.head))
        caa_http_request_cancel(r);
    if (c->done.n)
        uv_timer_start(&c->defer, on_defer, 0, 0);
    else
        maybe_finalize(c);
}
