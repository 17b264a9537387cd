/* The manager: startup (directories, state recovery, listening), the pod
 * table, deferred work, signals and the orderly shutdown. */
#define LOG_COMPONENT "adaptor/manager"
#include "manager.h"

#include <errno.h>
#include <libgen.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "daemon-sc.h"
#include "daemon-tls.h"
#include "fs.h"
#include "kube-service.h"
#include "log.h"
#include "orphan-sweep.h"
#include "pod-hooks.h"
#include "pod.h"
#include "services.h"
#include "state-store.h"
#include "ttrpc.h"
#include "xalloc.h"

typedef struct caa_deferred {
    caa_list node;
    caa_deferred_fn fn;
    void *arg;
} caa_deferred;

static void maybe_finish(caa_manager *m);

void caa_manager_init(caa_manager *m, uv_loop_t *loop, const caa_daemon_config *cfg)
{
    *m = (caa_manager){0};
    m->loop = loop;
    m->cfg = cfg;
    m->hooks = &caa_pod_hooks_default;
    caa_list_init(&m->deferred);
    caa_list_init(&m->pods);
    caa_list_init(&m->waiters);
}

/* ---------------------------------------------------------------- deferred work */

static void on_idle(uv_idle_t *h)
{
    caa_manager *m = h->data;
    /* Run what is queued now; work queued by these calls runs next turn. */
    caa_list batch;
    caa_list_move_all(&batch, &m->deferred);
    while (!caa_list_empty(&batch)) {
        caa_deferred *d = caa_list_entry(batch.next, caa_deferred, node);
        caa_list_remove(&d->node);
        d->fn(d->arg);
        free(d);
        caa_unref(&m->pending);
    }
    if (caa_list_empty(&m->deferred))
        uv_idle_stop(h);
    maybe_finish(m);
}

static void kick(caa_manager *m)
{
    if (!uv_is_closing((uv_handle_t *)&m->deferred_idle))
        uv_idle_start(&m->deferred_idle, on_idle);
}

void caa_manager_defer(caa_manager *m, caa_deferred_fn fn, void *arg)
{
    caa_deferred *d = xnew0(caa_deferred, 1);
    d->fn = fn;
    d->arg = arg;
    caa_list_append(&m->deferred, &d->node);
    caa_ref(&m->pending);
    kick(m);
}

void caa_manager_op_begin(caa_manager *m)
{
    caa_ref(&m->pending);
}

void caa_manager_op_end(caa_manager *m)
{
    bool drained = caa_unref(&m->pending);
    /* Finish from the idle callback, never from inside a provider's callback. */
    if (m->shutting_down && drained)
        kick(m);
}

/* ---------------------------------------------------------------- shutdown */

static void on_handle_closed(uv_handle_t *h)
{
    (void)h;
}

/* Runs from the idle callback once the server is closed: cancels what the
 * provider has in flight instead of waiting for it. The provider's cancelled
 * callbacks run now, later on the loop, or never; pods and handles are
 * released in caa_manager_done() after the loop has run dry either way. */
static void maybe_finish(caa_manager *m)
{
    if (!m->shutting_down || m->finished || m->server || m->provider_torn_down)
        return;
    m->provider_torn_down = true;
    if (caa_refcount_get(&m->pending))
        log_info("shutting down: cancelling %u operation(s) in flight", caa_refcount_get(&m->pending));
    caa_provider_teardown(m->provider);
    /* Signals must not keep the loop alive; a second one still forces the exit. */
    uv_unref((uv_handle_t *)&m->sig_term);
    uv_unref((uv_handle_t *)&m->sig_int);
}

static void finish(caa_manager *m)
{
    if (!m->started || m->finished)
        return;
    m->finished = true;
    /* Deferred work that did not run (the loop ended): drop it, the pods go below. */
    while (!caa_list_empty(&m->deferred)) {
        caa_deferred *d = caa_list_entry(m->deferred.next, caa_deferred, node);
        caa_list_remove(&d->node);
        free(d);
    }
    caa_pods_release_all(m);
    caa_provider_free(m->provider);
    m->provider = NULL;
    uv_close((uv_handle_t *)&m->sig_term, on_handle_closed);
    uv_close((uv_handle_t *)&m->sig_int, on_handle_closed);
    uv_close((uv_handle_t *)&m->deferred_idle, on_handle_closed);
    uv_run(m->loop, UV_RUN_DEFAULT);
    log_info("shutdown complete");
}

static void on_server_closed(void *opaque)
{
    caa_manager *m = opaque;
    m->server = NULL;
    kick(m);
}

void caa_manager_shutdown(caa_manager *m)
{
    if (m->shutting_down)
        return;
    m->shutting_down = true;
    if (!m->started) {
        caa_provider_free(m->provider);
        m->provider = NULL;
        m->finished = true;
        return;
    }
    log_info("shutting down");
    caa_kube_service_shutdown(TAKE_PTR(m->kube));
    caa_podvminfo_cancel_all(m);
    caa_orphan_sweep_stop(m->orphan_sweep);
    /* Agent proxies still connecting would hold the shutdown for up to
     * -proxy-timeout: stop them now (their starts end with -ESHUTDOWN). */
    caa_pods_shutdown(m);
    if (m->server)
        ttrpc_server_close(m->server, on_server_closed, m);
    kick(m);
}

static void on_signal(uv_signal_t *h, int signum)
{
    caa_manager *m = h->data;
    if (m->shutting_down) {
        log_warn("second signal (%s): exiting without cleaning up", strsignal(signum));
        m->forced = true;
        m->exit_code = 1;
        uv_stop(m->loop);
        return;
    }
    log_info("received %s", strsignal(signum));
    caa_manager_shutdown(m);
}

