/* In-flight provider operations (provider-op.h). */
#include "provider-op.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>

#include "xalloc.h"

static void set_release(caa_op_set *set)
{
    if (!caa_unref(&set->open))
        return;
    /* Last: the callback may free the provider that embeds the set. */
    set->closed(set->closed_opaque);
}

void caa_op_set_init(caa_op_set *set, uv_loop_t *loop, const char *what)
{
    *set = (caa_op_set){.loop = loop, .what = what};
    caa_refcount_init(&set->open, 1); /* the deferral handle, until close */
    caa_list_init(&set->ops);
    uv_timer_init(loop, &set->deferral);
}

bool caa_op_set_closing(const caa_op_set *set)
{
    return set->closing;
}

size_t caa_op_set_cancel(caa_op_set *set, void *opaque)
{
    size_t asked = 0;
    caa_list *pos, *tmp;
    caa_list_foreach_safe(pos, tmp, &set->ops)
    {
        caa_op *op = caa_op_of(pos);
        if (op->opaque != opaque || op->finished || op->cancel_requested)
            continue;
        op->cancel_requested = true;
        asked++;
        if (op->cls->cancel)
            op->cls->cancel(op);
    }
    return asked;
}

static void deferral_closed(uv_handle_t *h)
{
    set_release(CAA_CONTAINER_OF((uv_timer_t *)h, caa_op_set, deferral));
}

void caa_op_set_close(caa_op_set *set, void (*closed)(void *opaque), void *opaque)
{
    assert(!set->closing && "op set closed twice");
    set->closing = true;
    set->closed = closed;
    set->closed_opaque = opaque;
    caa_list *pos, *tmp;
    caa_list_foreach_safe(pos, tmp, &set->ops)
    {
        caa_op *op = caa_op_of(pos);
        if (!op->finished && op->cls->cancel)
            op->cls->cancel(op);
    }
    uv_close((uv_handle_t *)&set->deferral, deferral_closed);
}

static void op_delivered(uv_handle_t *h)
{
    caa_op *op = CAA_CONTAINER_OF((uv_timer_t *)h, caa_op, timer);
    caa_op_set *set = op->set;
    assert(op->finished && !op->delivered && "op delivered twice");
    op->delivered = true;
    caa_list_remove(&op->node);
    caa_error *err = op->err;
    op->err = NULL;
    switch (op->kind) {
    case CAA_OP_CREATE:
    case CAA_OP_GET: {
        caa_instance *inst = op->inst;
        op->inst = NULL;
        op->cb.instance(op->status, inst, err, op->opaque);
        break;
    }
    case CAA_OP_DELETE:
        op->cb.done(op->status, err, op->opaque);
        break;
    case CAA_OP_LIST: {
        caa_instance **list = op->list;
        op->list = NULL;
        op->cb.list(op->status, list, err, op->opaque);
        break;
    }
    }
    op->cls->free(op);
    set_release(set);
}

void caa_op_add(caa_op_set *set, caa_op *op, const caa_op_class *cls, caa_op_kind kind, caa_op_cb cb,
                void *opaque)
{
    assert(!set->closing && "op added to a closed set");
    assert(cls && cls->free && cb.done);
    *op = (caa_op){.set = set, .cls = cls, .kind = kind, .cb = cb, .opaque = opaque};
    uv_timer_init(set->loop, &op->timer);
    caa_list_append(&set->ops, &op->node);
    caa_ref(&set->open);
}

void caa_op_add_create(caa_op_set *set, caa_op *op, const caa_op_class *cls, caa_instance_cb cb, void *opaque)
{
    caa_op_add(set, op, cls, CAA_OP_CREATE, (caa_op_cb){.instance = cb}, opaque);
}

void caa_op_add_get(caa_op_set *set, caa_op *op, const caa_op_class *cls, caa_instance_cb cb, void *opaque)
{
    caa_op_add(set, op, cls, CAA_OP_GET, (caa_op_cb){.instance = cb}, opaque);
}

void caa_op_add_delete(caa_op_set *set, caa_op *op, const caa_op_class *cls, caa_done_cb cb, void *opaque)
{
    caa_op_add(set, op, cls, CAA_OP_DELETE, (caa_op_cb){.done = cb}, opaque);
}

void caa_op_add_list(caa_op_set *set, caa_op *op, const caa_op_class *cls, caa_list_cb cb, void *opaque)
{
    caa_op_add(set, op, cls, CAA_OP_LIST, (caa_op_cb){.list = cb}, opaque);
}

/* Records the decision and schedules delivery from the timer's close callback. */
static bool decide(caa_op *op, int status, caa_instance *inst, caa_instance **list, caa_error *err)
{
    if (op->finished) {
        caa_instance_free(inst);
        caa_instance_list_free(list);
        caa_error_free(err);
        return false;
    }
    op->finished = true;
    if (status < 0 && !err)
        err = caa_error_new(status, "%s: operation failed", op->set->what);
    op->status = status;
    op->inst = inst;
    op->list = list;
    op->err = err;
    uv_timer_stop(&op->timer);
    uv_close((uv_handle_t *)&op->timer, op_delivered);
    return true;
}

bool caa_op_finish_instance(caa_op *op, int status, caa_instance *inst, caa_error *err)
{
    assert(op->kind == CAA_OP_CREATE || op->kind == CAA_OP_GET);
    if (status < 0 && op->kind == CAA_OP_GET) {
        caa_instance_free(inst);
        inst = NULL;
    }
    return decide(op, status, inst, NULL, err);
}

bool caa_op_finish_done(caa_op *op, int status, caa_error *err)
{
    assert(op->kind == CAA_OP_DELETE);
    return decide(op, status, NULL, NULL, err);
}

bool caa_op_finish_list(caa_op *op, int status, caa_instance **list, caa_error *err)
{
    assert(op->kind == CAA_OP_LIST);
    if (status < 0) {
        caa_instance_list_free(list);
        list = NULL;
    } else if (!list) {
        list = xcalloc(1, sizeof(*list));
    }
    return decide(op, status, NULL, list, err);
}

bool caa_op_finish(caa_op *op, int status, caa_instance *inst, caa_error *err)
{
    switch (op->kind) {
    case CAA_OP_CREATE:
    case CAA_OP_GET:
        return caa_op_finish_instance(op, status, inst, err);
    case CAA_OP_DELETE:
        caa_instance_free(inst);
        return caa_op_finish_done(op, status, err);
    case CAA_OP_LIST:
        caa_instance_free(inst);
        return caa_op_finish_list(op, status, NULL, err);
    }
    abort();
}
