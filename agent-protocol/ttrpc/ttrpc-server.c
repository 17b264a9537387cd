/* ttRPC server: listeners, per-connection stream checks and dispatch.
 *
 * Behaviour follows the Go server (containerd/ttrpc) byte for byte: success
 * Responses carry no status, errors are Responses with a status on the
 * offending stream id, and the connection survives every per-frame error.
 *
 * Memory bounds per connection:
 *  - the frame reader holds at most one partial frame (<= 4 MiB + header),
 *    grown only as its bytes arrive; oversize bodies are skipped unbuffered;
 *  - reading stops while SERVER_MAX_INFLIGHT calls or SERVER_MAX_INFLIGHT_BYTES
 *    of request data are waiting for replies, and while more than
 *    TTRPC_CONN_WRITE_HIGH bytes of replies wait to be written (a client that
 *    does not read its answers is not read either); reading resumes as
 *    calls finish and writes drain. The caps are soft by at most one read
 *    buffer (68 KiB, see ttrpc-transport-uv.c) of already-received frames;
 *  - queued replies are bounded by the in-flight calls that produce them
 *    (each reply <= 4 MiB). */
#define LOG_COMPONENT "ttrpc/server"

#include "ttrpc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "ttrpc-conn.h"
#include "ttrpc-flush.h"
#include "ttrpc-transport.h"
#include "strcheck.h"
#include "xalloc.h"

#define SERVER_MAX_INFLIGHT 4096
#define SERVER_MAX_INFLIGHT_BYTES (64u << 20)
#define SERVER_LISTEN_BACKLOG 1024

typedef struct service_entry {
    char *name;
    const ttrpc_method_entry *methods;
    size_t n_methods;
    void *opaque;
} service_entry;

typedef struct listener {
    ttrpc_uv_socket h;
    ttrpc_server *server;
    uv_handle_type type;
    char *path; /* unix socket file to remove on close */
    dev_t dev;
    ino_t ino;
    struct listener *next;
} listener;

typedef struct server_conn {
    ttrpc_conn conn;
    ttrpc_server *server;
    struct server_conn *prev, *next;
    ttrpc_call *calls;       /* in flight, newest first */
    ttrpc_call *dispatching; /* the call being dispatched, while it lives */
    size_t n_calls;
    size_t call_bytes;
    uint32_t last_stream_id;
} server_conn;

struct ttrpc_call {
    server_conn *sc; /* NULL once the connection is gone */
    ttrpc_call *prev, *next;
    uint32_t stream_id;
    Ttrpc__Request *req;
    uint8_t *raw;
    size_t raw_len;
    bool raw_borrowed;      /* raw is the frame's bytes, valid during dispatch only */
    const uint8_t *payload; /* into raw, or req's own copy of a short one */
    size_t payload_len;
    size_t cost;
    void (*cancel_cb)(ttrpc_call *c, void *opaque);
    void *cancel_opaque;
};

struct ttrpc_server {
    uv_loop_t *loop;
    service_entry *services;
    size_t n_services;
    ttrpc_handler fallback;
    void *fallback_opaque;
    listener *listeners;
    uint16_t tcp_port;
    server_conn *conns;
    size_t n_conns;
    size_t n_handles; /* listeners + connections + close marker not yet closed */
    bool closing;
    uv_idle_t close_marker;
    ttrpc_flusher flusher; /* coalesces replies (ttrpc-flush.h) */
    void (*done)(void *opaque);
    void *done_opaque;
};

/* ------------------------------------------------------------ helpers */

static void maybe_finish(ttrpc_server *s)
{
    if (!s->closing || s->n_handles > 0)
        return;
    void (*done)(void *) = s->done;
    void *opaque = s->done_opaque;
    for (size_t i = 0; i < s->n_services; i++)
        free(s->services[i].name);
    free(s->services);
    free(s);
    if (done)
        done(opaque);
}

static void send_status(server_conn *sc, uint32_t stream_id, int code, const char *msg)
{
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    Ttrpc__Response resp = TTRPC__RESPONSE__INIT;
    st.code = code;
    st.message = (char *)msg;
    resp.status = &st;
    ttrpc_conn_send_message(&sc->conn, stream_id, TTRPC_TYPE_RESPONSE, 0, &resp.base);
}

