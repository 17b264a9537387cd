/* agent-protocol-forwarder flags (see forwarder-options.h). */
#include "forwarder-options.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "cleanup.h"
#include "parse.h"
#include "xalloc.h"

#define OPT(field) offsetof(fwd_options, field)

static const caa_option fwd_options_table[] = {
    {"config", NULL, CAA_OPT_STRING, OPT(config), FWD_DEFAULT_CONFIG, 0, 0, 0,
     "configuration file written at boot (apf.json)"},
    {"listen", NULL, CAA_OPT_STRING, OPT(listen), FWD_DEFAULT_LISTEN, 0, 0, 0,
     "address the cloud-api-adaptor connects to (host:port)"},
    {"kata-agent-socket", NULL, CAA_OPT_STRING, OPT(kata_agent_socket), FWD_DEFAULT_AGENT_SOCKET, 0, 0, 0,
     "unix socket of the kata-agent"},
    {"pod-namespace", NULL, CAA_OPT_STRING, OPT(pod_namespace), FWD_DEFAULT_POD_NAMESPACE, 0, 0, 0,
     "network namespace of the pod (set up from apf.json pod-network, joined by every container)"},
    {"host-interface", NULL, CAA_OPT_STRING, OPT(host_interface), "", 0, 0, 0,
     "VM interface carrying the tunnel (accepted for compatibility; the tunnel uses the routing table)"},
    {"ca-cert-file", NULL, CAA_OPT_STRING, OPT(ca_cert_file), "", 0, 0, 0,
     "CA certificate that verifies clients (used when apf.json has no tls-client-ca)"},
    {"cert-file", NULL, CAA_OPT_STRING, OPT(cert_file), "", 0, 0, 0,
     "server certificate (used when apf.json has no tls-server-cert)"},
    {"cert-key", NULL, CAA_OPT_STRING, OPT(cert_key), "", 0, 0, 0, "server certificate key file"},
    {"tls-skip-verify", NULL, CAA_OPT_BOOL, OPT(tls_skip_verify), "false", 0, 0, 0,
     "do not ask clients for a certificate (testing only)"},
    {"tls-handshake-timeout", NULL, CAA_OPT_DURATION, OPT(tls_handshake_timeout_ns), "10s", 0, 0, 0,
     "close connections whose TLS handshake is not complete by then"},
    {"disable-tls", NULL, CAA_OPT_BOOL, OPT(disable_tls), "false", 0, 0, 0, "plain TCP instead of TLS"},
    {"secure-comms", NULL, CAA_OPT_BOOL, OPT(secure_comms), "false", 0, 0, 0,
     "secure comms with keys from the KBS (Trustee mode; not implemented: apf.json sc turns NoTrustee on)"},
    {"secure-comms-inbounds", NULL, CAA_OPT_STRING, OPT(secure_comms_inbounds), "", 0, 0, 0,
     "extra inbound tunnel tags (Phase:Name:Port,...) served by sshd's remote forwarding"},
    {"secure-comms-outbounds", NULL, CAA_OPT_STRING, OPT(secure_comms_outbounds), "", 0, 0, 0,
     "extra outbound tunnel tags (Phase:Name[:Host]:Port,...) the worker may open"},
    {"secure-comms-ssh-port", NULL, CAA_OPT_INT, OPT(secure_comms_ssh_port), "2222", 1, 65535, 0,
     "sshd port with secure comms (upstream's fixed 2222)"},
    {"secure-comms-listen", NULL, CAA_OPT_STRING, OPT(secure_comms_listen), "0.0.0.0", 0, 0, 0,
     "sshd listen address with secure comms"},
    {"secure-comms-dir", NULL, CAA_OPT_STRING, OPT(secure_comms_dir), "/run/peerpod/sshd", 0, 0, 0,
     "private directory for sshd's configuration and keys"},
    {"sshd", NULL, CAA_OPT_STRING, OPT(sshd), "/usr/sbin/sshd", 0, 0, 0, "OpenSSH server binary"},
    {"version", NULL, CAA_OPT_BOOL, OPT(version), "false", 0, 0, 0, "print the version and exit"},
    {"log-level", NULL, CAA_OPT_STRING, OPT(log_level), "info", 0, 0, 0,
     "log level: error, warn, info, debug or trace"},
};

caa_option_set fwd_option_set(fwd_options *o)
{
    return (caa_option_set){
        .title = "agent-protocol-forwarder",
        .opts = fwd_options_table,
        .n_opts = CAA_ARRAY_SIZE(fwd_options_table),
        .target = o,
    };
}

int fwd_parse_listen(const char *s, char **ret_host, uint16_t *ret_port, caa_error **err)
{
    const char *colon = s ? strrchr(s, ':') : NULL;
    if (!colon)
        return caa_error_set(err, -EINVAL, "-listen '%s': want host:port", s ? s : "");
    int64_t port;
    if (caa_parse_int64(colon + 1, 0, 65535, &port) < 0)
        return caa_error_set(err, -EINVAL, "-listen '%s': bad port", s);
    _cleanup_free_ char *host = xstrndup(s, (size_t)(colon - s));
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        memmove(host, host + 1, n - 2);
        host[n - 2] = '\0';
    } else if (strchr(host, ':')) {
        return caa_error_set(err, -EINVAL, "-listen '%s': an IPv6 address needs brackets", s);
    }
    *ret_host = TAKE_PTR(host);
    *ret_port = (uint16_t)port;
    return 0;
}
