/* The HTTP client (providers/common/http.c) against a small threaded server
 * on 127.0.0.1: answers, size cap while receiving, timeouts (slow-loris,
 * silence), the concurrency cap and its queue, cancel and close, the URL
 * policy, TLS verification (openssl s_server with a self-signed cert), and
 * the async contract. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <uv.h>

#include "http.h"
#include "xalloc.h"

/* ---- test server ---- */

static int srv_fd = -1;
static int srv_port;
static atomic_int cur_holding, max_holding;

static void send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        c += w;
        n -= (size_t)w;
    }
}

static void respond(int fd, int status, const char *ctype, const char *body, size_t len, const char *extra)
{
    char head[512];
    int n =
        snprintf(head, sizeof(head),
                 "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n",
                 status, ctype, len, extra ? extra : "");
    send_all(fd, head, (size_t)n);
    send_all(fd, body, len);
}

/* Waits until the peer closes (or ms pass). */
static void wait_close(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char buf[256];
    while (poll(&p, 1, ms) > 0) {
        if (recv(fd, buf, sizeof(buf), 0) <= 0)
            return;
    }
}

static void *conn_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char req[65536];
    size_t len = 0;
    char *end = NULL;
    while (!end && len < sizeof(req) - 1) {
        ssize_t r = recv(fd, req + len, sizeof(req) - 1 - len, 0);
        if (r <= 0)
            goto out;
        len += (size_t)r;
        req[len] = '\0';
        end = strstr(req, "\r\n\r\n");
    }
    if (!end)
        goto out;
    char method[16], path[1024];
    if (sscanf(req, "%15s %1023s", method, path) != 2)
        goto out;
    size_t clen = 0;
    const char *cl = strcasestr(req, "\r\ncontent-length:");
    if (cl)
        clen = strtoul(cl + 17, NULL, 10);
    size_t have = len - (size_t)(end + 4 - req);
    while (have < clen && len < sizeof(req) - 1) {
        ssize_t r = recv(fd, req + len, sizeof(req) - 1 - len, 0);
        if (r <= 0)
            goto out;
        len += (size_t)r;
        have += (size_t)r;
        req[len] = '\0';
    }
    const char *body = end + 4;

    if (strcmp(path, "/hello") == 0) {
        respond(fd, 200, "text/plain", "hello", 5, NULL);
    } else if (strcmp(path, "/echo") == 0) {
        const char *xt = strcasestr(req, "\r\nx-test:");
        char val[64] = "";
        if (xt)
            sscanf(xt + 9, " %63[^\r]", val);
        char *out = xasprintf("%s %zu %s %.*s", method, clen, val, (int)clen, body);
        respond(fd, 200, "application/json", out, strlen(out), NULL);
        free(out);
    } else if (strncmp(path, "/status/", 8) == 0) {
        respond(fd, atoi(path + 8), "text/xml", "<x/>", 4, NULL);
    } else if (strncmp(path, "/big?n=", 7) == 0) {
        size_t n = strtoul(path + 7, NULL, 10);
        char head[256];
        int hn = snprintf(head, sizeof(head),
                          "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", n);
        send_all(fd, head, (size_t)hn);
        static char chunk[65536];
        memset(chunk, 'a', sizeof(chunk));
        while (n > 0) {
            size_t k = n < sizeof(chunk) ? n : sizeof(chunk);
            ssize_t w = send(fd, chunk, k, MSG_NOSIGNAL);
            if (w <= 0)
                break;
            n -= (size_t)w;
        }
    } else if (strcmp(path, "/stream") == 0) {
        /* No length: the body ends when we close; we never do (cap test). */
        const char head[] = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
        send_all(fd, head, sizeof(head) - 1);
        static char chunk[65536];
        memset(chunk, 'b', sizeof(chunk));
        for (int i = 0; i < 4096; i++)
            if (send(fd, chunk, sizeof(chunk), MSG_NOSIGNAL) <= 0)
                break;
    } else if (strcmp(path, "/slow") == 0) {
        const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
        send_all(fd, head, sizeof(head) - 1);
        for (int i = 0; i < 100; i++) {
            if (send(fd, "x", 1, MSG_NOSIGNAL) <= 0)
                break;
            usleep(100 * 1000);
        }
    } else if (strncmp(path, "/hang", 5) == 0) {
        wait_close(fd, 10000);
    } else if (strncmp(path, "/hold?ms=", 9) == 0) {
        int now = atomic_fetch_add(&cur_holding, 1) + 1;
        int prev = atomic_load(&max_holding);
        while (now > prev && !atomic_compare_exchange_weak(&max_holding, &prev, now))
            ;
        usleep((useconds_t)atoi(path + 9) * 1000);
        atomic_fetch_sub(&cur_holding, 1);
        respond(fd, 200, "text/plain", "held", 4, NULL);
    } else if (strcmp(path, "/close") == 0) {
        /* nothing */
    } else if (strcmp(path, "/headers") == 0) {
        respond(fd, 200, "text/xml; charset=UTF-8", "<ok/>", 5,
                "X-A: 1\r\nx-a:  2 \r\nX-Request-Id: r-7\r\n");
    } else {
        respond(fd, 404, "text/plain", "no", 2, NULL);
    }
