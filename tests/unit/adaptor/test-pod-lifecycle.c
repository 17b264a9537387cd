/* StartVM / StopVM interleavings, one deterministic test each: the scripted
 * provider and the fake hooks hold every step until the test releases it
 * (lifecycle-fixture.h), so "StopVM while the create is in flight" is a
 * sequence of calls, not a race. Shutdown and recovery: test-pod-shutdown.c. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fs.h"
#include "lifecycle-fixture.h"
#include "state-store.h"
#include "xalloc.h"

static void assert_path(const fx *f, const char *want)
{
    if (strcmp(f->path, want) != 0)
        fail_msg("state path\n  got:  %s\n  want: %s", f->path, want);
}

/* Everything the start made is gone. */
static void assert_nothing_left(const fx *f)
{
    assert_int_equal(scripted_live_instances(f->sp), 0);
    assert_false(f->network_live);
    assert_false(f->proxy_live);
}

static void assert_gone(fx *f, const char *id)
{
    assert_null(caa_pod_find(&f->m, id));
    assert_false(fx_pod_dir_exists(f, id));
    assert_int_equal(f->removed, 1);
    assert_string_equal(f->last_instance, "");
    assert_nothing_left(f);
}

/* ---------------------------------------------------------------- the plain paths */

static void test_start_then_stop(void **state)
{
    fx *f = *state;
    caa_pod *pod = fx_pod_at(f, CAA_POD_CREATED);
    assert_int_equal(f->boot_data_builds, 1);
    assert_int_equal(fx_start_vm(f, pod), 0);
    fx_assert_disk(f, "sb1", CAA_POD_PROVISIONING, NULL);
    assert_string_equal(scripted_create_name(f->sp), caa_pod_instance_name(pod));

    scripted_create_ok(f->sp, "i-1", FX_IP);
    assert_string_equal(f->last_instance, "i-1");
    assert_string_equal(caa_pod_instance_ip(pod), FX_IP);
    fx_assert_disk(f, "sb1", CAA_POD_BOOTING, "i-1"); /* the id is on disk before the next step */
    fx_release(f, &f->setup, 0);
    assert_int_equal(caa_pod_get_state(pod), CAA_POD_CONNECTING);
    assert_int_equal(f->start.calls, 0); /* only once the agent answered */
    fx_release(f, &f->proxy, 0);
    fx_assert_answer(&f->start, 0);

    fx_stop_vm(f, pod, &f->stop);
    assert_int_equal(f->stop.calls, 0); /* never answered from inside the call */
    fx_drain(f);
    assert_int_equal(f->proxy_stops, 1);
    assert_string_equal(scripted_delete_target(f->sp), "i-1");
    scripted_delete_done(f->sp, 0);
    assert_int_equal(f->stop.calls, 0); /* the network is still there */
    fx_release(f, &f->teardown, 0);
    fx_assert_answer(&f->stop, 0);
    assert_path(f, "created>provisioning>booting>connecting>ready>stopping>gone");
    assert_int_equal(f->instance_events, 2);
    assert_gone(f, "sb1");
}

static void test_stop_created_pod(void **state)
{
    fx *f = *state;
    caa_pod *pod = fx_pod_at(f, CAA_POD_CREATED);
    fx_stop_vm(f, pod, &f->stop);
    fx_drain(f);
    fx_assert_answer(&f->stop, 0);
    assert_int_equal(scripted_calls(f->sp, SCRIPTED_DELETE), 0);
    assert_int_equal(f->setup.calls + f->teardown.calls, 0);
    assert_path(f, "created>stopping>gone");
    assert_gone(f, "sb1");
}

static void test_start_twice(void **state)
{
    fx *f = *state;
    caa_pod *pod = fx_pod_at(f, CAA_POD_PROVISIONING);
    fx_answer first = f->start;
    assert_int_equal(fx_start_vm(f, pod), -EALREADY); /* while the create is in flight */
    assert_non_null(strstr(f->start.msg, "already started"));
    f->start = first;
    assert_int_equal(scripted_calls(f->sp, SCRIPTED_CREATE), 1);
    scripted_create_ok(f->sp, "i-1", FX_IP);
    fx_release(f, &f->setup, 0);
    fx_release(f, &f->proxy, 0);
    fx_assert_answer(&f->start, 0);
    assert_int_equal(fx_start_vm(f, pod), -EALREADY); /* ready */
    assert_int_equal(f->start.calls, 1);
    assert_int_equal(scripted_calls(f->sp, SCRIPTED_CREATE), 1);
}

