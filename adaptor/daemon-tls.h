/* The daemon's side of TLS to the agent-protocol-forwarder, in upstream's
 * scheme (docs/tls.md, docs/daemon.md "TLS"):
 *
 *  - client identity: -cert-file/-cert-key, or generated;
 *  - server trust: -ca-cert-file (server name "podvm-server"), or a built-in
 *    CA that issues each pod VM a server certificate for its instance name;
 *  - generated material (client identity, CA) is kept in
 *    <pods-dir>/.tls/tls-material.json and reloaded, so a restarted daemon
 *    still verifies and is trusted by the VMs it created.
 *
 * Checked at start (caa_daemon_tls_new) unless -disable-tls; the generated
 * material, the SSL_CTX and the dialer are made at the first use (the first
 * pod's boot data or agent proxy), so an idle daemon keeps OpenSSL's key and
 * certificate code out of memory. */
#pragma once

#include <stdbool.h>

#include "apf-config.h"
#include "config.h"
#include "error.h"

typedef struct caa_agent_dialer caa_agent_dialer;

typedef struct caa_daemon_tls caa_daemon_tls;

/* Validates the TLS flags (pure, no file access): -ca-cert-file with
 * -tls-skip-verify, half a key pair, the profile. Skipped with -disable-tls. */
int caa_daemon_tls_check_config(const caa_daemon_config *cfg, caa_error **err);

/* Loads the user's files and checks the persisted material's file (JSON
 * only). Errors name the file. */
int caa_daemon_tls_new(const caa_daemon_config *cfg, caa_daemon_tls **ret, caa_error **err);
/* Makes, once, what the pods need: the persisted material decoded (or new
 * material generated and saved), the client SSL_CTX and the dialer. On
 * failure nothing is kept, the error names the file, and the next call tries
 * again. Called by fill_apf and dialer; public for the tests. */
int caa_daemon_tls_ensure(caa_daemon_tls *t, caa_error **err);
void caa_daemon_tls_free(caa_daemon_tls *t);

/* Fills the TLS members of a pod's apf.json: tls-server-cert/-key (a new
 * certificate for instance_name, built-in CA only), tls-client-ca (the
 * generated client certificate, unless -ca-cert-file or -cert-file),
 * tls-min-version, tls-cipher-suites. apf->tls_server_key is secret: release
 * it with caa_tls_secret_free() before caa_apf_config_done(). */
int caa_daemon_tls_fill_apf(caa_daemon_tls *t, const char *instance_name, caa_apf_config *apf,
                            caa_error **err);

/* The name the proxy verifies: instance_name with the built-in CA,
 * "podvm-server" with -ca-cert-file. */
const char *caa_daemon_tls_server_name(const caa_daemon_tls *t, const char *instance_name);
/* The dialer for agent proxies (owned by t), made at the first call. */
int caa_daemon_tls_dialer(caa_daemon_tls *t, const caa_agent_dialer **ret, caa_error **err);
/* Where the generated material lives (<pods-dir>/.tls); NULL when the user
 * supplied both the client identity and the CA. */
const char *caa_daemon_tls_dir(const caa_daemon_tls *t);