out:
    close(fd);
    return NULL;
}

static void *server_main(void *arg)
{
    (void)arg;
    for (;;) {
        int c = accept(srv_fd, NULL, NULL);
        if (c < 0)
            return NULL;
        pthread_t t;
        pthread_create(&t, NULL, conn_main, (void *)(intptr_t)c);
        pthread_detach(t);
    }
}

static int server_start(void)
{
    srv_fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(srv_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(srv_fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(srv_fd, 128) < 0)
        return -1;
    socklen_t l = sizeof(a);
    getsockname(srv_fd, (struct sockaddr *)&a, &l);
    srv_port = ntohs(a.sin_port);
    pthread_t t;
    pthread_create(&t, NULL, server_main, NULL);
    pthread_detach(t);
    return 0;
}

/* ---- client helpers ---- */

typedef struct result {
    int done;
    int status;
    caa_http_response *resp;
    caa_error *err;
    bool *returned; /* set by the caller once start() returned */
    bool early;     /* callback ran before start() returned */
} result;

static void on_done(int status, caa_http_response *resp, caa_error *err, void *opaque)
{
    result *r = opaque;
    if (r->returned && !*r->returned)
        r->early = true;
    r->done++;
    r->status = status;
    r->resp = resp;
    r->err = err;
}

static void result_clear(result *r)
{
    caa_http_response_free(r->resp);
    caa_error_free(r->err);
    memset(r, 0, sizeof(*r));
}

static char *url(const char *path)
{
    return xasprintf("http://127.0.0.1:%d%s", srv_port, path);
}

static void run_until(uv_loop_t *loop, const int *counter, int target)
{
    while (*counter < target)
        uv_run(loop, UV_RUN_ONCE);
}

/* A streaming sink: counts what it gets, refuses past `refuse_after` bytes (0: never). */
typedef struct sink {
    size_t got, calls, refuse_after;
} sink;

static int on_data(const char *data, size_t len, void *opaque, caa_error **err)
{
    sink *s = opaque;
    (void)data;
    s->got += len;
    s->calls++;
    if (s->refuse_after && s->got > s->refuse_after)
        return caa_error_set(err, -ENOBUFS, "sink full after %zu bytes", s->got);
    return 0;
}

static void fetch_into(const caa_http_client_options *o, const char *method, const char *path,
                       const char *body, uint64_t timeout_ms, sink *s, result *r);

/* One request on a fresh client, loop run to completion. */
static void fetch(const caa_http_client_options *o, const char *method, const char *path, const char *body,
                  uint64_t timeout_ms, result *r)
{
    fetch_into(o, method, path, body, timeout_ms, NULL, r);
}

/* As fetch(), the body going to s when given. */
static void fetch_into(const caa_http_client_options *o, const char *method, const char *path,
                       const char *body, uint64_t timeout_ms, sink *s, result *r)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    caa_http_client *c;
    assert_int_equal(caa_http_client_new(&loop, o, &c, NULL), 0);
    char *u = url(path);
    char *hdrs[] = {"X-Test: abc", NULL};
    caa_http_request_info info = {
        .method = method,
        .url = u,
        .headers = hdrs,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .timeout_ms = timeout_ms,
        .on_data = s ? on_data : NULL,
        .data_opaque = s,
    };
    bool returned = false;
    memset(r, 0, sizeof(*r));
    r->returned = &returned;
    assert_int_equal(caa_http_request_start(c, &info, on_done, r, NULL, NULL), 0);
    returned = true;
    run_until(&loop, &r->done, 1);
    assert_false(r->early);
    caa_http_client_close(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    free(u);
}

/* ---- tests ---- */

static void test_url_policy(void **state)
{
    (void)state;
    assert_int_equal(caa_http_url_check("https://ec2.us-east-1.amazonaws.com/", 0, NULL), 0);
    assert_int_equal(caa_http_url_check("http://127.0.0.1:8080/", 0, NULL), 0);
    assert_int_equal(caa_http_url_check("http://127.1.2.3/", 0, NULL), 0);
    assert_int_equal(caa_http_url_check("http://localhost:1/x", 0, NULL), 0);
    assert_int_equal(caa_http_url_check("http://[::1]:9/", 0, NULL), 0);
    caa_error *e = NULL;
    assert_int_equal(caa_http_url_check("http://ec2.us-east-1.amazonaws.com/", 0, &e), -EACCES);
    assert_non_null(strstr(e->msg, "loopback"));
    caa_error_free(e);
    e = NULL;
    assert_int_equal(caa_http_url_check("http://169.254.169.254/latest", 0, &e), -EACCES);
    caa_error_free(e);
    assert_int_equal(caa_http_url_check("http://169.254.169.254/latest", CAA_HTTP_ALLOW_LINK_LOCAL, NULL), 0);
    assert_int_equal(caa_http_url_check("http://[fd00:ec2::254]/latest", CAA_HTTP_ALLOW_LINK_LOCAL, NULL), 0);
    e = NULL;
    assert_int_equal(caa_http_url_check("http://10.0.0.1/", CAA_HTTP_ALLOW_LINK_LOCAL, &e), -EACCES);
    caa_error_free(e);
    e = NULL;
    assert_int_equal(caa_http_url_check("http://128.0.0.1/", 0, &e), -EACCES);
    caa_error_free(e);
    e = NULL;
    assert_int_equal(caa_http_url_check("ftp://127.0.0.1/", 0, &e), -EINVAL);
    caa_error_free(e);
    e = NULL;
    assert_int_equal(caa_http_url_check("file:///etc/passwd", 0, &e), -EINVAL);
    caa_error_free(e);
    e = NULL;
    assert_int_equal(caa_http_url_check("https://user:pw@host/", 0, &e), -EINVAL);
    caa_error_free(e);
    e = NULL;
    assert_int_equal(caa_http_url_check("not a url", 0, &e), -EINVAL);
    caa_error_free(e);
    assert_true(caa_http_host_is_loopback("LOCALHOST"));
    assert_false(caa_http_host_is_loopback("localhost.example.com"));
    assert_false(caa_http_host_is_loopback("::ffff:8.8.8.8"));
}

static void test_get_post_put(void **state)
{
    (void)state;
    result r;
    fetch(NULL, "GET", "/hello", NULL, 0, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.resp->status, 200);
    assert_string_equal(r.resp->body, "hello");
    assert_int_equal(r.resp->body_len, 5);
    assert_string_equal(r.resp->content_type, "text/plain");
    result_clear(&r);

    fetch(NULL, "POST", "/echo", "Action=X&Version=1", 0, &r);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.resp->body, "POST 18 abc Action=X&Version=1");
    result_clear(&r);

    fetch(NULL, "PUT", "/echo", NULL, 0, &r);
    assert_string_equal(r.resp->body, "PUT 0 abc ");
    result_clear(&r);

    fetch(NULL, "DELETE", "/echo", NULL, 0, &r);
    assert_non_null(strstr(r.resp->body, "DELETE"));
    result_clear(&r);
}

