/* TLS listener (see tls-listener.h). */
#define LOG_COMPONENT "forwarder/tls"

#include "tls-listener.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "log.h"
#include "tls-transport.h"
#include "ttrpc-transport.h"
#include "xalloc.h"
#include "closing.h"

#define LISTEN_BACKLOG 128

typedef struct handshake {
    fwd_tls_listener *l;
    ttrpc_transport *t;
    uv_timer_t deadline; /* a peer that never completes the handshake is dropped */
    bool timed_out;
    char peer[64];
    struct handshake *prev, *next;
} handshake;

struct fwd_tls_listener {
    uv_loop_t *loop;
    uv_tcp_t tcp;
    ttrpc_server *server;
    SSL_CTX *ctx;
    uint16_t port;
    handshake *handshakes;
    uint64_t handshake_timeout_ms;
    caa_closing close;
};

static void finish_part(fwd_tls_listener *l)
{
    caa_closing closed;
    if (!caa_closing_part_done(&l->close, &closed))
        return;
    SSL_CTX_free(l->ctx);
    free(l);
    caa_closing_notify(&closed);
}

static void hs_unlink(handshake *h)
{
    fwd_tls_listener *l = h->l;
    if (h->prev)
        h->prev->next = h->next;
    else
        l->handshakes = h->next;
    if (h->next)
        h->next->prev = h->prev;
}

static void on_deadline_closed(uv_handle_t *handle)
{
    handshake *h = handle->data;
    fwd_tls_listener *l = h->l;
    free(h);
    if (l->close.active)
        finish_part(l);
}

static void on_deadline(uv_timer_t *timer)
{
    handshake *h = timer->data;
    log_debug("TLS handshake with %s not complete after %llu ms: closing the connection", h->peer,
              (unsigned long long)h->l->handshake_timeout_ms);
    h->timed_out = true;
    ttrpc_transport_close(h->t); /* on_handshake follows with -ECANCELED */
}

static void on_handshake(ttrpc_transport *t, int status, const caa_error *err, void *opaque)
{
    handshake *h = opaque;
    fwd_tls_listener *l = h->l;
    hs_unlink(h);
    uv_timer_stop(&h->deadline);
    if (status < 0) {
        if (!l->close.active && !h->timed_out)
            log_warn("TLS handshake with %s failed: %s", h->peer, err ? caa_error_msg(err) : "unknown error");
        ttrpc_transport_close(t);
    } else {
        log_debug("TLS session with %s established", h->peer);
        _cleanup_error_ caa_error *e = NULL;
        if (ttrpc_server_adopt(l->server, t, &e) < 0)
            log_debug("serving %s: %s", h->peer, caa_error_msg(e));
    }
    uv_close((uv_handle_t *)&h->deadline, on_deadline_closed);
}

static void peer_name(uv_tcp_t *tcp, char *buf, size_t size)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char ip[INET6_ADDRSTRLEN] = "?";
    uint16_t port = 0;
    if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        } else {
            uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        }
    }
    snprintf(buf, size, "%s:%u", ip, port);
}

static void on_connection(uv_stream_t *s, int status)
{
    fwd_tls_listener *l = CAA_CONTAINER_OF((uv_tcp_t *)s, fwd_tls_listener, tcp);
    if (status < 0 || l->close.active) {
        if (status < 0)
            log_debug("accept: %s", uv_strerror(status));
        return;
    }
    _cleanup_error_ caa_error *e = NULL;
    ttrpc_transport *tcp = ttrpc_transport_uv_new(l->loop, UV_TCP, &e);
    if (!tcp)
        return;
    uv_tcp_t *h = (uv_tcp_t *)ttrpc_transport_uv_stream(tcp);
    if (uv_accept(s, (uv_stream_t *)h) < 0) {
        ttrpc_transport_close(tcp);
        return;
    }
    uv_tcp_nodelay(h, 1);
    handshake *hs = xnew0(handshake, 1);
    hs->l = l;
    peer_name(h, hs->peer, sizeof(hs->peer));

    ttrpc_transport *tls = caa_tls_transport_new(l->loop, tcp, l->ctx, CAA_TLS_ROLE_SERVER, NULL, &e);
    if (!tls) {
        log_warn("TLS session for %s: %s", hs->peer, caa_error_msg(e));
        ttrpc_transport_close(tcp);
        free(hs);
        return;
    }
    hs->t = tls;
    if (caa_tls_transport_handshake(tls, on_handshake, hs, &e) < 0) {
        log_warn("TLS handshake with %s: %s", hs->peer, caa_error_msg(e));
        ttrpc_transport_close(tls);
        free(hs);
        return;
    }
    uv_timer_init(l->loop, &hs->deadline);
    hs->deadline.data = hs;
    if (l->handshake_timeout_ms)
        uv_timer_start(&hs->deadline, on_deadline, l->handshake_timeout_ms, 0);
    hs->next = l->handshakes;
    if (l->handshakes)
        l->handshakes->prev = hs;
    l->handshakes = hs;
}

