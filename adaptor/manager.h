/* The daemon's one owner object: the loop, signals, the ttRPC server, the
 * provider and the pod table. Everything runs on the loop thread. */
#pragma once

#include <stdbool.h>

#include <uv.h>

#include "config.h"
#include "error.h"
#include "list.h"
#include "provider.h"

typedef struct ttrpc_server ttrpc_server;
typedef struct caa_pod caa_pod;
typedef struct caa_pod_hooks caa_pod_hooks;
typedef struct caa_daemon_tls caa_daemon_tls;
typedef struct caa_daemon_sc caa_daemon_sc;

typedef void (*caa_deferred_fn)(void *arg);

typedef struct caa_manager {
    uv_loop_t *loop;
    const caa_daemon_config *cfg;
    caa_provider *provider; /* owned from caa_manager_start() on */
    const caa_pod_hooks *hooks;
    caa_daemon_tls *tls; /* NULL with -disable-tls or -secure-comms */
    caa_daemon_sc *sc;   /* -secure-comms */
    ttrpc_server *server;
    uv_signal_t sig_term;
    uv_signal_t sig_int;
    uv_idle_t deferred_idle;
    caa_list deferred; /* caa_deferred items, run from deferred_idle */
    caa_list pods;     /* caa_pod.node, in creation order */
    size_t n_pods;
    caa_list waiters; /* GetInfo calls waiting for an instance id */
    unsigned pending; /* async operations in flight (provider calls, hooks, deferred work) */
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

/* Pod table. */
caa_pod *caa_manager_find_pod(caa_manager *m, const char *sandbox_id);
void caa_manager_add_pod(caa_manager *m, caa_pod *pod);
void caa_manager_remove_pod(caa_manager *m, caa_pod *pod);

/* Runs fn(arg) from the loop soon (never re-entrantly). Counts as pending work. */
void caa_manager_defer(caa_manager *m, caa_deferred_fn fn, void *arg);

/* Async bookkeeping: every operation that keeps the shutdown waiting. */
void caa_manager_op_begin(caa_manager *m);
void caa_manager_op_end(caa_manager *m);