static void test_status_and_headers(void **state)
{
    (void)state;
    result r;
    fetch(NULL, "GET", "/status/503", NULL, 0, &r);
    assert_int_equal(r.status, 0); /* an answer, whatever its status */
    assert_int_equal(r.resp->status, 503);
    result_clear(&r);
    fetch(NULL, "GET", "/headers", NULL, 0, &r);
    assert_string_equal(caa_http_response_header(r.resp, "x-a"), "2");
    assert_string_equal(caa_http_response_header(r.resp, "X-REQUEST-ID"), "r-7");
    assert_null(caa_http_response_header(r.resp, "x-missing"));
    assert_string_equal(r.resp->content_type, "text/xml; charset=UTF-8");
    result_clear(&r);
}

static void test_size_cap(void **state)
{
    (void)state;
    caa_http_client_options o = {.max_response = 1 << 20};
    result r;
    fetch(&o, "GET", "/big?n=1048576", NULL, 0, &r); /* exactly at the cap */
    assert_int_equal(r.status, 0);
    assert_int_equal(r.resp->body_len, 1 << 20);
    result_clear(&r);
    fetch(&o, "GET", "/big?n=104857600", NULL, 0, &r); /* 100 MB with a length */
    assert_int_equal(r.status, -EMSGSIZE);
    assert_non_null(strstr(r.err->msg, "larger than the limit"));
    result_clear(&r);
    fetch(&o, "GET", "/stream", NULL, 0, &r); /* no length: cut off while receiving */
    assert_int_equal(r.status, -EMSGSIZE);
    result_clear(&r);
}

