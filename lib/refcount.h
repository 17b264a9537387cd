/* Reference count of an object owned by several in-flight operations (a
 * provider, a connection with handles closing). Dropping a reference that was
 * never taken is an ownership bug: it asserts instead of wrapping to UINT_MAX
 * and freeing the object twice. Loop-thread only (not atomic). */
#pragma once

#include <assert.h>
#include <limits.h>
#include <stdbool.h>

typedef struct caa_refcount {
    unsigned n;
} caa_refcount;

static inline void caa_refcount_init(caa_refcount *r, unsigned n)
{
    r->n = n;
}

static inline void caa_ref(caa_refcount *r)
{
    assert(r->n < UINT_MAX && "reference count overflow");
    r->n++;
}

/* Returns true when that was the last reference. */
static inline bool caa_unref(caa_refcount *r)
{
    assert(r->n > 0 && "reference count underflow (released twice?)");
    return --r->n == 0;
}

static inline unsigned caa_refcount_get(const caa_refcount *r)
{
    return r->n;
}