static void update_hold(server_conn *sc)
{
    ttrpc_conn_hold(&sc->conn,
                    sc->n_calls >= SERVER_MAX_INFLIGHT || sc->call_bytes >= SERVER_MAX_INFLIGHT_BYTES);
}

static void call_unlink(ttrpc_call *c)
{
    server_conn *sc = c->sc;
    if (!sc)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        sc->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    sc->n_calls--;
    sc->call_bytes -= c->cost;
    c->sc = NULL;
}

static void call_free(ttrpc_call *c)
{
    server_conn *sc = c->sc;
    if (sc && sc->dispatching == c)
        sc->dispatching = NULL;
    call_unlink(c);
    if (sc)
        update_hold(sc);
    ttrpc_request_free(c->req);
    if (!c->raw_borrowed)
        free(c->raw);
    free(c);
}

/* The handler kept the call past dispatch without releasing its request:
 * copy the bytes it may still read. */
static void call_keep_request(ttrpc_call *c)
{
    uint8_t *copy = xmemdup(c->raw, c->raw_len);
    uintptr_t p = (uintptr_t)c->payload, start = (uintptr_t)c->raw;
    if (c->payload && p >= start && p < start + c->raw_len)
        c->payload = copy + (p - start);
    c->raw = copy;
    c->raw_borrowed = false;
}

static ttrpc_call *find_call(server_conn *sc, uint32_t stream_id)
{
    for (ttrpc_call *c = sc->calls; c; c = c->next)
        if (c->stream_id == stream_id)
            return c;
    return NULL;
}

/* ------------------------------------------------------------ dispatch */

static void dispatch(ttrpc_server *s, ttrpc_call *c)
{
    const char *service = c->req->service ? c->req->service : "";
    const char *method = c->req->method ? c->req->method : "";

    for (size_t i = 0; i < s->n_services; i++) {
        service_entry *e = &s->services[i];
        if (strcmp(e->name, service) != 0)
            continue;
        for (size_t j = 0; j < e->n_methods; j++) {
            if (strcmp(e->methods[j].name, method) == 0) {
                e->methods[j].handler(c, e->opaque);
                return;
            }
        }
        if (s->fallback)
            s->fallback(c, s->fallback_opaque);
        else
            ttrpc_call_reply_error(c, GRPC_UNIMPLEMENTED, "method %s", method);
        return;
    }
    if (s->fallback)
        s->fallback(c, s->fallback_opaque);
    else
        ttrpc_call_reply_error(c, GRPC_UNIMPLEMENTED, "service %s", service);
}

static void on_frame(ttrpc_conn *conn, const ttrpc_frame_header *h, const uint8_t *body)
{
    server_conn *sc = conn->owner;

    /* Same order of checks as the Go server. */
    if (h->stream_id % 2 != 1) {
        send_status(sc, h->stream_id, GRPC_INVALID_ARGUMENT,
                    "StreamID must be odd for client initiated streams");
        return;
    }
    if (h->type == TTRPC_TYPE_DATA) {
        /* Streaming is not offered: Data on a live unary stream is ignored. */
        if (!find_call(sc, h->stream_id))
            send_status(sc, h->stream_id, GRPC_INVALID_ARGUMENT, "StreamID is no longer active");
        return;
    }
    if (h->type != TTRPC_TYPE_REQUEST)
        return; /* unknown types are ignored for forward compatibility */
    if (h->stream_id <= sc->last_stream_id) {
        send_status(sc, h->stream_id, GRPC_INVALID_ARGUMENT, "StreamID cannot be re-used and must increment");
        return;
    }
    sc->last_stream_id = h->stream_id;

    /* The call takes the reader's buffer when the reader assembled the
     * frame; otherwise it uses the bytes in place during dispatch and copies
     * them only if the handler keeps the call without releasing them (a
     * relay forwards them at once). A large payload is used in place rather
     * than copied again by the decoder. */
    uint8_t *owned = ttrpc_conn_take_body(conn, body);
    uint8_t *raw = owned ? owned : (uint8_t *)(body ? body : (const uint8_t *)"");
    const uint8_t *payload;
    size_t payload_len;
    Ttrpc__Request *req = ttrpc_request_decode_view(raw, h->length, &payload, &payload_len, NULL);
    if (!req) {
        free(owned);
        log_debug("stream %u: undecodable Request (%u bytes)", h->stream_id, h->length);
        send_status(sc, h->stream_id, GRPC_INVALID_ARGUMENT,
                    "unmarshal request error: proto: cannot parse invalid wire-format data");
        return;
    }

    ttrpc_call *c = xnew0(ttrpc_call, 1);
    c->sc = sc;
    c->stream_id = h->stream_id;
    c->req = req;
    c->raw = raw;
    c->raw_len = h->length;
    c->raw_borrowed = !owned;
    c->payload = payload;
    c->payload_len = payload_len;
    /* Decoded copy + raw copy + bookkeeping. */
    c->cost = 2 * (size_t)h->length + sizeof(*c);
    c->next = sc->calls;
    if (sc->calls)
        sc->calls->prev = c;
    sc->calls = c;
    sc->n_calls++;
    sc->call_bytes += c->cost;
    update_hold(sc);

    /* sc outlives dispatch: connections are freed from close callbacks. */
    sc->dispatching = c;
    dispatch(sc->server, c);
    if (sc->dispatching == c) {
        sc->dispatching = NULL;
        if (c->raw_borrowed)
            call_keep_request(c);
    }
}