static void test_streaming_body(void **state)
{
    (void)state;
    caa_http_client_options o = {.max_response = 1 << 20};
    result r;
    sink s = {0};
    /* A 2xx body goes to the sink as it arrives, past the buffering cap, nothing buffered. */
    fetch_into(&o, "GET", "/big?n=3145728", NULL, 0, &s, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.resp->status, 200);
    assert_int_equal(s.got, 3145728);
    assert_true(s.calls > 1);
    assert_int_equal(r.resp->body_len, 0);
    result_clear(&r);
    /* Any other answer is buffered as usual (a Status body to decode). */
    s = (sink){0};
    fetch_into(&o, "GET", "/status/410", NULL, 0, &s, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.resp->status, 410);
    assert_string_equal(r.resp->body, "<x/>");
    assert_int_equal(s.calls, 0);
    result_clear(&r);
    /* The sink refusing aborts an endless body with the sink's error. */
    s = (sink){.refuse_after = 1 << 20};
    fetch_into(&o, "GET", "/stream", NULL, 0, &s, &r);
    assert_int_equal(r.status, -ENOBUFS);
    assert_non_null(strstr(r.err->msg, "sink full"));
    assert_true(s.got > (size_t)1 << 20);
    result_clear(&r);
}

static void test_timeouts(void **state)
{
    (void)state;
    result r;
    uint64_t t0 = uv_hrtime();
    fetch(NULL, "GET", "/slow", NULL, 500, &r);
    assert_int_equal(r.status, -ETIMEDOUT);
    assert_non_null(strstr(r.err->msg, "500 ms"));
    assert_null(strstr(r.err->msg, "?"));
    result_clear(&r);
    fetch(NULL, "GET", "/hang?secret=1", NULL, 300, &r);
    assert_int_equal(r.status, -ETIMEDOUT);
    assert_null(strstr(r.err->msg, "secret")); /* no query strings in messages */
    result_clear(&r);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    assert_true(ms >= 800 && ms < 5000);
}

