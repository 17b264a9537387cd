/* Shutdown during each lifecycle step, providers that answer after the
 * cancel or never, and pods recovered from state files at start: one
 * deterministic test each (lifecycle-fixture.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fs.h"
#include "lifecycle-fixture.h"
#include "state-store.h"
#include "strv.h"
#include "xalloc.h"

/* The daemon is gone: what a dropped provider callback left open is answered now. */
static void finish_daemon(fx *f)
{
    caa_manager_done(&f->m);
}

/* ---------------------------------------------------------------- shutdown during StartVM */

static void test_shutdown_during_create_provider_cancels(void **state)
{
    fx *f = *state;
    fx_pod_at(f, CAA_POD_PROVISIONING);
    fx_shutdown(f);
    assert_true(scripted_torn_down(f->sp));
    assert_int_equal(f->start.calls, 0);
    scripted_create_fail(f->sp, -ECANCELED, NULL); /* answered after the cancel */
    fx_assert_answer(&f->start, -ESHUTDOWN);
    /* Kept for the next daemon, which finds any VM by name. */
    fx_assert_disk(f, "sb1", CAA_POD_PROVISIONING, NULL);
    assert_int_equal(scripted_calls(f->sp, SCRIPTED_DELETE), 0);
    finish_daemon(f);
    assert_int_equal(f->start.calls, 1); /* answered once */
}

static void test_shutdown_during_create_provider_drops(void **state)
{
    fx *f = *state;
    fx_pod_at(f, CAA_POD_PROVISIONING);
    fx_shutdown(f);
    assert_int_equal(f->start.calls, 0);
    finish_daemon(f); /* the create never answers */
    fx_assert_answer(&f->start, -ESHUTDOWN);
    fx_assert_disk(f, "sb1", CAA_POD_PROVISIONING, NULL);
}

static void test_shutdown_during_create_instance_made_late(void **state)
{
    fx *f = *state;
    fx_pod_at(f, CAA_POD_PROVISIONING);
    fx_shutdown(f);
    scripted_create_ok(f->sp, "i-1", FX_IP); /* the cancel came too late */
    fx_assert_answer(&f->start, -ESHUTDOWN);
    assert_int_equal(f->setup.calls, 0);
    /* The id is on disk: the next daemon's StopVM deletes it. */
    fx_assert_disk(f, "sb1", CAA_POD_PROVISIONING, "i-1");
    assert_int_equal(scripted_live_instances(f->sp), 1);
    assert_int_equal(scripted_calls(f->sp, SCRIPTED_DELETE), 0);
}

static void test_shutdown_during_network_setup(void **state)
{
    fx *f = *state;
    fx_pod_at(f, CAA_POD_BOOTING);
    fx_shutdown(f);
    fx_release(f, &f->setup, 0);
    fx_assert_answer(&f->start, -ESHUTDOWN);
    assert_int_equal(f->proxy.calls, 0);
    fx_assert_disk(f, "sb1", CAA_POD_BOOTING, "i-1");
    assert_int_equal(scripted_calls(f->sp, SCRIPTED_DELETE), 0);
}

static void test_shutdown_during_proxy_connect(void **state)
{
    fx *f = *state;
    fx_pod_at(f, CAA_POD_CONNECTING);
    /* The proxy is stopped at once; its -ECANCELED ends the start while the loop runs dry. */
    fx_shutdown(f);
    assert_int_equal(f->proxy_stops, 1);
    fx_assert_answer(&f->start, -ESHUTDOWN);
    fx_assert_disk(f, "sb1", CAA_POD_CONNECTING, "i-1");
}

static void test_no_calls_after_shutdown(void **state)
{
    fx *f = *state;
    caa_pod *pod = fx_pod_at(f, CAA_POD_CREATED);
    fx_shutdown(f);
    assert_int_equal(fx_start_vm(f, pod), -ESHUTDOWN);
    caa_pod *other = NULL;
    assert_int_equal(fx_try_create(f, "sb2", &other), -ESHUTDOWN);
    assert_int_equal(scripted_calls(f->sp, SCRIPTED_CREATE), 0);
}

/* ---------------------------------------------------------------- shutdown during StopVM */

static void test_shutdown_during_stop_delete(void **state)
{
    fx *f = *state;
    caa_pod *pod = fx_pod_at(f, CAA_POD_CREATED);
    fx_start_to_ready(f, pod, "i-1");
    fx_stop_vm(f, pod, &f->stop);
    fx_drain(f);
    fx_shutdown(f);
    scripted_delete_done(f->sp, -ECANCELED);
    fx_assert_answer(&f->stop, -ESHUTDOWN);
    assert_int_equal(f->teardown.calls, 0); /* the rest is left to the next daemon */
    fx_assert_disk(f, "sb1", CAA_POD_STOPPING, "i-1");
    finish_daemon(f);
    assert_int_equal(f->stop.calls, 1);
}