static void test_double_stop_one_teardown(void **state)
{
    fx *f = *state;
    caa_pod *pod = fx_pod_at(f, CAA_POD_CREATED);
    fx_start_to_ready(f, pod, "i-1");
    fx_stop_vm(f, pod, &f->stop);
    fx_drain(f);
    fx_stop_vm(f, pod, &f->stop2); /* joins the teardown under way */
    assert_int_equal(fx_start_vm(f, pod), -EBUSY);
    scripted_delete_done(f->sp, 0);
    fx_release(f, &f->teardown, 0);
    assert_int_equal(f->stop.calls, 1);
    assert_int_equal(f->stop2.calls, 1);
    fx_assert_answer(&f->stop, 0);
    fx_assert_answer(&f->stop2, 0);
    assert_int_equal(scripted_calls(f->sp, SCRIPTED_DELETE), 1);
    assert_gone(f, "sb1");
}

/* ---------------------------------------------------------------- StopVM during each StartVM step */

static void test_stop_during_create(void **state)
{
    fx *f = *state;
    caa_pod *pod = fx_pod_at(f, CAA_POD_PROVISIONING);
    fx_stop_vm(f, pod, &f->stop);
    /* Persisted at once: a crash from here on still leads to deletion. */
    fx_assert_disk(f, "sb1", CAA_POD_STOPPING, NULL);
    assert_int_equal(scripted_cancels(f->sp), 1); /* the create is asked to stop early */
    fx_drain(f);
    assert_int_equal(f->start.calls + f->stop.calls, 0);

    scripted_create_ok(f->sp, "i-1", FX_IP);
    fx_assert_answer(&f->start, -ECANCELED);
    assert_non_null(strstr(f->start.msg, "cancelled by StopVM"));
    assert_int_equal(f->setup.calls, 0); /* no further start step */
    assert_string_equal(scripted_delete_target(f->sp), "i-1");
    scripted_delete_done(f->sp, 0);
    fx_assert_answer(&f->stop, 0);
    assert_path(f, "created>provisioning>stopping>gone");
    assert_gone(f, "sb1");
}

/* The create obeys the cancel: -ECANCELED with the instance it made (a
 * provider cut short in its boot wait), or with none (cut short before its
 * answer came): then the instance is found by name. */
static void stop_during_create_cancelled(fx *f, const char *made_id)
{
    caa_pod *pod = fx_pod_at(f, CAA_POD_PROVISIONING);
    fx_stop_vm(f, pod, &f->stop);
    assert_int_equal(scripted_cancels(f->sp), 1);
    if (!made_id)
        scripted_add_instance(f->sp, "i-lost", caa_pod_instance_name(pod));
    scripted_create_fail(f->sp, -ECANCELED, made_id);
    fx_assert_answer(&f->start, -ECANCELED);
    assert_non_null(strstr(f->start.msg, "cancelled by StopVM"));
    fx_drain(f);
    if (!made_id)
        scripted_list_answer(f->sp, 0);
    assert_string_equal(scripted_delete_target(f->sp), made_id ? made_id : "i-lost");
    scripted_delete_done(f->sp, 0);
    fx_assert_answer(&f->stop, 0);
    assert_int_equal(scripted_cancels(f->sp), 1); /* asked once */
    assert_gone(f, "sb1");
}

static void test_stop_during_create_cancelled_with_instance(void **state)
{
    stop_during_create_cancelled(*state, "i-1");
}

static void test_stop_during_create_cancelled_before_answer(void **state)
{
    stop_during_create_cancelled(*state, NULL);
}

