/* The agent-protocol-forwarder's serving part: listens for the worker's
 * agent proxy (TLS or plain TCP) and relays every ttRPC call over one unix
 * connection to the kata-agent, with upstream's two rewrites:
 *   CreateSandbox:   `dns` cleared;
 *   CreateContainer: {type "network", path <pod namespace>} appended to
 *                    OCI.Linux.Namespaces;
 * everything else byte for byte (agent-protocol/relay/).
 *
 * Order: wait for the kata-agent socket and connect, then listen. A dropped
 * agent connection is re-established; calls meanwhile wait up to
 * agent_wait_ns (their deadline permitting). */
#pragma once

#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "error.h"
#include "relay.h"
#include "timeutil.h"

#define FWD_AGENT_WAIT_NS (150 * CAA_NSEC_PER_SEC) /* upstream dials the agent for up to 150 s */

typedef struct caa_forwarder caa_forwarder;

typedef struct caa_forwarder_config {
    const char *listen_host; /* "": every address */
    uint16_t listen_port;    /* 0: any free port */
    const char *agent_socket;
    const char *pod_namespace;
    SSL_CTX *tls;                     /* server context, or NULL for plain TCP (a reference is taken) */
    int64_t agent_wait_ns;            /* 0: FWD_AGENT_WAIT_NS */
    int64_t tls_handshake_timeout_ns; /* 0: FWD_TLS_HANDSHAKE_TIMEOUT_MS (tls-listener.h) */
} caa_forwarder_config;

/* status 0: listening on port; negative: cannot listen (err says why; the
 * callback owns it). Runs once, later. */
typedef void (*caa_forwarder_serving_cb)(int status, caa_error *err, uint16_t port, void *opaque);

int caa_forwarder_start(uv_loop_t *loop, const caa_forwarder_config *cfg, caa_forwarder_serving_cb cb,
                        void *opaque, caa_forwarder **ret, caa_error **err);
void caa_forwarder_get_stats(const caa_forwarder *f, caa_relay_stats *ret);
/* Closes listener, connections and the agent link; done runs later, once.
 * If serving_cb has not run yet it runs first with -ECANCELED. */
void caa_forwarder_close(caa_forwarder *f, void (*done)(void *opaque), void *opaque);