static int bind_addr(fwd_tls_listener *l, const char *host, uint16_t port, caa_error **err)
{
    struct sockaddr_storage ss;
    if (!host || !*host) {
        uv_ip6_addr("::", port, (struct sockaddr_in6 *)&ss);
        if (uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, 0) == 0)
            return 0;
        host = "0.0.0.0";
    }
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)
        return caa_error_set(err, -EINVAL, "listen address '%s' is not a numeric IP address", host);
    int r = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, 0);
    if (r < 0)
        return caa_error_set(err, r, "bind %s:%u: %s", host, port, uv_strerror(r));
    return 0;
}

static void on_tcp_closed(uv_handle_t *h)
{
    finish_part(CAA_CONTAINER_OF((uv_tcp_t *)h, fwd_tls_listener, tcp));
}

int fwd_tls_listen(uv_loop_t *loop, ttrpc_server *server, SSL_CTX *ctx, const char *host, uint16_t port,
                   fwd_tls_listener **ret, caa_error **err)
{
    if (!loop || !server || !ctx || !ret)
        return caa_error_set(err, -EINVAL, "TLS listener: missing argument");
    fwd_tls_listener *l = xnew0(fwd_tls_listener, 1);
    l->loop = loop;
    l->server = server;
    l->handshake_timeout_ms = FWD_TLS_HANDSHAKE_TIMEOUT_MS;
    SSL_CTX_up_ref(ctx);
    l->ctx = ctx;
    int r = uv_tcp_init(loop, &l->tcp);
    if (r < 0) {
        SSL_CTX_free(ctx);
        free(l);
        return caa_error_set(err, r, "TLS listener: %s", uv_strerror(r));
    }
    r = bind_addr(l, host, port, err);
    if (r == 0) {
        r = uv_listen((uv_stream_t *)&l->tcp, LISTEN_BACKLOG, on_connection);
        if (r < 0)
            caa_error_set(err, r, "listen on port %u: %s", port, uv_strerror(r));
    }
    if (r < 0) {
        caa_closing_begin(&l->close, NULL, NULL);
        uv_close((uv_handle_t *)&l->tcp, on_tcp_closed);
        return r;
    }
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&ss, &len) == 0)
        l->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    *ret = l;
    return 0;
}

void fwd_tls_listener_set_handshake_timeout(fwd_tls_listener *l, uint64_t ms)
{
    l->handshake_timeout_ms = ms;
}

uint16_t fwd_tls_listener_port(const fwd_tls_listener *l)
{
    return l->port;
}

void fwd_tls_listener_close(fwd_tls_listener *l, void (*done)(void *opaque), void *opaque)
{
    if (!l || !caa_closing_begin(&l->close, done, opaque))
        return;
    for (handshake *h = l->handshakes; h; h = h->next)
        caa_closing_add(&l->close);
    /* Each closed handshake reports -ECANCELED to on_handshake. */
    for (handshake *h = l->handshakes, *next; h; h = next) {
        next = h->next;
        if (!h->timed_out) /* already closing: its on_handshake is on the way */
            ttrpc_transport_close(h->t);
    }
    uv_close((uv_handle_t *)&l->tcp, on_tcp_closed);
}
