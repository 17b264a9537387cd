/* Pod state machine: the transition table, and caa_pod_set_state() which
 * persists before it changes anything and rejects forbidden moves. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fs.h"
#include "manager.h"
#include "pod-state.h"
#include "pod-internal.h"
#include "strv.h"
#include "test-tmpdir.h"
#include "xalloc.h"

static void test_names(void **state)
{
    (void)state;
    for (int s = 0; s < CAA_POD_STATE_COUNT; s++) {
        caa_pod_state back;
        assert_int_equal(caa_pod_state_from_name(caa_pod_state_name((caa_pod_state)s), &back), 0);
        assert_int_equal(back, s);
    }
    caa_pod_state x;
    assert_int_equal(caa_pod_state_from_name("READY", &x), -EINVAL);
    assert_int_equal(caa_pod_state_from_name("", &x), -EINVAL);
    assert_int_equal(caa_pod_state_from_name(NULL, &x), -EINVAL);
    assert_string_equal(caa_pod_state_name((caa_pod_state)99), "invalid");
}

static void test_table(void **state)
{
    (void)state;
    /* The happy path and the failure/stop edges. */
    assert_true(caa_pod_state_transition_allowed(CAA_POD_CREATED, CAA_POD_PROVISIONING));
    assert_true(caa_pod_state_transition_allowed(CAA_POD_PROVISIONING, CAA_POD_READY));
    assert_true(caa_pod_state_transition_allowed(CAA_POD_PROVISIONING, CAA_POD_BOOTING));
    assert_true(caa_pod_state_transition_allowed(CAA_POD_BOOTING, CAA_POD_CONNECTING));
    assert_true(caa_pod_state_transition_allowed(CAA_POD_CONNECTING, CAA_POD_READY));
    assert_true(caa_pod_state_transition_allowed(CAA_POD_READY, CAA_POD_STOPPING));
    assert_true(caa_pod_state_transition_allowed(CAA_POD_STOPPING, CAA_POD_GONE));
    assert_true(caa_pod_state_transition_allowed(CAA_POD_CREATED, CAA_POD_STOPPING));
    assert_true(caa_pod_state_transition_allowed(CAA_POD_PROVISIONING, CAA_POD_STOPPING));
    assert_true(caa_pod_state_transition_allowed(CAA_POD_PROVISIONING, CAA_POD_FAILED));
    assert_true(caa_pod_state_transition_allowed(CAA_POD_FAILED, CAA_POD_STOPPING));
    assert_true(caa_pod_state_transition_allowed(CAA_POD_STOPPING, CAA_POD_FAILED));

    /* Forbidden ones. */
    assert_false(caa_pod_state_transition_allowed(CAA_POD_CREATED, CAA_POD_READY));
    assert_false(caa_pod_state_transition_allowed(CAA_POD_CREATED, CAA_POD_GONE));
    assert_false(caa_pod_state_transition_allowed(CAA_POD_CREATED, CAA_POD_FAILED));
    assert_false(caa_pod_state_transition_allowed(CAA_POD_READY, CAA_POD_PROVISIONING));
    assert_false(caa_pod_state_transition_allowed(CAA_POD_READY, CAA_POD_CREATED));
    assert_true(caa_pod_state_transition_allowed(CAA_POD_READY, CAA_POD_FAILED)); /* its VM is gone */
    assert_false(caa_pod_state_transition_allowed(CAA_POD_STOPPING, CAA_POD_READY));
    assert_false(caa_pod_state_transition_allowed(CAA_POD_FAILED, CAA_POD_READY));
    assert_false(caa_pod_state_transition_allowed(CAA_POD_FAILED, CAA_POD_PROVISIONING));
    assert_false(caa_pod_state_transition_allowed(CAA_POD_CONNECTING, CAA_POD_BOOTING));
    assert_false(caa_pod_state_transition_allowed((caa_pod_state)42, CAA_POD_READY));
    assert_false(caa_pod_state_transition_allowed(CAA_POD_READY, (caa_pod_state)42));
    /* Nothing leaves gone, and no state loops to itself. */
    for (int s = 0; s < CAA_POD_STATE_COUNT; s++) {
        assert_false(caa_pod_state_transition_allowed(CAA_POD_GONE, (caa_pod_state)s));
        assert_false(caa_pod_state_transition_allowed((caa_pod_state)s, (caa_pod_state)s));
        /* Every state other than gone can be stopped (or is stopping). */
        if (s != CAA_POD_GONE && s != CAA_POD_STOPPING)
            assert_true(caa_pod_state_transition_allowed((caa_pod_state)s, CAA_POD_STOPPING));
    }
    assert_false(caa_pod_state_may_have_instance(CAA_POD_CREATED));
    assert_false(caa_pod_state_may_have_instance(CAA_POD_GONE));
    assert_true(caa_pod_state_may_have_instance(CAA_POD_PROVISIONING));
    assert_true(caa_pod_state_may_have_instance(CAA_POD_READY));
    assert_true(caa_pod_state_create_may_be_pending(CAA_POD_PROVISIONING));
    assert_true(caa_pod_state_create_may_be_pending(CAA_POD_STOPPING));
    assert_false(caa_pod_state_create_may_be_pending(CAA_POD_READY));
    assert_false(caa_pod_state_create_may_be_pending(CAA_POD_FAILED));
}

