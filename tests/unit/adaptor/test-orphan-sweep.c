/* The orphan sweep against the scripted provider: what a pod knows (by id, or
 * by name while its create runs) is never deleted; the rest only after the
 * grace period, never in a dry run; failures are counted and retried. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "lifecycle-fixture.h"
#include "orphan-sweep.h"

typedef struct sweep_fx {
    caa_orphan_sweep *s;
    unsigned runs_done;
} sweep_fx;

static void on_run_done(void *opaque)
{
    ((sweep_fx *)opaque)->runs_done++;
}

static void sweep_new(fx *f, sweep_fx *sf, int64_t grace_ns, bool dry_run)
{
    caa_orphan_sweep_options o = {.interval_ns = 0, .grace_ns = grace_ns, .dry_run = dry_run};
    sf->s = caa_orphan_sweep_new(&f->m, &o);
}

/* Starts a run and answers its listing with the provider's live instances. */
static void run_listed(fx *f, sweep_fx *sf)
{
    assert_int_equal(caa_orphan_sweep_run(sf->s, on_run_done, sf), 0);
    assert_int_equal(caa_orphan_sweep_run(sf->s, NULL, NULL), -EBUSY); /* one at a time */
    scripted_list_answer(f->sp, 0);
}

/* A ready pod (i-1), a pod whose create is in flight (its instance exists under
 * its name, no id yet) and an instance nobody knows. */
static void populate(fx *f)
{
    fx_start(f);
    caa_pod *ready = fx_create(f, "sb1");
    fx_start_to_ready(f, ready, "i-1");
    caa_pod *starting = fx_create(f, "sb2");
    f->start = (fx_answer){0};
    assert_int_equal(fx_start_vm(f, starting), 0);
    scripted_add_instance(f->sp, "i-2", caa_pod_instance_name(starting));
    scripted_add_instance(f->sp, "i-orphan", "podvm-gone-12345678");
    assert_int_equal(scripted_live_instances(f->sp), 3);
}

static void test_deletes_only_unknown(void **state)
{
    fx *f = *state;
    sweep_fx sf = {0};
    populate(f);
    sweep_new(f, &sf, 0, false);
    run_listed(f, &sf);
    assert_string_equal(scripted_delete_target(f->sp), "i-orphan");
    scripted_delete_done(f->sp, 0);
    assert_int_equal(sf.runs_done, 1);
    assert_int_equal(scripted_pending(f->sp, SCRIPTED_DELETE), 0);
    assert_int_equal(scripted_live_instances(f->sp), 2);
    caa_orphan_sweep_stats st = caa_orphan_sweep_get_stats(sf.s);
    assert_int_equal(st.found, 1);
    assert_int_equal(st.deleted, 1);
    assert_int_equal(st.runs, 1);

    /* Nothing unknown is left. */
    run_listed(f, &sf);
    assert_int_equal(scripted_pending(f->sp, SCRIPTED_DELETE), 0);
    assert_int_equal(caa_orphan_sweep_get_stats(sf.s).last_found, 0);
    caa_orphan_sweep_free(sf.s);
}

static void test_grace_period(void **state)
{
    fx *f = *state;
    sweep_fx sf = {0};
    populate(f);
    sweep_new(f, &sf, 30 * 1000000LL, false); /* 30 ms */
    run_listed(f, &sf);
    assert_int_equal(scripted_pending(f->sp, SCRIPTED_DELETE), 0); /* seen for the first time */
    assert_int_equal(caa_orphan_sweep_get_stats(sf.s).found, 1);

    struct timespec ts = {0, 40 * 1000000L};
    nanosleep(&ts, NULL);
    uv_update_time(&f->loop);
    run_listed(f, &sf);
    assert_string_equal(scripted_delete_target(f->sp), "i-orphan");
    scripted_delete_done(f->sp, 0);
    assert_int_equal(caa_orphan_sweep_get_stats(sf.s).deleted, 1);
    caa_orphan_sweep_free(sf.s);
}

static void test_dry_run_deletes_nothing(void **state)
{
    fx *f = *state;
    sweep_fx sf = {0};
    populate(f);
    sweep_new(f, &sf, 0, true);
    run_listed(f, &sf);
    run_listed(f, &sf);
    assert_int_equal(sf.runs_done, 2);
    assert_int_equal(scripted_calls(f->sp, SCRIPTED_DELETE), 0);
    caa_orphan_sweep_stats st = caa_orphan_sweep_get_stats(sf.s);
    assert_int_equal(st.found, 2);
    assert_int_equal(st.deleted, 0);
    assert_int_equal(scripted_live_instances(f->sp), 3);
    caa_orphan_sweep_free(sf.s);
}

