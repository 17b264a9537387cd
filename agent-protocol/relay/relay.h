/* ttRPC request relay shared by the worker-side agent proxy and the in-VM
 * agent-protocol-forwarder.
 *
 * Downstream: a ttRPC server (the relay's; the owner adds listeners or
 * adopts transports) whose fallback handler receives every Request.
 * Upstream: ONE ttRPC client, supplied by the owner, shared by every
 * downstream connection. Each Request body is sent upstream as is with
 * ttrpc_client_call_raw (the client numbers streams afresh, so several
 * downstream connections can share it) and the upstream Response body goes
 * back unchanged. Only (service, method) pairs listed in the rewrite table
 * are decoded: their payload is rewritten and the Request re-encoded (its
 * timeout, metadata and unknown fields kept).
 *
 * Everything is asynchronous: a call without deadline that the agent holds
 * (WaitProcess, ReadStdout, GetOOMEvent) never delays any other call.
 *
 * Upstream state (the owner drives it):
 *  - UP: calls are relayed at once;
 *  - CONNECTING: calls wait, at most max_wait_ns and at most their own
 *    deadline, for caa_relay_set_upstream(); then UNAVAILABLE (own
 *    deadline reached: DEADLINE_EXCEEDED);
 *  - DOWN: calls fail at once with UNAVAILABLE.
 * When the upstream connection breaks, calls in flight on it fail at once
 * with UNAVAILABLE, the state becomes CONNECTING and upstream_lost() runs.
 *
 * Threading: the loop thread only. Library code: logs at debug level. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "error.h"
#include "ttrpc.h"

typedef struct caa_relay caa_relay;

/* Rewrites a request payload: 0 = *ret (malloc'd, *ret_len bytes) replaces
 * it; 1 = forward it unchanged; negative = reject it (the call fails with
 * INTERNAL and err's message, as a typed server fails an undecodable payload). */
typedef int (*caa_relay_rewrite_fn)(void *opaque, const uint8_t *payload, size_t len, uint8_t **ret,
                                    size_t *ret_len, caa_error **err);

typedef struct caa_relay_rewrite {
    const char *service; /* e.g. "grpc.AgentService" */
    const char *method;  /* e.g. "CreateContainer" */
    caa_relay_rewrite_fn fn;
} caa_relay_rewrite;

typedef enum caa_relay_upstream_state {
    CAA_RELAY_UPSTREAM_DOWN = 0,
    CAA_RELAY_UPSTREAM_CONNECTING,
    CAA_RELAY_UPSTREAM_UP,
} caa_relay_upstream_state;

typedef struct caa_relay_config {
    const char *name; /* shown in debug lines (sandbox id, "kata-agent") */
    /* Table and opaque must outlive the relay. */
    const caa_relay_rewrite *rewrites;
    size_t n_rewrites;
    void *rewrite_opaque;
    int64_t max_wait_ns; /* longest wait in CONNECTING; 0: such calls fail at once */
    /* The upstream connection broke (its calls have failed); state is now
     * CONNECTING. The owner reconnects or declares the upstream DOWN. */
    void (*upstream_lost)(caa_relay *r, void *opaque);
    /* A call arrived while DOWN (it has failed): the owner may reconnect. */
    void (*upstream_wanted)(caa_relay *r, void *opaque);
    void *opaque;
} caa_relay_config;

typedef struct caa_relay_stats {
    size_t connections; /* downstream connections open */
    size_t inflight;    /* requests sent upstream, not answered yet */
    size_t queued;      /* requests waiting for an upstream connection */
    uint64_t relayed;   /* requests sent upstream */
    uint64_t rewritten; /* of those, with a rewritten payload */
    uint64_t failed;    /* requests answered by the relay itself with an error */
} caa_relay_stats;

/* The relay starts in state CONNECTING (DOWN when max_wait_ns is 0). */
int caa_relay_new(uv_loop_t *loop, const caa_relay_config *cfg, caa_relay **ret, caa_error **err);
/* The downstream server: add listeners (ttrpc_server_listen_unix/_tcp) or
 * adopt transports. Do not close it; caa_relay_close() does. */
ttrpc_server *caa_relay_server(caa_relay *r);
/* Hands over a connected client (the relay owns it from now on, its close
 * callback included); state becomes UP and waiting calls are sent. */
void caa_relay_set_upstream(caa_relay *r, ttrpc_client *c);
/* CONNECTING or DOWN (DOWN fails waiting calls with UNAVAILABLE; with
 * max_wait_ns 0 CONNECTING means DOWN). Closes
 * the current upstream client, if any (its calls fail with UNAVAILABLE). */
void caa_relay_set_upstream_state(caa_relay *r, caa_relay_upstream_state state);
caa_relay_upstream_state caa_relay_upstream_state_get(const caa_relay *r);
void caa_relay_get_stats(const caa_relay *r, caa_relay_stats *ret);
/* Fails waiting calls, closes the server (listeners, unix socket file,
 * downstream connections) and the upstream client; done(opaque) runs
 * later, once, when the relay is freed. */
void caa_relay_close(caa_relay *r, void (*done)(void *opaque), void *opaque);
