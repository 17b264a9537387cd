/* How the agent proxy reaches the agent-protocol-forwarder in a pod VM: a
 * small factory of connected ttRPC transports (plain TCP, or TLS over TCP).
 *
 * One dial = one connection attempt. It either fails synchronously (cb not
 * called) or calls cb exactly once, later: status 0 with a connected
 * transport the caller now owns, or a negative status (-ECANCELED after
 * caa_agent_dial_cancel()). Retrying is the caller's business. */
#pragma once

#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "error.h"
#include "sc-client.h"
#include "ttrpc-transport.h"

typedef struct caa_agent_dial caa_agent_dial;
typedef struct caa_agent_dialer caa_agent_dialer;

/* err belongs to the callback (free it). */
typedef void (*caa_agent_dial_cb)(int status, ttrpc_transport *t, caa_error *err, void *opaque);

struct caa_agent_dialer {
    const char *name; /* "tcp", "tls" */
    /* host: numeric IPv4/IPv6 address. server_name: TLS name to verify
     * (ignored by plain TCP). *ret: the attempt, for cancel. */
    int (*dial)(const caa_agent_dialer *d, uv_loop_t *loop, const char *host, uint16_t port,
                const char *server_name, caa_agent_dial_cb cb, void *opaque, caa_agent_dial **ret,
                caa_error **err);
    /* Ends an attempt: its cb runs later with -ECANCELED (unless it has
     * already been called, in which case this must not be called). */
    void (*cancel)(caa_agent_dial *dial);
    /* Optional (NULL: the transport has no SYN to lose). While the attempt
     * still waits for its TCP connect, sends a fresh SYN from a new socket
     * and closes the stale one, so an answer is not left to the kernel's
     * exponential SYN retransmission: returns 1. Returns 0 when there is
     * nothing to redo (connected, in the TLS handshake, cancelled), < 0 when
     * no new socket could be made (the stale one keeps trying). */
    int (*redial)(caa_agent_dial *dial, caa_error **err);
    void *priv;
};

/* Plain TCP (-disable-tls). Static, never freed. */
const caa_agent_dialer *caa_agent_dialer_tcp(void);
/* TLS client over TCP with ctx from caa_tls_client_ctx_new() (a reference
 * is taken). The proxy's server_name is verified and sent as SNI. */
caa_agent_dialer *caa_agent_dialer_tls_new(SSL_CTX *ctx);
void caa_agent_dialer_tls_free(caa_agent_dialer *d);

/* Secure comms: a direct-tcpip channel through the pod's SSH connection
 * (agent-protocol/securecomms/sc-client.h) to <port> on the VM's loopback.
 * lookup maps the dial's host and server_name to that connection (the
 * daemon passes the sandbox id as server_name). */
typedef int (*caa_agent_ssh_lookup)(void *opaque, const char *host, const char *server_name,
                                    caa_sc_client **ret, caa_error **err);
caa_agent_dialer *caa_agent_dialer_ssh_new(caa_agent_ssh_lookup lookup, void *opaque);
void caa_agent_dialer_ssh_free(caa_agent_dialer *d);

static inline void caa_agent_dial_cancel(const caa_agent_dialer *d, caa_agent_dial *dial)
{
    d->cancel(dial);
}

static inline int caa_agent_dial_redial(const caa_agent_dialer *d, caa_agent_dial *dial, caa_error **err)
{
    return d->redial ? d->redial(dial, err) : 0;
}