static void test_stop_during_create_that_fails(void **state)
{
    fx *f = *state;
    caa_pod *pod = fx_pod_at(f, CAA_POD_PROVISIONING);
    fx_stop_vm(f, pod, &f->stop);
    scripted_create_fail(f->sp, -EIO, NULL);
    fx_assert_answer(&f->start, -ECANCELED);
    fx_drain(f);
    scripted_list_answer(f->sp, 0); /* nothing was made under its name */
    fx_assert_answer(&f->stop, 0);
    assert_int_equal(scripted_calls(f->sp, SCRIPTED_DELETE), 0);
    assert_gone(f, "sb1");
}

static void test_stop_during_network_setup(void **state)
{
    fx *f = *state;
    caa_pod *pod = fx_pod_at(f, CAA_POD_BOOTING);
    fx_stop_vm(f, pod, &f->stop);
    fx_release(f, &f->setup, 0);
    fx_assert_answer(&f->start, -ECANCELED);
    assert_int_equal(f->proxy.calls, 0);
    scripted_delete_done(f->sp, 0);
    fx_release(f, &f->teardown, 0); /* the tunnel the start made */
    fx_assert_answer(&f->stop, 0);
    assert_path(f, "created>provisioning>booting>stopping>gone");
    assert_gone(f, "sb1");
}

static void test_stop_during_proxy_connect(void **state)
{
    fx *f = *state;
    caa_pod *pod = fx_pod_at(f, CAA_POD_CONNECTING);
    fx_stop_vm(f, pod, &f->stop);
    /* The connecting proxy is stopped at once, not after -proxy-timeout. */
    assert_int_equal(f->proxy_stops, 1);
    assert_false(f->proxy_live);
    fx_drain(f); /* its ready callback runs with -ECANCELED */
    fx_assert_answer(&f->start, -ECANCELED);
    scripted_delete_done(f->sp, 0);
    fx_release(f, &f->teardown, 0);
    fx_assert_answer(&f->stop, 0);
    assert_path(f, "created>provisioning>booting>connecting>stopping>gone");
    assert_gone(f, "sb1");
}

/* A failed start is cleaning up when StopVM comes: the start answers
 * CANCELLED and the stop's teardown runs after the cleanup. */
static void test_stop_during_failed_start_cleanup(void **state)
{
    fx *f = *state;
    caa_pod *pod = fx_pod_at(f, CAA_POD_PROVISIONING);
    scripted_create_fail(f->sp, -EIO, "i-partial");
    assert_int_equal(caa_pod_get_state(pod), CAA_POD_FAILED);
    fx_stop_vm(f, pod, &f->stop);
    fx_drain(f);
    assert_int_equal(f->start.calls + f->stop.calls, 0);
    scripted_delete_done(f->sp, 0);
    fx_drain(f);
    fx_assert_answer(&f->start, -ECANCELED);
    fx_assert_answer(&f->stop, 0);
    assert_int_equal(scripted_calls(f->sp, SCRIPTED_DELETE), 1);
    assert_path(f, "created>provisioning>failed>stopping>gone");
    assert_gone(f, "sb1");
}

/* ---------------------------------------------------------------- the caller goes away at each step */

/* After a cancelled start the pod is `failed` with nothing left; StopVM removes it. */
static void stop_failed_pod(fx *f, caa_pod *pod)
{
    assert_int_equal(caa_pod_get_state(pod), CAA_POD_FAILED);
    assert_null(caa_pod_instance_id(pod));
    assert_nothing_left(f);
    fx_stop_vm(f, pod, &f->stop);
    fx_drain(f);
    if (f->teardown.cb)
        fx_release(f, &f->teardown, 0);
    fx_assert_answer(&f->stop, 0);
    assert_int_equal(f->stop.calls, 1);
    assert_gone(f, "sb1");
}