static void test_transport_errors(void **state)
{
    (void)state;
    result r;
    fetch(NULL, "GET", "/close", NULL, 0, &r);
    assert_int_equal(r.status, -ECONNRESET);
    result_clear(&r);

    /* A port nobody listens on. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    socklen_t l = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &l);
    int saved = srv_port;
    srv_port = ntohs(a.sin_port);
    close(fd);
    fetch(NULL, "GET", "/hello", NULL, 0, &r);
    srv_port = saved;
    assert_int_equal(r.status, -ECONNREFUSED);
    result_clear(&r);
}

static void test_sync_failures(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    caa_http_client *c;
    assert_int_equal(caa_http_client_new(&loop, NULL, &c, NULL), 0);
    result r = {0};
    caa_error *e = NULL;
    caa_http_request_info info = {.method = "GET", .url = "http://example.com/"};
    assert_int_equal(caa_http_request_start(c, &info, on_done, &r, NULL, &e), -EACCES);
    caa_error_free(e);
    e = NULL;
    info.method = "TRACE";
    info.url = "https://example.com/";
    assert_int_equal(caa_http_request_start(c, &info, on_done, &r, NULL, &e), -EINVAL);
    caa_error_free(e);
    e = NULL;
    char *bad[] = {"X: a\r\nInjected: b", NULL};
    info.method = "GET";
    info.headers = bad;
    assert_int_equal(caa_http_request_start(c, &info, on_done, &r, NULL, &e), -EINVAL);
    caa_error_free(e);
    e = NULL;
    caa_http_client_close(c);
    assert_int_equal(caa_http_request_start(c, &info, on_done, &r, NULL, &e), -ESHUTDOWN);
    caa_error_free(e);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(r.done, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_concurrency_cap(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    caa_http_client *c;
    caa_http_client_options o = {.max_active = 4};
    assert_int_equal(caa_http_client_new(&loop, &o, &c, NULL), 0);
    atomic_store(&max_holding, 0);
    enum { N = 20 };
    result r[N];
    memset(r, 0, sizeof(r));
    int done = 0;
    char *u = url("/hold?ms=100");
    for (int i = 0; i < N; i++) {
        caa_http_request_info info = {.method = "GET", .url = u};
        assert_int_equal(caa_http_request_start(c, &info, on_done, &r[i], NULL, NULL), 0);
    }
    assert_int_equal(caa_http_client_active(c), 4);
    assert_int_equal(caa_http_client_queued(c), N - 4);
    while (done < N) {
        uv_run(&loop, UV_RUN_ONCE);
        done = 0;
        for (int i = 0; i < N; i++)
            done += r[i].done;
        assert_true(caa_http_client_active(c) <= 4);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].status, 0);
        assert_string_equal(r[i].resp->body, "held");
        result_clear(&r[i]);
    }
    assert_true(atomic_load(&max_holding) <= 4);
    assert_true(atomic_load(&max_holding) >= 2);
    free(u);
    caa_http_client_close(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_cancel_and_close(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    caa_http_client *c;
    caa_http_client_options o = {.max_active = 1};
    assert_int_equal(caa_http_client_new(&loop, &o, &c, NULL), 0);
    char *u = url("/hang");
    result a = {0}, b = {0}, d = {0};
    caa_http_request *ra, *rb;
    caa_http_request_info info = {.method = "GET", .url = u};
    assert_int_equal(caa_http_request_start(c, &info, on_done, &a, &ra, NULL), 0);
    assert_int_equal(caa_http_request_start(c, &info, on_done, &b, &rb, NULL), 0);  /* queued */
    assert_int_equal(caa_http_request_start(c, &info, on_done, &d, NULL, NULL), 0); /* queued */
    caa_http_request_cancel(rb);
    assert_int_equal(b.done, 0); /* never inside cancel */
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(b.done, 1);
    assert_int_equal(b.status, -ECANCELED);
    caa_http_request_cancel(ra);
    run_until(&loop, &a.done, 1);
    assert_int_equal(a.status, -ECANCELED);
    /* d moved up from the queue; closing the client cancels it */
    caa_http_client_close(c);
    assert_int_equal(d.done, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(d.done, 1);
    assert_int_equal(d.status, -ECANCELED);
    assert_int_equal(uv_loop_close(&loop), 0);
    result_clear(&a);
    result_clear(&b);
    result_clear(&d);
    free(u);
}

/* A callback that starts the next request and closes the client at the end. */
typedef struct chain {
    caa_http_client *c;
    char *u;
    int left;
    int ok;
} chain;

static void on_chain(int status, caa_http_response *resp, caa_error *err, void *opaque)
{
    chain *ch = opaque;
    ch->ok += status == 0 && resp && resp->status == 200;
    caa_http_response_free(resp);
    caa_error_free(err);
    if (--ch->left > 0) {
        caa_http_request_info info = {.method = "GET", .url = ch->u};
        assert_int_equal(caa_http_request_start(ch->c, &info, on_chain, ch, NULL, NULL), 0);
    } else {
        caa_http_client_close(ch->c);
    }
}

static void test_callbacks_reenter(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    chain ch = {.left = 5};
    assert_int_equal(caa_http_client_new(&loop, NULL, &ch.c, NULL), 0);
    ch.u = url("/hello");
    caa_http_request_info info = {.method = "GET", .url = ch.u};
    assert_int_equal(caa_http_request_start(ch.c, &info, on_chain, &ch, NULL, NULL), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(ch.ok, 5);
    assert_int_equal(uv_loop_close(&loop), 0);
    free(ch.u);
}

/* ---- TLS: verification on, a private CA only when given ---- */

static pid_t tls_pid = -1;

static int run_cmd(const char *cmd)
{
    int r = system(cmd);
    return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}

static void test_tls_verification(void **state)
{
    (void)state;
    if (run_cmd("command -v openssl >/dev/null 2>&1") != 0)
        skip();
    char dir[] = "/tmp/caa-http-tls-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *cmd = xasprintf("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
                          "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout %s/key.pem "
                          "-out %s/cert.pem >/dev/null 2>&1",
                          dir, dir);
    assert_int_equal(run_cmd(cmd), 0);
    free(cmd);
    /* a free port for s_server */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    socklen_t l = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &l);
    int port = ntohs(a.sin_port);
    close(fd);
    char *cert = xasprintf("%s/cert.pem", dir), *key = xasprintf("%s/key.pem", dir);
    char *acc = xasprintf("127.0.0.1:%d", port);
    tls_pid = fork();
    if (tls_pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execlp("openssl", "openssl", "s_server", "-accept", acc, "-cert", cert, "-key", key, "-www", "-quiet",
               (char *)NULL);
        _exit(127);
    }
    /* wait until it accepts */
    for (int i = 0; i < 100; i++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in t = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = connect(s, (struct sockaddr *)&t, sizeof(t)) == 0;
        close(s);
        if (ok)
            break;
        usleep(50 * 1000);
    }
    char *u = xasprintf("https://127.0.0.1:%d/", port);
    for (int with_ca = 0; with_ca < 2; with_ca++) {
        uv_loop_t loop;
        uv_loop_init(&loop);
        caa_http_client *c;
        caa_http_client_options o = {.ca_file = with_ca ? cert : NULL};
        assert_int_equal(caa_http_client_new(&loop, &o, &c, NULL), 0);
        result r = {0};
        caa_http_request_info info = {.method = "GET", .url = u, .timeout_ms = 5000};
        assert_int_equal(caa_http_request_start(c, &info, on_done, &r, NULL, NULL), 0);
        run_until(&loop, &r.done, 1);
        if (with_ca) {
            assert_int_equal(r.status, 0);
            assert_int_equal(r.resp->status, 200);
        } else {
            assert_int_equal(r.status, -EACCES); /* self-signed: refused */
        }
        result_clear(&r);
        caa_http_client_close(c);
        uv_run(&loop, UV_RUN_DEFAULT);
        assert_int_equal(uv_loop_close(&loop), 0);
    }
    kill(tls_pid, SIGTERM);
    waitpid(tls_pid, NULL, 0);
    tls_pid = -1;
    char *rm = xasprintf("rm -rf %s", dir);
    run_cmd(rm);
    free(rm);
    free(u);
    free(cert);
    free(key);
    free(acc);
}

