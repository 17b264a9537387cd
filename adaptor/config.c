/* Daemon option table: flag names, environment variables and defaults as
 * upstream's cmd/cloud-api-adaptor (see docs/daemon.md). */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/un.h>

#include "daemon-sc.h"
#include "daemon-tls.h"
#include "strv.h"
#include "userdata.h"

#define OPT(field) offsetof(caa_daemon_config, field)

/* Longest agent socket suffix after the pods dir: "/" + id + "/agent.ttrpc"
 * with the shortest useful id (1 char). Per-pod lengths are checked at CreateVM. */
#define AGENT_SOCKET_SUFFIX_MIN (sizeof("/x/agent.ttrpc") - 1)

const caa_option caa_daemon_options[] = {
    {"socket", "REMOTE_HYPERVISOR_ENDPOINT", CAA_OPT_STRING, OPT(socket_path), "/run/peerpod/hypervisor.sock",
     0, 0, 0, "unix socket the Kata shim connects to"},
    {"pods-dir", "PODS_DIR", CAA_OPT_STRING, OPT(pods_dir), "/run/peerpod/pods", 0, 0, 0,
     "directory holding one sub-directory per pod (state, agent socket)"},
    {"pause-image", "PAUSE_IMAGE", CAA_OPT_STRING, OPT(pause_image), "", 0, 0, 0,
     "accepted for compatibility, unused"},
    {"forwarder-port", "FORWARDER_PORT", CAA_OPT_INT, OPT(forwarder_port), "15150", 1, 65535, 0,
     "TCP port of the agent-protocol-forwarder in the pod VM"},
    {"ca-cert-file", "CACERT_FILE", CAA_OPT_STRING, OPT(ca_cert_file), "", 0, 0, 0,
     "CA certificate that verifies the forwarder (disables the built-in CA)"},
    {"cert-file", "CERT_FILE", CAA_OPT_STRING, OPT(cert_file), "", 0, 0, 0,
     "client certificate for the forwarder"},
    {"cert-key", "CERT_KEY", CAA_OPT_STRING, OPT(cert_key), "", 0, 0, 0, "client certificate key file"},
    {"tls-skip-verify", "TLS_SKIP_VERIFY", CAA_OPT_BOOL, OPT(tls_skip_verify), "false", 0, 0, 0,
     "do not verify the forwarder's certificate (testing only)"},
    {"tls-min-version", "TLS_MIN_VERSION", CAA_OPT_STRING, OPT(tls_min_version), "", 0, 0, 0,
     "minimum TLS version: VersionTLS12 (default) or VersionTLS13"},
    {"tls-cipher-suites", "TLS_CIPHER_SUITES", CAA_OPT_STRING, OPT(tls_cipher_suites), "", 0, 0, 0,
     "comma-separated IANA cipher suite names (TLS 1.2 only)"},
    {"disable-tls", NULL, CAA_OPT_BOOL, OPT(disable_tls), "false", 0, 0, 0, "plain TCP to the forwarder"},
    {"secure-comms", "SECURE_COMMS", CAA_OPT_BOOL, OPT(secure_comms), "false", 0, 0, 0,
     "SSH to the pod VMs instead of TLS (docs/secure-comms.md)"},
    {"secure-comms-no-trustee", "SECURE_COMMS_NO_TRUSTEE", CAA_OPT_BOOL, OPT(secure_comms_no_trustee),
     "false", 0, 0, 0, "secure comms keys in the user-data (apf.json) instead of the KBS"},
    {"secure-comms-inbounds", "SECURE_COMMS_INBOUNDS", CAA_OPT_STRING, OPT(secure_comms_inbounds), "", 0, 0,
     0, "worker inbound tunnel tags (Phase:Name[:Namespace]:Port,...)"},
    {"secure-comms-outbounds", "SECURE_COMMS_OUTBOUNDS", CAA_OPT_STRING, OPT(secure_comms_outbounds), "", 0,
     0, 0, "worker outbound tunnel tags (Phase:Name[:Host]:Port,...)"},
    {"secure-comms-pp-inbounds", "SECURE_COMMS_PP_INBOUNDS", CAA_OPT_STRING, OPT(secure_comms_pp_inbounds),
     "", 0, 0, 0, "pod VM inbound tunnel tags, sent in apf.json"},
    {"secure-comms-pp-outbounds", "SECURE_COMMS_PP_OUTBOUNDS", CAA_OPT_STRING, OPT(secure_comms_pp_outbounds),
     "", 0, 0, 0, "pod VM outbound tunnel tags, sent in apf.json"},
    {"secure-comms-kbs", "SECURE_COMMS_KBS_ADDR", CAA_OPT_STRING, OPT(secure_comms_kbs_addr),
     "kbs-service.trustee-operator-system:8080", 0, 0, 0, "KBS host:port behind the VM's 127.0.0.1:8080"},
    {"secure-comms-ssh-port", NULL, CAA_OPT_INT, OPT(secure_comms_ssh_port), "2222", 1, 65535, 0,
     "SSH port of the pod VMs (upstream's fixed 2222)"},
    {"proxy-timeout", "PROXY_TIMEOUT", CAA_OPT_DURATION, OPT(proxy_timeout_ns), "5m", 0, 0, 0,
     "maximum time to establish the agent connection"},
    {"tunnel-type", "TUNNEL_TYPE", CAA_OPT_STRING, OPT(tunnel_type), "vxlan", 0, 0, 0,
     "pod network tunnel type (only vxlan)"},
    {"vxlan-port", "VXLAN_PORT", CAA_OPT_INT, OPT(vxlan_port), "4789", 1, 65535, 0,
     "VXLAN UDP destination port"},
    {"vxlan-min-id", NULL, CAA_OPT_INT, OPT(vxlan_min_id), "555000", 1, 16777215, 0, "first VXLAN id (VNI)"},
    {"host-interface", NULL, CAA_OPT_STRING, OPT(host_interface), "", 0, 0, 0,
     "worker interface for the tunnel (default: the interface of the default route)"},
    {"initdata", "INITDATA", CAA_OPT_STRING, OPT(initdata), "", 0, 0, CAA_OPT_SECRET,
     "default initdata (gzip+base64 TOML) for pods without the cc_init_data annotation"},
    {"cloud-config-verify", "CLOUD_CONFIG_VERIFY", CAA_OPT_BOOL, OPT(cloud_config_verify), "false", 0, 0, 0,
     "verify the provider configuration at start"},
    {"peerpods-limit-per-node", "PEERPODS_LIMIT_PER_NODE", CAA_OPT_INT, OPT(peerpods_limit_per_node), "10",
     INT32_MIN, INT32_MAX, 0, "peer pods per node (negative: do not advertise)"},
    {"enable-scratch-space", "ENABLE_SCRATCH_SPACE", CAA_OPT_BOOL, OPT(enable_scratch_space), "false", 0, 0,
     0, "let the pod VM encrypt a scratch partition for image storage"},
    {"ext-network-via-podvm", "EXTERNAL_NETWORK_VIA_PODVM", CAA_OPT_BOOL, OPT(ext_network_via_podvm), "false",
     0, 0, 0, "[experimental] pod egress through the VM's second NIC"},
    {"pod-subnet-cidrs", "POD_SUBNET_CIDRS", CAA_OPT_LIST, OPT(pod_subnet_cidrs), NULL, 0, 0, 0,
     "[experimental] CIDRs kept on the tunnel when ext-network-via-podvm is on"},
    {"log-format", "LOG_FORMAT", CAA_OPT_STRING, OPT(log_format), "text", 0, 0, 0,
     "log format: text or json"},
    {"log-level", "LOG_LEVEL", CAA_OPT_STRING, OPT(log_level), "info", 0, 0, 0,
     "log level: error, warn, info, debug or trace"},
};