void caa_manager_done(caa_manager *m)
{
    finish(m);
    caa_pod_observers_free(m);
    caa_daemon_tls_free(m->tls);
    m->tls = NULL;
    caa_daemon_sc_free(m->sc);
    m->sc = NULL;
    caa_orphan_sweep_free(m->orphan_sweep);
    m->orphan_sweep = NULL;
}

/* ---------------------------------------------------------------- startup */

typedef struct scan_ctx {
    caa_manager *m;
    size_t recovered;
    size_t rejected;
} scan_ctx;

static void on_state_scanned(const char *name, caa_pod_record *rec, const caa_error *err, void *opaque)
{
    scan_ctx *ctx = opaque;
    caa_manager *m = ctx->m;
    if (!rec) {
        _cleanup_free_ char *held = NULL;
        _cleanup_error_ caa_error *e = NULL;
        int r = err && err->code == -ENOENT
                    ? caa_state_store_remove_leftover(m->cfg->pods_dir, name, &held, &e)
                    : 0;
        if (r > 0) {
            log_warn(
                "removed pod directory \"%s\": no state file, so no instance was ever made (it held: %s)",
                name, held);
            return;
        }
        if (r < 0)
            log_error("%s", caa_error_msg(e));
        ctx->rejected++;
        log_error("rejected pod directory \"%s\": %s; left in place for an operator", name,
                  caa_error_msg(err));
        return;
    }
    if (rec->state == CAA_POD_GONE) {
        _cleanup_free_ char *dir = xasprintf("%s/%s", m->cfg->pods_dir, name);
        log_pod_info(rec->sandbox_id, "removing the directory of a pod that was already stopped");
        _cleanup_error_ caa_error *e = NULL;
        if (caa_rm_rf(dir, &e) < 0)
            log_pod_error(rec->sandbox_id, "%s", caa_error_msg(e));
        return;
    }
    const caa_pod *pod = caa_pod_recover(m, rec);
    ctx->recovered++;
    const char *ip = caa_pod_instance_ip(pod);
    const char *id = caa_pod_instance_id(pod);
    log_pod_info(caa_pod_id(pod), "recovered pod %s/%s: state %s, instance %s (id %s, ip %s)",
                 caa_pod_namespace(pod), caa_pod_name(pod), caa_pod_state_name(caa_pod_get_state(pod)),
                 caa_pod_instance_name(pod), id ? id : "unknown", ip ? ip : "none");
}

static int load_pods(caa_manager *m, caa_error **err)
{
    scan_ctx ctx = {.m = m};
    int r = caa_state_store_scan(m->cfg->pods_dir, on_state_scanned, &ctx, err);
    if (r < 0)
        return r;
    log_info("loaded %zu pod(s) from %s, rejected %zu", ctx.recovered, m->cfg->pods_dir, ctx.rejected);
    caa_pods_resume(m);
    return 0;
}

static int start_signal(uv_signal_t *h, int signum, caa_error **err)
{
    int r = uv_signal_start(h, on_signal, signum);
    if (r < 0)
        return caa_error_set(err, r, "watching signal %d: %s", signum, uv_strerror(r));
    return 0;
}

int caa_manager_start(caa_manager *m, caa_provider *provider, caa_error **err)
{
    const caa_daemon_config *cfg = m->cfg;
    _cleanup_free_ char *sock_copy = xstrdup(cfg->socket_path);
    int r;
    m->provider = provider;

    uv_idle_init(m->loop, &m->deferred_idle);
    m->deferred_idle.data = m;
    uv_signal_init(m->loop, &m->sig_term);
    m->sig_term.data = m;
    uv_signal_init(m->loop, &m->sig_int);
    m->sig_int.data = m;
    m->started = true;
    if ((r = start_signal(&m->sig_term, SIGTERM, err)) < 0 ||
        (r = start_signal(&m->sig_int, SIGINT, err)) < 0)
        goto fail;

    if ((r = caa_mkdir_p(dirname(sock_copy), 0700, err)) < 0)
        goto fail;
    if ((r = caa_mkdir_p(cfg->pods_dir, 0700, err)) < 0)
        goto fail;
    if (cfg->secure_comms && (r = caa_daemon_sc_new(m->loop, cfg, &m->sc, err)) < 0)
        goto fail;
    if (!cfg->secure_comms && !cfg->disable_tls && (r = caa_daemon_tls_new(cfg, &m->tls, err)) < 0)
        goto fail;
    if ((r = load_pods(m, err)) < 0)
        goto fail;

    if ((r = ttrpc_server_new(m->loop, &m->server, err)) < 0)
        goto fail;
    if ((r = caa_hypervisor_service_register(m, m->server, err)) < 0 ||
        (r = caa_podvminfo_service_register(m, m->server, err)) < 0)
        goto fail;
    if ((r = ttrpc_server_listen_unix(m->server, cfg->socket_path, 0600, err)) < 0)
        goto fail;
    log_info("serving hypervisor.Hypervisor and podvminfo.PodVMInfo on %s", cfg->socket_path);
    if (cfg->orphan_sweep_interval_ns > 0) {
        /* After the pods were loaded: what they know is not an orphan. */
        caa_orphan_sweep_options so = {
            .interval_ns = cfg->orphan_sweep_interval_ns,
            .grace_ns = cfg->orphan_sweep_grace_ns,
            .dry_run = cfg->orphan_sweep_dry_run,
        };
        m->orphan_sweep = caa_orphan_sweep_new(m, &so);
        caa_orphan_sweep_start(m->orphan_sweep);
    }
    return 0;

fail:
    m->exit_code = 1;
    caa_manager_shutdown(m);
    return r;
}
