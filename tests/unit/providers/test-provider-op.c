/* providers/common/provider-op: typed registration, one delivery per op on
 * the loop (never inside the deciding call), late results dropped, shutdown
 * cancels what is in flight and reports after the last delivery; a caller's
 * cancel asks only its own ops, once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdlib.h>
#include <cmocka.h>

#include <uv.h>

#include "provider-op.h"
#include "xalloc.h"

typedef struct req {
    caa_op op;
    bool cancel_asked;
    int cancel_calls;
    bool finish_on_cancel; /* cancel decides right away (else: "later", by the test) */
    bool *freed;
} req;

typedef struct seen {
    int calls;
    int status;
    int err_code;
    bool had_err;
    caa_instance *inst;
    size_t list_len;
    bool list_null;
} seen;

static void req_cancel(caa_op *op)
{
    req *r = CAA_CONTAINER_OF(op, req, op);
    r->cancel_asked = true;
    r->cancel_calls++;
    if (r->finish_on_cancel)
        caa_op_finish(op, -ECANCELED, NULL, caa_error_new(-ECANCELED, "cancelled"));
}

static void req_free(caa_op *op)
{
    req *r = CAA_CONTAINER_OF(op, req, op);
    if (r->freed)
        *r->freed = true;
    free(r);
}

static const caa_op_class req_class = {.cancel = req_cancel, .free = req_free};
static const caa_op_class req_class_nocancel = {.free = req_free};

static void record_err(seen *s, int status, caa_error *err)
{
    s->calls++;
    s->status = status;
    s->had_err = err != NULL;
    s->err_code = err ? err->code : 0;
    caa_error_free(err);
}

static void on_instance(int status, caa_instance *inst, caa_error *err, void *opaque)
{
    seen *s = opaque;
    record_err(s, status, err);
    caa_instance_free(s->inst);
    s->inst = inst;
}

static void on_done(int status, caa_error *err, void *opaque)
{
    record_err(opaque, status, err);
}

static void on_list(int status, caa_instance **list, caa_error *err, void *opaque)
{
    seen *s = opaque;
    record_err(s, status, err);
    s->list_null = list == NULL;
    s->list_len = 0;
    for (size_t i = 0; list && list[i]; i++)
        s->list_len++;
    caa_instance_list_free(list);
}

static int closed_calls;
static void on_closed(void *opaque)
{
    (void)opaque;
    closed_calls++;
}

