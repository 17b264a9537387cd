/* Connection attempts to the agent-protocol-forwarder: TCP, then TLS. */
#define LOG_COMPONENT "adaptor/proxy"

#include "agent-dialer.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "log.h"
#include "tls-transport.h"
#include "xalloc.h"

/* One SYN: a socket and its connect request. A redial keeps the try that
 * waits for an answer as the previous one (a path slower than one redial
 * interval can still complete it) and abandons the one before (dial = NULL,
 * socket closed); an abandoned try lives on alone until libuv reports its
 * connect cancelled, and frees itself. Whichever try of a dial reports
 * first decides it; the other one is abandoned then. */
typedef struct tcp_try {
    uv_connect_t req;
    ttrpc_transport *tcp; /* until connected, abandoned or cancelled */
    caa_agent_dial *dial; /* NULL once abandoned */
} tcp_try;

struct caa_agent_dial {
    uv_loop_t *loop;
    struct sockaddr_storage addr;
    tcp_try *connecting;  /* the newest SYN: ours until its connect reports */
    tcp_try *previous;    /* the one before it, still given its chance */
    ttrpc_transport *tls; /* ours during the handshake */
    SSL_CTX *ctx;         /* NULL: plain TCP */
    char *server_name;
    char *where; /* "host:port" for messages */
    caa_agent_dial_cb cb;
    void *opaque;
    bool cancelled;
};

static void dial_free(caa_agent_dial *d)
{
    free(d->server_name);
    free(d->where);
    free(d);
}

static void dial_finish(caa_agent_dial *d, int status, ttrpc_transport *t, caa_error *err)
{
    caa_agent_dial_cb cb = d->cb;
    void *opaque = d->opaque;
    dial_free(d);
    cb(status, t, err, opaque);
}

static void dial_fail(caa_agent_dial *d, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void dial_fail(caa_agent_dial *d, int status, const char *fmt, ...)
{
    if (d->cancelled)
        status = -ECANCELED;
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    caa_error *err = caa_error_new(status, "%s: %s", d->where, d->cancelled ? "cancelled" : msg);
    dial_finish(d, status, NULL, err);
}

static void on_handshake(ttrpc_transport *t, int status, const caa_error *err, void *opaque)
{
    caa_agent_dial *d = opaque;
    d->tls = NULL;
    if (status == 0) {
        dial_finish(d, 0, t, NULL);
        return;
    }
    ttrpc_transport_close(t);
    dial_fail(d, status, "TLS handshake: %s", err ? caa_error_msg(err) : "failed");
}

static void try_abandon(tcp_try *try)
{
    if (!try)
        return;
    try->dial = NULL;
    ttrpc_transport_close(TAKE_PTR(try->tcp)); /* its connect reports cancelled */
}

static void on_connect(uv_connect_t *req, int status)
{
    tcp_try *try = CAA_CONTAINER_OF(req, tcp_try, req);
    caa_agent_dial *d = try->dial;
    ttrpc_transport *tcp = TAKE_PTR(try->tcp);
    if (d) {
        /* This try decides the dial: the other one is not needed any more. */
        try_abandon(d->connecting == try ? d->previous : d->connecting);
        d->connecting = d->previous = NULL;
    }
    free(try);
    if (!d)
        return; /* abandoned, its socket closed */

    if (status < 0 || d->cancelled) {
        if (tcp)
            ttrpc_transport_close(tcp);
        dial_fail(d, status < 0 ? status : -ECANCELED, "connect: %s", uv_strerror(status));
        return;
    }
    uv_tcp_nodelay((uv_tcp_t *)ttrpc_transport_uv_stream(tcp), 1);
    if (!d->ctx) {
        dial_finish(d, 0, tcp, NULL);
        return;
    }

    _cleanup_error_ caa_error *e = NULL;
    ttrpc_transport *tls =
        caa_tls_transport_new(d->loop, tcp, d->ctx, CAA_TLS_ROLE_CLIENT, d->server_name, &e);
    if (!tls) {
        ttrpc_transport_close(tcp);
        dial_fail(d, e->code, "TLS: %s", caa_error_msg(e));
        return;
    }
    d->tls = tls;
    if (caa_tls_transport_handshake(tls, on_handshake, d, &e) < 0) {
        d->tls = NULL;
        ttrpc_transport_close(tls);
        dial_fail(d, e->code, "TLS handshake: %s", caa_error_msg(e));
    }
}

/* Sends one SYN for d: a new socket and its connect request. */
static int try_start(caa_agent_dial *d, tcp_try **ret, caa_error **err)
{
    ttrpc_transport *tcp = ttrpc_transport_uv_new(d->loop, UV_TCP, err);
    if (!tcp)
        return -ENOMEM;
    tcp_try *try = xnew0(tcp_try, 1);
    try->tcp = tcp;
    try->dial = d;
    int r = uv_tcp_connect(&try->req, (uv_tcp_t *)ttrpc_transport_uv_stream(tcp), (struct sockaddr *)&d->addr,
                           on_connect);
    if (r < 0) {
        caa_error_set(err, r, "agent dial %s: %s", d->where, uv_strerror(r));
        ttrpc_transport_close(tcp);
        free(try);
        return r;
    }
    *ret = try;
    return 0;
}

static int dial_start(const caa_agent_dialer *dl, uv_loop_t *loop, const char *host, uint16_t port,
                      const char *server_name, caa_agent_dial_cb cb, void *opaque, caa_agent_dial **ret,
                      caa_error **err)
{
    struct sockaddr_storage ss;
    if (!host || !cb || !ret)
        return caa_error_set(err, -EINVAL, "agent dial: missing argument");
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)
        return caa_error_set(err, -EINVAL, "agent dial: '%s' is not a numeric IP address", host);
    SSL_CTX *ctx = dl->priv;
    if (ctx && (!server_name || !*server_name))
        return caa_error_set(err, -EINVAL, "agent dial: TLS needs a server name");

    caa_agent_dial *d = xnew0(caa_agent_dial, 1);
    d->loop = loop;
    d->addr = ss;
    d->ctx = ctx;
    d->server_name = server_name ? xstrdup(server_name) : NULL;
    d->where = strchr(host, ':') ? xasprintf("[%s]:%u", host, port) : xasprintf("%s:%u", host, port);
    d->cb = cb;
    d->opaque = opaque;
    int r = try_start(d, &d->connecting, err);
    if (r < 0) {
        dial_free(d);
        return r;
    }
    *ret = d;
    return 0;
}

