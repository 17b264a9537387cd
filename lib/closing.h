/* Closing an object made of parts that close asynchronously (libuv handles,
 * a connect in flight): one place for "already closing?", the count of parts
 * still open and the owner's done callback. Loop-thread only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "refcount.h"

typedef struct caa_closing {
    bool active;
    caa_refcount parts;
    void (*done)(void *opaque);
    void *done_opaque;
} caa_closing;

/* Starts closing, counting the caller's own part (released with
 * caa_closing_part_done once it has closed what it holds); false when the
 * close already started. done may be NULL. */
static inline bool caa_closing_begin(caa_closing *c, void (*done)(void *opaque), void *opaque)
{
    if (c->active)
        return false;
    c->active = true;
    c->done = done;
    c->done_opaque = opaque;
    caa_refcount_init(&c->parts, 1);
    return true;
}

/* One more part to wait for. */
static inline void caa_closing_add(caa_closing *c)
{
    caa_ref(&c->parts);
}

/* A part has closed. On the last one returns true and moves the done
 * callback to *ret, so the owner can free itself first, then call
 * caa_closing_notify(ret). */
static inline bool caa_closing_part_done(caa_closing *c, caa_closing *ret)
{
    if (!caa_unref(&c->parts))
        return false;
    *ret = *c;
    return true;
}

static inline void caa_closing_notify(const caa_closing *c)
{
    if (c->done)
        c->done(c->done_opaque);
}