static void run_and_close(uv_loop_t *loop, caa_op_set *set)
{
    if (!caa_op_set_closing(set))
        caa_op_set_close(set, on_closed, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void test_delivers_once_later(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    caa_op_set set;
    caa_op_set_init(&set, &loop, "test");
    seen s = {0};
    bool freed = false;
    req *r = xcalloc(1, sizeof(*r));
    caa_op_add_create(&set, &r->op, &req_class, on_instance, &s);
    r->freed = &freed;
    assert_true(caa_op_finish_instance(&r->op, 0, caa_instance_new("id-1", "name-1"), NULL));
    /* Decided, not delivered: the callback never runs inside the finish. */
    assert_int_equal(s.calls, 0);
    assert_true(caa_op_finished(&r->op));
    /* A late answer (after a cancel, say) is dropped and freed. */
    assert_false(
        caa_op_finish_instance(&r->op, -EIO, caa_instance_new("id-2", "x"), caa_error_new(-EIO, "late")));
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.status, 0);
    assert_false(s.had_err);
    assert_string_equal(s.inst->id, "id-1");
    assert_true(freed);
    closed_calls = 0;
    run_and_close(&loop, &set);
    assert_int_equal(closed_calls, 1);
    caa_instance_free(s.inst);
}

static void test_failure_shapes(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    caa_op_set set;
    caa_op_set_init(&set, &loop, "test");
    seen create = {0}, get = {0}, del = {0}, list_ok = {0}, list_bad = {0};
    req *rc = xcalloc(1, sizeof(*rc)), *rg = xcalloc(1, sizeof(*rg)), *rd = xcalloc(1, sizeof(*rd));
    req *rl = xcalloc(1, sizeof(*rl)), *rb = xcalloc(1, sizeof(*rb));
    caa_op_add_create(&set, &rc->op, &req_class, on_instance, &create);
    caa_op_add_get(&set, &rg->op, &req_class, on_instance, &get);
    caa_op_add_delete(&set, &rd->op, &req_class, on_done, &del);
    caa_op_add_list(&set, &rl->op, &req_class, on_list, &list_ok);
    caa_op_add_list(&set, &rb->op, &req_class, on_list, &list_bad);
    /* A failed create may hand back what it left; a failed get never does. */
    caa_op_finish_instance(&rc->op, -EIO, caa_instance_new("left", "behind"), NULL);
    caa_op_finish_instance(&rg->op, -ENOENT, caa_instance_new("x", "y"), NULL);
    caa_op_finish(&rd->op, 0, caa_instance_new("ignored", "by delete"), NULL);
    caa_op_finish_list(&rl->op, 0, NULL, NULL);
    caa_instance **some = xcalloc(2, sizeof(*some));
    some[0] = caa_instance_new("a", "b");
    caa_op_finish_list(&rb->op, -EACCES, some, caa_error_new(-EACCES, "denied"));
    uv_run(&loop, UV_RUN_DEFAULT);

    assert_int_equal(create.calls, 1);
    assert_int_equal(create.err_code, -EIO); /* a generic error was added */
    assert_string_equal(create.inst->id, "left");
    assert_int_equal(get.calls, 1);
    assert_null(get.inst);
    assert_int_equal(get.err_code, -ENOENT);
    assert_int_equal(del.calls, 1);
    assert_int_equal(del.status, 0);
    assert_int_equal(list_ok.calls, 1);
    assert_false(list_ok.list_null); /* success: an empty list, not NULL */
    assert_int_equal(list_ok.list_len, 0);
    assert_int_equal(list_bad.calls, 1);
    assert_true(list_bad.list_null);
    assert_int_equal(list_bad.err_code, -EACCES);
    closed_calls = 0;
    run_and_close(&loop, &set);
    assert_int_equal(closed_calls, 1);
    caa_instance_free(create.inst);
}

static void test_close_cancels_in_flight(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    caa_op_set set;
    caa_op_set_init(&set, &loop, "test");
    seen now = {0}, later = {0}, self = {0}, done_before = {0};
    req *r_now = xcalloc(1, sizeof(*r_now)), *r_later = xcalloc(1, sizeof(*r_later));
    req *r_self = xcalloc(1, sizeof(*r_self)), *r_done = xcalloc(1, sizeof(*r_done));
    caa_op_add_delete(&set, &r_now->op, &req_class, on_done, &now);
    r_now->finish_on_cancel = true;
    caa_op_add_get(&set, &r_later->op, &req_class, on_instance, &later);
    caa_op_add_list(&set, &r_self->op, &req_class_nocancel, on_list, &self);
    caa_op_add_delete(&set, &r_done->op, &req_class, on_done, &done_before);
    caa_op_finish_done(&r_done->op, 0, NULL);

    closed_calls = 0;
    caa_op_set_close(&set, on_closed, NULL);
    assert_true(r_now->cancel_asked);
    assert_true(r_later->cancel_asked);
    assert_false(r_done->cancel_asked); /* already decided: not asked */
    assert_int_equal(now.calls + later.calls + self.calls + done_before.calls, 0);

    /* The loop delivers what is decided; the set stays open for the rest. */
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(now.calls, 1);
    assert_int_equal(now.status, -ECANCELED);
    assert_int_equal(done_before.calls, 1);
    assert_int_equal(done_before.status, 0);
    assert_int_equal(closed_calls, 0);

    /* The others answer later (their work came back cancelled). */
    caa_op_finish_instance(&r_later->op, -ECANCELED, NULL, NULL);
    caa_op_finish_list(&r_self->op, -ECANCELED, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(later.calls, 1);
    assert_int_equal(later.err_code, -ECANCELED);
    assert_int_equal(self.calls, 1);
    assert_int_equal(closed_calls, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_close_empty_is_deferred(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    caa_op_set set;
    caa_op_set_init(&set, &loop, "test");
    closed_calls = 0;
    caa_op_set_close(&set, on_closed, NULL);
    assert_int_equal(closed_calls, 0); /* never inside close */
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(closed_calls, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* The op timer is the provider's between steps; finishing stops it. */
static void never(uv_timer_t *t)
{
    (void)t;
    fail_msg("op timer fired after the op was finished");
}

static void test_finish_stops_op_timer(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    caa_op_set set;
    caa_op_set_init(&set, &loop, "test");
    seen s = {0};
    req *r = xcalloc(1, sizeof(*r));
    caa_op_add_delete(&set, &r->op, &req_class, on_done, &s);
    uv_timer_start(&r->op.timer, never, 10, 0);
    caa_op_finish_done(&r->op, -ETIMEDOUT, caa_error_new(-ETIMEDOUT, "slow"));
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.err_code, -ETIMEDOUT);
    run_and_close(&loop, &set);
}

/* caa_op_set_cancel: the ops of one caller (its opaque), undecided ones only,
 * once each. */
static void test_cancel_by_caller(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    caa_op_set set;
    caa_op_set_init(&set, &loop, "test");
    seen mine = {0}, theirs = {0};
    req *r_mine = xcalloc(1, sizeof(*r_mine)), *r_later = xcalloc(1, sizeof(*r_later));
    req *r_done = xcalloc(1, sizeof(*r_done)), *r_theirs = xcalloc(1, sizeof(*r_theirs));
    caa_op_add_create(&set, &r_mine->op, &req_class, on_instance, &mine);
    r_mine->finish_on_cancel = true;
    caa_op_add_get(&set, &r_later->op, &req_class, on_instance, &mine);
    caa_op_add_delete(&set, &r_done->op, &req_class, on_done, &mine);
    caa_op_finish_done(&r_done->op, 0, NULL);
    caa_op_add_delete(&set, &r_theirs->op, &req_class, on_done, &theirs);

    assert_int_equal(caa_op_set_cancel(&set, &mine), 2);
    assert_int_equal(r_mine->cancel_calls, 1);
    assert_int_equal(r_later->cancel_calls, 1);
    assert_false(r_done->cancel_asked);   /* decided already */
    assert_false(r_theirs->cancel_asked); /* another caller's */
    assert_true(r_later->op.cancel_requested);
    assert_int_equal(mine.calls, 0); /* never inside the cancel */
    /* Asking again asks nobody twice. */
    assert_int_equal(caa_op_set_cancel(&set, &mine), 0);
    assert_int_equal(r_later->cancel_calls, 1);

    uv_run(&loop, UV_RUN_NOWAIT);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(mine.calls, 2); /* the cancelled create and the decided delete */
    /* The later one answers once; a second answer is dropped. */
    assert_true(caa_op_finish_instance(&r_later->op, -ECANCELED, NULL, NULL));
    assert_false(caa_op_finish_instance(&r_later->op, 0, caa_instance_new("late", "x"), NULL));
    caa_op_finish_done(&r_theirs->op, 0, NULL);
    closed_calls = 0;
    run_and_close(&loop, &set);
    assert_int_equal(mine.calls, 3);
    assert_int_equal(mine.err_code, -ECANCELED);
    assert_null(mine.inst);
    assert_int_equal(theirs.calls, 1);
    assert_int_equal(theirs.status, 0);
    assert_int_equal(closed_calls, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delivers_once_later),     cmocka_unit_test(test_failure_shapes),
        cmocka_unit_test(test_close_cancels_in_flight), cmocka_unit_test(test_close_empty_is_deferred),
        cmocka_unit_test(test_finish_stops_op_timer),   cmocka_unit_test(test_cancel_by_caller),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
