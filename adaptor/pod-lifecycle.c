/* StartVM and StopVM flows of one pod.
 *
 * Start:  created -> provisioning: provider create -> (instance recorded)
 *         -> network_setup -> proxy_start -> ready.
 * Stop:   -> stopping: proxy_stop -> provider delete -> network_teardown
 *         -> gone: pod dir removed, pod dropped.
 * A failed start runs the same teardown and leaves the pod in `failed`
 * (instance id kept only if its deletion failed, so StopVM retries).
 * StopVM during StartVM raises the pod's intent to `stop` (and persists
 * `stopping`); the start notices at its next step, answers CANCELLED, and
 * the stop teardown deletes what the start made. A departing caller raises
 * `cancel-start` the same way. States change only through caa_pod_set_state()
 * (docs/pod-lifecycle.md). */
#define LOG_COMPONENT "adaptor/lifecycle"
#include "pod-internal.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "failpoint.h"
#include "fs.h"
#include "log.h"
#include "metrics.h"
#include "pod-hooks.h"
#include "strv.h"
#include "xalloc.h"

#define ID(pod) ((pod)->rec.sandbox_id)

typedef void (*teardown_done_fn)(caa_pod *pod);

/* Teardown walks these steps in order; td_* fields live in a side struct so
 * pod.h stays readable. */
enum teardown_step {
    TD_PROXY = 0,
    TD_FIND_INSTANCE,
    TD_DELETE_INSTANCE,
    TD_NETWORK,
    TD_DONE,
};

typedef struct teardown {
    caa_pod *pod;
    enum teardown_step step;
    teardown_done_fn done;
    char **found_ids; /* instances found by name (recovered pods whose create had no answer) */
    size_t next_found;
    caa_error *error; /* first failure; the teardown goes on with the other steps */
} teardown;

static void teardown_next(teardown *td);

/* ---------------------------------------------------------------- helpers */

static caa_error *error_or(caa_error *e, int code, const char *fallback)
{
    return e ? e : caa_error_new(code, "%s", fallback);
}

static void persist_or_log(caa_pod *pod)
{
    _cleanup_error_ caa_error *e = NULL;
    if (caa_pod_persist(pod, &e) < 0)
        log_pod_error(ID(pod), "saving pod state: %s", caa_error_msg(e));
}

static void set_state_or_log(caa_pod *pod, caa_pod_state to)
{
    _cleanup_error_ caa_error *e = NULL;
    if (caa_pod_set_state(pod, to, &e) < 0)
        log_pod_error(ID(pod), "%s", caa_error_msg(e));
}

const char *caa_pod_intent_name(caa_pod_intent i)
{
    switch (i) {
    case CAA_POD_INTENT_NONE:
        return "none";
    case CAA_POD_INTENT_CANCEL_START:
        return "cancel-start";
    case CAA_POD_INTENT_STOP:
        return "stop";
    }
    return "invalid";
}

/* Intents only rise (a stop outranks a cancelled start); the lifecycle lowers them when they are served. */
static void raise_intent(caa_pod *pod, caa_pod_intent i)
{
    if (i <= pod->intent)
        return;
    log_pod_debug(ID(pod), "intent %s -> %s", caa_pod_intent_name(pod->intent), caa_pod_intent_name(i));
    pod->intent = i;
}

static bool stop_requested(const caa_pod *pod)
{
    return pod->intent == CAA_POD_INTENT_STOP;
}

static bool start_in_flight(const caa_pod *pod)
{
    return pod->start_cb != NULL;
}

/* Something asked the start to end early: StopVM, the caller, or the daemon's shutdown. */
static bool start_cut_short(const caa_pod *pod)
{
    return pod->intent != CAA_POD_INTENT_NONE || pod->mgr->shutting_down;
}

void caa_pod_stop_proxy(caa_pod *pod)
{
    caa_manager *m = pod->mgr;
    if ((pod->made & CAA_POD_MADE_PROXY) && m->hooks->proxy_stop)
        m->hooks->proxy_stop(m, pod);
}

/* ---------------------------------------------------------------- teardown */

static void teardown_start(caa_pod *pod, teardown_done_fn done)
{
    teardown *td = xnew0(teardown, 1);
    td->pod = pod;
    td->done = done;
    caa_pod_hold(pod);
    teardown_next(td);
}