/* TLS goes through OpenSSL: gnutls, mapped only through libcurl's own
 * dependencies, is never used, which is what lets the deployment turn off its
 * implicit initialisation (deploy/entrypoint.sh: GNUTLS_NO_IMPLICIT_INIT=1). */
static void test_tls_backend_is_openssl(void **state)
{
    (void)state;
    const curl_version_info_data *info = curl_version_info(CURLVERSION_NOW);
    assert_non_null(info->ssl_version);
    if (strncmp(info->ssl_version, "OpenSSL/", 8) != 0)
        fail_msg("libcurl's TLS backend is %s, not OpenSSL", info->ssl_version);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (server_start() < 0) {
        perror("test server");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_policy),        cmocka_unit_test(test_tls_backend_is_openssl),
        cmocka_unit_test(test_get_post_put),      cmocka_unit_test(test_status_and_headers),
        cmocka_unit_test(test_size_cap),          cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_transport_errors),  cmocka_unit_test(test_sync_failures),
        cmocka_unit_test(test_concurrency_cap),   cmocka_unit_test(test_cancel_and_close),
        cmocka_unit_test(test_callbacks_reenter), cmocka_unit_test(test_tls_verification),
        cmocka_unit_test(test_streaming_body),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    if (tls_pid > 0) {
        kill(tls_pid, SIGTERM);
        waitpid(tls_pid, NULL, 0);
    }
    return r;
}