static void test_shutdown_during_stop_during_start(void **state)
{
    fx *f = *state;
    caa_pod *pod = fx_pod_at(f, CAA_POD_PROVISIONING);
    fx_stop_vm(f, pod, &f->stop);
    fx_shutdown(f);
    scripted_create_fail(f->sp, -ECANCELED, NULL);
    fx_assert_answer(&f->start, -ESHUTDOWN);
    assert_int_equal(f->stop.calls, 0);
    fx_assert_disk(f, "sb1", CAA_POD_STOPPING, NULL); /* the next daemon resumes the StopVM */
    finish_daemon(f);
    fx_assert_answer(&f->stop, -ESHUTDOWN);
    assert_int_equal(f->start.calls, 1);
}

/* A failed start is deleting its instance when the shutdown comes: the
 * cancelled delete leaves the id on disk (pod `failed`) for a later StopVM,
 * and the start answers its own error. */
static void test_shutdown_during_failed_start_cleanup(void **state)
{
    fx *f = *state;
    fx_pod_at(f, CAA_POD_BOOTING);
    fx_release(f, &f->setup, -EIO);
    assert_string_equal(scripted_delete_target(f->sp), "i-1");
    fx_shutdown(f);
    scripted_delete_done(f->sp, -ECANCELED);
    fx_assert_answer(&f->start, -EIO);
    fx_assert_disk(f, "sb1", CAA_POD_FAILED, "i-1");
    assert_int_equal(scripted_live_instances(f->sp), 1);
}

/* ---------------------------------------------------------------- pods recovered at start */

static void write_record(fx *f, const char *id, caa_pod_state st, const char *instance_id)
{
    char *dir = xasprintf("%s/%s", f->cfg.pods_dir, id);
    assert_int_equal(mkdir(dir, 0700), 0);
    char *name = xasprintf("podvm-nginx-%s", id);
    caa_pod_record rec = {
        .sandbox_id = (char *)id,
        .pod_name = "nginx",
        .pod_namespace = "default",
        .state = st,
        .instance_name = name,
        .idempotency_key = "9b2f4c1e-8d7a-4e3b-a1c2-0f9e8d7c6b5a",
        .instance_id = (char *)instance_id,
        .created_at = time(NULL),
        .updated_at = time(NULL),
    };
    if (instance_id)
        caa_strv_push(&rec.instance_ips, FX_IP);
    caa_error *err = NULL;
    if (caa_pod_record_save(dir, &rec, &err) < 0)
        fail_msg("%s", caa_error_msg(err));
    caa_strv_free(rec.instance_ips);
    free(name);
    free(dir);
}

static void test_recovered_stopping_pod_resumes_stop(void **state)
{
    fx *f = *state;
    write_record(f, "sb1", CAA_POD_STOPPING, "i-9");
    scripted_add_instance(f->sp, "i-9", "podvm-nginx-sb1");
    fx_start(f);
    assert_string_equal(scripted_delete_target(f->sp), "i-9");
    scripted_delete_done(f->sp, 0);
    fx_release(f, &f->teardown, 0); /* a recovered pod's tunnel state is unknown: always torn down */
    assert_null(caa_pod_find(&f->m, "sb1"));
    assert_int_equal(scripted_live_instances(f->sp), 0);
    assert_int_equal(f->removed, 1);
}

/* A create was in flight without an answer when the earlier daemon stopped:
 * StopVM finds the VM by its name and deletes only that one. */
static void test_recovered_provisioning_pod_found_by_name(void **state)
{
    fx *f = *state;
    write_record(f, "sb1", CAA_POD_PROVISIONING, NULL);
    scripted_add_instance(f->sp, "i-7", "podvm-nginx-sb1");
    scripted_add_instance(f->sp, "i-other", "podvm-other-pod");
    fx_start(f);
    caa_pod *pod = caa_pod_find(&f->m, "sb1");
    assert_non_null(pod);
    assert_true(caa_pod_is_recovered(pod));
    fx_stop_vm(f, pod, &f->stop);
    fx_drain(f);
    scripted_list_answer(f->sp, 0);
    assert_string_equal(scripted_delete_target(f->sp), "i-7");
    scripted_delete_done(f->sp, 0);
    fx_release(f, &f->teardown, 0);
    fx_assert_answer(&f->stop, 0);
    assert_int_equal(scripted_live_instances(f->sp), 1); /* i-other is not ours */
    assert_null(caa_pod_find(&f->m, "sb1"));
}