static void teardown_finish(teardown *td)
{
    caa_pod *pod = td->pod;
    if (!td->error)
        pod->made &= ~CAA_POD_MADE_UNKNOWN_INSTANCE; /* looked for and deleted, or nothing to look with */
    caa_error_free(pod->stop_error);
    pod->stop_error = td->error;
    caa_strv_free(td->found_ids);
    teardown_done_fn done = td->done;
    free(td);
    done(pod);
    caa_pod_release(pod);
}

static void teardown_fail(teardown *td, caa_error *e)
{
    if (!td->error)
        td->error = e;
    else
        caa_error_free(e);
}

static void on_instance_deleted(int status, caa_error *err, void *opaque)
{
    caa_metrics_provider_result("delete_instance", status);
    teardown *td = opaque;
    caa_pod *pod = td->pod;
    if (status < 0) {
        caa_error *e = error_or(err, status, "deleting instance failed");
        caa_error_prefix(&e, "deleting instance %s", pod->rec.instance_id);
        log_pod_error(ID(pod), "%s", caa_error_msg(e));
        teardown_fail(td, e);
    } else {
        caa_error_free(err);
        log_pod_info(ID(pod), "deleted instance %s", pod->rec.instance_id);
        caa_pod_clear_instance(pod);
    }
    td->step = TD_NETWORK;
    teardown_next(td);
    caa_pod_release(pod);
}

static void on_found_deleted(int status, caa_error *err, void *opaque)
{
    caa_metrics_provider_result("delete_instance", status);
    teardown *td = opaque;
    caa_pod *pod = td->pod;
    const char *id = td->found_ids[td->next_found - 1];
    if (status < 0) {
        caa_error *e = error_or(err, status, "deleting instance failed");
        caa_error_prefix(&e, "deleting instance %s", id);
        log_pod_error(ID(pod), "%s", caa_error_msg(e));
        teardown_fail(td, e);
    } else {
        caa_error_free(err);
        log_pod_info(ID(pod), "deleted instance %s (found by name)", id);
    }
    teardown_next(td);
    caa_pod_release(pod);
}

static void on_instances_listed(int status, caa_instance **list, caa_error *err, void *opaque)
{
    caa_metrics_provider_result("list_instances", status);
    teardown *td = opaque;
    caa_pod *pod = td->pod;
    if (status < 0) {
        caa_error *e = error_or(err, status, "listing instances failed");
        caa_error_prefix(&e, "looking for instance %s", pod->rec.instance_name);
        log_pod_error(ID(pod), "%s", caa_error_msg(e));
        teardown_fail(td, e);
    } else {
        caa_error_free(err);
        for (size_t i = 0; list && list[i]; i++)
            if (list[i]->id && list[i]->name && strcmp(list[i]->name, pod->rec.instance_name) == 0)
                caa_strv_push(&td->found_ids, list[i]->id);
        if (!td->found_ids)
            log_pod_info(ID(pod), "no instance named %s exists", pod->rec.instance_name);
    }
    caa_instance_list_free(list);
    td->step = TD_DELETE_INSTANCE;
    teardown_next(td);
    caa_pod_release(pod);
}

static void on_network_torn_down(int status, caa_error *err, void *opaque)
{
    teardown *td = opaque;
    caa_pod *pod = td->pod;
    if (status < 0) {
        caa_error *e = error_or(err, status, "network teardown failed");
        caa_error_prefix(&e, "tearing down the pod network");
        log_pod_error(ID(pod), "%s", caa_error_msg(e));
        teardown_fail(td, e);
    } else {
        caa_error_free(err);
        pod->made &= ~CAA_POD_MADE_NETWORK;
    }
    td->step = TD_DONE;
    teardown_next(td);
    caa_pod_release(pod);
}

/* An instance may exist that we never learnt the id of (CAA_POD_MADE_UNKNOWN_INSTANCE). */
static bool instance_unknown(const caa_pod *pod)
{
    return (pod->made & CAA_POD_MADE_UNKNOWN_INSTANCE) && !pod->rec.instance_id;
}