static void test_cancel_during_create(void **state)
{
    fx *f = *state;
    caa_pod *pod = fx_pod_at(f, CAA_POD_PROVISIONING);
    caa_pod_cancel_start(pod);
    caa_pod_cancel_start(pod); /* a second cancel changes nothing */
    assert_int_equal(scripted_cancels(f->sp), 1);
    scripted_create_ok(f->sp, "i-1", FX_IP);
    assert_int_equal(f->start.calls, 0); /* answered after the cleanup */
    scripted_delete_done(f->sp, 0);
    fx_assert_answer(&f->start, -ECANCELED);
    assert_non_null(strstr(f->start.msg, "the caller went away"));
    assert_path(f, "created>provisioning>failed");
    stop_failed_pod(f, pod);
}

static void test_cancel_during_network_setup(void **state)
{
    fx *f = *state;
    caa_pod *pod = fx_pod_at(f, CAA_POD_BOOTING);
    caa_pod_cancel_start(pod);
    fx_release(f, &f->setup, 0);
    scripted_delete_done(f->sp, 0);
    fx_release(f, &f->teardown, 0);
    fx_assert_answer(&f->start, -ECANCELED);
    assert_int_equal(f->proxy.calls, 0);
    stop_failed_pod(f, pod);
}

static void test_cancel_during_proxy_connect(void **state)
{
    fx *f = *state;
    caa_pod *pod = fx_pod_at(f, CAA_POD_CONNECTING);
    caa_pod_cancel_start(pod);
    assert_int_equal(f->proxy_stops, 1);
    fx_drain(f);
    scripted_delete_done(f->sp, 0);
    fx_release(f, &f->teardown, 0);
    fx_assert_answer(&f->start, -ECANCELED);
    assert_path(f, "created>provisioning>booting>connecting>failed");
    stop_failed_pod(f, pod);
}

static void test_cancel_after_answer_is_ignored(void **state)
{
    fx *f = *state;
    caa_pod *pod = fx_pod_at(f, CAA_POD_CREATED);
    fx_start_to_ready(f, pod, "i-1");
    caa_pod_cancel_start(pod);
    fx_drain(f);
    assert_int_equal(caa_pod_get_state(pod), CAA_POD_READY);
    assert_int_equal(scripted_calls(f->sp, SCRIPTED_DELETE), 0);
    assert_true(f->proxy_live);
}

/* The caller went away, then StopVM came before the next step: the stop
 * wins (one teardown, the pod ends gone, not failed). */
static void test_cancel_then_stop_during_create(void **state)
{
    fx *f = *state;
    caa_pod *pod = fx_pod_at(f, CAA_POD_PROVISIONING);
    caa_pod_cancel_start(pod);
    fx_stop_vm(f, pod, &f->stop);
    scripted_create_ok(f->sp, "i-1", FX_IP);
    fx_assert_answer(&f->start, -ECANCELED);
    assert_non_null(strstr(f->start.msg, "cancelled by StopVM"));
    scripted_delete_done(f->sp, 0);
    fx_assert_answer(&f->stop, 0);
    assert_int_equal(scripted_calls(f->sp, SCRIPTED_DELETE), 1);
    assert_path(f, "created>provisioning>stopping>gone");
    assert_gone(f, "sb1");
}

/* ---------------------------------------------------------------- failures at each step */

static void test_create_refused_now(void **state)
{
    fx *f = *state;
    caa_pod *pod = fx_pod_at(f, CAA_POD_CREATED);
    scripted_fail_next(f->sp, SCRIPTED_CREATE, -EACCES);
    assert_int_equal(fx_start_vm(f, pod), -EACCES);
    assert_non_null(strstr(f->start.msg, "creating instance"));
    assert_int_equal(f->start.calls, 0);
    assert_path(f, "created>provisioning>failed");
    stop_failed_pod(f, pod);
}

static void test_create_fails(void **state)
{
    fx *f = *state;
    caa_pod *pod = fx_pod_at(f, CAA_POD_PROVISIONING);
    scripted_create_fail(f->sp, -EAGAIN, NULL);
    fx_drain(f);
    scripted_list_answer(f->sp, 0); /* nothing was made under its name */
    fx_assert_answer(&f->start, -EAGAIN);
    assert_non_null(strstr(f->start.msg, "scripted create"));
    assert_int_equal(scripted_calls(f->sp, SCRIPTED_DELETE), 0);
    stop_failed_pod(f, pod);
}