static int dial_redial(caa_agent_dial *d, caa_error **err)
{
    if (d->cancelled || !d->connecting)
        return 0;
    tcp_try *fresh;
    int r = try_start(d, &fresh, err);
    if (r < 0)
        return r;
    try_abandon(d->previous);
    d->previous = d->connecting;
    d->connecting = fresh;
    return 1;
}

static void dial_cancel(caa_agent_dial *d)
{
    if (d->cancelled)
        return;
    d->cancelled = true;
    /* Closing what is in progress makes its callback report -ECANCELED. */
    if (d->tls)
        ttrpc_transport_close(d->tls);
    else if (d->connecting) {
        /* The newest try reports -ECANCELED; the one before goes quietly. */
        try_abandon(TAKE_PTR(d->previous));
        ttrpc_transport_close(TAKE_PTR(d->connecting->tcp));
    }
}

static const caa_agent_dialer tcp_dialer = {
    .name = "tcp",
    .dial = dial_start,
    .cancel = dial_cancel,
    .redial = dial_redial,
    .priv = NULL,
};

const caa_agent_dialer *caa_agent_dialer_tcp(void)
{
    return &tcp_dialer;
}

caa_agent_dialer *caa_agent_dialer_tls_new(SSL_CTX *ctx)
{
    if (!ctx || SSL_CTX_up_ref(ctx) != 1)
        return NULL;
    caa_agent_dialer *d = xnew0(caa_agent_dialer, 1);
    d->name = "tls";
    d->dial = dial_start;
    d->cancel = dial_cancel;
    d->redial = dial_redial;
    d->priv = ctx;
    return d;
}

void caa_agent_dialer_tls_free(caa_agent_dialer *d)
{
    if (!d)
        return;
    SSL_CTX_free(d->priv);
    free(d);
}