static void teardown_next(teardown *td)
{
    caa_pod *pod = td->pod;
    caa_manager *m = pod->mgr;
    _cleanup_error_ caa_error *e = NULL;
    int r;

    for (;;) {
        /* A shutdown cancelled a step: leave the rest (and the state file) to the next daemon. */
        if (m->shutting_down && td->error && td->step != TD_DONE)
            td->step = TD_DONE;
        switch (td->step) {
        case TD_PROXY:
            caa_pod_stop_proxy(pod);
            pod->made &= ~CAA_POD_MADE_PROXY;
            td->step = TD_FIND_INSTANCE;
            continue;

        case TD_FIND_INSTANCE:
            td->step = TD_DELETE_INSTANCE;
            if (!instance_unknown(pod))
                continue;
            log_pod_info(ID(pod), "instance id unknown, looking for instance %s", pod->rec.instance_name);
            caa_pod_hold(pod);
            r = caa_provider_list_instances(m->provider, on_instances_listed, td, &e);
            if (r == 0)
                return;
            caa_pod_release(pod);
            if (r == -EOPNOTSUPP) {
                log_pod_warn(ID(pod), "provider cannot list instances; an instance named %s may be left",
                             pod->rec.instance_name);
                caa_error_free(TAKE_PTR(e));
                continue;
            }
            caa_error_prefix(&e, "looking for instance %s", pod->rec.instance_name);
            log_pod_error(ID(pod), "%s", caa_error_msg(e));
            teardown_fail(td, TAKE_PTR(e));
            continue;

        case TD_DELETE_INSTANCE:
            if (td->found_ids && td->found_ids[td->next_found]) {
                const char *id = td->found_ids[td->next_found++];
                caa_pod_hold(pod);
                r = caa_provider_delete_instance(m->provider, id, on_found_deleted, td, &e);
                if (r == 0)
                    return;
                caa_pod_release(pod);
                caa_error_prefix(&e, "deleting instance %s", id);
                log_pod_error(ID(pod), "%s", caa_error_msg(e));
                teardown_fail(td, TAKE_PTR(e));
                continue;
            }
            td->step = TD_NETWORK;
            if (!pod->rec.instance_id)
                continue;
            log_pod_info(ID(pod), "deleting instance %s", pod->rec.instance_id);
            CAA_FAILPOINT("provider", "before-delete");
            caa_pod_hold(pod);
            r = caa_provider_delete_instance(m->provider, pod->rec.instance_id, on_instance_deleted, td, &e);
            if (r == 0)
                return;
            caa_pod_release(pod);
            caa_error_prefix(&e, "deleting instance %s", pod->rec.instance_id);
            log_pod_error(ID(pod), "%s", caa_error_msg(e));
            teardown_fail(td, TAKE_PTR(e));
            continue;

        case TD_NETWORK:
            td->step = TD_DONE;
            if (!m->hooks->network_teardown || !((pod->made & CAA_POD_MADE_NETWORK) || pod->recovered))
                continue;
            caa_pod_hold(pod);
            r = m->hooks->network_teardown(m, pod, on_network_torn_down, td, &e);
            if (r == 0)
                return;
            caa_pod_release(pod);
            caa_error_prefix(&e, "tearing down the pod network");
            log_pod_error(ID(pod), "%s", caa_error_msg(e));
            teardown_fail(td, TAKE_PTR(e));
            continue;

        case TD_DONE:
            teardown_finish(td);
            return;
        }
    }
}

/* ---------------------------------------------------------------- stop */

/* The start's current step would run to its end: the provider's create
 * (a lease, boot or long-running-operation wait of up to minutes) or an
 * agent proxy trying to reach the VM until -proxy-timeout. Cancelling the
 * create makes it answer -ECANCELED with what it made (deleted by the
 * teardown, or looked up by name without an id); stopping the proxy makes
 * its ready callback run with -ECANCELED. */
static void cut_start_step_short(caa_pod *pod)
{
    if (!start_in_flight(pod))
        return;
    if (pod->rec.state == CAA_POD_PROVISIONING) {
        int r = caa_provider_cancel(pod->mgr->provider, pod);
        if (r == 0)
            log_pod_info(ID(pod), "cancelling the create of instance %s", pod->rec.instance_name);
        else if (r == -EOPNOTSUPP)
            log_pod_debug(ID(pod), "the provider cannot cancel a create: waiting for its answer");
    }
    caa_pod_stop_proxy(pod);
}

static void complete_stop_waiters(caa_pod *pod, int status, const caa_error *err)
{
    caa_list batch; /* a StopVM arriving from a callback waits for the next teardown */
    caa_list_move_all(&batch, &pod->stop_waiters);
    while (!caa_list_empty(&batch)) {
        caa_pod_waiter *w = caa_list_entry(batch.next, caa_pod_waiter, node);
        caa_list_remove(&w->node);
        if (w->cb)
            w->cb(status, err ? caa_error_copy(err) : NULL, w->opaque);
        free(w);
    }
}