static void on_oversize(ttrpc_conn *conn, const ttrpc_frame_header *h)
{
    server_conn *sc = conn->owner;
    char msg[128];
    ttrpc_oversize_message(h->length, msg, sizeof(msg));
    log_debug("stream %u: %s", h->stream_id, msg);
    send_status(sc, h->stream_id, GRPC_RESOURCE_EXHAUSTED, msg);
}

static void on_conn_closed(ttrpc_conn *conn, int reason)
{
    server_conn *sc = conn->owner;
    ttrpc_server *s = sc->server;

    log_debug("connection closed (%s), %zu calls pending", reason ? uv_strerror(reason) : "local",
              sc->n_calls);
    /* Detach every pending call first: a cancel callback may reply (and so
     * free its call) right away. */
    while (sc->calls) {
        ttrpc_call *c = sc->calls;
        call_unlink(c);
        if (c->cancel_cb) {
            void (*cb)(ttrpc_call *, void *) = c->cancel_cb;
            c->cancel_cb = NULL;
            cb(c, c->cancel_opaque);
        }
    }
    if (sc->prev)
        sc->prev->next = sc->next;
    else
        s->conns = sc->next;
    if (sc->next)
        sc->next->prev = sc->prev;
    s->n_conns--;
    free(sc);
    s->n_handles--;
    maybe_finish(s);
}

static const ttrpc_conn_events server_conn_events = {
    .frame = on_frame,
    .oversize = on_oversize,
    .closed = on_conn_closed,
};

static int serve_transport(ttrpc_server *s, ttrpc_transport *t)
{
    server_conn *sc = xnew0(server_conn, 1);
    sc->server = s;
    ttrpc_conn_init(&sc->conn, t, &server_conn_events, sc);
    ttrpc_conn_set_flusher(&sc->conn, &s->flusher);
    sc->next = s->conns;
    if (s->conns)
        s->conns->prev = sc;
    s->conns = sc;
    s->n_conns++;
    s->n_handles++;
    return ttrpc_conn_start(&sc->conn); /* on failure the conn closes itself */
}

static void on_connection(uv_stream_t *l, int status)
{
    listener *li = CAA_CONTAINER_OF(l, listener, h.stream);
    ttrpc_server *s = li->server;

    if (status < 0) {
        log_debug("accept: %s", uv_strerror(status));
        return;
    }
    if (s->closing)
        return;
    ttrpc_transport *t = ttrpc_transport_uv_new(s->loop, li->type, NULL);
    if (!t)
        return;
    int r = uv_accept(l, ttrpc_transport_uv_stream(t));
    if (r < 0) {
        log_debug("accept: %s", uv_strerror(r));
        ttrpc_transport_close(t);
        return;
    }
    if (li->type == UV_TCP)
        uv_tcp_nodelay((uv_tcp_t *)ttrpc_transport_uv_stream(t), 1);

    serve_transport(s, t);
}

int ttrpc_server_adopt(ttrpc_server *s, ttrpc_transport *t, caa_error **err)
{
    if (s->closing) {
        ttrpc_transport_close(t);
        return caa_error_set(err, -ECANCELED, "ttrpc server: closing");
    }
    int r = serve_transport(s, t);
    if (r < 0)
        return caa_error_set(err, r, "ttrpc server: cannot read from transport");
    return 0;
}