static void test_list_fails(void **state)
{
    fx *f = *state;
    sweep_fx sf = {0};
    populate(f);
    sweep_new(f, &sf, 0, false);
    scripted_fail_next(f->sp, SCRIPTED_LIST, -EACCES);
    assert_int_equal(caa_orphan_sweep_run(sf.s, on_run_done, &sf), -EACCES);
    assert_int_equal(caa_orphan_sweep_run(sf.s, on_run_done, &sf), 0);
    scripted_list_answer(f->sp, -EAGAIN);
    assert_int_equal(sf.runs_done, 1);
    assert_int_equal(scripted_calls(f->sp, SCRIPTED_DELETE), 0);
    assert_int_equal(caa_orphan_sweep_get_stats(sf.s).list_failures, 2);
    caa_orphan_sweep_free(sf.s);
}

static void test_delete_fails_then_retried(void **state)
{
    fx *f = *state;
    sweep_fx sf = {0};
    populate(f);
    sweep_new(f, &sf, 0, false);
    run_listed(f, &sf);
    scripted_delete_done(f->sp, -EIO);
    assert_int_equal(caa_orphan_sweep_get_stats(sf.s).delete_failures, 1);
    assert_int_equal(scripted_live_instances(f->sp), 3);
    run_listed(f, &sf);
    assert_string_equal(scripted_delete_target(f->sp), "i-orphan");
    scripted_delete_done(f->sp, 0);
    assert_int_equal(scripted_live_instances(f->sp), 2);
    caa_orphan_sweep_free(sf.s);
}

/* Adds n unknown instances i-o<k> (k from 1). */
static void add_orphans(fx *f, int n)
{
    for (int k = 1; k <= n; k++) {
        char id[32], name[64];
        snprintf(id, sizeof(id), "i-o%d", k);
        snprintf(name, sizeof(name), "podvm-o%d-12345678", k);
        scripted_add_instance(f->sp, id, name);
    }
}

/* The deletes of a run go out eight at a time; the run ends with the last answer. */
static void test_deletes_in_flight_bounded(void **state)
{
    fx *f = *state;
    sweep_fx sf = {0};
    populate(f);
    add_orphans(f, 20); /* 21 unknown with i-orphan */
    sweep_new(f, &sf, 0, false);
    run_listed(f, &sf);
    for (int answered = 0; answered < 21; answered++) {
        size_t want = 21 - answered < 8 ? (size_t)(21 - answered) : 8;
        assert_int_equal(scripted_pending(f->sp, SCRIPTED_DELETE), want);
        assert_int_equal(sf.runs_done, 0);
        scripted_delete_done(f->sp, answered == 3 ? -EIO : 0);
    }
    assert_int_equal(sf.runs_done, 1);
    assert_int_equal(scripted_calls(f->sp, SCRIPTED_DELETE), 21);
    caa_orphan_sweep_stats st = caa_orphan_sweep_get_stats(sf.s);
    assert_int_equal(st.deleted, 20);
    assert_int_equal(st.delete_failures, 1);
    assert_int_equal(scripted_live_instances(f->sp), 3);
    caa_orphan_sweep_free(sf.s);
}

/* An instance listed as unknown is claimed before its turn to be deleted
 * (the create in flight answers with its id): it is spared. Eight deletes
 * go out at once, so it is the ninth. */
static void test_known_after_listing_is_spared(void **state)
{
    fx *f = *state;
    sweep_fx sf = {0};
    populate(f);
    add_orphans(f, 7);
    scripted_add_instance(f->sp, "i-late", "podvm-late-12345678");
    sweep_new(f, &sf, 0, false);
    run_listed(f, &sf);
    assert_string_equal(scripted_delete_target(f->sp), "i-orphan");
    assert_int_equal(scripted_pending(f->sp, SCRIPTED_DELETE), 8);
    scripted_create_ok(f->sp, "i-late", FX_IP); /* sb2's create answers: i-late is its instance */
    for (int k = 0; k < 8; k++)
        scripted_delete_done(f->sp, 0);
    assert_int_equal(sf.runs_done, 1);
    assert_int_equal(scripted_pending(f->sp, SCRIPTED_DELETE), 0);
    assert_int_equal(scripted_calls(f->sp, SCRIPTED_DELETE), 8);
    assert_int_equal(caa_orphan_sweep_get_stats(sf.s).deleted, 8);
    fx_release(f, &f->setup, 0);
    fx_release(f, &f->proxy, 0);
    fx_assert_answer(&f->start, 0);
    caa_orphan_sweep_free(sf.s);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(test_deletes_only_unknown),          T(test_grace_period),
        T(test_dry_run_deletes_nothing),       T(test_list_fails),
        T(test_delete_fails_then_retried),     T(test_deletes_in_flight_bounded),
        T(test_known_after_listing_is_spared),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
