/* The daemon's side of secure comms (SSH instead of TLS to the pod VMs,
 * docs/secure-comms.md). NoTrustee mode:
 *
 *  - the worker's ed25519 key, generated once and kept in
 *    <pods-dir>/.tls/sc-worker-ed25519 (0600), so a restarted daemon is
 *    still the key its VMs accept;
 *  - per pod, at CreateVM: a new ed25519 host key whose private half goes to
 *    the VM in apf.json (sc-pp-prv) and whose public half is pinned, kept in
 *    <pods-dir>/<id>/sc-host-key.pub (removed with the pod directory);
 *  - one libssh2 connection per pod VM (agent-protocol/securecomms), made on
 *    the first agent dial and dropped at StopVM;
 *  - the agent proxies' dialer: a direct-tcpip channel to the forwarder's
 *    loopback port in the VM.
 *
 * Trustee mode (without -secure-comms-no-trustee): apf.json carries no key;
 * at StartVM the pod's host key and the worker's public key go to the KBS
 * through its admin API (kbs-admin.h), the VM fetches them through the KBS
 * tunnel of its attestation-phase connection, then shows the pinned host
 * key (Kubernetes phase). StopVM deletes the pod's KBS resource.
 *
 * Built once at start (caa_daemon_sc_new) with -secure-comms; TLS is then
 * not built at all (secure comms wins, as upstream). */
#pragma once

#include <stdbool.h>

#include <uv.h>

#include "apf-config.h"
#include "config.h"
#include "error.h"

#define CAA_SC_WORKER_KEY_FILE "sc-worker-ed25519"
#define CAA_SC_HOST_KEY_PUB_FILE "sc-host-key.pub"
#define CAA_SC_VM_USER "root" /* sshd in the VM needs an account; restrict and ForceCommand confine it */

typedef struct caa_agent_dialer caa_agent_dialer;
typedef struct caa_daemon_sc caa_daemon_sc;

/* Validates the secure comms flags (pure): the tag lists, NoTrustee mode,
 * what the VM side can serve. */
int caa_daemon_sc_check_config(const caa_daemon_config *cfg, caa_error **err);

/* Loads or generates the worker key and builds the dialer. */
int caa_daemon_sc_new(uv_loop_t *loop, const caa_daemon_config *cfg, caa_daemon_sc **ret, caa_error **err);
/* Closes every connection. */
void caa_daemon_sc_free(caa_daemon_sc *sc);

/* CreateVM: generates the pod's host key, saves its public half in pod_dir
 * and fills apf->sc (sc, sc-pp-prv, sc-wn-pub, sc-inbounds, sc-outbounds). */
int caa_daemon_sc_fill_apf(caa_daemon_sc *sc, const char *pod_dir, caa_apf_config *apf, caa_error **err);

/* The agent proxies' dialer (owned by sc). Its server_name argument is the
 * sandbox id: the connection is looked up, or made, for that pod. */
const caa_agent_dialer *caa_daemon_sc_dialer(const caa_daemon_sc *sc);
typedef void (*caa_daemon_sc_ready_cb)(int status, caa_error *err, void *opaque);
/* StartVM, Trustee mode: generates the pod's host key and posts it (and the
 * worker's public key) to the KBS; cb runs once, later (-ECANCELED after
 * caa_daemon_sc_forget). Returns 1 when there is nothing to do (NoTrustee,
 * or done before), 0 when cb will run, < 0 on failure (cb never runs). */
int caa_daemon_sc_prepare(caa_daemon_sc *sc, const char *sandbox_id, const char *pod_dir,
                          caa_daemon_sc_ready_cb cb, void *opaque, caa_error **err);
/* StopVM: drops the pod's connection (no-op when sc is NULL or none exists);
 * Trustee mode: cancels a pending prepare and, when the pod is going away
 * (pod_gone: StopVM or a failed start, not the daemon's own shutdown),
 * deletes the pod's KBS resource. */
void caa_daemon_sc_forget(caa_daemon_sc *sc, const char *sandbox_id, bool pod_gone);
