/* The lifecycle test fixture (lifecycle-fixture.h). */
#include "lifecycle-fixture.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "annotations.h"
#include "fs.h"
#include "pod-internal.h"
#include "state-store.h"
#include "xalloc.h"

/* Hooks get (m, pod) only: they find the test through this. One test runs at a time. */
static fx *cur;

/* ---------------------------------------------------------------- fake hooks */

static int fake_inspect(caa_manager *m, caa_pod *pod, caa_error **err)
{
    (void)m;
    (void)pod;
    if (cur->fail_inspect)
        return caa_error_set(err, cur->fail_inspect, "fake network_inspect failed");
    return 0;
}

static int fake_boot_data(caa_manager *m, caa_pod *pod, char **ret, size_t *ret_len, caa_error **err)
{
    (void)m;
    (void)err;
    cur->boot_data_builds++;
    *ret = xasprintf("#cloud-config\n# boot data of %s\n", caa_pod_id(pod));
    *ret_len = strlen(*ret);
    return 0;
}

static int hold(fx_held *h, caa_done_cb cb, void *opaque)
{
    assert_null(h->cb); /* the lifecycle never runs one step twice at once */
    h->cb = cb;
    h->opaque = opaque;
    h->calls++;
    return 0;
}

static int fake_setup(caa_manager *m, caa_pod *pod, caa_done_cb cb, void *opaque, caa_error **err)
{
    (void)m;
    (void)pod;
    cur->setup.calls += cur->fail_setup_now != 0;
    if (cur->fail_setup_now)
        return caa_error_set(err, cur->fail_setup_now, "fake network_setup failed");
    return hold(&cur->setup, cb, opaque);
}

static int fake_proxy_start(caa_manager *m, caa_pod *pod, caa_done_cb cb, void *opaque, caa_error **err)
{
    (void)m;
    (void)pod;
    cur->proxy.calls += cur->fail_proxy_now != 0;
    if (cur->fail_proxy_now)
        return caa_error_set(err, cur->fail_proxy_now, "fake proxy_start failed");
    cur->proxy_live = true;
    return hold(&cur->proxy, cb, opaque);
}

/* As the real proxy: a ready callback still pending runs later with -ECANCELED. */
static void fake_proxy_stop(caa_manager *m, caa_pod *pod)
{
    (void)pod;
    if (!cur->proxy_live)
        return;
    cur->proxy_live = false;
    cur->proxy_stops++;
    if (cur->proxy.cb) {
        caa_done_cb cb = cur->proxy.cb;
        void *opaque = cur->proxy.opaque;
        cur->proxy.cb = NULL;
        caa_hook_complete_later(m, cb, opaque, -ECANCELED, caa_error_new(-ECANCELED, "agent proxy stopped"));
    }
}

static int fake_teardown(caa_manager *m, caa_pod *pod, caa_done_cb cb, void *opaque, caa_error **err)
{
    (void)m;
    (void)pod;
    (void)err;
    return hold(&cur->teardown, cb, opaque);
}

static const caa_pod_hooks fake_hooks = {
    .network_inspect = fake_inspect,
    .build_boot_data = fake_boot_data,
    .network_setup = fake_setup,
    .proxy_start = fake_proxy_start,
    .proxy_stop = fake_proxy_stop,
    .network_teardown = fake_teardown,
};

bool fx_held_pending(const fx_held *h)
{
    return h->cb != NULL;
}

void fx_release(fx *f, fx_held *h, int status)
{
    assert_non_null(h->cb);
    caa_done_cb cb = h->cb;
    void *opaque = h->opaque;
    h->cb = NULL;
    if (status == 0 && h == &f->setup)
        f->network_live = true;
    if (status == 0 && h == &f->teardown)
        f->network_live = false;
    cb(status, status < 0 ? caa_error_new(status, "fake hook failed") : NULL, opaque);
}

/* ---------------------------------------------------------------- observer */

static void on_added(const caa_pod *pod, void *opaque)
{
    fx *f = opaque;
    snprintf(f->path, sizeof(f->path), "%s", caa_pod_state_name(caa_pod_get_state(pod)));
}

static void on_state(const caa_pod *pod, caa_pod_state from, caa_pod_state to, void *opaque)
{
    fx *f = opaque;
    (void)pod;
    assert_int_not_equal(from, to);
    size_t n = strlen(f->path);
    snprintf(f->path + n, sizeof(f->path) - n, ">%s", caa_pod_state_name(to));
}

static void on_instance(const caa_pod *pod, void *opaque)
{
    fx *f = opaque;
    f->instance_events++;
    const char *id = caa_pod_instance_id(pod);
    snprintf(f->last_instance, sizeof(f->last_instance), "%s", id ? id : "");
}

static void on_removed(const caa_pod *pod, void *opaque)
{
    fx *f = opaque;
    assert_int_equal(caa_pod_get_state(pod), CAA_POD_GONE);
    f->removed++;
}

static const caa_pod_observer recorder = {
    .pod_added = on_added,
    .state_changed = on_state,
    .instance_changed = on_instance,
    .pod_removed = on_removed,
};

/* ---------------------------------------------------------------- set-up */

int fx_setup(void **state)
{
    fx *f = xnew0(fx, 1);
    char tmpl[] = "/tmp/caa-lifecycle-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    f->dir = xstrdup(tmpl);
    f->cfg.socket_path = xasprintf("%s/hypervisor.sock", f->dir);
    f->cfg.pods_dir = xasprintf("%s/pods", f->dir);
    f->cfg.disable_tls = true;
    f->cfg.forwarder_port = 15150;
    f->cfg.vxlan_min_id = 555000;
    assert_int_equal(caa_mkdir_p(f->cfg.pods_dir, 0700, NULL), 0);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    caa_manager_init(&f->m, &f->loop, &f->cfg);
    f->m.hooks = &fake_hooks;
    caa_manager_add_pod_observer(&f->m, &recorder, f);
    f->sp = scripted_provider_new();
    cur = f;
    *state = f;
    return 0;
}

