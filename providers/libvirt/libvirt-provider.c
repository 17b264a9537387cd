/* The libvirt provider: ops table, request lifecycle on the loop thread,
 * the bounded wait for a pod VM's DHCP lease. Blocking work is in
 * libvirt-actions.c and runs on the provider's worker threads. */
#define LOG_COMPONENT "provider/libvirt"
#include "libvirt-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/virterror.h>
#include <libxml/parser.h>

#include "cleanup.h"
#include "log.h"
#include "strv.h"
#include "xalloc.h"
#include "timeutil.h"

typedef enum create_phase {
    PHASE_CREATE,
    PHASE_ADDRESS,
    PHASE_CLEANUP,
} create_phase;

struct lv_create_req {
    caa_op op; /* its timer paces the address polls */
    lv_job job;
    lv_provider *p;
    lv_create_state st;
    create_phase phase;
    uint64_t deadline; /* loop time (ms) by which the lease must be there */
    bool in_worker;

    /* Result of the job that just ran. */
    int status;
    caa_error *error;
    char **ips;
    int cleanup_status;
    caa_error *cleanup_error;
};

/* delete, list and get: one job on the worker. */
typedef struct simple_req {
    caa_op op; /* its kind says which */
    lv_job job;
    lv_provider *p;
    char *id;
    int status;
    caa_error *error;
    caa_instance *inst;
    caa_instance **list;
} simple_req;

static void provider_free(lv_provider *p)
{
    lv_conn_done(&p->conn);
    lv_host_done(&p->host);
    pthread_mutex_destroy(&p->host_lock);
    free(p);
}

static void release(lv_provider *p)
{
    if (caa_unref(&p->pending))
        provider_free(p);
}

/* ---- create ---- */

static void create_submit(lv_create_req *req, create_phase phase)
{
    req->phase = phase;
    req->in_worker = true;
    lv_worker_submit(req->p->worker, &req->job);
}

static caa_instance *instance_of_state(const lv_create_state *st)
{
    return st->uuid[0] ? caa_instance_new(st->uuid, st->name) : NULL;
}

static void create_free(caa_op *op)
{
    lv_create_req *req = CAA_CONTAINER_OF(op, lv_create_req, op);
    caa_error_free(req->error);
    caa_error_free(req->cleanup_error);
    caa_strv_free(req->ips);
    lv_create_state_done(&req->st);
    free(req);
}

/* Decides the request; the op delivers it later, on the loop thread. */
static void create_finish(lv_create_req *req, int status, caa_instance *inst, caa_error *err)
{
    if (status < 0 && !err)
        err = caa_error_new(status, "libvirt: creating %s failed", req->st.name);
    caa_op_finish_instance(&req->op, status, inst, err);
}

/* Shutdown or the caller's cancel after the domain was started: the caller
 * gets it back to delete. */
static void create_cancelled(lv_create_req *req)
{
    create_finish(req, -ECANCELED, instance_of_state(&req->st),
                  caa_error_new(-ECANCELED, "libvirt: creating %s %s while waiting for an address",
                                req->st.name,
                                req->p->stopping ? "stopped by the provider's shutdown" : "cancelled"));
}

/* Should the create end instead of taking its next step? */
static bool create_cut_short(const lv_create_req *req)
{
    return req->p->stopping || req->op.cancel_requested;
}

/* Appends the cleanup's failure to the error being reported. */
static void append_cleanup_failure(caa_error *e, const caa_error *cleanup_err)
{
    char *msg = xasprintf("%s; cleanup failed too: %s", e->msg,
                          cleanup_err ? caa_error_msg(cleanup_err) : "cancelled by shutdown");
    free(e->msg);
    e->msg = msg;
}

/* A failure after something was created: undo it on the worker, then report
 * `code`/`err` (the original failure). */
static void create_fail(lv_create_req *req, caa_error *err)
{
    caa_error_free(req->error);
    req->error = err;
    req->status = err->code;
    if (req->st.adopted) {
        /* Not ours to remove; the caller decides. */
        create_finish(req, err->code, instance_of_state(&req->st), TAKE_PTR(req->error));
        return;
    }
    create_submit(req, PHASE_CLEANUP);
}

/* After a failed create and its cleanup. A partial instance goes back only
 * when a started domain is left behind; a defined-only leftover is found
 * again by list_instances. */
