/* The daemon's one owner object: the loop, signals, the ttRPC server, the
 * provider and the pod table. Everything runs on the loop thread. */
#pragma once

#include <stdbool.h>

#include <uv.h>

#include "config.h"
#include "error.h"
#include "list.h"
#include "pod-state.h"
#include "provider.h"
#include "refcount.h"

typedef struct ttrpc_server ttrpc_server;
typedef struct caa_pod caa_pod;
typedef struct caa_pod_hooks caa_pod_hooks;
typedef struct caa_daemon_tls caa_daemon_tls;
typedef struct caa_kube_service caa_kube_service;
typedef struct caa_daemon_sc caa_daemon_sc;

typedef void (*caa_deferred_fn)(void *arg);

/* Pod observers: how other subsystems (GetInfo waiters, metrics, Kubernetes
 * PeerPod objects) follow the pod lifecycle without the lifecycle knowing them.
 *
 * Every member is optional and runs on the loop thread, synchronously, right
 * after the change it reports was written to the pod's state file. The pod is
 * only borrowed for the call: read it through the accessors in pod.h
 * (caa_pod_id(), caa_pod_get_state(), caa_pod_instance_id(), ...), never keep
 * the pointer. An observer must not start or stop pods, nor add or remove
 * observers, from inside the call; use caa_manager_defer() for follow-up work.
 * Observers run in the order they were added. */
typedef struct caa_pod_observer {
    /* A pod appeared: CreateVM registered it (state created), or it was
     * recovered from its state file at start (any state). */
    void (*pod_added)(const caa_pod *pod, void *opaque);
    /* The pod moved from `from` to `to` (pod-state.h); never from == to. */
    void (*state_changed)(const caa_pod *pod, caa_pod_state from, caa_pod_state to, void *opaque);
    /* The pod's instance was recorded (caa_pod_instance_id() != NULL: it exists
     * in the cloud) or forgotten after its deletion (caa_pod_instance_id() == NULL). */
    void (*instance_changed)(const caa_pod *pod, void *opaque);
    /* StopVM finished: the pod (state gone) is dropped after this call. Not
     * called when the daemon exits (pods and their VMs outlive it). */
    void (*pod_removed)(const caa_pod *pod, void *opaque);
} caa_pod_observer;

typedef struct caa_pod_observer_entry {
    const caa_pod_observer *ops;
    void *opaque;
} caa_pod_observer_entry;

typedef struct caa_manager {
    uv_loop_t *loop;
    const caa_daemon_config *cfg;
    caa_provider *provider; /* owned from caa_manager_start() on */
    const caa_pod_hooks *hooks;
    caa_daemon_tls *tls;                   /* NULL with -disable-tls or -secure-comms */
    caa_daemon_sc *sc;                     /* -secure-comms */
    caa_kube_service *kube;                /* NULL without an API server; shut down with the manager */
    struct caa_orphan_sweep *orphan_sweep; /* NULL with -orphan-sweep-interval 0 */
    ttrpc_server *server;
    uv_signal_t sig_term;
    uv_signal_t sig_int;
    uv_idle_t deferred_idle;
    caa_list deferred; /* caa_deferred items, run from deferred_idle */
    caa_list pods;     /* the pod table (pod.c only: use the pod API in pod.h) */
    size_t n_pods;
    /* The pods by sandbox id (pod.c): chained buckets, a power of two in
     * number, allocated with the first pod and freed with the last. */
    struct caa_pod **pod_index;
    size_t pod_index_size;
    caa_list waiters;                  /* GetInfo calls waiting for an instance id */
    caa_pod_observer_entry *observers; /* pod-observer.c */
    size_t n_observers;
    /* Async operations in flight (provider calls, hooks, deferred work); drops
     * to 0 and rises again freely, asserts on an end without a begin. */
    caa_refcount pending;
    bool started;
    bool shutting_down;
    bool finished;
    bool provider_torn_down; /* shutdown cancelled the provider's operations */
    bool forced;             /* second signal: leave the loop without cleanup */
    int exit_code;
} caa_manager;

/* Sets up fields; no handles yet. */
void caa_manager_init(caa_manager *m, uv_loop_t *loop, const caa_daemon_config *cfg);
/* Takes ownership of provider (also on failure), creates directories, loads
 * the TLS material (unless -disable-tls), loads persisted pods (reconnecting
 * the agent proxies of ready ones), starts serving on cfg->socket_path and
 * watches signals. On
 * failure everything is released; run the loop dry before closing it. */
int caa_manager_start(caa_manager *m, caa_provider *provider, caa_error **err);
/* Prompt shutdown (also on SIGTERM/SIGINT): stop serving, then tear the
 * provider down, which cancels its operations in flight (a cloud create may
 * take minutes). Pod VMs are kept and state files stay as they are (a pod
 * whose create was cancelled stays `provisioning`, so the next daemon finds
 * its VM by name). */
void caa_manager_shutdown(caa_manager *m);
/* After the loop has run dry: frees the pods (also those whose provider
 * callbacks the torn-down provider dropped), closes the manager's handles and
 * runs the loop until they are closed, then releases what agent proxies may
 * have used until their last handle closed (the TLS material). */
void caa_manager_done(caa_manager *m);

/* Registers ops (static storage, all members optional) with opaque; the pair
 * stays registered until removed or the manager is done. Add observers before
 * caa_manager_start() to see the pods recovered at start. */
void caa_manager_add_pod_observer(caa_manager *m, const caa_pod_observer *ops, void *opaque);
/* Removes the registration of (ops, opaque); unknown pairs are ignored. */
void caa_manager_remove_pod_observer(caa_manager *m, const caa_pod_observer *ops, void *opaque);

/* Runs fn(arg) from the loop soon (never re-entrantly). Counts as pending work. */
void caa_manager_defer(caa_manager *m, caa_deferred_fn fn, void *arg);

/* Async bookkeeping: every operation that keeps the shutdown waiting. */
void caa_manager_op_begin(caa_manager *m);
void caa_manager_op_end(caa_manager *m);