/* ------------------------------------------------------------ public: server */

int ttrpc_server_new(uv_loop_t *loop, ttrpc_server **ret, caa_error **err)
{
    if (!loop || !ret)
        return caa_error_set(err, -EINVAL, "ttrpc server: no loop");
    ttrpc_server *s = xnew0(ttrpc_server, 1);
    s->loop = loop;
    ttrpc_flusher_init(&s->flusher, loop);
    *ret = s;
    return 0;
}

int ttrpc_server_register(ttrpc_server *s, const char *service, const ttrpc_method_entry *methods,
                          size_t n_methods, void *opaque, caa_error **err)
{
    if (!service || (n_methods && !methods))
        return caa_error_set(err, -EINVAL, "ttrpc server: bad service registration");
    for (size_t i = 0; i < s->n_services; i++)
        if (strcmp(s->services[i].name, service) == 0)
            return caa_error_set(err, -EEXIST, "ttrpc server: service %s already registered", service);
    for (size_t i = 0; i < n_methods; i++)
        if (!methods[i].name || !methods[i].handler)
            return caa_error_set(err, -EINVAL, "ttrpc server: service %s: method %zu incomplete", service, i);
    s->services = xrealloc(s->services, (s->n_services + 1) * sizeof(*s->services));
    s->services[s->n_services++] = (service_entry){
        .name = xstrdup(service),
        .methods = methods,
        .n_methods = n_methods,
        .opaque = opaque,
    };
    return 0;
}

void ttrpc_server_set_fallback(ttrpc_server *s, ttrpc_handler handler, void *opaque)
{
    s->fallback = handler;
    s->fallback_opaque = opaque;
}

static void on_listener_closed(uv_handle_t *h)
{
    listener *li = CAA_CONTAINER_OF(h, listener, h.handle);
    ttrpc_server *s = li->server;
    free(li->path);
    free(li);
    s->n_handles--;
    maybe_finish(s);
}

/* Removes the socket file only if it is still the one we bound. */
static void listener_unlink(listener *li)
{
    struct stat st;
    if (li->path && lstat(li->path, &st) == 0 && st.st_dev == li->dev && st.st_ino == li->ino)
        unlink(li->path);
}

static listener *listener_new(ttrpc_server *s, uv_handle_type type)
{
    listener *li = xnew0(listener, 1);
    li->server = s;
    li->type = type;
    s->n_handles++;
    return li;
}

static void listener_link(ttrpc_server *s, listener *li)
{
    li->next = s->listeners;
    s->listeners = li;
}

int ttrpc_server_listen_unix(ttrpc_server *s, const char *path, mode_t mode, caa_error **err)
{
    struct stat st;
    int r;

    if (s->closing)
        return caa_error_set(err, -ECANCELED, "ttrpc server: closing");
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return caa_error_set(err, -EEXIST, "ttrpc server: %s exists and is not a socket", path);
        if (unlink(path) < 0)
            return caa_error_set_errno(err, -errno, "ttrpc server: removing stale socket %s", path);
    } else if (errno != ENOENT) {
        return caa_error_set_errno(err, -errno, "ttrpc server: %s", path);
    }

    listener *li = listener_new(s, UV_NAMED_PIPE);
    r = uv_pipe_init(s->loop, &li->h.pipe, 0);
    if (r < 0) {
        s->n_handles--;
        free(li);
        return caa_error_set(err, r, "ttrpc server: pipe init: %s", uv_strerror(r));
    }
    r = uv_pipe_bind(&li->h.pipe, path);
    if (r < 0) {
        uv_close(&li->h.handle, on_listener_closed);
        return caa_error_set(err, r, "ttrpc server: bind %s: %s", path, uv_strerror(r));
    }
    li->path = xstrdup(path);
    if (lstat(path, &st) == 0) {
        li->dev = st.st_dev;
        li->ino = st.st_ino;
    }
    if (chmod(path, mode) < 0) {
        r = -errno;
        listener_unlink(li);
        uv_close(&li->h.handle, on_listener_closed);
        return caa_error_set_errno(err, r, "ttrpc server: chmod %s", path);
    }
    r = uv_listen(&li->h.stream, SERVER_LISTEN_BACKLOG, on_connection);
    if (r < 0) {
        listener_unlink(li);
        uv_close(&li->h.handle, on_listener_closed);
        return caa_error_set(err, r, "ttrpc server: listen %s: %s", path, uv_strerror(r));
    }
    listener_link(s, li);
    log_debug("listening on %s", path);
    return 0;
}