static void on_stop_teardown_done(caa_pod *pod)
{
    caa_manager *m = pod->mgr;
    if (pod->stop_error && m->shutting_down) {
        /* Stays `stopping`: the next daemon resumes the StopVM. */
        caa_error *e = TAKE_PTR(pod->stop_error);
        log_pod_info(ID(pod), "StopVM interrupted by the shutdown: %s", caa_error_msg(e));
        complete_stop_waiters(pod, -ESHUTDOWN, e);
        caa_error_free(e);
        return;
    }
    if (pod->stop_error) {
        /* Keep the pod (and the instance id) so that another StopVM retries. */
        set_state_or_log(pod, CAA_POD_FAILED);
        pod->intent = CAA_POD_INTENT_NONE;
        caa_error *e = TAKE_PTR(pod->stop_error);
        complete_stop_waiters(pod, e->code, e);
        caa_error_free(e);
        return;
    }
    set_state_or_log(pod, CAA_POD_GONE);
    _cleanup_error_ caa_error *e = NULL;
    if (caa_rm_rf(pod->dir, &e) < 0)
        log_pod_error(ID(pod), "removing pod directory: %s", caa_error_msg(e));
    caa_pod_forget(pod);
    log_pod_info(ID(pod), "pod stopped");
    complete_stop_waiters(pod, 0, NULL);
    /* The pod is freed when the teardown releases it. */
}

static void begin_stop(caa_pod *pod)
{
    set_state_or_log(pod, CAA_POD_STOPPING);
    teardown_start(pod, on_stop_teardown_done);
}

static void deferred_stop(void *arg)
{
    caa_pod *pod = arg;
    begin_stop(pod);
    caa_pod_release(pod);
}

void caa_pod_stop(caa_pod *pod, caa_done_cb cb, void *opaque)
{
    caa_pod_waiter *w = xnew0(caa_pod_waiter, 1);
    w->cb = cb;
    w->opaque = opaque;
    caa_list_append(&pod->stop_waiters, &w->node);
    if (stop_requested(pod))
        return; /* joins the teardown under way */
    raise_intent(pod, CAA_POD_INTENT_STOP);
    if (start_in_flight(pod)) {
        /* Persist `stopping` now: from here on a crash still leads to deletion. */
        log_pod_info(ID(pod), "StopVM while StartVM is in flight: cancelling the start");
        /* While still `provisioning`: the step to cut short is the create. No
         * answer comes from inside the cancel. */
        cut_start_step_short(pod);
        set_state_or_log(pod, CAA_POD_STOPPING);
        return;
    }
    /* Never complete re-entrantly from inside the caller. */
    caa_pod_hold(pod);
    caa_manager_defer(pod->mgr, deferred_stop, pod);
}

/* ---------------------------------------------------------------- start */

static void complete_start(caa_pod *pod, int status, caa_error *err)
{
    caa_done_cb cb = pod->start_cb;
    void *opaque = pod->start_opaque;
    assert(cb); /* a start is answered exactly once */
    pod->start_cb = NULL;
    pod->start_opaque = NULL;
    if (pod->intent == CAA_POD_INTENT_CANCEL_START)
        pod->intent = CAA_POD_INTENT_NONE; /* served: the start is over */
    cb(status, err, opaque);
}

static void on_start_cleanup_done(caa_pod *pod)
{
    if (pod->stop_error) {
        log_pod_error(ID(pod), "cleanup after the failed start is incomplete: %s",
                      caa_error_msg(pod->stop_error));
        caa_error_free(TAKE_PTR(pod->stop_error));
    }
    persist_or_log(pod);
    caa_error *e = TAKE_PTR(pod->start_error);
    if (stop_requested(pod)) {
        /* A StopVM arrived during the cleanup: the start is cancelled and the stop runs now. */
        complete_start(pod, -ECANCELED,
                       caa_error_new(-ECANCELED, "StartVM of sandbox %s cancelled by StopVM", ID(pod)));
        caa_error_free(e);
        begin_stop(pod);
        return;
    }
    complete_start(pod, e->code, e);
}