static void test_recovered_provisioning_pod_list_fails(void **state)
{
    fx *f = *state;
    write_record(f, "sb1", CAA_POD_PROVISIONING, NULL);
    scripted_add_instance(f->sp, "i-7", "podvm-nginx-sb1");
    fx_start(f);
    caa_pod *pod = caa_pod_find(&f->m, "sb1");
    fx_stop_vm(f, pod, &f->stop);
    fx_drain(f);
    scripted_list_answer(f->sp, -EAGAIN);
    fx_release(f, &f->teardown, 0);
    /* Not knowing whether a VM exists, the pod is kept for another StopVM. */
    fx_assert_answer(&f->stop, -EAGAIN);
    assert_int_equal(caa_pod_get_state(pod), CAA_POD_FAILED);
    assert_non_null(caa_pod_find(&f->m, "sb1"));

    /* That StopVM looks again (the pod is `failed` now, but its VM is still unaccounted for). */
    fx_stop_vm(f, pod, &f->stop2);
    fx_drain(f);
    assert_int_equal(scripted_pending(f->sp, SCRIPTED_LIST), 1);
    scripted_list_answer(f->sp, 0);
    assert_string_equal(scripted_delete_target(f->sp), "i-7");
    scripted_delete_done(f->sp, 0);
    fx_release(f, &f->teardown, 0);
    fx_assert_answer(&f->stop2, 0);
    assert_null(caa_pod_find(&f->m, "sb1"));
    assert_int_equal(scripted_live_instances(f->sp), 0);
}

static void test_recovered_created_pod_cannot_start(void **state)
{
    fx *f = *state;
    write_record(f, "sb1", CAA_POD_CREATED, NULL);
    fx_start(f);
    caa_pod *pod = caa_pod_find(&f->m, "sb1");
    assert_string_equal(f->path, "created");
    assert_int_equal(fx_start_vm(f, pod), -EBUSY);
    assert_non_null(strstr(f->start.msg, "request is lost"));
    assert_int_equal(scripted_calls(f->sp, SCRIPTED_CREATE), 0);
}

/* CreateVM, then a new daemon: the pod starts with the size, image and boot
 * data of its CreateVM (start-request.json), and nothing is built again. */
static caa_pod *create_sized_pod(fx *f)
{
    caa_annotation ann[] = {
        {CAA_ANN_SANDBOX_NAME, "nginx"},  {CAA_ANN_SANDBOX_NAMESPACE, "default"},
        {CAA_ANN_DEFAULT_VCPUS, "2"},     {CAA_ANN_DEFAULT_MEMORY, "3072"},
        {CAA_ANN_IMAGE, "podvm-image-1"}, {CAA_ANN_MACHINE_TYPE, "t3.small"},
    };
    caa_pod *pod = NULL;
    caa_error *err = NULL;
    if (caa_pod_create(&f->m, "sb1", ann, sizeof(ann) / sizeof(ann[0]), NULL, NULL, &pod, &err) < 0)
        fail_msg("CreateVM: %s", caa_error_msg(err));
    return pod;
}

