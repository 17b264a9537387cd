/* kata-agent connection of the forwarder (see agent-link.h). */
#define LOG_COMPONENT "forwarder/agent"

#include "agent-link.h"

#include <errno.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "log.h"
#include "ttrpc.h"
#include "xalloc.h"
#include "closing.h"

#define BACKOFF_FIRST_MS 50
#define BACKOFF_MAX_MS 1000

struct fwd_agent_link {
    uv_loop_t *loop;
    char *path;
    char *name; /* basename, to match directory events */
    caa_relay *relay;
    void (*connected)(bool first, void *opaque);
    void *opaque;

    uv_timer_t timer;
    uv_fs_event_t watch;
    bool watching;
    bool connecting;
    bool up;
    bool ever_up;
    bool waiting_logged;
    uint64_t backoff_ms;

    caa_closing close;
};

static void try_connect(fwd_agent_link *l);

static void finish_part(fwd_agent_link *l)
{
    caa_closing closed;
    if (!caa_closing_part_done(&l->close, &closed))
        return;
    free(l->path);
    free(l->name);
    free(l);
    caa_closing_notify(&closed);
}

static void on_retry(uv_timer_t *t)
{
    try_connect(CAA_CONTAINER_OF(t, fwd_agent_link, timer));
}

static void schedule_retry(fwd_agent_link *l)
{
    if (l->close.active)
        return;
    uv_timer_start(&l->timer, on_retry, l->backoff_ms, 0);
    l->backoff_ms = l->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : l->backoff_ms * 2;
}

static void on_connected(ttrpc_client *c, int status, const caa_error *err, void *opaque)
{
    fwd_agent_link *l = opaque;
    l->connecting = false;
    if (l->close.active) {
        if (c)
            ttrpc_client_close(c);
        finish_part(l);
        return;
    }
    if (status < 0) {
        if (!l->waiting_logged) {
            l->waiting_logged = true;
            log_info("waiting for the kata-agent at %s (%s)", l->path,
                     err ? caa_error_msg(err) : "no answer");
        } else {
            log_debug("kata-agent at %s: %s", l->path, err ? caa_error_msg(err) : "no answer");
        }
        schedule_retry(l);
        return;
    }
    bool first = !l->ever_up;
    l->up = true;
    l->ever_up = true;
    l->waiting_logged = false;
    l->backoff_ms = BACKOFF_FIRST_MS;
    uv_timer_stop(&l->timer);
    log_info("%s the kata-agent at %s", first ? "connected to" : "reconnected to", l->path);
    caa_relay_set_upstream(l->relay, c);
    if (l->connected)
        l->connected(first, l->opaque);
}

static void try_connect(fwd_agent_link *l)
{
    if (l->close.active || l->connecting || l->up)
        return;
    uv_timer_stop(&l->timer);
    _cleanup_error_ caa_error *e = NULL;
    l->connecting = true;
    if (ttrpc_client_connect_unix(l->loop, l->path, on_connected, l, &e) < 0) {
        l->connecting = false;
        log_debug("kata-agent at %s: %s", l->path, caa_error_msg(e));
        schedule_retry(l);
    }
}

static void on_dir_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    fwd_agent_link *l = CAA_CONTAINER_OF(h, fwd_agent_link, watch);
    (void)events;
    if (status < 0 || l->up || l->connecting)
        return;
    if (filename && strcmp(filename, l->name) != 0)
        return;
    l->backoff_ms = BACKOFF_FIRST_MS;
    try_connect(l);
}

void fwd_agent_link_lost(fwd_agent_link *l)
{
    if (l->close.active)
        return;
    l->up = false;
    log_warn("connection to the kata-agent at %s lost, reconnecting", l->path);
    l->backoff_ms = BACKOFF_FIRST_MS;
    try_connect(l);
}

int fwd_agent_link_start(uv_loop_t *loop, const char *socket_path, caa_relay *relay,
                         void (*connected)(bool first, void *opaque), void *opaque, fwd_agent_link **ret,
                         caa_error **err)
{
    if (!loop || !socket_path || !*socket_path || !relay || !ret)
        return caa_error_set(err, -EINVAL, "agent link: missing argument");
    fwd_agent_link *l = xnew0(fwd_agent_link, 1);
    l->loop = loop;
    l->path = xstrdup(socket_path);
    _cleanup_free_ char *tmp = xstrdup(socket_path);
    l->name = xstrdup(basename(tmp));
    l->relay = relay;
    l->connected = connected;
    l->opaque = opaque;
    l->backoff_ms = BACKOFF_FIRST_MS;
    uv_timer_init(loop, &l->timer);

    /* The directory may not exist yet: then the timer alone retries. */
    _cleanup_free_ char *dir = xstrdup(socket_path);
    if (uv_fs_event_init(loop, &l->watch) == 0) {
        l->watching = true;
        if (uv_fs_event_start(&l->watch, on_dir_event, dirname(dir), 0) < 0)
            log_debug("cannot watch the directory of %s, polling", socket_path);
    }
    *ret = l;
    try_connect(l);
    return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
    finish_part(h->data);
}

void fwd_agent_link_close(fwd_agent_link *l, void (*done)(void *opaque), void *opaque)
{
    if (!l || !caa_closing_begin(&l->close, done, opaque))
        return;
    uv_timer_stop(&l->timer);
    l->timer.data = l;
    uv_close((uv_handle_t *)&l->timer, on_handle_closed);
    if (l->watching) {
        caa_closing_add(&l->close);
        l->watch.data = l;
        uv_close((uv_handle_t *)&l->watch, on_handle_closed);
    }
    if (l->connecting)
        caa_closing_add(&l->close); /* on_connected finishes it */
}