/* The start cannot go on: answer it once everything created so far is deleted. */
static void start_fail(caa_pod *pod, caa_error *e)
{
    caa_manager *m = pod->mgr;
    if (m->shutting_down) {
        /* Keep what exists: the state file lets the next daemon delete it on StopVM
         * (or resume the StopVM that was requested: the pod is `stopping`). */
        caa_error_free(e);
        complete_start(pod, -ESHUTDOWN, caa_error_new(-ESHUTDOWN, "the daemon is shutting down"));
        return;
    }
    if (stop_requested(pod)) {
        caa_error_free(e);
        complete_start(pod, -ECANCELED,
                       caa_error_new(-ECANCELED, "StartVM of sandbox %s cancelled by StopVM", ID(pod)));
        begin_stop(pod);
        return;
    }
    log_pod_error(ID(pod), "StartVM failed: %s", caa_error_msg(e));
    caa_error_free(pod->start_error);
    pod->start_error = e;
    set_state_or_log(pod, CAA_POD_FAILED);
    teardown_start(pod, on_start_cleanup_done);
}

/* Between steps: has StopVM, the caller or a shutdown cut the start short? */
static bool start_interrupted(caa_pod *pod)
{
    if (stop_requested(pod) || pod->mgr->shutting_down) {
        start_fail(pod, caa_error_new(-ECANCELED, "StartVM of sandbox %s cancelled", ID(pod)));
        return true;
    }
    if (pod->intent == CAA_POD_INTENT_CANCEL_START) {
        start_fail(
            pod, caa_error_new(-ECANCELED, "StartVM of sandbox %s cancelled: the caller went away", ID(pod)));
        return true;
    }
    return false;
}

static void start_ready(caa_pod *pod)
{
    _cleanup_error_ caa_error *e = NULL;
    if (caa_pod_set_state(pod, CAA_POD_READY, &e) < 0) {
        start_fail(pod, TAKE_PTR(e));
        return;
    }
    log_pod_info(ID(pod), "pod VM %s is ready", pod->rec.instance_id);
    complete_start(pod, 0, NULL);
}

static void on_proxy_ready(int status, caa_error *err, void *opaque)
{
    caa_pod *pod = opaque;
    if (status == -ECANCELED && start_cut_short(pod)) {
        /* We stopped the proxy to cut the start short: say why. */
        caa_error_free(err);
        if (!start_interrupted(pod))
            start_fail(pod, caa_error_new(-ECANCELED, "StartVM of sandbox %s cancelled", ID(pod)));
    } else if (status < 0) {
        caa_error *e = error_or(err, status, "agent proxy failed");
        caa_error_prefix(&e, "connecting to the pod VM");
        start_fail(pod, e);
    } else {
        caa_error_free(err);
        if (!start_interrupted(pod))
            start_ready(pod);
    }
    caa_pod_release(pod);
}

/* Persists the next step's state; false (start failed) when that write fails. */
static bool start_step(caa_pod *pod, caa_pod_state to)
{
    _cleanup_error_ caa_error *e = NULL;
    if (caa_pod_set_state(pod, to, &e) < 0) {
        start_fail(pod, TAKE_PTR(e));
        return false;
    }
    return true;
}

static void start_proxy(caa_pod *pod)
{
    caa_manager *m = pod->mgr;
    if (!m->hooks->proxy_start) {
        start_ready(pod);
        return;
    }
    if (!start_step(pod, CAA_POD_CONNECTING))
        return;
    _cleanup_error_ caa_error *e = NULL;
    pod->made |= CAA_POD_MADE_PROXY; /* proxy_stop must handle a half-started proxy */
    caa_pod_hold(pod);
    if (m->hooks->proxy_start(m, pod, on_proxy_ready, pod, &e) < 0) {
        caa_pod_release(pod);
        caa_error_prefix(&e, "starting the agent proxy");
        start_fail(pod, TAKE_PTR(e));
    }
}

static void on_network_ready(int status, caa_error *err, void *opaque)
{
    caa_pod *pod = opaque;
    if (status < 0) {
        caa_error *e = error_or(err, status, "network setup failed");
        caa_error_prefix(&e, "setting up the pod network");
        start_fail(pod, e);
    } else {
        caa_error_free(err);
        pod->made |= CAA_POD_MADE_NETWORK;
        CAA_FAILPOINT("hook", "network-ready");
        if (!start_interrupted(pod))
            start_proxy(pod);
    }
    caa_pod_release(pod);
}