static void create_report_failure(lv_create_req *req, int cleanup_status, caa_error *cleanup_err)
{
    caa_error *e = TAKE_PTR(req->error);
    caa_instance *inst = NULL;
    if (!e)
        e = caa_error_new(-EIO, "creating pod VM %s failed", req->st.name);
    if (cleanup_status < 0) {
        append_cleanup_failure(e, cleanup_err);
        if (req->st.started)
            inst = instance_of_state(&req->st);
    }
    caa_error_free(cleanup_err);
    create_finish(req, e->code, inst, e);
}

static void address_timer(uv_timer_t *t)
{
    lv_create_req *req = CAA_CONTAINER_OF(t, lv_create_req, op.timer);
    create_submit(req, PHASE_ADDRESS);
}

static void create_run(lv_job *job)
{
    lv_create_req *req = CAA_CONTAINER_OF(job, lv_create_req, job);
    caa_error *e = NULL;
    switch (req->phase) {
    case PHASE_CREATE:
        req->status = lv_do_create(req->p, &req->st, &e);
        if (req->status < 0 && !req->st.adopted) {
            /* Undo right here instead of another trip through the loop. */
            caa_error *ce = NULL;
            req->cleanup_status = lv_do_cleanup(req->p, &req->st, &ce);
            if (req->cleanup_status < 0 && e)
                append_cleanup_failure(e, ce);
            caa_error_free(ce);
        }
        break;
    case PHASE_ADDRESS:
        caa_strv_free(req->ips);
        req->ips = NULL;
        req->status = lv_do_addresses(req->p, req->st.uuid, &req->ips, &e);
        break;
    case PHASE_CLEANUP:
        req->cleanup_status = lv_do_cleanup(req->p, &req->st, &e);
        /* req->error keeps the original failure; e is the cleanup's. */
        caa_error_free(req->cleanup_error);
        req->cleanup_error = e;
        return;
    }
    caa_error_free(req->error);
    req->error = e;
}

static void create_done(lv_job *job)
{
    lv_create_req *req = CAA_CONTAINER_OF(job, lv_create_req, job);
    lv_provider *p = req->p;
    req->in_worker = false;

    if (job->cancelled) {
        switch (req->phase) {
        case PHASE_CREATE:
            create_finish(req, -ECANCELED, NULL, caa_error_new(-ECANCELED, "libvirt provider shutting down"));
            return;
        case PHASE_ADDRESS:
            create_cancelled(req);
            return;
        case PHASE_CLEANUP:
            create_report_failure(req, -ECANCELED, NULL);
            return;
        }
    }

    switch (req->phase) {
    case PHASE_CREATE:
        if (req->status < 0) {
            caa_error *e = TAKE_PTR(req->error);
            caa_instance *inst = NULL;
            if (req->st.adopted || (req->cleanup_status < 0 && req->st.started))
                inst = instance_of_state(&req->st);
            create_finish(req, req->status, inst, e);
            return;
        }
        if (create_cut_short(req)) {
            create_cancelled(req);
            return;
        }
        req->deadline = uv_now(p->loop) + (uint64_t)caa_ns_to_ms(p->cfg->ip_wait);
        create_submit(req, PHASE_ADDRESS);
        return;

    case PHASE_ADDRESS:
        if (req->status >= 0 && req->ips && req->ips[0]) {
            caa_instance *inst = instance_of_state(&req->st);
            inst->ips = TAKE_PTR(req->ips);
            create_finish(req, 0, inst, NULL);
            return;
        }
        if (req->status == -ENOENT || req->status == -ESRCH) {
            create_fail(req, TAKE_PTR(req->error));
            return;
        }
        if (create_cut_short(req)) {
            create_cancelled(req);
            return;
        }
        uint64_t now = uv_now(p->loop);
        if (now >= req->deadline) {
            caa_error *e = caa_error_new(-ETIMEDOUT, "no DHCP lease for domain %s within %lld ms%s%s",
                                         req->st.name, (long long)caa_ns_to_ms(p->cfg->ip_wait),
                                         req->error ? ": " : "", req->error ? caa_error_msg(req->error) : "");
            create_fail(req, e);
            return;
        }
        /* Lease not there yet (or a transient lookup error): try again. */
        uint64_t wait = req->deadline - now < LV_ADDRESS_POLL_MS ? req->deadline - now : LV_ADDRESS_POLL_MS;
        uv_timer_start(&req->op.timer, address_timer, wait, 0);
        return;

    case PHASE_CLEANUP: {
        caa_error *ce = TAKE_PTR(req->cleanup_error);
        create_report_failure(req, req->cleanup_status, ce);
        return;
    }
    }
}

