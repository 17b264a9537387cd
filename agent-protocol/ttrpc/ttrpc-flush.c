/* Write coalescing across one loop iteration (see ttrpc-flush.h). */
#include "ttrpc-flush.h"

#include "cleanup.h"
#include "ttrpc-conn.h"

static void flush_all(ttrpc_flusher *f)
{
    ttrpc_conn *list = f->list;
    f->list = NULL;
    while (list) {
        ttrpc_conn *c = list;
        list = c->flush_next;
        c->flush_next = NULL;
        c->flush_listed = false;
        ttrpc_conn_flush(c);
    }
    if (!f->list && f->active) {
        uv_check_stop(&f->check);
        uv_prepare_stop(&f->prepare);
        f->active = false;
    }
}

static void on_check(uv_check_t *h)
{
    flush_all(CAA_CONTAINER_OF(h, ttrpc_flusher, check));
}

static void on_prepare(uv_prepare_t *h)
{
    flush_all(CAA_CONTAINER_OF(h, ttrpc_flusher, prepare));
}

void ttrpc_flusher_init(ttrpc_flusher *f, uv_loop_t *loop)
{
    *f = (ttrpc_flusher){.loop = loop};
}

bool ttrpc_flusher_add(ttrpc_flusher *f, ttrpc_conn *c)
{
    if (f->closed)
        return false;
    if (c->flush_listed)
        return true;
    if (!f->handles) {
        uv_check_init(f->loop, &f->check);
        uv_prepare_init(f->loop, &f->prepare);
        uv_unref((uv_handle_t *)&f->check);
        uv_unref((uv_handle_t *)&f->prepare);
        f->handles = true;
    }
    if (!f->active) {
        uv_check_start(&f->check, on_check);
        uv_prepare_start(&f->prepare, on_prepare);
        f->active = true;
    }
    c->flush_listed = true;
    c->flush_next = f->list;
    f->list = c;
    return true;
}

void ttrpc_flusher_remove(ttrpc_flusher *f, ttrpc_conn *c)
{
    if (!c->flush_listed)
        return;
    for (ttrpc_conn **p = &f->list; *p; p = &(*p)->flush_next) {
        if (*p == c) {
            *p = c->flush_next;
            break;
        }
    }
    c->flush_next = NULL;
    c->flush_listed = false;
}

static void on_handle_closed(uv_handle_t *h)
{
    ttrpc_flusher *f = h->data;
    f->closing--;
    f->done(f->done_opaque);
}

int ttrpc_flusher_close(ttrpc_flusher *f, void (*done)(void *opaque), void *opaque)
{
    if (f->closed)
        return 0;
    f->closed = true;
    f->list = NULL; /* the owner closed every connection first */
    if (!f->handles)
        return 0;
    f->done = done;
    f->done_opaque = opaque;
    f->check.data = f;
    f->prepare.data = f;
    f->closing = 2;
    uv_close((uv_handle_t *)&f->check, on_handle_closed);
    uv_close((uv_handle_t *)&f->prepare, on_handle_closed);
    return 2;
}
