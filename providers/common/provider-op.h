/* In-flight provider operations: the one way the libvirt, aws and azure
 * providers hold a request from the daemon until its callback.
 *
 * A provider embeds a caa_op in each request and registers it with a typed
 * caa_op_add_*() that stores the callback of that kind (no casts). The
 * request's steps then run as the provider likes; exactly one caa_op_finish_*()
 * decides the result (a later one is dropped: a result arriving after a
 * cancel). The callback runs after that, always on the loop thread and never
 * inside the call that decided it: from the close callback of the op's timer.
 * Then the class's free() releases the request.
 *
 * Early end of one request (StopVM during a create): caa_op_set_cancel()
 * asks the undecided ops of one caller (its opaque) to stop through the same
 * class cancel(), at most once per op; each still delivers exactly once.
 *
 * Shutdown: caa_op_set_close() asks every undecided op to stop (class
 * cancel()), which must lead to a finish, now or later (typically -ECANCELED
 * with whatever was created so far). Once every op has delivered, the set's
 * closed callback runs, later, on the loop. So at teardown each callback still
 * runs exactly once. Loop thread only. */
#pragma once

#include <stdbool.h>

#include <uv.h>

#include "list.h"
#include "provider.h"
#include "refcount.h"

typedef enum caa_op_kind {
    CAA_OP_CREATE,
    CAA_OP_DELETE,
    CAA_OP_LIST,
    CAA_OP_GET,
} caa_op_kind;

typedef struct caa_op caa_op;

/* The callback of an op, by kind. */
typedef union caa_op_cb {
    caa_instance_cb instance; /* create, get */
    caa_done_cb done;         /* delete */
    caa_list_cb list;         /* list */
} caa_op_cb;

typedef struct caa_op_class {
    /* Asked for an op not yet finished, at shutdown (set closing) or for its
     * caller (op->cancel_requested): stop the work so that it finishes, a
     * create with what it made so far. May run twice for one op (a caller's
     * cancel, then the shutdown). NULL: the op finishes by itself (e.g. a
     * worker queue that cancels its jobs at shutdown). */
    void (*cancel)(caa_op *op);
    /* Frees the request embedding op, after its callback ran. */
    void (*free)(caa_op *op);
} caa_op_class;

typedef struct caa_op_set {
    uv_loop_t *loop;
    caa_list ops;        /* registered, not yet delivered */
    uv_timer_t deferral; /* closed by caa_op_set_close: runs `closed` later, never inside it */
    caa_refcount open;   /* ops + the deferral handle */
    bool closing;
    void (*closed)(void *opaque);
    void *closed_opaque;
    const char *what; /* "libvirt": names the provider in default error messages */
} caa_op_set;

struct caa_op {
    caa_list node;
    caa_op_set *set;
    const caa_op_class *cls;
    caa_op_kind kind;
    caa_op_cb cb;
    void *opaque;
    /* The provider's own timer for waits between steps (polling, deferred
     * starts). caa_op_finish_* stops it; do not close it. */
    uv_timer_t timer;
    bool finished;
    bool delivered;
    bool cancel_requested; /* its caller asked it to stop early (caa_op_set_cancel) */
    /* The decided result, held until delivery. */
    int status;
    caa_error *err;
    caa_instance *inst;
    caa_instance **list;
};

void caa_op_set_init(caa_op_set *set, uv_loop_t *loop, const char *what);
/* Cancels every undecided op; closed(opaque) runs later, on the loop, once
 * every op has delivered. No ops may be added afterwards. Call once. */
void caa_op_set_close(caa_op_set *set, void (*closed)(void *opaque), void *opaque);
bool caa_op_set_closing(const caa_op_set *set);
/* Asks every undecided op started with opaque to stop early (class cancel(),
 * once per op); each still delivers exactly once, typically -ECANCELED.
 * Returns how many were asked. */
size_t caa_op_set_cancel(caa_op_set *set, void *opaque);
/* Ops registered and not yet finished, oldest first: for provider events that
 * wake waiting ops. Iterate with caa_list_foreach_safe and caa_op_of(). */
#define caa_op_of(list_node) caa_list_entry(list_node, caa_op, node)

/* Register op (zeroed or reused after free) in set; the callback type names
 * the kind. caa_op_add() is the same for code that starts several kinds the
 * same way: cb must be set through the member of its kind, e.g.
 * caa_op_add(set, op, cls, CAA_OP_DELETE, (caa_op_cb){.done = cb}, opaque). */
void caa_op_add(caa_op_set *set, caa_op *op, const caa_op_class *cls, caa_op_kind kind, caa_op_cb cb,
                void *opaque);
void caa_op_add_create(caa_op_set *set, caa_op *op, const caa_op_class *cls, caa_instance_cb cb,
                       void *opaque);
void caa_op_add_get(caa_op_set *set, caa_op *op, const caa_op_class *cls, caa_instance_cb cb, void *opaque);
void caa_op_add_delete(caa_op_set *set, caa_op *op, const caa_op_class *cls, caa_done_cb cb, void *opaque);
void caa_op_add_list(caa_op_set *set, caa_op *op, const caa_op_class *cls, caa_list_cb cb, void *opaque);

/* Decide the result (ownership of inst/list/err moves to the op). A failure
 * without err gets a generic one. create: inst may accompany a failure (what
 * the caller must delete); get: inst is dropped on failure; list: the list is
 * dropped on failure and is an empty list on success when NULL. Returns false
 * (and frees what it was given) when the op was already decided. */
bool caa_op_finish_instance(caa_op *op, int status, caa_instance *inst, caa_error *err);
bool caa_op_finish_done(caa_op *op, int status, caa_error *err);
bool caa_op_finish_list(caa_op *op, int status, caa_instance **list, caa_error *err);
/* Finishes op by kind: delete ignores (frees) inst, list takes no inst. */
bool caa_op_finish(caa_op *op, int status, caa_instance *inst, caa_error *err);

static inline bool caa_op_finished(const caa_op *op)
{
    return op->finished;
}