const size_t caa_daemon_n_options = CAA_ARRAY_SIZE(caa_daemon_options);

caa_option_set caa_daemon_option_set(caa_daemon_config *cfg)
{
    return (caa_option_set){
        .title = "cloud-api-adaptor",
        .opts = caa_daemon_options,
        .n_opts = caa_daemon_n_options,
        .target = cfg,
    };
}

int caa_daemon_config_validate(caa_daemon_config *cfg, caa_error **err)
{
    struct sockaddr_un sun;
    if (!cfg->socket_path || !*cfg->socket_path)
        return caa_error_set(err, -EINVAL, "-socket must not be empty");
    if (strlen(cfg->socket_path) >= sizeof(sun.sun_path))
        return caa_error_set(err, -ENAMETOOLONG, "-socket path is longer than %zu bytes",
                             sizeof(sun.sun_path) - 1);
    if (!cfg->pods_dir || !*cfg->pods_dir)
        return caa_error_set(err, -EINVAL, "-pods-dir must not be empty");
    /* The shim's "remote" socket scheme splits on ':'. */
    if (strchr(cfg->pods_dir, ':'))
        return caa_error_set(err, -EINVAL, "-pods-dir must not contain ':'");
    if (strlen(cfg->pods_dir) + AGENT_SOCKET_SUFFIX_MIN >= sizeof(sun.sun_path))
        return caa_error_set(err, -ENAMETOOLONG, "-pods-dir is too long for unix socket paths below it");
    /* Secure comms replaces TLS: its flags are checked, the TLS ones ignored. */
    int r = cfg->secure_comms ? caa_daemon_sc_check_config(cfg, err) : caa_daemon_tls_check_config(cfg, err);
    if (r < 0)
        return r;
    /* Checked once here so that a bad value stops the daemon, not every CreateVM. */
    if (*cfg->initdata && (r = caa_userdata_validate_initdata_default(cfg->initdata, err)) < 0)
        return r;
    if (strcmp(cfg->tunnel_type, "vxlan") != 0)
        return caa_error_set(err, -EINVAL, "invalid -tunnel-type \"%s\" (only vxlan is supported)",
                             cfg->tunnel_type);
    if (cfg->proxy_timeout_ns <= 0)
        return caa_error_set(err, -EINVAL, "-proxy-timeout must be positive");
    if (caa_log_parse_format(cfg->log_format, &cfg->log_format_value) < 0)
        return caa_error_set(err, -EINVAL, "invalid -log-format \"%s\" (text or json)", cfg->log_format);
    if (caa_log_parse_level(cfg->log_level, &cfg->log_level_value) < 0)
        return caa_error_set(err, -EINVAL, "invalid -log-level \"%s\" (error, warn, info, debug, trace)",
                             cfg->log_level);
    return 0;
}

void caa_daemon_config_done(caa_daemon_config *cfg)
{
    caa_option_set set = caa_daemon_option_set(cfg);
    caa_options_free(&set, 1);
}
