/* ttRPC client: stream-id allocation, in-flight table, deadlines.
 *
 * Stream ids 1, 3, 5, ... are assigned when the Request is handed to the
 * connection, and frames are written in submission order, so ids reach the
 * wire strictly increasing. Responses are matched by id in any order; one
 * for an id no longer in the table (deadline passed) is dropped. */
#define LOG_COMPONENT "ttrpc/client"

#include "ttrpc.h"

#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cleanup.h"
#include "log.h"
#include "ttrpc-conn.h"
#include "ttrpc-flush.h"
#include "ttrpc-transport.h"
#include "xalloc.h"
#include "timeutil.h"

typedef struct client_call {
    ttrpc_client *client;
    struct client_call *hnext; /* hash chain */
    uint32_t id;
    bool has_timer;
    ttrpc_response_cb cb;
    void *opaque;
    uv_timer_t timer;
} client_call;

struct ttrpc_client {
    uv_loop_t *loop;
    ttrpc_conn conn;
    bool conn_live; /* transport not yet closed */
    bool connected;
    bool closing; /* ttrpc_client_close() was called */
    bool silent;  /* connect failed synchronously: no callback */
    uint32_t next_id;

    client_call **buckets;
    size_t n_buckets; /* power of two */
    size_t n_calls;

    size_t n_handles; /* transport + call timers + close marker + flusher not yet closed */
    uv_idle_t close_marker;
    ttrpc_flusher flusher; /* coalesces requests (ttrpc-flush.h) */

    void (*close_cb)(ttrpc_client *c, void *opaque);
    void *close_opaque;
    bool close_cb_done;

    ttrpc_connect_cb connect_cb;
    void *connect_opaque;
    uv_handle_type type;
    uint16_t port;
    caa_error *connect_err;
    union {
        uv_connect_t connect;
        uv_getaddrinfo_t gai;
    } req;
};

/* ------------------------------------------------------------ in-flight table */

static size_t bucket_of(const ttrpc_client *c, uint32_t id)
{
    return (id >> 1) & (c->n_buckets - 1);
}

static void table_insert(ttrpc_client *c, client_call *call)
{
    if (c->n_calls >= c->n_buckets) {
        size_t n = c->n_buckets ? c->n_buckets * 2 : 64;
        client_call **b = xnew0(client_call *, n);
        for (size_t i = 0; i < c->n_buckets; i++) {
            for (client_call *e = c->buckets[i], *next; e; e = next) {
                next = e->hnext;
                size_t k = (e->id >> 1) & (n - 1);
                e->hnext = b[k];
                b[k] = e;
            }
        }
        free(c->buckets);
        c->buckets = b;
        c->n_buckets = n;
    }
    size_t k = bucket_of(c, call->id);
    call->hnext = c->buckets[k];
    c->buckets[k] = call;
    c->n_calls++;
}