/* Shutdown or the caller's cancel: a create waiting between address polls
 * ends now. A job on the worker is not interrupted (a libvirt call is short);
 * create_done ends the create when it is back (at shutdown the worker hands
 * queued jobs back cancelled). */
static void create_cancel(caa_op *op)
{
    lv_create_req *req = CAA_CONTAINER_OF(op, lv_create_req, op);
    if (req->in_worker)
        return;
    uv_timer_stop(&req->op.timer);
    create_cancelled(req);
}

static const caa_op_class create_class = {.cancel = create_cancel, .free = create_free};

static void copy_spec(lv_create_state *st, const caa_instance_spec *spec)
{
    st->name = xstrdup(spec->instance_name);
    st->sandbox_id = xstrdup(spec->sandbox_id);
    st->pod_name = spec->pod_name ? xstrdup(spec->pod_name) : NULL;
    st->pod_namespace = spec->pod_namespace ? xstrdup(spec->pod_namespace) : NULL;
    st->image = spec->image && *spec->image ? xstrdup(spec->image) : NULL;
    st->idempotency_key = spec->idempotency_key ? xstrdup(spec->idempotency_key) : NULL;
    st->tags = spec->tags ? caa_strv_copy(spec->tags) : NULL;
    st->vcpus = spec->vcpus;
    st->memory_mib = spec->memory_mib;
    st->user_data = spec->user_data;
    st->user_data_len = spec->user_data ? spec->user_data_len : 0;
}

static bool name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n > 0 && n <= 63 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

static int check_text(const char *what, const char *s, size_t max, bool required, caa_error **err)
{
    if (!s || !*s)
        return required ? caa_error_set(err, -EINVAL, "libvirt: empty %s", what) : 0;
    if (strlen(s) > max)
        return caa_error_set(err, -EINVAL, "libvirt: %s longer than %zu bytes", what, max);
    if (!lv_xml_text_ok(s))
        return caa_error_set(err, -EINVAL, "libvirt: %s contains control characters or invalid UTF-8", what);
    return 0;
}

static int lv_validate_spec(void *priv, const caa_instance_spec *spec, caa_error **err)
{
    (void)priv;
    int r;
    if (!name_ok(spec->instance_name))
        return caa_error_set(err, -EINVAL, "libvirt: instance name must be 1 to 63 characters of [a-z0-9-]");
    if ((r = check_text("sandbox id", spec->sandbox_id, 256, true, err)) < 0 ||
        (r = check_text("pod name", spec->pod_name, 253, false, err)) < 0 ||
        (r = check_text("pod namespace", spec->pod_namespace, 253, false, err)) < 0 ||
        (r = check_text("image", spec->image, 1024, false, err)) < 0 ||
        (r = check_text("idempotency key", spec->idempotency_key, 256, false, err)) < 0)
        return r;
    for (size_t i = 0; spec->tags && spec->tags[i]; i++)
        if ((r = check_text("tag", spec->tags[i], 1024, true, err)) < 0)
            return r;
    if (spec->vcpus < 0 || spec->vcpus > 4096)
        return caa_error_set(err, -EINVAL, "libvirt: vCPU count %lld out of range [1, 4096]",
                             (long long)spec->vcpus);
    if (spec->memory_mib < 0 || spec->memory_mib > (INT64_C(16) << 20))
        return caa_error_set(err, -EINVAL, "libvirt: memory %lld MiB out of range",
                             (long long)spec->memory_mib);
    if (spec->gpus > 0)
        return caa_error_set(err, -EOPNOTSUPP, "libvirt: the libvirt provider does not attach GPUs");
    if (spec->user_data && spec->user_data_len > LV_USER_DATA_MAX)
        return caa_error_set(err, -EINVAL, "libvirt: user-data of %zu bytes is over the %u byte limit",
                             spec->user_data_len, LV_USER_DATA_MAX);
    return 0;
}

