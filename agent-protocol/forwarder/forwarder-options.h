/* Command-line flags of agent-protocol-forwarder: upstream's names and
 * defaults (cmd/agent-protocol-forwarder), no environment variables (the
 * systemd unit passes $TLS_OPTIONS $OPTIONS from
 * /etc/default/agent-protocol-forwarder on the command line). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "options.h"

#define FWD_DEFAULT_CONFIG "/run/peerpod/apf.json"
#define FWD_DEFAULT_LISTEN "0.0.0.0:15150"
#define FWD_DEFAULT_AGENT_SOCKET "/run/kata-containers/agent.sock"
#define FWD_DEFAULT_POD_NAMESPACE "/run/netns/podns"

typedef struct fwd_options {
    char *config;
    char *listen;
    char *kata_agent_socket;
    char *pod_namespace;
    char *host_interface;
    char *ca_cert_file;
    char *cert_file;
    char *cert_key;
    bool tls_skip_verify;
    bool disable_tls;
    bool secure_comms; /* upstream's Trustee mode flag: keys from the KBS */
    char *secure_comms_key_source;
    char *secure_comms_key_netns;
    char *secure_comms_inbounds;
    char *secure_comms_outbounds;
    int64_t secure_comms_ssh_port;
    char *secure_comms_listen;
    char *secure_comms_dir;
    char *sshd;
    int64_t tls_handshake_timeout_ns;
    bool version;
    char *log_level;
} fwd_options;

caa_option_set fwd_option_set(fwd_options *o);

/* "host:port", "[v6]:port" or ":port" (every address) into a host ("" for
 * every address; caller frees) and a port (0 allowed: any free port). */
int fwd_parse_listen(const char *s, char **ret_host, uint16_t *ret_port, caa_error **err);