static client_call *table_take(ttrpc_client *c, uint32_t id)
{
    if (!c->n_buckets)
        return NULL;
    for (client_call **p = &c->buckets[bucket_of(c, id)]; *p; p = &(*p)->hnext) {
        if ((*p)->id == id) {
            client_call *call = *p;
            *p = call->hnext;
            call->hnext = NULL;
            c->n_calls--;
            return call;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------ lifetime */

static void client_free(ttrpc_client *c)
{
    caa_error_free(c->connect_err);
    free(c->buckets);
    free(c);
}

static void maybe_free(ttrpc_client *c)
{
    if (c->closing && c->n_handles == 0)
        client_free(c);
}

static void on_timer_closed(uv_handle_t *h)
{
    client_call *call = CAA_CONTAINER_OF(h, client_call, timer);
    ttrpc_client *c = call->client;
    free(call);
    c->n_handles--;
    maybe_free(c);
}

/* The call is already out of the table: report and release it. */
static void call_complete(client_call *call, const ttrpc_result *res)
{
    call->cb(res, call->opaque);
    if (call->has_timer) {
        uv_timer_stop(&call->timer);
        uv_close((uv_handle_t *)&call->timer, on_timer_closed);
    } else {
        free(call);
    }
}

static void call_fail(client_call *call, int status)
{
    ttrpc_result res = {.status = status, .message = ""};
    call_complete(call, &res);
}

static void fail_all(ttrpc_client *c, int status)
{
    for (size_t i = 0; i < c->n_buckets; i++) {
        while (c->buckets[i]) {
            client_call *call = c->buckets[i];
            c->buckets[i] = call->hnext;
            call->hnext = NULL;
            c->n_calls--;
            call_fail(call, status);
        }
    }
}

/* ------------------------------------------------------------ frames */

static void on_frame(ttrpc_conn *conn, const ttrpc_frame_header *h, const uint8_t *body)
{
    ttrpc_client *c = conn->owner;
    if (h->type != TTRPC_TYPE_RESPONSE)
        return; /* no streaming: Data (and anything newer) is ignored */
    client_call *call = table_take(c, h->stream_id);
    if (!call) {
        log_debug("response on inactive stream %u dropped", h->stream_id);
        return;
    }
    /* A large payload is handed out in place, not copied by the decoder. */
    const uint8_t *payload;
    size_t payload_len;
    Ttrpc__Response *resp = ttrpc_response_decode_view(body, h->length, &payload, &payload_len, NULL);
    if (!resp) {
        call_fail(call, -EPROTO);
        return;
    }
    ttrpc_result res = {
        .status = 0,
        .grpc_code = resp->status ? resp->status->code : GRPC_OK,
        .message = resp->status && resp->status->message ? resp->status->message : "",
        .payload = payload,
        .payload_len = payload_len,
        .response = body,
        .response_len = h->length,
    };
    call_complete(call, &res);
    ttrpc_response_free(resp);
}

static void on_oversize(ttrpc_conn *conn, const ttrpc_frame_header *h)
{
    ttrpc_client *c = conn->owner;
    if (h->type != TTRPC_TYPE_RESPONSE)
        return;
    client_call *call = table_take(c, h->stream_id);
    if (!call)
        return;
    char msg[128];
    ttrpc_oversize_message(h->length, msg, sizeof(msg));
    ttrpc_result res = {.status = 0, .grpc_code = GRPC_RESOURCE_EXHAUSTED, .message = msg};
    call_complete(call, &res);
}

static void on_conn_closed(ttrpc_conn *conn, int reason)
{
    ttrpc_client *c = conn->owner;
    c->conn_live = false;
    c->n_handles--;

    if (!c->connected) {
        /* Connect failed: report it; the client never reached the user. */
        if (!c->silent) {
            if (!c->connect_err)
                caa_error_set(&c->connect_err, reason ? reason : -ECONNREFUSED, "ttrpc connect: %s",
                              uv_strerror(reason ? reason : -ECONNREFUSED));
            c->connect_cb(NULL, c->connect_err->code, c->connect_err, c->connect_opaque);
        }
        client_free(c);
        return;
    }

    log_debug("connection closed (%s), failing %zu calls", reason ? uv_strerror(reason) : "local",
              c->n_calls);
    fail_all(c, c->closing ? -ECANCELED : -ECONNRESET);
    if (!c->close_cb_done) {
        c->close_cb_done = true;
        if (c->close_cb)
            c->close_cb(c, c->close_opaque);
    }
    maybe_free(c);
}

static const ttrpc_conn_events client_conn_events = {
    .frame = on_frame,
    .oversize = on_oversize,
    .closed = on_conn_closed,
};

/* ------------------------------------------------------------ connect */

static int client_new(uv_loop_t *loop, uv_handle_type type, ttrpc_connect_cb cb, void *opaque,
                      ttrpc_client **ret, caa_error **err)
{
    _cleanup_error_ caa_error *e = NULL;
    ttrpc_transport *t = ttrpc_transport_uv_new(loop, type, &e);
    if (!t)
        return caa_error_propagate(err, &e);
    ttrpc_client *c = xnew0(ttrpc_client, 1);
    c->loop = loop;
    ttrpc_flusher_init(&c->flusher, loop);
    c->type = type;
    c->next_id = 1;
    c->connect_cb = cb;
    c->connect_opaque = opaque;
    ttrpc_conn_init(&c->conn, t, &client_conn_events, c);
    c->conn_live = true;
    c->n_handles = 1;
    *ret = c;
    return 0;
}

static void connect_fail(ttrpc_client *c, int status, const char *what)
{
    if (!c->connect_err)
        caa_error_set(&c->connect_err, status, "ttrpc connect: %s: %s", what, uv_strerror(status));
    ttrpc_conn_close(&c->conn);
}

static void on_connected(uv_connect_t *req, int status)
{
    ttrpc_client *c = CAA_CONTAINER_OF(req, ttrpc_client, req.connect);
    if (status < 0) {
        connect_fail(c, status, "connect");
        return;
    }
    if (c->type == UV_TCP)
        uv_tcp_nodelay((uv_tcp_t *)ttrpc_transport_uv_stream(c->conn.t), 1);
    int r = ttrpc_conn_start(&c->conn);
    if (r < 0) {
        connect_fail(c, r, "start reading");
        return;
    }
    c->connected = true;
    ttrpc_conn_set_flusher(&c->conn, &c->flusher);
    c->connect_cb(c, 0, NULL, c->connect_opaque);
}

int ttrpc_client_connect_unix(uv_loop_t *loop, const char *path, ttrpc_connect_cb cb, void *opaque,
                              caa_error **err)
{
    if (!loop || !path || !cb)
        return caa_error_set(err, -EINVAL, "ttrpc connect: missing argument");
    ttrpc_client *c;
    int r = client_new(loop, UV_NAMED_PIPE, cb, opaque, &c, err);
    if (r < 0)
        return r;
    /* uv_pipe_connect reports every failure through the callback. */
    uv_pipe_connect(&c->req.connect, (uv_pipe_t *)ttrpc_transport_uv_stream(c->conn.t), path, on_connected);
    return 0;
}

static int tcp_connect(ttrpc_client *c, const struct sockaddr *sa)
{
    return uv_tcp_connect(&c->req.connect, (uv_tcp_t *)ttrpc_transport_uv_stream(c->conn.t), sa,
                          on_connected);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    ttrpc_client *c = CAA_CONTAINER_OF(req, ttrpc_client, req.gai);
    if (status < 0 || !res) {
        connect_fail(c, status < 0 ? status : -ENOENT, "resolve");
        uv_freeaddrinfo(res);
        return;
    }
    struct sockaddr_storage ss;
    memcpy(&ss, res->ai_addr, res->ai_addrlen);
    uv_freeaddrinfo(res);
    if (ss.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons(c->port);
    else
        ((struct sockaddr_in *)&ss)->sin_port = htons(c->port);
    int r = tcp_connect(c, (struct sockaddr *)&ss);
    if (r < 0)
        connect_fail(c, r, "connect");
}

int ttrpc_client_connect_tcp(uv_loop_t *loop, const char *host, uint16_t port, ttrpc_connect_cb cb,
                             void *opaque, caa_error **err)
{
    if (!loop || !cb)
        return caa_error_set(err, -EINVAL, "ttrpc connect: missing argument");
    if (!host || !*host)
        host = "127.0.0.1";
    ttrpc_client *c;
    int r = client_new(loop, UV_TCP, cb, opaque, &c, err);
    if (r < 0)
        return r;
    c->port = port;

    struct sockaddr_storage ss;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) == 0) {
        r = tcp_connect(c, (struct sockaddr *)&ss);
    } else {
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
        r = uv_getaddrinfo(loop, &c->req.gai, on_resolved, host, NULL, &hints);
    }
    if (r < 0) {
        c->silent = true;
        ttrpc_conn_close(&c->conn);
        return caa_error_set(err, r, "ttrpc connect %s:%u: %s", host, port, uv_strerror(r));
    }
    return 0;
}

int ttrpc_client_new_on_transport(uv_loop_t *loop, ttrpc_transport *t, ttrpc_client **ret, caa_error **err)
{
    if (!loop || !t || !ret) {
        if (t)
            ttrpc_transport_close(t);
        return caa_error_set(err, -EINVAL, "ttrpc client: missing argument");
    }
    ttrpc_client *c = xnew0(ttrpc_client, 1);
    c->loop = loop;
    ttrpc_flusher_init(&c->flusher, loop);
    c->next_id = 1;
    ttrpc_conn_init(&c->conn, t, &client_conn_events, c);
    c->conn_live = true;
    c->n_handles = 1;
    int r = ttrpc_conn_start(&c->conn);
    if (r < 0) {
        /* the conn is closing: free once its transport is gone, silently */
        c->silent = true;
        return caa_error_set(err, r, "ttrpc client: cannot read from transport");
    }
    c->connected = true;
    ttrpc_conn_set_flusher(&c->conn, &c->flusher);
    *ret = c;
    return 0;
}

/* ------------------------------------------------------------ calls */

static int call_check(ttrpc_client *c, caa_error **err)
{
    if (c->closing)
        return caa_error_set(err, -ECANCELED, "ttrpc client: closed");
    if (!c->connected || !ttrpc_conn_is_open(&c->conn))
        return caa_error_set(err, -ENOTCONN, "ttrpc client: not connected");
    if (c->next_id > UINT32_MAX - 2)
        return caa_error_set(err, -EOVERFLOW, "ttrpc client: stream ids exhausted");
    return 0;
}

static void on_deadline(uv_timer_t *t)
{
    client_call *call = CAA_CONTAINER_OF(t, client_call, timer);
    ttrpc_client *c = call->client;
    if (table_take(c, call->id) != call)
        return;
    call_fail(call, -ETIMEDOUT);
}

static int call_start(ttrpc_client *c, int r, int64_t timeout_ns, ttrpc_response_cb cb, void *opaque,
                      caa_error **err)
{
    if (r == -EMSGSIZE)
        return caa_error_set(err, r, "ttrpc client: request exceeds the maximum message size of %u",
                             TTRPC_MESSAGE_LENGTH_MAX);
    if (r < 0)
        return caa_error_set(err, -ENOTCONN, "ttrpc client: send: %s", uv_strerror(r));

    client_call *call = xnew0(client_call, 1);
    call->client = c;
    call->id = c->next_id;
    call->cb = cb;
    call->opaque = opaque;
    c->next_id += 2;
    if (timeout_ns > 0) {
        uint64_t ms = caa_ns_to_ms_ceil(timeout_ns);
        uv_timer_init(c->loop, &call->timer);
        uv_timer_start(&call->timer, on_deadline, ms, 0);
        call->has_timer = true;
        c->n_handles++;
    }
    table_insert(c, call);
    return 0;
}

int ttrpc_client_call(ttrpc_client *c, const char *service, const char *method, const uint8_t *payload,
                      size_t len, int64_t timeout_ns, const ttrpc_kv *md, size_t n_md, ttrpc_response_cb cb,
                      void *opaque, caa_error **err)
{
    int r = call_check(c, err);
    if (r < 0)
        return r;
    if (!service || !method || !cb || (n_md && !md))
        return caa_error_set(err, -EINVAL, "ttrpc client: missing argument");

    Ttrpc__Request req = TTRPC__REQUEST__INIT;
    req.service = (char *)service;
    req.method = (char *)method;
    req.payload.data = (uint8_t *)payload;
    req.payload.len = payload ? len : 0;
    req.timeout_nano = timeout_ns > 0 ? timeout_ns : 0;
    _cleanup_free_ Ttrpc__KeyValue *kvs = n_md ? xnew0(Ttrpc__KeyValue, n_md) : NULL;
    _cleanup_free_ Ttrpc__KeyValue **kvp = n_md ? xnew0(Ttrpc__KeyValue *, n_md) : NULL;
    for (size_t i = 0; i < n_md; i++) {
        ttrpc__key_value__init(&kvs[i]);
        kvs[i].key = (char *)(md[i].key ? md[i].key : "");
        kvs[i].value = (char *)(md[i].value ? md[i].value : "");
        kvp[i] = &kvs[i];
    }
    req.n_metadata = n_md;
    req.metadata = kvp;

    r = ttrpc_conn_send_message(&c->conn, c->next_id, TTRPC_TYPE_REQUEST, 0, &req.base);
    return call_start(c, r, req.timeout_nano, cb, opaque, err);
}

int ttrpc_client_call_raw(ttrpc_client *c, const uint8_t *request, size_t len, ttrpc_response_cb cb,
                          void *opaque, caa_error **err)
{
    int r = call_check(c, err);
    if (r < 0)
        return r;
    if (!cb || (len && !request))
        return caa_error_set(err, -EINVAL, "ttrpc client: missing argument");
    /* Undecodable bytes are still relayed: the server answers them. */
    int64_t timeout_ns = 0;
    if (ttrpc_request_peek_timeout(request, len, &timeout_ns, NULL) < 0)
        timeout_ns = 0;
    r = ttrpc_conn_send(&c->conn, c->next_id, TTRPC_TYPE_REQUEST, 0, request, len);
    return call_start(c, r, timeout_ns, cb, opaque, err);
}

size_t ttrpc_client_inflight(const ttrpc_client *c)
{
    return c->n_calls;
}

void ttrpc_client_set_close_cb(ttrpc_client *c, void (*cb)(ttrpc_client *c, void *opaque), void *opaque)
{
    c->close_cb = cb;
    c->close_opaque = opaque;
}

static void on_close_marker(uv_handle_t *h)
{
    ttrpc_client *c = CAA_CONTAINER_OF(h, ttrpc_client, close_marker);
    c->n_handles--;
    maybe_free(c);
}

static void on_flusher_closed(void *opaque)
{
    ttrpc_client *c = opaque;
    c->n_handles--;
    maybe_free(c);
}

void ttrpc_client_close(ttrpc_client *c)
{
    if (!c || c->closing)
        return;
    c->closing = true;
    /* A handle closed at once: freeing always happens later, never here. */
    uv_idle_init(c->loop, &c->close_marker);
    c->n_handles++;
    uv_close((uv_handle_t *)&c->close_marker, on_close_marker);

    fail_all(c, -ECANCELED);
    if (c->conn_live)
        ttrpc_conn_close(&c->conn);
    c->n_handles += (size_t)ttrpc_flusher_close(&c->flusher, on_flusher_closed, c);
}