/* The create made an instance but its answer was lost (a timeout): the
 * cleanup finds it by name and deletes it before the start answers. */
static void test_create_fails_after_making_instance(void **state)
{
    fx *f = *state;
    caa_pod *pod = fx_pod_at(f, CAA_POD_PROVISIONING);
    scripted_add_instance(f->sp, "i-lost", caa_pod_instance_name(pod));
    scripted_create_fail(f->sp, -ETIMEDOUT, NULL);
    fx_drain(f);
    scripted_list_answer(f->sp, 0);
    assert_string_equal(scripted_delete_target(f->sp), "i-lost");
    scripted_delete_done(f->sp, 0);
    fx_drain(f);
    fx_assert_answer(&f->start, -ETIMEDOUT);
    assert_int_equal(scripted_live_instances(f->sp), 0);
    assert_int_equal(caa_pod_get_state(pod), CAA_POD_FAILED);
}

static void test_create_fails_with_partial_instance(void **state)
{
    fx *f = *state;
    caa_pod *pod = fx_pod_at(f, CAA_POD_PROVISIONING);
    scripted_create_fail(f->sp, -EIO, "i-partial");
    fx_assert_disk(f, "sb1", CAA_POD_FAILED, "i-partial"); /* recorded before anything else */
    assert_int_equal(f->start.calls, 0);
    assert_string_equal(scripted_delete_target(f->sp), "i-partial");
    scripted_delete_done(f->sp, 0);
    fx_assert_answer(&f->start, -EIO);
    stop_failed_pod(f, pod);
}

static void test_create_without_ip(void **state)
{
    fx *f = *state;
    caa_pod *pod = fx_pod_at(f, CAA_POD_PROVISIONING);
    scripted_create_ok(f->sp, "i-1", NULL);
    scripted_delete_done(f->sp, 0);
    fx_assert_answer(&f->start, -EPROTO);
    assert_non_null(strstr(f->start.msg, "no IP address"));
    stop_failed_pod(f, pod);
}

static void test_network_setup_refused_now(void **state)
{
    fx *f = *state;
    caa_pod *pod = fx_pod_at(f, CAA_POD_CREATED);
    f->fail_setup_now = -ENODEV;
    assert_int_equal(fx_start_vm(f, pod), 0);
    scripted_create_ok(f->sp, "i-1", FX_IP);
    scripted_delete_done(f->sp, 0);
    assert_int_equal(f->teardown.calls, 0); /* no tunnel was made */
    fx_assert_answer(&f->start, -ENODEV);
    assert_non_null(strstr(f->start.msg, "setting up the pod network"));
    stop_failed_pod(f, pod);
}

static void test_network_setup_fails(void **state)
{
    fx *f = *state;
    caa_pod *pod = fx_pod_at(f, CAA_POD_BOOTING);
    fx_release(f, &f->setup, -EEXIST);
    scripted_delete_done(f->sp, 0);
    fx_assert_answer(&f->start, -EEXIST);
    assert_path(f, "created>provisioning>booting>failed");
    stop_failed_pod(f, pod);
}

static void test_proxy_refused_now(void **state)
{
    fx *f = *state;
    caa_pod *pod = fx_pod_at(f, CAA_POD_CREATED);
    f->fail_proxy_now = -EADDRINUSE;
    assert_int_equal(fx_start_vm(f, pod), 0);
    scripted_create_ok(f->sp, "i-1", FX_IP);
    fx_release(f, &f->setup, 0);
    scripted_delete_done(f->sp, 0);
    fx_release(f, &f->teardown, 0);
    fx_assert_answer(&f->start, -EADDRINUSE);
    assert_non_null(strstr(f->start.msg, "starting the agent proxy"));
    stop_failed_pod(f, pod);
}

