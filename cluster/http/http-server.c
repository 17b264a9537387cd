/* HTTP/1.1 server on libuv with optional TLS; see http-server.h. */
#define LOG_COMPONENT "cluster/http"
#include "http-server.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "parse.h"
#include "tls-engine.h"
#include "xalloc.h"

typedef struct connection connection;

struct caa_http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    caa_http_server_config cfg;
    char *host;
    int port;
    bool closing;
    unsigned n_connections;
    connection *connections; /* list, for close */
};

struct connection {
    caa_http_server *server;
    connection *next, *prev;
    uv_tcp_t tcp;
    uv_timer_t idle;
    int open_handles;
    caa_tls_engine *tls; /* NULL: plain */
    char *in;            /* plaintext received, not yet a whole request */
    size_t in_len, in_cap;
    unsigned pending_writes;
    bool closing, close_after_writes;
};

typedef struct write_req {
    uv_write_t req;
    connection *conn;
    char data[];
} write_req;

static void connection_close(connection *c);

static const char *status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 411:
        return "Length Required";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    }
    return "Error";
}

static void on_write(uv_write_t *req, int status)
{
    write_req *w = (write_req *)req;
    connection *c = w->conn;
    free(w);
    c->pending_writes--;
    if (status < 0 && status != UV_ECANCELED)
        log_debug("write failed: %s", uv_strerror(status));
    if (status < 0 || (c->close_after_writes && c->pending_writes == 0))
        connection_close(c);
}

static void send_bytes(connection *c, const void *data, size_t len)
{
    if (c->closing || len == 0)
        return;
    write_req *w = xmalloc(sizeof(*w) + len);
    memcpy(w->data, data, len);
    w->conn = c;
    uv_buf_t buf = uv_buf_init(w->data, (unsigned)len);
    int r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_write);
    if (r < 0) {
        free(w);
        connection_close(c);
        return;
    }
    c->pending_writes++;
}

/* Sends the ciphertext the engine has queued (handshake, records, alerts). */
static void flush_tls(connection *c)
{
    size_t len = 0;
    const uint8_t *out = caa_tls_engine_output_peek(c->tls, &len);
    if (out && len > 0) {
        send_bytes(c, out, len);
        caa_tls_engine_output_consume(c->tls, len);
    }
}

static void send_plaintext(connection *c, const struct iovec *iov, size_t n)
{
    if (!c->tls) {
        for (size_t i = 0; i < n; i++)
            send_bytes(c, iov[i].iov_base, iov[i].iov_len);
        return;
    }
    _cleanup_error_ caa_error *err = NULL;
    if (caa_tls_engine_writev(c->tls, iov, n, &err) < 0)
        log_debug("TLS write: %s", caa_error_msg(err));
    flush_tls(c);
}

/* Queues the response; after it, the connection closes when asked to. */
static void respond(connection *c, const caa_http_response *resp, bool keep_alive)
{
    char head[256];
    int hl = snprintf(head, sizeof(head),
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n", resp->status,
                      status_text(resp->status), resp->content_type ? resp->content_type : "text/plain",
                      resp->body_len, keep_alive ? "" : "Connection: close\r\n");
    struct iovec iov[2] = {{head, (size_t)hl}, {resp->body, resp->body_len}};
    send_plaintext(c, iov, resp->body_len ? 2 : 1);
    if (!keep_alive) {
        if (c->tls) {
            _cleanup_error_ caa_error *err = NULL;
            caa_tls_engine_shutdown(c->tls, &err);
            flush_tls(c);
        }
        c->close_after_writes = true;
        if (c->pending_writes == 0)
            connection_close(c);
    }
}

static void respond_error(connection *c, int status, const char *why)
{
    caa_http_response resp = {
        .status = status,
        .content_type = "text/plain; charset=utf-8",
        .body = xasprintf("%s\n", why),
    };
    resp.body_len = strlen(resp.body);
    respond(c, &resp, false);
    free(resp.body);
}

