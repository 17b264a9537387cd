/* Two-way byte pump between transports (see sc-splice.h). */
#define LOG_COMPONENT "securecomms"
#include "sc-splice.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "log.h"
#include "xalloc.h"

#define HIGH_WATER (256 * 1024) /* bytes queued to one side before the other stops reading */

typedef struct pump pump;

typedef struct side {
    pump *s;
    ttrpc_transport *t;
    struct side *peer;
    size_t queued; /* bytes written to t, not yet completed */
    bool read_done;
    bool shut;
    bool closed;
    bool reading;
} side;

struct pump {
    char *id;
    char *name;
    caa_sc_splice_filter filter; /* on side a's bytes */
    side a, b;
    int open_sides;
};

typedef struct chunk {
    ttrpc_write_req req;
    side *to;
    uint8_t data[];
} chunk;

static void splice_close(pump *s)
{
    side *sides[2] = {&s->a, &s->b};
    for (int i = 0; i < 2; i++)
        if (!sides[i]->closed) {
            sides[i]->closed = true;
            ttrpc_transport_close(sides[i]->t);
        }
}

static void on_side_closed(ttrpc_transport *t)
{
    side *sd = t->owner;
    pump *s = sd->s;
    if (--s->open_sides == 0) {
        if (s->filter.free)
            s->filter.free(s->filter.state);
        free(s->id);
        free(s->name);
        free(s);
    }
}

static void maybe_resume(side *from)
{
    if (!from->read_done && !from->reading && !from->closed && from->peer->queued < HIGH_WATER) {
        from->reading = true;
        if (ttrpc_transport_read_start(from->t) < 0)
            splice_close(from->s);
    }
}

static void on_shutdown(ttrpc_transport *t, int status)
{
    side *sd = t->owner;
    (void)status;
    /* Both directions finished: nothing more to carry. */
    if (sd->peer->shut && sd->shut && !sd->closed)
        splice_close(sd->s);
}

static void on_written(ttrpc_write_req *req, int status)
{
    chunk *c = CAA_CONTAINER_OF(req, chunk, req);
    side *to = c->to;
    to->queued -= req->len;
    free(c);
    if (status < 0) {
        splice_close(to->s);
        return;
    }
    maybe_resume(to->peer);
}

static void on_read(ttrpc_transport *t, ssize_t nread, const uint8_t *data)
{
    side *from = t->owner;
    side *to = from->peer;
    if (from->closed)
        return;
    if (nread < 0) {
        from->read_done = true;
        if (nread != UV_EOF) {
            log_pod_debug(from->s->id, "tunnel %s: %s", from->s->name, uv_strerror((int)nread));
            splice_close(from->s);
            return;
        }
        /* EOF: pass the half-close on once the queued bytes are out. */
        to->shut = true;
        if (to->t->ops->shutdown(to->t, on_shutdown) < 0)
            splice_close(from->s);
        return;
    }
    caa_buf filtered = {0};
    if (from == &from->s->a && from->s->filter.feed) {
        _cleanup_error_ caa_error *e = NULL;
        if (from->s->filter.feed(from->s->filter.state, data, (size_t)nread, &filtered, &e) < 0) {
            log_pod_warn(from->s->id, "tunnel %s: %s; closing it", from->s->name, caa_error_msg(e));
            caa_buf_done(&filtered);
            splice_close(from->s);
            return;
        }
        data = (const uint8_t *)filtered.data;
        nread = (ssize_t)filtered.len;
        if (nread == 0) {
            caa_buf_done(&filtered);
            return;
        }
    }
    chunk *c = xmalloc(sizeof(*c) + (size_t)nread);
    memcpy(c->data, data, (size_t)nread);
    caa_buf_done(&filtered);
    c->req.data = c->data;
    c->req.len = (size_t)nread;
    c->req.cb = on_written;
    c->to = to;
    to->queued += (size_t)nread;
    if (ttrpc_transport_write(to->t, &c->req) < 0) {
        to->queued -= (size_t)nread;
        free(c);
        splice_close(from->s);
        return;
    }
    if (to->queued >= HIGH_WATER) {
        from->reading = false;
        ttrpc_transport_read_stop(from->t);
    }
}