static void test_proxy_times_out(void **state)
{
    fx *f = *state;
    caa_pod *pod = fx_pod_at(f, CAA_POD_CONNECTING);
    f->proxy_live = false; /* the proxy gave up by itself */
    fx_release(f, &f->proxy, -ETIMEDOUT);
    scripted_delete_done(f->sp, 0);
    fx_release(f, &f->teardown, 0);
    fx_assert_answer(&f->start, -ETIMEDOUT);
    assert_non_null(strstr(f->start.msg, "connecting to the pod VM"));
    assert_path(f, "created>provisioning>booting>connecting>failed");
    stop_failed_pod(f, pod);
}

/* The cleanup of a failed start cannot delete the instance: the pod keeps
 * the id (on disk too) so that StopVM retries, and StopVM does. */
static void test_cleanup_delete_fails_then_stop_retries(void **state)
{
    fx *f = *state;
    caa_pod *pod = fx_pod_at(f, CAA_POD_BOOTING);
    fx_release(f, &f->setup, -EIO);
    scripted_delete_done(f->sp, -EAGAIN);
    assert_int_equal(f->teardown.calls, 0); /* the failed setup made no tunnel */
    fx_assert_answer(&f->start, -EIO);      /* the start's own error, not the cleanup's */
    fx_assert_disk(f, "sb1", CAA_POD_FAILED, "i-1");
    assert_int_equal(scripted_live_instances(f->sp), 1);

    fx_stop_vm(f, pod, &f->stop);
    fx_drain(f);
    assert_string_equal(scripted_delete_target(f->sp), "i-1");
    scripted_delete_done(f->sp, 0);
    fx_assert_answer(&f->stop, 0);
    assert_gone(f, "sb1");
}

/* StopVM cannot delete the instance: it answers the error, the pod stays
 * `failed` with its id, and the next StopVM retries. */
static void test_stop_delete_fails_then_retry(void **state)
{
    fx *f = *state;
    caa_pod *pod = fx_pod_at(f, CAA_POD_CREATED);
    fx_start_to_ready(f, pod, "i-1");
    fx_stop_vm(f, pod, &f->stop);
    fx_drain(f);
    scripted_delete_done(f->sp, -EAGAIN);
    fx_release(f, &f->teardown, 0);
    fx_assert_answer(&f->stop, -EAGAIN);
    assert_non_null(strstr(f->stop.msg, "deleting instance i-1"));
    fx_assert_disk(f, "sb1", CAA_POD_FAILED, "i-1");
    assert_string_equal(caa_pod_instance_id(pod), "i-1");

    fx_stop_vm(f, pod, &f->stop2);
    fx_drain(f);
    scripted_delete_done(f->sp, 0);
    fx_assert_answer(&f->stop2, 0);
    assert_path(f, "created>provisioning>booting>connecting>ready>stopping>failed>stopping>gone");
    assert_gone(f, "sb1");
}

/* The state file cannot be written when the start moves on: the start
 * fails (nothing is announced that is not on disk) and still cleans up. */
static void test_state_write_fails(void **state)
{
    fx *f = *state;
    caa_pod *pod = fx_pod_at(f, CAA_POD_PROVISIONING);
    char *d = xasprintf("%s/sb1", f->cfg.pods_dir);
    assert_int_equal(caa_rm_rf(d, NULL), 0);
    free(d);
    scripted_create_ok(f->sp, "i-1", FX_IP);
    assert_int_equal(f->setup.calls, 0);
    assert_int_equal(caa_pod_get_state(pod), CAA_POD_PROVISIONING); /* not written, so not changed */
    scripted_delete_done(f->sp, 0);
    assert_int_equal(f->start.calls, 1);
    assert_non_null(strstr(f->start.msg, "saving state booting"));
    assert_path(f, "created>provisioning"); /* observers hear only what is on disk */
    assert_int_equal(scripted_live_instances(f->sp), 0);
}

static void test_create_vm_failure_leaves_nothing(void **state)
{
    fx *f = *state;
    fx_start(f);
    f->fail_inspect = -EINVAL;
    caa_pod *pod = NULL;
    assert_int_equal(fx_try_create(f, "sb1", &pod), -EINVAL);
    assert_non_null(strstr(f->create_msg, "fake network_inspect failed"));
    assert_null(caa_pod_find(&f->m, "sb1"));
    assert_false(fx_pod_dir_exists(f, "sb1"));
    assert_int_equal(f->removed, 0);
    /* A duplicate id is refused and the first pod is untouched. */
    f->fail_inspect = 0;
    pod = fx_create(f, "sb1");
    caa_pod *dup = NULL;
    assert_int_equal(fx_try_create(f, "sb1", &dup), -EEXIST);
    assert_null(dup);
    assert_ptr_equal(caa_pod_find(&f->m, "sb1"), pod);
}