static void start_network(caa_pod *pod)
{
    caa_manager *m = pod->mgr;
    if (!start_step(pod, CAA_POD_BOOTING))
        return;
    if (!m->hooks->network_setup) {
        start_proxy(pod);
        return;
    }
    _cleanup_error_ caa_error *e = NULL;
    caa_pod_hold(pod);
    if (m->hooks->network_setup(m, pod, on_network_ready, pod, &e) < 0) {
        caa_pod_release(pod);
        caa_error_prefix(&e, "setting up the pod network");
        start_fail(pod, TAKE_PTR(e));
    }
}

static void on_instance_created(int status, caa_instance *inst, caa_error *err, void *opaque)
{
    caa_metrics_provider_result("create_instance", status);
    caa_pod *pod = opaque;
    _cleanup_(caa_instance_freep) caa_instance *owned = inst;
    bool have_id = inst && inst->id && *inst->id;
    CAA_FAILPOINT("provider", "create-answered"); /* made in the cloud, id not yet on disk */
    /* The provider is done with the user-data; the pod is never created again. */
    caa_pod_drop_boot_data(pod);

    if (have_id) {
        /* Record first: whatever happens next, the id is on disk for deletion. */
        caa_pod_set_instance(pod, inst);
        if (status == 0)
            log_pod_info(ID(pod), "created instance %s (%s)", inst->id,
                         inst->ips && inst->ips[0] ? inst->ips[0] : "no IP");
        else
            log_pod_warn(ID(pod), "instance %s was created although the create failed", inst->id);
    }

    if (!have_id)
        /* The provider may have made an instance whose answer was lost (a
         * timeout, a cut connection): the teardown looks for it by name. */
        pod->made |= CAA_POD_MADE_UNKNOWN_INSTANCE;
    if (status < 0) {
        caa_error *e = error_or(err, status, "creating instance failed");
        caa_error_prefix(&e, "creating instance %s", pod->rec.instance_name);
        start_fail(pod, e);
    } else if (!have_id) {
        caa_error_free(err);
        start_fail(pod, caa_error_new(-EPROTO, "creating instance %s: the provider returned no instance id",
                                      pod->rec.instance_name));
    } else {
        caa_error_free(err);
        if (!start_interrupted(pod)) {
            if (!pod->rec.instance_ips)
                start_fail(pod,
                           caa_error_new(-EPROTO, "instance %s has no IP address", pod->rec.instance_id));
            else
                start_network(pod);
        }
    }
    caa_pod_release(pod);
}

int caa_pod_start(caa_pod *pod, caa_done_cb cb, void *opaque, caa_error **err)
{
    caa_manager *m = pod->mgr;
    if (m->shutting_down)
        return caa_error_set(err, -ESHUTDOWN, "the daemon is shutting down");
    if (stop_requested(pod) || pod->rec.state == CAA_POD_STOPPING)
        return caa_error_set(err, -EBUSY, "sandbox %s is being stopped", ID(pod));
    if (start_in_flight(pod) || pod->rec.state != CAA_POD_CREATED)
        return caa_error_set(err, -EALREADY, "sandbox %s was already started (state %s)", ID(pod),
                             caa_pod_state_name(pod->rec.state));
    /* Without its start request (size, image, boot data) a recovered pod would
     * become a VM of the wrong size that cannot boot. */
    if (pod->recovered && !pod->start_request_restored)
        return caa_error_set(err, -EBUSY,
                             "sandbox %s was created by an earlier daemon and its request is lost; "
                             "stop it and create it again",
                             ID(pod));
    int r;
    if (pod->boot_data_on_disk) {
        if ((r = caa_pod_load_start_request(pod, err)) < 0)
            return caa_error_prefix(err, "sandbox %s: reading its start request", ID(pod));
        pod->boot_data_on_disk = false;
    }
    r = caa_pod_set_state(pod, CAA_POD_PROVISIONING, err);
    if (r < 0)
        return r;

    caa_instance_spec spec;
    caa_pod_instance_spec(pod, &spec);
    log_pod_info(ID(pod), "creating instance %s", spec.instance_name);
    CAA_FAILPOINT("provider", "before-create");
    _cleanup_error_ caa_error *e = NULL;
    caa_pod_hold(pod);
    r = caa_provider_create_instance(m->provider, &spec, on_instance_created, pod, &e);
    if (r < 0) {
        /* Nothing was created. */
        caa_pod_release(pod);
        set_state_or_log(pod, CAA_POD_FAILED);
        caa_error_prefix(&e, "creating instance %s", spec.instance_name);
        return caa_error_propagate(err, &e);
    }
    pod->start_cb = cb;
    pod->start_opaque = opaque;
    return 0;
}

