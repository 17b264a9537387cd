/* What the forwarder prepares before it serves: its configuration file
 * (apf.json, agent-protocol/bootdata), the VM side of the pod network
 * (agent-protocol/podnetwork) and the TLS server context
 * (agent-protocol/tls). */
#pragma once

#include <openssl/ssl.h>

#include "apf-config.h"
#include "error.h"
#include "forwarder-options.h"

/* Reads and parses apf.json (unknown fields ignored, wrong types an error
 * naming the field). A missing file is an error. */
int fwd_config_load(const char *path, caa_apf_config *ret, caa_error **err);

/* When apf.json carries `pod-network`: builds the pod's interface in the
 * pod network namespace netns_path. Returns 1 when there is nothing to do,
 * 0 when done. */
int fwd_pod_network_setup(const caa_apf_config *apf, const char *netns_path, caa_error **err);

/* TLS server context: certificate and key from apf.json (tls-server-cert,
 * tls-server-key) or else -cert-file/-cert-key; client CA from apf.json
 * (tls-client-ca) or else -ca-cert-file; profile from apf.json
 * (tls-min-version, tls-cipher-suites). Without a client CA (or with
 * -tls-skip-verify) clients are not asked for a certificate, as upstream. */
int fwd_tls_server_ctx(const fwd_options *o, const caa_apf_config *apf, SSL_CTX **ret, caa_error **err);