/* The sandbox id index grows past its first size and follows removals: every
 * pod is found as itself, a stopped one nowhere, and ids that share a prefix
 * stay apart. */
static void test_find_among_many_pods(void **state)
{
    enum { N = 300 };
    fx *f = *state;
    fx_start(f);
    caa_pod *pods[N];
    char id[32];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "sb%d", i);
        pods[i] = fx_create(f, id);
    }
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "sb%d", i);
        assert_ptr_equal(caa_pod_find(&f->m, id), pods[i]);
    }
    assert_null(caa_pod_find(&f->m, "sb300"));
    assert_null(caa_pod_find(&f->m, "sb"));
    for (int i = 0; i < N; i += 3) {
        fx_answer a = {0};
        fx_stop_vm(f, pods[i], &a);
        fx_drain(f);
        fx_assert_answer(&a, 0);
    }
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "sb%d", i);
        assert_ptr_equal(caa_pod_find(&f->m, id), i % 3 ? pods[i] : NULL);
    }
    /* A stopped id can be created again. */
    assert_non_null(fx_create(f, "sb0"));
    assert_non_null(caa_pod_find(&f->m, "sb0"));
}

/* ---------------------------------------------------------------- observers */

static unsigned extra_calls;
static void count_state(const caa_pod *pod, caa_pod_state from, caa_pod_state to, void *opaque)
{
    (void)pod;
    (void)from;
    (void)to;
    assert_ptr_equal(opaque, &extra_calls);
    extra_calls++;
}
static const caa_pod_observer counter = {.state_changed = count_state};

static void test_observer_add_remove(void **state)
{
    fx *f = *state;
    fx_start(f);
    extra_calls = 0;
    caa_manager_add_pod_observer(&f->m, &counter, &extra_calls);
    caa_pod *pod = fx_create(f, "sb1");
    assert_int_equal(fx_start_vm(f, pod), 0);
    assert_int_equal(extra_calls, 1); /* created -> provisioning */
    caa_manager_remove_pod_observer(&f->m, &counter, &extra_calls);
    caa_manager_remove_pod_observer(&f->m, &counter, &extra_calls); /* unknown: ignored */
    scripted_create_ok(f->sp, "i-1", FX_IP);
    assert_int_equal(extra_calls, 1);
    assert_path(f, "created>provisioning>booting"); /* the other observer still runs */
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(test_start_then_stop),
        T(test_stop_created_pod),
        T(test_start_twice),
        T(test_double_stop_one_teardown),
        T(test_stop_during_create),
        T(test_stop_during_create_cancelled_with_instance),
        T(test_stop_during_create_cancelled_before_answer),
        T(test_stop_during_create_that_fails),
        T(test_stop_during_network_setup),
        T(test_stop_during_proxy_connect),
        T(test_stop_during_failed_start_cleanup),
        T(test_cancel_during_create),
        T(test_cancel_during_network_setup),
        T(test_cancel_during_proxy_connect),
        T(test_cancel_after_answer_is_ignored),
        T(test_cancel_then_stop_during_create),
        T(test_create_refused_now),
        T(test_create_fails),
        T(test_create_fails_after_making_instance),
        T(test_create_fails_with_partial_instance),
        T(test_create_without_ip),
        T(test_network_setup_refused_now),
        T(test_network_setup_fails),
        T(test_proxy_refused_now),
        T(test_proxy_times_out),
        T(test_cleanup_delete_fails_then_stop_retries),
        T(test_stop_delete_fails_then_retry),
        T(test_state_write_fails),
        T(test_create_vm_failure_leaves_nothing),
        T(test_find_among_many_pods),
        T(test_observer_add_remove),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