void caa_pod_cancel_start(caa_pod *pod)
{
    if (start_in_flight(pod) && pod->intent == CAA_POD_INTENT_NONE) {
        log_pod_warn(ID(pod), "the StartVM caller went away; the start will be cancelled");
        raise_intent(pod, CAA_POD_INTENT_CANCEL_START);
        cut_start_step_short(pod);
    }
}

void caa_pod_abandon(caa_pod *pod)
{
    if (start_in_flight(pod))
        complete_start(pod, -ESHUTDOWN, caa_error_new(-ESHUTDOWN, "the daemon is shutting down"));
    if (!caa_list_empty(&pod->stop_waiters)) {
        _cleanup_error_ caa_error *e = caa_error_new(-ESHUTDOWN, "the daemon is shutting down");
        complete_stop_waiters(pod, -ESHUTDOWN, e);
    }
}

/* ---------------------------------------------------------------- reconnect */

static void on_reconnected(int status, caa_error *err, void *opaque)
{
    caa_pod *pod = opaque;
    if (status == 0)
        log_pod_info(ID(pod), "agent proxy reconnected to the pod VM %s", pod->rec.instance_id);
    else if (status != -ECANCELED)
        log_pod_warn(ID(pod),
                     "agent proxy has not reconnected to the pod VM %s yet: %s; it keeps trying while "
                     "the pod exists (GetInfo says reconnecting)",
                     pod->rec.instance_id, err ? caa_error_msg(err) : "failed");
    caa_error_free(err);
    caa_pod_release(pod);
}

/* The recovered pod's VM is not in the cloud any more (deleted by hand, a
 * spot reclaim, a node failure on the cloud's side): say so, stop serving its
 * agent socket and mark the pod failed, so that StopVM only cleans up. */
static void on_instance_checked(int status, caa_instance *inst, caa_error *err, void *opaque)
{
    caa_pod *pod = opaque;
    caa_instance_free(inst);
    bool still_ready = pod->rec.state == CAA_POD_READY && pod->intent == CAA_POD_INTENT_NONE &&
                       !start_in_flight(pod) && !pod->mgr->shutting_down;
    if (status == -ENOENT && still_ready && pod->rec.instance_id) {
        log_pod_error(ID(pod), "the pod VM %s is gone from the cloud; the pod is failed (StopVM cleans up)",
                      pod->rec.instance_id);
        caa_pod_stop_proxy(pod);
        pod->made &= ~CAA_POD_MADE_PROXY;
        caa_pod_clear_instance(pod);
        set_state_or_log(pod, CAA_POD_FAILED);
    } else if (status < 0 && status != -ENOENT && status != -ECANCELED) {
        log_pod_warn(ID(pod), "could not check that the pod VM %s exists: %s", pod->rec.instance_id,
                     err ? caa_error_msg(err) : "failed");
    }
    caa_error_free(err);
    caa_pod_release(pod);
}

static void check_instance_exists(caa_pod *pod)
{
    caa_manager *m = pod->mgr;
    _cleanup_error_ caa_error *e = NULL;
    caa_pod_hold(pod);
    int r = caa_provider_get_instance(m->provider, pod->rec.instance_id, on_instance_checked, pod, &e);
    if (r == 0)
        return;
    caa_pod_release(pod);
    if (r != -EOPNOTSUPP)
        log_pod_warn(ID(pod), "could not check that the pod VM %s exists: %s", pod->rec.instance_id,
                     caa_error_msg(e));
}

void caa_pod_reconnect(caa_pod *pod)
{
    if (pod->rec.instance_id)
        check_instance_exists(pod);
    caa_manager *m = pod->mgr;
    if (!m->hooks->proxy_start || !pod->rec.instance_ips || (pod->made & CAA_POD_MADE_PROXY))
        return;
    _cleanup_error_ caa_error *e = NULL;
    pod->made |= CAA_POD_MADE_PROXY;
    caa_pod_hold(pod);
    if (m->hooks->proxy_start(m, pod, on_reconnected, pod, &e) < 0) {
        pod->made &= ~CAA_POD_MADE_PROXY;
        log_pod_warn(ID(pod), "cannot serve the agent socket again: %s", caa_error_msg(e));
        caa_pod_release(pod);
    }
}