static int tcp_bind(listener *li, const char *host, uint16_t port, caa_error **err)
{
    struct sockaddr_storage ss;
    int r;

    if (!host || !*host) {
        /* All addresses: dual-stack where IPv6 exists, else IPv4. */
        uv_ip6_addr("::", port, (struct sockaddr_in6 *)&ss);
        if (uv_tcp_bind(&li->h.tcp, (struct sockaddr *)&ss, 0) == 0)
            return 0;
        host = "0.0.0.0";
    }
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)
        return caa_error_set(err, -EINVAL, "ttrpc server: '%s' is not a numeric IP address", host);
    r = uv_tcp_bind(&li->h.tcp, (struct sockaddr *)&ss, 0);
    if (r < 0)
        return caa_error_set(err, r, "ttrpc server: bind %s:%u: %s", host, port, uv_strerror(r));
    return 0;
}

int ttrpc_server_listen_tcp(ttrpc_server *s, const char *host, uint16_t port, caa_error **err)
{
    int r;

    if (s->closing)
        return caa_error_set(err, -ECANCELED, "ttrpc server: closing");
    listener *li = listener_new(s, UV_TCP);
    r = uv_tcp_init(s->loop, &li->h.tcp);
    if (r < 0) {
        s->n_handles--;
        free(li);
        return caa_error_set(err, r, "ttrpc server: tcp init: %s", uv_strerror(r));
    }
    r = tcp_bind(li, host, port, err);
    if (r == 0) {
        r = uv_listen(&li->h.stream, SERVER_LISTEN_BACKLOG, on_connection);
        if (r < 0)
            caa_error_set(err, r, "ttrpc server: listen on port %u: %s", port, uv_strerror(r));
    }
    if (r < 0) {
        uv_close(&li->h.handle, on_listener_closed);
        return r;
    }
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getsockname(&li->h.tcp, (struct sockaddr *)&ss, &len) == 0 && !s->tcp_port)
        s->tcp_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                     : ((struct sockaddr_in *)&ss)->sin_port);
    listener_link(s, li);
    log_debug("listening on tcp port %u", s->tcp_port);
    return 0;
}

uint16_t ttrpc_server_tcp_port(const ttrpc_server *s)
{
    return s->tcp_port;
}

size_t ttrpc_server_connection_count(const ttrpc_server *s)
{
    return s->n_conns;
}

static void on_close_marker(uv_handle_t *h)
{
    ttrpc_server *s = CAA_CONTAINER_OF(h, ttrpc_server, close_marker);
    s->n_handles--;
    maybe_finish(s);
}

static void on_flusher_closed(void *opaque)
{
    ttrpc_server *s = opaque;
    s->n_handles--;
    maybe_finish(s);
}

void ttrpc_server_close(ttrpc_server *s, void (*done)(void *opaque), void *opaque)
{
    if (!s || s->closing)
        return;
    s->closing = true;
    s->done = done;
    s->done_opaque = opaque;

    /* A handle closed at once guarantees done() runs later, never from here. */
    uv_idle_init(s->loop, &s->close_marker);
    s->n_handles++;
    uv_close((uv_handle_t *)&s->close_marker, on_close_marker);

    for (listener *li = TAKE_PTR(s->listeners), *next; li; li = next) {
        next = li->next;
        listener_unlink(li);
        uv_close(&li->h.handle, on_listener_closed);
    }
    for (server_conn *sc = s->conns; sc; sc = sc->next)
        ttrpc_conn_close(&sc->conn);
    s->n_handles += (size_t)ttrpc_flusher_close(&s->flusher, on_flusher_closed, s);
}

/* ------------------------------------------------------------ public: calls */

const char *ttrpc_call_service(const ttrpc_call *c)
{
    return c->req->service ? c->req->service : "";
}

const char *ttrpc_call_method(const ttrpc_call *c)
{
    return c->req->method ? c->req->method : "";
}

const uint8_t *ttrpc_call_payload(const ttrpc_call *c, size_t *ret_len)
{
    *ret_len = c->payload_len;
    return c->payload;
}

