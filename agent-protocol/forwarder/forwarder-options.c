/* agent-protocol-forwarder flags (see forwarder-options.h). */
#include "forwarder-options.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "cleanup.h"
#include "parse.h"
#include "xalloc.h"

static const caa_option fwd_options_table[] = {
    CAA_OPTION(fwd_options, "config", NULL, CAA_OPT_STRING, config, FWD_DEFAULT_CONFIG,
               "configuration file written at boot (apf.json)"),
    CAA_OPTION(fwd_options, "listen", NULL, CAA_OPT_STRING, listen, FWD_DEFAULT_LISTEN,
               "address the cloud-api-adaptor connects to (host:port)"),
    CAA_OPTION(fwd_options, "kata-agent-socket", NULL, CAA_OPT_STRING, kata_agent_socket,
               FWD_DEFAULT_AGENT_SOCKET, "unix socket of the kata-agent"),
    CAA_OPTION(fwd_options, "pod-namespace", NULL, CAA_OPT_STRING, pod_namespace, FWD_DEFAULT_POD_NAMESPACE,
               "network namespace of the pod (set up from apf.json pod-network, joined by every container)"),
    CAA_OPTION(
        fwd_options, "host-interface", NULL, CAA_OPT_STRING, host_interface, "",
        "VM interface carrying the tunnel (accepted for compatibility; the tunnel uses the routing table)"),
    CAA_OPTION(fwd_options, "ca-cert-file", NULL, CAA_OPT_STRING, ca_cert_file, "",
               "CA certificate that verifies clients (used when apf.json has no tls-client-ca)"),
    CAA_OPTION(fwd_options, "cert-file", NULL, CAA_OPT_STRING, cert_file, "",
               "server certificate (used when apf.json has no tls-server-cert)"),
    CAA_OPTION(fwd_options, "cert-key", NULL, CAA_OPT_STRING, cert_key, "", "server certificate key file"),
    CAA_OPTION(fwd_options, "tls-skip-verify", NULL, CAA_OPT_BOOL, tls_skip_verify, "false",
               "do not ask clients for a certificate (testing only)"),
    CAA_OPTION(fwd_options, "tls-handshake-timeout", NULL, CAA_OPT_DURATION, tls_handshake_timeout_ns, "10s",
               "close connections whose TLS handshake is not complete by then"),
    CAA_OPTION(fwd_options, "disable-tls", NULL, CAA_OPT_BOOL, disable_tls, "false",
               "plain TCP instead of TLS"),
    CAA_OPTION(fwd_options, "version", NULL, CAA_OPT_BOOL, version, "false", "print the version and exit"),
    CAA_OPTION(fwd_options, "log-level", NULL, CAA_OPT_STRING, log_level, "info",
               "log level: error, warn, info, debug or trace"),
    CAA_OPTION(fwd_options, "secure-comms", NULL, CAA_OPT_BOOL, secure_comms, "false",
               "secure comms with the SSH keys from the KBS (Trustee mode; apf.json sc alone: NoTrustee)"),
    CAA_OPTION(fwd_options, "secure-comms-key-source", NULL, CAA_OPT_STRING, secure_comms_key_source,
               "http://127.0.0.1:8006/cdh/resource/default",
               "Trustee mode: where the keys are fetched (api-server-rest's CDH resource endpoint)"),
    CAA_OPTION(fwd_options, "secure-comms-key-netns", NULL, CAA_OPT_STRING, secure_comms_key_netns,
               FWD_DEFAULT_POD_NAMESPACE,
               "Trustee mode: network namespace of the key source (empty: the forwarder's own)"),
    CAA_OPTION(fwd_options, "secure-comms-inbounds", NULL, CAA_OPT_STRING, secure_comms_inbounds, "",
               "extra inbound tunnel tags (Phase:Name:Port,...) served by sshd's remote forwarding"),
    CAA_OPTION(fwd_options, "secure-comms-outbounds", NULL, CAA_OPT_STRING, secure_comms_outbounds, "",
               "extra outbound tunnel tags (Phase:Name[:Host]:Port,...) the worker may open"),
    CAA_OPTION_INT(fwd_options, "secure-comms-ssh-port", NULL, secure_comms_ssh_port, "2222", 1, 65535,
                   "sshd port with secure comms (upstream's fixed 2222)"),
    CAA_OPTION(fwd_options, "secure-comms-listen", NULL, CAA_OPT_STRING, secure_comms_listen, "0.0.0.0",
               "sshd listen address with secure comms"),
    CAA_OPTION(fwd_options, "secure-comms-dir", NULL, CAA_OPT_STRING, secure_comms_dir, "/run/peerpod/sshd",
               "private directory for sshd's configuration and keys"),
    CAA_OPTION(fwd_options, "sshd", NULL, CAA_OPT_STRING, sshd, "/usr/sbin/sshd", "OpenSSH server binary"),
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