/* Answers every whole request in the input buffer. */
static void process_input(connection *c)
{
    caa_http_server *s = c->server;
    size_t off = 0;
    while (!c->closing && !c->close_after_writes && off < c->in_len) {
        caa_http_request req;
        int status = 400;
        _cleanup_error_ caa_error *err = NULL;
        long used =
            caa_http_request_parse(c->in + off, c->in_len - off, s->cfg.max_body, &req, &status, &err);
        if (used == 0)
            break;
        if (used < 0) {
            log_debug("refused request: %s", caa_error_msg(err));
            respond_error(c, status, caa_error_msg(err));
            break;
        }
        caa_http_response resp = {.status = 500};
        s->cfg.handler(&req, &resp, s->cfg.opaque);
        respond(c, &resp, req.keep_alive);
        free(resp.body);
        off += (size_t)used;
    }
    if (off > 0) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
}

static void append_input(connection *c, const char *data, size_t len)
{
    if (c->closing || c->close_after_writes)
        return; /* answered already; the rest is dropped */
    /* Never more than one request head + body + a little. */
    size_t limit = CAA_HTTP_MAX_HEAD + c->server->cfg.max_body + 1;
    if (c->in_len + len > limit) {
        respond_error(c, 400, "request too large");
        return;
    }
    if (c->in_len + len > c->in_cap) {
        size_t cap = c->in_cap ? c->in_cap : 4096;
        while (cap < c->in_len + len)
            cap *= 2;
        c->in = xrealloc(c->in, cap);
        c->in_cap = cap;
    }
    memcpy(c->in + c->in_len, data, len);
    c->in_len += len;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    static char slab[64 * 1024]; /* the loop is single-threaded; data is consumed in on_read */
    *buf = uv_buf_init(slab, sizeof(slab));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    connection *c = stream->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        connection_close(c);
        return;
    }
    uv_timer_again(&c->idle);
    if (!c->tls) {
        append_input(c, buf->base, (size_t)nread);
        process_input(c);
        return;
    }

    _cleanup_error_ caa_error *err = NULL;
    if (caa_tls_engine_feed(c->tls, buf->base, (size_t)nread, &err) < 0) {
        log_debug("TLS: %s", caa_error_msg(err));
        flush_tls(c); /* the alert tells the client why */
        c->close_after_writes = true;
        if (c->pending_writes == 0)
            connection_close(c);
        return;
    }
    char plain[16 * 1024];
    ssize_t n = 0;
    while (!c->closing && (n = caa_tls_engine_read(c->tls, plain, sizeof(plain), &err)) > 0)
        append_input(c, plain, (size_t)n);
    flush_tls(c);
    if (n < 0) {
        log_debug("TLS: %s", caa_error_msg(err));
        c->close_after_writes = true;
        if (c->pending_writes == 0)
            connection_close(c);
        return;
    }
    process_input(c);
    if (caa_tls_engine_peer_closed(c->tls) && !c->closing) {
        c->close_after_writes = true;
        if (c->pending_writes == 0)
            connection_close(c);
    }
}

static void on_idle(uv_timer_t *t)
{
    connection_close(t->data);
}

static void on_connection_handle_closed(uv_handle_t *h)
{
    connection *c = h->data;
    if (--c->open_handles > 0)
        return;
    caa_http_server *s = c->server;
    caa_tls_engine_free(c->tls);
    free(c->in);
    free(c);
    s->n_connections--;
    if (s->closing && s->n_connections == 0 && uv_is_closing((uv_handle_t *)&s->listener) &&
        s->listener.data == NULL)
        free(s);
}

static void connection_close(connection *c)
{
    if (c->closing)
        return;
    c->closing = true;
    caa_http_server *s = c->server;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->connections = c->next;
    if (c->next)
        c->next->prev = c->prev;
    uv_close((uv_handle_t *)&c->tcp, on_connection_handle_closed);
    uv_close((uv_handle_t *)&c->idle, on_connection_handle_closed);
}