void fx_start(fx *f)
{
    caa_error *err = NULL;
    int r = caa_manager_start(&f->m, scripted_provider_wrap(f->sp, &f->loop), &err);
    if (r < 0)
        fail_msg("manager start: %s", caa_error_msg(err));
    f->started = true;
    fx_drain(f);
}

void fx_drain(fx *f)
{
    for (int i = 0; i < 1000; i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        if (caa_list_empty(&f->m.deferred))
            return;
    }
    fail_msg("deferred work does not settle");
}

void fx_shutdown(fx *f)
{
    caa_manager_shutdown(&f->m);
    /* Nothing the fixture holds keeps the loop alive: this returns once the server closed. */
    uv_run(&f->loop, UV_RUN_DEFAULT);
}

void fx_restart(fx *f)
{
    if (f->started && !f->m.shutting_down)
        fx_shutdown(f);
    caa_manager_done(&f->m);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    caa_manager_init(&f->m, &f->loop, &f->cfg);
    f->m.hooks = &fake_hooks;
    caa_manager_add_pod_observer(&f->m, &recorder, f);
    f->start = f->stop = f->stop2 = (fx_answer){0};
    fx_start(f);
}

int fx_teardown(void **state)
{
    fx *f = *state;
    if (f->started && !f->m.shutting_down)
        fx_shutdown(f);
    caa_manager_done(&f->m);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    scripted_provider_free(f->sp);
    assert_int_equal(caa_rm_rf(f->dir, NULL), 0);
    free(f->cfg.socket_path);
    free(f->cfg.pods_dir);
    free(f->dir);
    free(f);
    cur = NULL;
    return 0;
}

/* ---------------------------------------------------------------- calls */

int fx_try_create(fx *f, const char *id, caa_pod **ret)
{
    char *name = xasprintf("nginx-%s", id);
    caa_annotation ann[] = {{CAA_ANN_SANDBOX_NAME, name}, {CAA_ANN_SANDBOX_NAMESPACE, "default"}};
    caa_error *err = NULL;
    *ret = NULL;
    int r = caa_pod_create(&f->m, id, ann, 2, NULL, NULL, ret, &err);
    free(name);
    snprintf(f->create_msg, sizeof(f->create_msg), "%s", r < 0 ? caa_error_msg(err) : "");
    caa_error_free(err);
    return r;
}

caa_pod *fx_create(fx *f, const char *id)
{
    caa_pod *pod = NULL;
    if (fx_try_create(f, id, &pod) < 0)
        fail_msg("CreateVM %s: %s", id, f->create_msg);
    return pod;
}

static void record_answer(int status, caa_error *err, void *opaque)
{
    fx_answer *a = opaque;
    a->calls++;
    a->status = status;
    snprintf(a->msg, sizeof(a->msg), "%s", err ? caa_error_msg(err) : "");
    caa_error_free(err);
}

int fx_start_vm(fx *f, caa_pod *pod)
{
    caa_error *err = NULL;
    int r = caa_pod_start(pod, record_answer, &f->start, &err);
    if (r < 0) {
        snprintf(f->start.msg, sizeof(f->start.msg), "%s", caa_error_msg(err));
        caa_error_free(err);
    }
    return r;
}

void fx_stop_vm(fx *f, caa_pod *pod, fx_answer *answer)
{
    (void)f;
    caa_pod_stop(pod, record_answer, answer);
}

void fx_start_to_ready(fx *f, caa_pod *pod, const char *instance_id)
{
    assert_int_equal(fx_start_vm(f, pod), 0);
    scripted_create_ok(f->sp, instance_id, FX_IP);
    fx_release(f, &f->setup, 0);
    fx_release(f, &f->proxy, 0);
    fx_drain(f);
    assert_int_equal(f->start.calls, 1);
    assert_int_equal(f->start.status, 0);
    assert_int_equal(caa_pod_get_state(pod), CAA_POD_READY);
}

caa_pod *fx_pod_at(fx *f, caa_pod_state at)
{
    fx_start(f);
    caa_pod *pod = fx_create(f, "sb1");
    if (at >= CAA_POD_PROVISIONING)
        assert_int_equal(fx_start_vm(f, pod), 0);
    if (at >= CAA_POD_BOOTING)
        scripted_create_ok(f->sp, "i-1", FX_IP);
    if (at >= CAA_POD_CONNECTING)
        fx_release(f, &f->setup, 0);
    assert_int_equal(caa_pod_get_state(pod), at);
    return pod;
}

void fx_assert_answer(const fx_answer *a, int status)
{
    assert_int_equal(a->calls, 1);
    assert_int_equal(a->status, status);
}

void fx_assert_disk(const fx *f, const char *id, caa_pod_state want, const char *want_instance)
{
    caa_pod_record rec;
    caa_error *err = NULL;
    if (caa_pod_record_load(f->cfg.pods_dir, id, &rec, &err) < 0)
        fail_msg("loading %s: %s", id, caa_error_msg(err));
    caa_pod_state got = rec.state;
    char *inst = rec.instance_id ? xstrdup(rec.instance_id) : NULL;
    caa_pod_record_done(&rec);
    assert_int_equal(got, want);
    if (want_instance)
        assert_string_equal(inst, want_instance);
    else
        assert_null(inst);
    free(inst);
}

bool fx_pod_dir_exists(const fx *f, const char *id)
{
    char *d = xasprintf("%s/%s", f->cfg.pods_dir, id);
    bool r = access(d, F_OK) == 0;
    free(d);
    return r;
}