/* ---------------------------------------------------------------- persisted transitions */

typedef struct fixture {
    char *dir;
    caa_daemon_config cfg;
    caa_manager m;
    uv_loop_t loop;
} fixture;

static int setup(void **state)
{
    fixture *f = xnew0(fixture, 1);
    f->dir = caa_test_tmpdir_new("pod-state");
    f->cfg.pods_dir = f->dir;
    assert_int_equal(uv_loop_init(&f->loop), 0);
    caa_manager_init(&f->m, &f->loop, &f->cfg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    caa_pod_free_all(&f->m);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    assert_int_equal(caa_test_tmpdir_remove(f->dir), 0);
    free(f);
    return 0;
}

static caa_pod *new_pod(fixture *f, const char *id)
{
    caa_pod_record rec = {
        .sandbox_id = xstrdup(id),
        .pod_name = xstrdup("p"),
        .pod_namespace = xstrdup("ns"),
        .state = CAA_POD_CREATED,
        .instance_name = xstrdup("podvm-p-sb"),
        .idempotency_key = xstrdup("0a1b2c3d-0000-4000-8000-000000000000"),
    };
    caa_pod *pod = caa_pod_recover(&f->m, &rec);
    char *d = xasprintf("%s/%s", f->dir, id);
    assert_int_equal(mkdir(d, 0700), 0);
    free(d);
    assert_null(rec.sandbox_id); /* moved */
    return pod;
}

static caa_pod_state state_on_disk(fixture *f, const char *id)
{
    caa_pod_record rec;
    caa_error *err = NULL;
    if (caa_pod_record_load(f->dir, id, &rec, &err) < 0)
        fail_msg("loading %s: %s", id, err->msg);
    caa_pod_state s = rec.state;
    caa_pod_record_done(&rec);
    return s;
}

static void test_transition_persists(void **state)
{
    fixture *f = *state;
    caa_pod *pod = new_pod(f, "sb1");
    caa_error *err = NULL;
    assert_int_equal(caa_pod_set_state(pod, CAA_POD_PROVISIONING, &err), 0);
    assert_int_equal(caa_pod_get_state(pod), CAA_POD_PROVISIONING);
    assert_int_equal(state_on_disk(f, "sb1"), CAA_POD_PROVISIONING);
    assert_int_equal(caa_pod_set_state(pod, CAA_POD_READY, &err), 0);
    assert_int_equal(state_on_disk(f, "sb1"), CAA_POD_READY);
    assert_int_equal(caa_pod_set_state(pod, CAA_POD_STOPPING, &err), 0);
    assert_int_equal(caa_pod_set_state(pod, CAA_POD_GONE, &err), 0);
    assert_int_equal(state_on_disk(f, "sb1"), CAA_POD_GONE);
    assert_null(err);
}

static void test_invalid_transition_rejected(void **state)
{
    fixture *f = *state;
    caa_pod *pod = new_pod(f, "sb2");
    caa_error *err = NULL;
    assert_int_equal(caa_pod_set_state(pod, CAA_POD_PROVISIONING, NULL), 0);
    assert_int_equal(caa_pod_set_state(pod, CAA_POD_CREATED, &err), -EINVAL);
    assert_non_null(strstr(err->msg, "provisioning -> created"));
    caa_error_free(err);
    err = NULL;
    /* Neither memory nor disk changed. */
    assert_int_equal(caa_pod_get_state(pod), CAA_POD_PROVISIONING);
    assert_int_equal(state_on_disk(f, "sb2"), CAA_POD_PROVISIONING);

    assert_int_equal(caa_pod_set_state(pod, CAA_POD_FAILED, NULL), 0);
    assert_int_equal(caa_pod_set_state(pod, CAA_POD_READY, &err), -EINVAL);
    caa_error_free(err);
    assert_int_equal(state_on_disk(f, "sb2"), CAA_POD_FAILED);
}

static void test_failed_write_keeps_state(void **state)
{
    fixture *f = *state;
    caa_pod *pod = new_pod(f, "sb3");
    /* The pod directory disappears: the transition must fail and change nothing. */
    char *d = xasprintf("%s/sb3", f->dir);
    assert_int_equal(caa_rm_rf(d, NULL), 0);
    caa_error *err = NULL;
    assert_true(caa_pod_set_state(pod, CAA_POD_PROVISIONING, &err) < 0);
    assert_non_null(strstr(err->msg, "saving state provisioning"));
    caa_error_free(err);
    assert_int_equal(caa_pod_get_state(pod), CAA_POD_CREATED);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_table),
        cmocka_unit_test_setup_teardown(test_transition_persists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_transition_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_write_keeps_state, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