static void on_connection(uv_stream_t *listener, int status)
{
    caa_http_server *s = listener->data;
    if (status < 0) {
        log_warn("accept: %s", uv_strerror(status));
        return;
    }
    connection *c = xcalloc(1, sizeof(*c));
    c->server = s;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->idle);
    c->tcp.data = c->idle.data = c;
    c->open_handles = 2;
    if (s->cfg.background) {
        uv_unref((uv_handle_t *)&c->tcp);
        uv_unref((uv_handle_t *)&c->idle);
    }
    s->n_connections++;
    c->next = s->connections;
    if (c->next)
        c->next->prev = c;
    s->connections = c;

    if (uv_accept(listener, (uv_stream_t *)&c->tcp) < 0 || s->n_connections > s->cfg.max_connections) {
        connection_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (s->cfg.tls_ctx) {
        SSL_CTX *ctx = s->cfg.tls_ctx(s->cfg.opaque);
        _cleanup_error_ caa_error *err = NULL;
        if (!ctx || caa_tls_engine_new(ctx, CAA_TLS_ROLE_SERVER, NULL, &c->tls, &err) < 0) {
            if (ctx)
                log_warn("TLS: %s", caa_error_msg(err));
            connection_close(c);
            return;
        }
    }
    uv_timer_start(&c->idle, on_idle, s->cfg.idle_timeout_ms, s->cfg.idle_timeout_ms);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        connection_close(c);
}

/* libuv before 1.49 has no bind flag for SO_REUSEPORT: the socket is made
 * here and handed to the handle, which then binds it. */
static int open_reuse_port_socket(uv_tcp_t *listener, int family)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    int r = setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ? -errno : 0;
    if (r == 0)
        r = uv_tcp_open(listener, fd);
    if (r < 0)
        close(fd);
    return r;
}

int caa_http_server_start(uv_loop_t *loop, const caa_http_server_config *cfg, caa_http_server **ret,
                          caa_error **err)
{
    struct sockaddr_storage addr;
    if (uv_ip4_addr(cfg->host, cfg->port, (struct sockaddr_in *)&addr) < 0 &&
        uv_ip6_addr(cfg->host, cfg->port, (struct sockaddr_in6 *)&addr) < 0)
        return caa_error_set(err, -EINVAL, "bind address %s: not an IP address", cfg->host);

    caa_http_server *s = xcalloc(1, sizeof(*s));
    s->loop = loop;
    s->cfg = *cfg;
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    if (cfg->background)
        uv_unref((uv_handle_t *)&s->listener);
    int r = cfg->reuse_port ? open_reuse_port_socket(&s->listener, addr.ss_family) : 0;
    if (r == 0)
        r = uv_tcp_bind(&s->listener, (struct sockaddr *)&addr, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&s->listener, 128, on_connection);
    if (r < 0) {
        int code = r;
        s->closing = true;
        caa_http_server_close(s);
        return caa_error_set(err, code, "listen on %s:%d: %s", cfg->host, cfg->port, uv_strerror(code));
    }
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len);
    s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    *ret = s;
    return 0;
}

int caa_http_server_port(const caa_http_server *s)
{
    return s->port;
}

static void on_listener_closed(uv_handle_t *h)
{
    caa_http_server *s = h->data;
    h->data = NULL;
    if (s->n_connections == 0)
        free(s);
}

void caa_http_server_close(caa_http_server *s)
{
    s->closing = true;
    while (s->connections)
        connection_close(s->connections);
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}

int caa_http_parse_bind_address(const char *flag, const char *value, char **ret_host, int *ret_port,
                                caa_error **err)
{
    if (strcmp(value, "0") == 0) {
        *ret_host = NULL;
        *ret_port = 0;
        return 0;
    }
    const char *sep = strrchr(value, ':');
    int64_t port = 0;
    if (!sep || caa_parse_int64(sep + 1, 0, 65535, &port) < 0)
        return caa_error_set(err, -EINVAL, "-%s %s: want host:port, :port or 0", flag, value);
    size_t host_len = (size_t)(sep - value);
    if (host_len >= 2 && value[0] == '[' && value[host_len - 1] == ']')
        *ret_host = xstrndup(value + 1, host_len - 2);
    else if (memchr(value, ':', host_len))
        return caa_error_set(err, -EINVAL, "-%s %s: an IPv6 host needs brackets", flag, value);
    else
        *ret_host = host_len ? xstrndup(value, host_len) : xstrdup("0.0.0.0");
    *ret_port = (int)port;
    return 0;
}