static void test_recovered_created_pod_starts(void **state)
{
    fx *f = *state;
    fx_start(f);
    create_sized_pod(f);
    char *req_path = xasprintf("%s/sb1/start-request.json", f->cfg.pods_dir);
    struct stat st;
    assert_int_equal(stat(req_path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    free(req_path);

    fx_restart(f);
    assert_int_equal(f->boot_data_builds, 1);
    caa_pod *pod = caa_pod_find(&f->m, "sb1");
    assert_non_null(pod);
    assert_true(caa_pod_is_recovered(pod));
    assert_int_equal(fx_start_vm(f, pod), 0);
    const scripted_create_request *req = scripted_create_request_of(f->sp);
    assert_non_null(req);
    assert_int_equal(req->vcpus, 2);
    assert_int_equal(req->memory_mib, 3072);
    assert_string_equal(req->image, "podvm-image-1");
    assert_string_equal(req->machine_type, "t3.small");
    const char *want = "#cloud-config\n# boot data of sb1\n";
    assert_int_equal(req->user_data_len, strlen(want));
    assert_memory_equal(req->user_data, want, strlen(want));
    assert_string_equal(scripted_create_name(f->sp), "podvm-nginx-sb1");

    scripted_create_ok(f->sp, "i-1", FX_IP);
    fx_release(f, &f->setup, 0);
    fx_release(f, &f->proxy, 0);
    fx_assert_answer(&f->start, 0);
    assert_int_equal(caa_pod_get_state(pod), CAA_POD_READY);
    fx_stop_vm(f, pod, &f->stop);
    fx_drain(f);
    scripted_delete_done(f->sp, 0);
    fx_release(f, &f->teardown, 0);
    fx_assert_answer(&f->stop, 0);
    assert_int_equal(scripted_live_instances(f->sp), 0);
    assert_false(fx_pod_dir_exists(f, "sb1"));
}

static void test_recovered_created_pod_stops(void **state)
{
    fx *f = *state;
    fx_start(f);
    create_sized_pod(f);
    fx_restart(f);
    caa_pod *pod = caa_pod_find(&f->m, "sb1");
    fx_stop_vm(f, pod, &f->stop);
    fx_drain(f);
    fx_release(f, &f->teardown, 0); /* a recovered pod's network is always torn down */
    fx_assert_answer(&f->stop, 0);
    assert_int_equal(scripted_calls(f->sp, SCRIPTED_CREATE), 0);
    assert_false(fx_pod_dir_exists(f, "sb1"));
}

/* A damaged start request: the pod cannot be started (never a VM without its
 * boot data), StopVM still removes it. */
static void test_recovered_created_pod_bad_start_request(void **state)
{
    fx *f = *state;
    fx_start(f);
    create_sized_pod(f);
    char *req_path = xasprintf("%s/sb1/start-request.json", f->cfg.pods_dir);
    assert_int_equal(caa_write_file_atomic(req_path, "{\"version\":1,", 13, 0600, NULL), 0);
    free(req_path);
    fx_restart(f);
    caa_pod *pod = caa_pod_find(&f->m, "sb1");
    assert_int_equal(fx_start_vm(f, pod), -EBUSY);
    assert_non_null(strstr(f->start.msg, "request is lost"));
    assert_int_equal(scripted_calls(f->sp, SCRIPTED_CREATE), 0);
    fx_stop_vm(f, pod, &f->stop);
    fx_drain(f);
    fx_release(f, &f->teardown, 0);
    fx_assert_answer(&f->stop, 0);
    assert_false(fx_pod_dir_exists(f, "sb1"));
}

static void test_recovered_ready_pod_reconnects(void **state)
{
    fx *f = *state;
    write_record(f, "sb1", CAA_POD_READY, "i-3");
    scripted_add_instance(f->sp, "i-3", "podvm-nginx-sb1");
    fx_start(f);
    scripted_get_answer(f->sp, 0);       /* the VM still exists */
    assert_int_equal(f->proxy.calls, 1); /* the agent socket is served again */
    fx_release(f, &f->proxy, 0);
    caa_pod *pod = caa_pod_find(&f->m, "sb1");
    assert_string_equal(caa_pod_instance_id(pod), "i-3");
    fx_stop_vm(f, pod, &f->stop);
    fx_drain(f);
    assert_int_equal(f->proxy_stops, 1);
    scripted_delete_done(f->sp, 0);
    fx_release(f, &f->teardown, 0);
    fx_assert_answer(&f->stop, 0);
    assert_int_equal(scripted_live_instances(f->sp), 0);
    assert_string_equal(f->path, "ready>stopping>gone");
}

/* The VM of a recovered ready pod is gone from the cloud: reported, the
 * agent socket no longer served, the pod failed; StopVM cleans up the rest
 * without a delete. */
static void test_recovered_ready_pod_vm_gone(void **state)
{
    fx *f = *state;
    write_record(f, "sb1", CAA_POD_READY, "i-3");
    fx_start(f);
    assert_int_equal(scripted_pending(f->sp, SCRIPTED_GET), 1);
    scripted_get_answer(f->sp, 0); /* i-3 does not exist */
    caa_pod *pod = caa_pod_find(&f->m, "sb1");
    assert_int_equal(caa_pod_get_state(pod), CAA_POD_FAILED);
    assert_null(caa_pod_instance_id(pod));
    assert_int_equal(f->proxy_stops, 1);
    fx_assert_disk(f, "sb1", CAA_POD_FAILED, NULL);
    fx_stop_vm(f, pod, &f->stop);
    fx_drain(f);
    fx_release(f, &f->teardown, 0);
    fx_assert_answer(&f->stop, 0);
    assert_int_equal(scripted_calls(f->sp, SCRIPTED_DELETE), 0);
    assert_string_equal(f->path, "ready>failed>stopping>gone");
}

/* The VM exists, or the check fails (a cloud error is no proof that it is
 * gone): the pod stays ready. */
static void check_answer_keeps_ready(void **state, bool exists, int status)
{
    fx *f = *state;
    write_record(f, "sb1", CAA_POD_READY, "i-3");
    if (exists)
        scripted_add_instance(f->sp, "i-3", "podvm-nginx-sb1");
    fx_start(f);
    assert_int_equal(scripted_pending(f->sp, SCRIPTED_GET), 1);
    scripted_get_answer(f->sp, status);
    caa_pod *pod = caa_pod_find(&f->m, "sb1");
    assert_int_equal(caa_pod_get_state(pod), CAA_POD_READY);
    assert_string_equal(caa_pod_instance_id(pod), "i-3");
    assert_int_equal(f->proxy_stops, 0);
}

static void test_recovered_ready_pod_vm_exists(void **state)
{
    check_answer_keeps_ready(state, true, 0);
}

static void test_recovered_ready_pod_vm_check_fails(void **state)
{
    check_answer_keeps_ready(state, false, -EAGAIN);
}

/* StopVM arrived while the check ran: the stop wins, nothing is marked failed. */
static void test_recovered_ready_pod_vm_gone_during_stop(void **state)
{
    fx *f = *state;
    write_record(f, "sb1", CAA_POD_READY, "i-3");
    scripted_add_instance(f->sp, "i-3", "podvm-nginx-sb1");
    fx_start(f);
    caa_pod *pod = caa_pod_find(&f->m, "sb1");
    fx_stop_vm(f, pod, &f->stop);
    fx_drain(f);
    scripted_remove_instance(f->sp, "i-3");
    scripted_get_answer(f->sp, 0);
    scripted_delete_done(f->sp, 0);
    fx_release(f, &f->teardown, 0);
    fx_assert_answer(&f->stop, 0);
    assert_string_equal(f->path, "ready>stopping>gone");
}

static void test_gone_pod_dir_removed_at_start(void **state)
{
    fx *f = *state;
    write_record(f, "sb1", CAA_POD_GONE, NULL);
    fx_start(f);
    assert_null(caa_pod_find(&f->m, "sb1"));
    assert_false(fx_pod_dir_exists(f, "sb1"));
    assert_int_equal(scripted_calls(f->sp, SCRIPTED_DELETE), 0);
}

/* The VM of a recovered ready pod cannot be reached again: logged, the pod
 * stays ready, and StopVM still deletes it. */
static void test_recovered_ready_pod_reconnect_fails(void **state)
{
    fx *f = *state;
    write_record(f, "sb1", CAA_POD_READY, "i-3");
    scripted_add_instance(f->sp, "i-3", "podvm-nginx-sb1");
    f->fail_proxy_now = -EADDRINUSE;
    fx_start(f);
    scripted_get_answer(f->sp, 0);
    caa_pod *pod = caa_pod_find(&f->m, "sb1");
    assert_int_equal(caa_pod_get_state(pod), CAA_POD_READY);
    fx_stop_vm(f, pod, &f->stop);
    fx_drain(f);
    assert_int_equal(f->proxy_stops, 0);
    scripted_delete_done(f->sp, 0);
    fx_release(f, &f->teardown, 0);
    fx_assert_answer(&f->stop, 0);
    assert_int_equal(scripted_live_instances(f->sp), 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(test_shutdown_during_create_provider_cancels),
        T(test_shutdown_during_create_provider_drops),
        T(test_shutdown_during_create_instance_made_late),
        T(test_shutdown_during_network_setup),
        T(test_shutdown_during_proxy_connect),
        T(test_no_calls_after_shutdown),
        T(test_shutdown_during_stop_delete),
        T(test_shutdown_during_stop_during_start),
        T(test_shutdown_during_failed_start_cleanup),
        T(test_recovered_stopping_pod_resumes_stop),
        T(test_recovered_provisioning_pod_found_by_name),
        T(test_recovered_provisioning_pod_list_fails),
        T(test_recovered_created_pod_cannot_start),
        T(test_recovered_created_pod_starts),
        T(test_recovered_created_pod_stops),
        T(test_recovered_created_pod_bad_start_request),
        T(test_recovered_ready_pod_vm_gone),
        T(test_recovered_ready_pod_vm_exists),
        T(test_recovered_ready_pod_vm_check_fails),
        T(test_recovered_ready_pod_vm_gone_during_stop),
        T(test_recovered_ready_pod_reconnects),
        T(test_recovered_ready_pod_reconnect_fails),
        T(test_gone_pod_dir_removed_at_start),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