const uint8_t *ttrpc_call_request(const ttrpc_call *c, size_t *ret_len)
{
    *ret_len = c->raw_len;
    return c->raw;
}

uint32_t ttrpc_call_stream_id(const ttrpc_call *c)
{
    return c->stream_id;
}

int64_t ttrpc_call_timeout_ns(const ttrpc_call *c)
{
    return c->req->timeout_nano;
}

size_t ttrpc_call_metadata_count(const ttrpc_call *c)
{
    return c->req->n_metadata;
}

const char *ttrpc_call_metadata_key(const ttrpc_call *c, size_t i)
{
    return i < c->req->n_metadata ? c->req->metadata[i]->key : NULL;
}

const char *ttrpc_call_metadata_value(const ttrpc_call *c, size_t i)
{
    return i < c->req->n_metadata ? c->req->metadata[i]->value : NULL;
}

const char *ttrpc_call_metadata_get(const ttrpc_call *c, const char *key)
{
    for (size_t i = 0; i < c->req->n_metadata; i++)
        if (strcasecmp(c->req->metadata[i]->key, key) == 0)
            return c->req->metadata[i]->value;
    return NULL;
}

void ttrpc_call_release_request(ttrpc_call *c)
{
    if (!c->raw_borrowed)
        free(c->raw);
    c->raw = NULL;
    c->raw_len = 0;
    c->raw_borrowed = false;
    c->payload = NULL;
    c->payload_len = 0;
}

bool ttrpc_call_connection_alive(const ttrpc_call *c)
{
    return c->sc && ttrpc_conn_is_open(&c->sc->conn);
}

void ttrpc_call_set_cancel_cb(ttrpc_call *c, void (*cb)(ttrpc_call *c, void *opaque), void *opaque)
{
    c->cancel_cb = cb;
    c->cancel_opaque = opaque;
}

/* Sends status+payload, or RESOURCE_EXHAUSTED when it would not fit a frame. */
static void call_send(ttrpc_call *c, int code, const char *message, const uint8_t *payload, size_t len)
{
    if (!ttrpc_call_connection_alive(c))
        return;
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    Ttrpc__Response resp = TTRPC__RESPONSE__INIT;
    if (code != 0) {
        st.code = code;
        st.message = (char *)(message ? message : "");
        resp.status = &st;
    }
    resp.payload.data = (uint8_t *)payload;
    resp.payload.len = payload ? len : 0;
    if (ttrpc_conn_send_message(&c->sc->conn, c->stream_id, TTRPC_TYPE_RESPONSE, 0, &resp.base) ==
        -EMSGSIZE) {
        char msg[128];
        ttrpc_oversize_message((uint32_t)protobuf_c_message_get_packed_size(&resp.base), msg, sizeof(msg));
        send_status(c->sc, c->stream_id, GRPC_RESOURCE_EXHAUSTED, msg);
    }
}

void ttrpc_call_reply(ttrpc_call *c, const uint8_t *payload, size_t len)
{
    call_send(c, GRPC_OK, NULL, payload, len);
    call_free(c);
}

void ttrpc_call_reply_message(ttrpc_call *c, const ProtobufCMessage *msg)
{
    if (!msg) {
        call_send(c, GRPC_UNKNOWN, "ttrpc: marshal called with nil", NULL, 0);
        call_free(c);
        return;
    }
    size_t len;
    _cleanup_free_ uint8_t *buf = ttrpc_pack(msg, &len);
    call_send(c, GRPC_OK, NULL, buf, len);
    call_free(c);
}

void ttrpc_call_reply_error(ttrpc_call *c, int grpc_code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    /* The message may echo outside bytes; peers decode it as UTF-8. */
    caa_str_make_utf8(msg);
    call_send(c, grpc_code, msg, NULL, 0);
    call_free(c);
}

void ttrpc_call_reply_response(ttrpc_call *c, const uint8_t *response, size_t len)
{
    if (ttrpc_call_connection_alive(c) &&
        ttrpc_conn_send(&c->sc->conn, c->stream_id, TTRPC_TYPE_RESPONSE, 0, response, len) == -EMSGSIZE) {
        char msg[128];
        ttrpc_oversize_message((uint32_t)len, msg, sizeof(msg));
        send_status(c->sc, c->stream_id, GRPC_RESOURCE_EXHAUSTED, msg);
    }
    call_free(c);
}
