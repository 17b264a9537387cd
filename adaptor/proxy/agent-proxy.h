/* Worker-side agent proxy: one per pod.
 *
 * Serves the kata-agent ttRPC protocol to the Kata shim on the pod's unix
 * socket (<pods-dir>/<id>/agent.ttrpc) and relays every call over ONE
 * connection to the agent-protocol-forwarder in the pod VM (TCP, or TLS
 * through the dialer). CreateContainer gets the CDI GPU annotation when the
 * pod asked for GPUs; everything else passes byte for byte.
 *
 * Start: listen first (stale socket replaced, mode 0600), then dial the
 * forwarder, retrying (first retry after 100 ms, doubling up to 1 s) until
 * the proxy timeout; ready = the forwarder answered grpc.Health/Check
 * through the connection; then ready_cb(0). If the connection breaks
 * later, calls in flight on it fail at once with UNAVAILABLE and the proxy
 * reconnects on its own; calls arriving meanwhile wait for the new
 * connection (at most their deadline and the proxy timeout). A cycle that
 * finds no forwarder within the proxy timeout gives up (calls fail at once
 * until a new call starts another cycle), unless retry_forever: then it says
 * so in the log and starts over with the first backoff, until shutdown.
 *
 * Daemon usage:
 *   StartVM (after the pod network):   caa_agent_proxy_start(loop, &cfg, on_ready, pod, &pod->proxy, &err)
 *   StopVM / failed start / shutdown:  caa_agent_proxy_shutdown(pod->proxy, NULL, NULL); pod->proxy = NULL
 * A shutdown before the ready callback makes it run with -ECANCELED. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "agent-dialer.h"
#include "error.h"
#include "timeutil.h"

#define CAA_AGENT_PROXY_DEFAULT_PORT 15150
#define CAA_AGENT_PROXY_DEFAULT_TIMEOUT_NS (5 * 60 * CAA_NSEC_PER_SEC)

typedef struct caa_agent_proxy caa_agent_proxy;

/* Same shape as caa_done_cb (providers/provider.h): status 0 = ready;
 * negative = failed (err says why; the callback owns err). */
typedef void (*caa_agent_proxy_ready_cb)(int status, caa_error *err, void *opaque);

typedef struct caa_agent_proxy_config {
    const char *sandbox_id;  /* attached to log lines */
    const char *socket_path; /* agent socket for the shim */
    const char *host;        /* forwarder address: the VM's first IP (numeric) */
    uint16_t port;           /* 0: 15150 */
    /* NULL: plain TCP. Must outlive the proxy. */
    const caa_agent_dialer *dialer;
    const char *server_name; /* TLS name of the forwarder (instance name / "podvm-server") */
    int64_t timeout_ns;      /* proxy timeout; 0: 5 min */
    unsigned gpus;           /* GPUs the pod asked for (0: none) */
    /* Never give up: a pod whose VM is known to run (a recovered ready pod).
     * ready_cb still reports the first cycle's timeout (once). */
    bool retry_forever;
    /* A connect whose SYN got no answer for this long is started again from
     * a new socket (see REDIAL_MS in agent-proxy.c); 0: 1000 ms. */
    unsigned redial_ms;
} caa_agent_proxy_config;

/* Listens at once (errors here are synchronous: bad socket path, bind) and
 * starts dialling; ready_cb runs once, later. *ret is valid right away
 * (for shutdown). Strings are copied. */
int caa_agent_proxy_start(uv_loop_t *loop, const caa_agent_proxy_config *cfg,
                          caa_agent_proxy_ready_cb ready_cb, void *opaque, caa_agent_proxy **ret,
                          caa_error **err);

/* Stops listening, removes the socket file, closes the shim connections
 * (their calls end) and the forwarder connection. done (may be NULL) runs
 * once, later, when everything is released. Call once; p is gone after. */
void caa_agent_proxy_shutdown(caa_agent_proxy *p, void (*done)(void *opaque), void *opaque);

typedef struct caa_agent_proxy_stats {
    size_t shim_connections;
    size_t inflight;    /* calls waiting for the forwarder */
    size_t queued;      /* calls waiting for a connection */
    uint64_t relayed;   /* calls sent to the forwarder */
    uint64_t rewritten; /* of those, rewritten (CreateContainer with GPUs) */
    uint64_t connects;  /* successful (re)connections */
    uint64_t dial_failures;
    uint64_t redials; /* fresh SYNs sent for a connect that got no answer */
    int connected;    /* 1 while the forwarder connection is up */
    int reconnecting; /* 1 while a (re)connect cycle runs */
} caa_agent_proxy_stats;

void caa_agent_proxy_get_stats(const caa_agent_proxy *p, caa_agent_proxy_stats *ret);

/* The wait before the next dial while the forwarder's port refuses, after
 * refusing_for_ms of refusals in a row. *backoff_ms is the fast ramp's state
 * (5 ms doubling to 25 ms; 0 starts it over). Exposed for its unit test. */
uint64_t caa_agent_proxy_refused_delay_ms(uint64_t refusing_for_ms, uint64_t *backoff_ms);