static void splice_filtered(const char *id, const char *name, ttrpc_transport *a, ttrpc_transport *b,
                            const caa_sc_splice_filter *filter)
{
    pump *s = xnew0(pump, 1);
    if (filter)
        s->filter = *filter;
    s->id = xstrdup(id ? id : "");
    s->name = xstrdup(name ? name : "");
    s->open_sides = 2;
    side *sides[2] = {&s->a, &s->b};
    ttrpc_transport *ts[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        sides[i]->s = s;
        sides[i]->t = ts[i];
        sides[i]->peer = sides[1 - i];
        ts[i]->owner = sides[i];
        ts[i]->on_read = on_read;
        ts[i]->on_close = on_side_closed;
    }
    for (int i = 0; i < 2; i++)
        maybe_resume(sides[i]);
}

void caa_sc_splice(const char *id, const char *name, ttrpc_transport *a, ttrpc_transport *b)
{
    splice_filtered(id, name, a, b, NULL);
}

/* ----------------------------------------------------- connect, then pump */

typedef struct dial {
    uv_getaddrinfo_t gai;
    uv_connect_t conn;
    ttrpc_transport *chan;
    ttrpc_transport *tcp;
    char *id, *name, *where;
    uint16_t port;
    caa_sc_splice_filter filter;
} dial;

static void dial_free(dial *d)
{
    if (d->filter.free)
        d->filter.free(d->filter.state);
    free(d->id);
    free(d->name);
    free(d->where);
    free(d);
}

static void on_chan_closed_early(ttrpc_transport *t)
{
    (void)t;
}

static void dial_fail(dial *d, const char *what, int status)
{
    log_pod_warn(d->id, "tunnel %s: %s %s: %s; closing the channel", d->name, what, d->where,
                 uv_strerror(status));
    d->chan->on_close = on_chan_closed_early;
    ttrpc_transport_close(d->chan);
    dial_free(d);
}

static void on_tcp_connected(uv_connect_t *req, int status)
{
    dial *d = CAA_CONTAINER_OF(req, dial, conn);
    if (status < 0) {
        ttrpc_transport_close(d->tcp);
        dial_fail(d, "cannot connect to", status);
        return;
    }
    uv_tcp_nodelay((uv_tcp_t *)ttrpc_transport_uv_stream(d->tcp), 1);
    splice_filtered(d->id, d->name, d->chan, d->tcp, &d->filter);
    d->filter = (caa_sc_splice_filter){0}; /* the pump owns it now */
    dial_free(d);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    dial *d = CAA_CONTAINER_OF(req, dial, gai);
    if (status < 0 || !res) {
        uv_freeaddrinfo(res);
        dial_fail(d, "cannot resolve", status < 0 ? status : UV_EAI_NONAME);
        return;
    }
    d->tcp = ttrpc_transport_uv_new(req->loop, UV_TCP, NULL);
    int r = uv_tcp_connect(&d->conn, (uv_tcp_t *)ttrpc_transport_uv_stream(d->tcp), res->ai_addr,
                           on_tcp_connected);
    uv_freeaddrinfo(res);
    if (r < 0) {
        ttrpc_transport_close(d->tcp);
        dial_fail(d, "cannot connect to", r);
    }
}

void caa_sc_splice_to_tcp(uv_loop_t *loop, const char *id, const char *name, ttrpc_transport *chan,
                          const char *host, uint16_t port)
{
    caa_sc_splice_to_tcp_filtered(loop, id, name, chan, host, port, NULL);
}

void caa_sc_splice_to_tcp_filtered(uv_loop_t *loop, const char *id, const char *name, ttrpc_transport *chan,
                                   const char *host, uint16_t port, const caa_sc_splice_filter *filter)
{
    dial *d = xnew0(dial, 1);
    if (filter)
        d->filter = *filter;
    d->chan = chan;
    d->id = xstrdup(id ? id : "");
    d->name = xstrdup(name);
    d->where = xasprintf("%s:%u", host, (unsigned)port);
    d->port = port;
    char service[8];
    snprintf(service, sizeof(service), "%u", (unsigned)port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int r = uv_getaddrinfo(loop, &d->gai, on_resolved, host, service, &hints);
    if (r < 0)
        dial_fail(d, "cannot resolve", r);
}