static int lv_create_instance(void *priv, const caa_instance_spec *spec, caa_instance_cb cb, void *opaque,
                              caa_error **err)
{
    lv_provider *p = priv;
    if (p->stopping)
        return caa_error_set(err, -ECANCELED, "libvirt provider is shutting down");
    int r = lv_validate_spec(priv, spec, err);
    if (r < 0)
        return r;
    if (spec->multi_nic) /* upstream's libvirt provider ignores MultiNic too */
        log_warn("%s: external-net-via-pod-vm wants a second network interface; the domain gets "
                 "only the one on the configured network",
                 spec->instance_name);
    lv_create_req *req = xcalloc(1, sizeof(*req));
    caa_op_add_create(&p->ops, &req->op, &create_class, cb, opaque);
    req->p = p;
    req->job.run = create_run;
    req->job.done = create_done;
    copy_spec(&req->st, spec);
    create_submit(req, PHASE_CREATE);
    return 0;
}

/* ---- delete / list / get ---- */

static void simple_run(lv_job *job)
{
    simple_req *req = CAA_CONTAINER_OF(job, simple_req, job);
    switch (req->op.kind) {
    case CAA_OP_DELETE:
        req->status = lv_do_delete(req->p, req->id, &req->error);
        break;
    case CAA_OP_LIST:
        req->status = lv_do_list(req->p, &req->list, &req->error);
        break;
    case CAA_OP_GET:
        req->status = lv_do_get(req->p, req->id, &req->inst, &req->error);
        break;
    case CAA_OP_CREATE:
        abort();
    }
}

static void simple_done(lv_job *job)
{
    simple_req *req = CAA_CONTAINER_OF(job, simple_req, job);
    if (job->cancelled) {
        req->status = -ECANCELED;
        caa_error_free(req->error);
        req->error = caa_error_new(-ECANCELED, "libvirt provider shutting down");
    }
    if (req->op.kind == CAA_OP_LIST)
        caa_op_finish_list(&req->op, req->status, TAKE_PTR(req->list), TAKE_PTR(req->error));
    else
        caa_op_finish(&req->op, req->status, TAKE_PTR(req->inst), TAKE_PTR(req->error));
}

static void simple_free(caa_op *op)
{
    simple_req *req = CAA_CONTAINER_OF(op, simple_req, op);
    free(req->id);
    free(req);
}

/* No cancel: the worker hands back its queued jobs cancelled when it stops. */
static const caa_op_class simple_class = {.free = simple_free};

static bool uuid_ok(const char *s)
{
    if (!s || strlen(s) != VIR_UUID_STRING_BUFLEN - 1)
        return false;
    for (size_t i = 0; s[i]; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-'
                 : !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
                     (s[i] >= 'A' && s[i] <= 'F')))
            return false;
    }
    return true;
}

/* delete, list, get: checked, registered with the callback of its kind and
 * queued on the worker. */
static int simple_start(lv_provider *p, caa_op_kind kind, const char *id, caa_op_cb cb, void *opaque,
                        caa_error **err)
{
    if (p->stopping)
        return caa_error_set(err, -ECANCELED, "libvirt provider is shutting down");
    if (id && !uuid_ok(id))
        return caa_error_set(err, -EINVAL, "libvirt: instance id \"%.64s\" is not a domain UUID", id);
    simple_req *req = xcalloc(1, sizeof(*req));
    caa_op_add(&p->ops, &req->op, &simple_class, kind, cb, opaque);
    req->p = p;
    req->id = id ? xstrdup(id) : NULL;
    req->job.run = simple_run;
    req->job.done = simple_done;
    lv_worker_submit(p->worker, &req->job);
    return 0;
}

static int lv_delete_instance(void *priv, const char *instance_id, caa_done_cb cb, void *opaque,
                              caa_error **err)
{
    return simple_start(priv, CAA_OP_DELETE, instance_id, (caa_op_cb){.done = cb}, opaque, err);
}

static int lv_list_instances(void *priv, caa_list_cb cb, void *opaque, caa_error **err)
{
    return simple_start(priv, CAA_OP_LIST, NULL, (caa_op_cb){.list = cb}, opaque, err);
}

static int lv_get_instance(void *priv, const char *instance_id, caa_instance_cb cb, void *opaque,
                           caa_error **err)
{
    return simple_start(priv, CAA_OP_GET, instance_id, (caa_op_cb){.instance = cb}, opaque, err);
}

/* ---- init / verify / teardown ---- */

/* libvirt's default handler prints every error to stderr; we report them
 * through caa_error instead. */
static void silent_error(void *opaque, virErrorPtr e)
{
    (void)opaque;
    (void)e;
}

