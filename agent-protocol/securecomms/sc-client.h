/* The worker's SSH connection to one pod VM (libssh2, standard SSH), driven
 * by the libuv loop: a non-blocking libssh2 session on a uv_poll'd socket,
 * no thread and no blocking call.
 *
 *  - the VM's host key is pinned (ed25519 wire blob, byte for byte);
 *  - the worker authenticates with its ed25519 key (publickey only);
 *  - channels are standard `direct-tcpip` (worker -> VM tunnels, the agent
 *    path) handed out as ttRPC transports;
 *  - remote forwards (`tcpip-forward`) are requested for the VM's inbound
 *    tunnels; each `forwarded-tcpip` connection is spliced to the outbound
 *    target of the same tunnel on the worker side (the KBS tunnel is one);
 *  - a lost or refused connection is re-established with exponential
 *    backoff (100 ms doubling to 5 s) until caa_sc_client_free(); open
 *    channels fail at once (their transports see a read error), so
 *    in-flight agent calls end with UNAVAILABLE instead of hanging.
 *
 * Every callback runs later on the loop thread, never from the call that
 * started it. */
#pragma once

#include <stdint.h>

#include <uv.h>

#include "error.h"
#include "sc-keys.h"
#include "sc-tags.h"
#include "ttrpc-transport.h"

#define CAA_SC_SSH_PORT 2222 /* upstream's fixed port */

typedef struct caa_sc_client caa_sc_client;
typedef struct caa_sc_open caa_sc_open;

/* A tunnel the VM side serves and the worker answers: connections to
 * 127.0.0.1:listen_port in the VM arrive here and are spliced to
 * target_host:target_port (numeric address or host name, resolved off the
 * loop by libuv). */
typedef struct caa_sc_remote_forward {
    const char *name;
    uint16_t listen_port;
    const char *target_host;
    uint16_t target_port;
    caa_sc_phase phase; /* 0: every phase */
    /* Set (Trustee mode's KBS tunnel): the requests are HTTP and a path
     * ending in "pp-sid/privateKey" is rewritten to this pod's
     * "pp-<kbs_sid>/privateKey" (sc-kbs-rewrite.h). */
    const char *kbs_sid;
} caa_sc_remote_forward;

typedef struct caa_sc_client_config {
    const char *id;   /* log context (sandbox id) */
    const char *host; /* numeric IPv4/IPv6 address of the VM */
    uint16_t port;
    const char *user;               /* SSH user name in the VM */
    const char *client_private_pem; /* the worker's key (OpenSSH format), copied */
    const uint8_t *host_key_blob;   /* pinned ssh-ed25519 blob, copied */
    const caa_sc_remote_forward *forwards;
    size_t n_forwards;
    uint64_t handshake_timeout_ms; /* connect + handshake + auth; 0 = 20 s */
    uint64_t keepalive_ms;         /* 0 = 10 s */
    /* Trustee mode: a VM that shows another host key than the pinned one is
     * in its attestation phase (it has not fetched its keys from the KBS
     * yet): the connection then carries only the attestation-phase remote
     * forwards and no channel opens; once the VM shows the pinned key the
     * connection is in the Kubernetes phase. */
    bool attestation_phase;
} caa_sc_client_config;

/* Starts connecting at once. */
int caa_sc_client_new(uv_loop_t *loop, const caa_sc_client_config *cfg, caa_sc_client **ret, caa_error **err);
/* Closes the connection and every channel (their transports read an error
 * and are closed by their owners as usual); memory goes once the loop has
 * closed the handles. Safe from inside any of its callbacks. */
void caa_sc_client_free(caa_sc_client *c);
/* True while the SSH connection is up, authenticated, in the Kubernetes phase. */
int caa_sc_client_is_ready(const caa_sc_client *c);
/* Successful connections so far (tests watch reconnects with it). */
unsigned caa_sc_client_connections(const caa_sc_client *c);

/* status 0: t is a connected transport the callee now owns. err belongs to
 * the callback. */
typedef void (*caa_sc_open_cb)(int status, ttrpc_transport *t, caa_error *err, void *opaque);

/* Opens a direct-tcpip channel to host:port as seen from the VM. When the
 * connection is not up, cb gets -ENOTCONN (the caller retries, as with a
 * refused TCP connect). A refusal by the VM is -ECONNREFUSED with the
 * server's reason. */
int caa_sc_client_open(caa_sc_client *c, const char *host, uint16_t port, caa_sc_open_cb cb, void *opaque,
                       caa_sc_open **ret, caa_error **err);
/* The open's cb then runs with -ECANCELED (must not be called after cb). */
void caa_sc_open_cancel(caa_sc_open *o);
