/* Namespace relays for secure comms inbounds (see forwarder-sc-netns.h). */
#define LOG_COMPONENT "forwarder/securecomms"
#include "forwarder-sc-netns.h"

#include <stdlib.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "sc-netns.h"
#include "sc-splice.h"
#include "ttrpc-transport.h"
#include "xalloc.h"

typedef struct relay {
    uv_tcp_t tcp;
    fwd_sc_relays *owner;
    char *name;
    uint16_t port;
} relay;

struct fwd_sc_relays {
    uv_loop_t *loop;
    relay **items;
    size_t n;
    size_t open;
    void (*done)(void *opaque);
    void *done_opaque;
};

static void on_connection(uv_stream_t *server, int status)
{
    relay *rl = server->data;
    if (status < 0)
        return;
    ttrpc_transport *t = ttrpc_transport_uv_new(server->loop, UV_TCP, NULL);
    if (uv_accept(server, ttrpc_transport_uv_stream(t)) < 0) {
        ttrpc_transport_close(t);
        return;
    }
    /* To sshd's remote forward listener in the VM's own namespace. */
    caa_sc_splice_to_tcp(server->loop, "", rl->name, t, "127.0.0.1", rl->port);
}

fwd_sc_relays *fwd_sc_relays_start(uv_loop_t *loop, const caa_sc_tags *inbounds)
{
    fwd_sc_relays *r = xnew0(fwd_sc_relays, 1);
    r->loop = loop;
    r->items = xnew0(relay *, inbounds->n + 1);
    for (size_t i = 0; i < inbounds->n; i++) {
        const caa_sc_tag *t = &inbounds->items[i];
        if (!t->netns)
            continue;
        _cleanup_error_ caa_error *e = NULL;
        int fd = caa_sc_netns_listen(t->netns, t->port, 64, &e);
        if (fd < 0) {
            log_error("secure comms: inbound %s: %s", t->name, caa_error_msg(e));
            continue;
        }
        relay *rl = xnew0(relay, 1);
        rl->owner = r;
        rl->name = xstrdup(t->name);
        rl->port = t->port;
        uv_tcp_init(loop, &rl->tcp);
        rl->tcp.data = rl;
        r->items[r->n++] = rl;
        int rc = uv_tcp_open(&rl->tcp, fd);
        if (rc < 0)
            close(fd);
        else
            rc = uv_listen((uv_stream_t *)&rl->tcp, 64, on_connection);
        if (rc < 0)
            log_error("secure comms: inbound %s in namespace %s: %s", t->name, t->netns, uv_strerror(rc));
        else
            log_info("secure comms: inbound %s: 127.0.0.1:%u in namespace %s -> 127.0.0.1:%u (SSH)", t->name,
                     (unsigned)t->port, t->netns, (unsigned)t->port);
    }
    return r;
}

static void finish(fwd_sc_relays *r)
{
    void (*done)(void *) = r->done;
    void *opaque = r->done_opaque;
    free(r->items);
    free(r);
    if (done)
        done(opaque);
}

static void on_closed(uv_handle_t *h)
{
    relay *rl = h->data;
    fwd_sc_relays *r = rl->owner;
    free(rl->name);
    free(rl);
    if (--r->open == 0)
        finish(r);
}

void fwd_sc_relays_close(fwd_sc_relays *r, void (*done)(void *opaque), void *opaque)
{
    r->done = done;
    r->done_opaque = opaque;
    r->open = r->n;
    if (r->n == 0) {
        finish(r); /* nothing to wait for; the caller allows a synchronous done */
        return;
    }
    for (size_t i = 0; i < r->n; i++)
        uv_close((uv_handle_t *)&r->items[i]->tcp, on_closed);
}