static int lv_init(uv_loop_t *loop, const void *config, void **ret_priv, caa_error **err)
{
    const lv_config *cfg = config;
    lv_settings set;
    int r = lv_config_validate(cfg, &set, err);
    if (r < 0)
        return r;
    /* Both libraries must be initialised before threads use them. */
    if (virInitialize() < 0)
        return caa_error_set(err, -EIO, "libvirt: virInitialize failed");
    virSetErrorFunc(NULL, silent_error);
    xmlInitParser();

    lv_provider *p = xcalloc(1, sizeof(*p));
    p->loop = loop;
    p->cfg = cfg;
    p->set = set;
    lv_conn_init(&p->conn, cfg->uri);
    pthread_mutex_init(&p->host_lock, NULL);
    atomic_init(&p->faults, 0);
    r = lv_worker_new(loop, LV_WORKER_THREADS, &p->worker, err);
    if (r < 0) {
        provider_free(p);
        return r;
    }
    caa_refcount_init(&p->pending, 2); /* the worker and the op set, each released when closed */
    caa_op_set_init(&p->ops, loop, "libvirt");
    *ret_priv = p;
    return 0;
}

typedef struct verify_job {
    lv_job job;
    lv_provider *p;
    int status;
    caa_error *error;
} verify_job;

static void verify_run(lv_job *job)
{
    verify_job *v = CAA_CONTAINER_OF(job, verify_job, job);
    v->status = lv_do_verify(v->p, &v->error);
}

static int lv_verify_config(void *priv, caa_error **err)
{
    lv_provider *p = priv;
    lv_settings set;
    int r = lv_config_validate(p->cfg, &set, err);
    if (r < 0)
        return r;
    verify_job v = {.job = {.run = verify_run}, .p = p};
    lv_worker_run_sync(p->worker, &v.job);
    if (v.job.cancelled)
        return caa_error_set(err, -ECANCELED, "libvirt provider is shutting down");
    if (v.status < 0) {
        caa_error_prefix(&v.error, "libvirt configuration check");
        return caa_error_propagate(err, &v.error);
    }
    return 0;
}

static void worker_closed(void *opaque)
{
    lv_provider *p = opaque;
    p->worker = NULL;
    release(p);
}

static void ops_closed(void *opaque)
{
    release(opaque);
}

static void lv_cancel(void *priv, void *opaque)
{
    lv_provider *p = priv;
    if (!p->stopping)
        caa_op_set_cancel(&p->ops, opaque);
}

static void lv_teardown(void *priv)
{
    lv_provider *p = priv;
    if (!p || p->stopping)
        return;
    p->stopping = true;
    /* Creates waiting for a lease between polls end now (create_cancel). */
    caa_op_set_close(&p->ops, ops_closed, p);
    /* Joins the threads; their results and cancelled jobs are delivered from
     * the worker's close callback, and the provider is freed after the last. */
    lv_worker_stop(p->worker, worker_closed, p);
}

/* ---- test hooks ---- */

void caa_libvirt_test_set_faults(void *priv, unsigned faults)
{
    atomic_store(&((lv_provider *)priv)->faults, faults);
}

virConnectPtr caa_libvirt_test_connection(void *priv, caa_error **err)
{
    virConnectPtr conn = NULL;
    if (lv_conn_get(&((lv_provider *)priv)->conn, &conn, err) < 0)
        return NULL;
    return conn;
}

void caa_libvirt_test_break_connection(void *priv, unsigned n)
{
    lv_provider *p = priv;
    pthread_mutex_lock(&p->conn.lock);
    p->conn.test_broken_gets = n;
    pthread_mutex_unlock(&p->conn.lock);
}

unsigned caa_libvirt_test_reconnects(void *priv)
{
    lv_provider *p = priv;
    pthread_mutex_lock(&p->conn.lock);
    unsigned n = p->conn.reconnects;
    pthread_mutex_unlock(&p->conn.lock);
    return n;
}

const caa_provider_ops caa_libvirt_provider = {
    .name = "libvirt",
    .options = lv_options,
    .n_options = LV_N_OPTIONS,
    .config_size = sizeof(lv_config),
    .init = lv_init,
    .verify_config = lv_verify_config,
    .validate_spec = lv_validate_spec,
    .create_instance = lv_create_instance,
    .delete_instance = lv_delete_instance,
    .list_instances = lv_list_instances,
    .get_instance = lv_get_instance,
    .teardown = lv_teardown,
    .cancel = lv_cancel,
};
