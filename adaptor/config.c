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

/* Longest agent socket suffix after the pods dir: "/" + id + "/agent.ttrpc"
 * with the shortest useful id (1 char). Per-pod lengths are checked at CreateVM. */
#define AGENT_SOCKET_SUFFIX_MIN (sizeof("/x/agent.ttrpc") - 1)

const caa_option caa_daemon_options[] = {
    CAA_OPTION(caa_daemon_config, "socket", "REMOTE_HYPERVISOR_ENDPOINT", CAA_OPT_STRING, socket_path,
               "/run/peerpod/hypervisor.sock", "unix socket the Kata shim connects to"),
    CAA_OPTION(caa_daemon_config, "pods-dir", "PODS_DIR", CAA_OPT_STRING, pods_dir, "/run/peerpod/pods",
               "directory holding one sub-directory per pod (state, agent socket)"),
    CAA_OPTION(caa_daemon_config, "pause-image", "PAUSE_IMAGE", CAA_OPT_STRING, pause_image, "",
               "accepted for compatibility, unused"),
    CAA_OPTION_INT(caa_daemon_config, "forwarder-port", "FORWARDER_PORT", forwarder_port, "15150", 1, 65535,
                   "TCP port of the agent-protocol-forwarder in the pod VM"),
    CAA_OPTION(caa_daemon_config, "ca-cert-file", "CACERT_FILE", CAA_OPT_STRING, ca_cert_file, "",
               "CA certificate that verifies the forwarder (disables the built-in CA)"),
    CAA_OPTION(caa_daemon_config, "cert-file", "CERT_FILE", CAA_OPT_STRING, cert_file, "",
               "client certificate for the forwarder"),
    CAA_OPTION(caa_daemon_config, "cert-key", "CERT_KEY", CAA_OPT_STRING, cert_key, "",
               "client certificate key file"),
    CAA_OPTION(caa_daemon_config, "tls-skip-verify", "TLS_SKIP_VERIFY", CAA_OPT_BOOL, tls_skip_verify,
               "false", "do not verify the forwarder's certificate (testing only)"),
    CAA_OPTION(caa_daemon_config, "tls-min-version", "TLS_MIN_VERSION", CAA_OPT_STRING, tls_min_version, "",
               "minimum TLS version: VersionTLS12 (default) or VersionTLS13"),
    CAA_OPTION(caa_daemon_config, "tls-cipher-suites", "TLS_CIPHER_SUITES", CAA_OPT_STRING, tls_cipher_suites,
               "", "comma-separated IANA cipher suite names (TLS 1.2 only)"),
    CAA_OPTION(caa_daemon_config, "disable-tls", NULL, CAA_OPT_BOOL, disable_tls, "false",
               "plain TCP to the forwarder"),
    CAA_OPTION(caa_daemon_config, "proxy-timeout", "PROXY_TIMEOUT", CAA_OPT_DURATION, proxy_timeout_ns, "5m",
               "maximum time to establish the agent connection"),
    CAA_OPTION(caa_daemon_config, "tunnel-type", "TUNNEL_TYPE", CAA_OPT_STRING, tunnel_type, "vxlan",
               "pod network tunnel type (only vxlan)"),
    CAA_OPTION_INT(caa_daemon_config, "vxlan-port", "VXLAN_PORT", vxlan_port, "4789", 1, 65535,
                   "VXLAN UDP destination port"),
    CAA_OPTION_INT(caa_daemon_config, "vxlan-min-id", NULL, vxlan_min_id, "555000", 1, 16777215,
                   "first VXLAN id (VNI)"),
    CAA_OPTION(caa_daemon_config, "host-interface", NULL, CAA_OPT_STRING, host_interface, "",
               "worker interface for the tunnel (default: the interface of the default route)"),
    CAA_OPTION_SECRET(caa_daemon_config, "initdata", "INITDATA", initdata,
                      "default initdata (gzip+base64 TOML) for pods without the cc_init_data annotation"),
    CAA_OPTION(caa_daemon_config, "cloud-config-verify", "CLOUD_CONFIG_VERIFY", CAA_OPT_BOOL,
               cloud_config_verify, "false", "verify the provider configuration at start"),
    CAA_OPTION_INT(caa_daemon_config, "peerpods-limit-per-node", "PEERPODS_LIMIT_PER_NODE",
                   peerpods_limit_per_node, "10", INT32_MIN, INT32_MAX,
                   "peer pods per node (negative: do not advertise)"),
    CAA_OPTION(caa_daemon_config, "enable-scratch-space", "ENABLE_SCRATCH_SPACE", CAA_OPT_BOOL,
               enable_scratch_space, "false", "let the pod VM encrypt a scratch partition for image storage"),
    CAA_OPTION(caa_daemon_config, "ext-network-via-podvm", "EXTERNAL_NETWORK_VIA_PODVM", CAA_OPT_BOOL,
               ext_network_via_podvm, "false", "[experimental] pod egress through the VM's second NIC"),
    CAA_OPTION(caa_daemon_config, "pod-subnet-cidrs", "POD_SUBNET_CIDRS", CAA_OPT_LIST, pod_subnet_cidrs,
               NULL, "[experimental] CIDRs kept on the tunnel when ext-network-via-podvm is on"),
    CAA_OPTION(caa_daemon_config, "orphan-sweep-interval", "ORPHAN_SWEEP_INTERVAL", CAA_OPT_DURATION,
               orphan_sweep_interval_ns, "10m",
               "delete this node's instances that no pod knows: at start and then this often (0: off)"),
    CAA_OPTION(caa_daemon_config, "orphan-sweep-grace", "ORPHAN_SWEEP_GRACE", CAA_OPT_DURATION,
               orphan_sweep_grace_ns, "10m",
               "how long an instance must belong to no pod before it is deleted"),
    CAA_OPTION(caa_daemon_config, "orphan-sweep-dry-run", "ORPHAN_SWEEP_DRY_RUN", CAA_OPT_BOOL,
               orphan_sweep_dry_run, "false", "the orphan sweep only logs what it would delete"),
    CAA_OPTION(caa_daemon_config, "log-format", "LOG_FORMAT", CAA_OPT_STRING, log_format, "text",
               "log format: text or json"),
    CAA_OPTION(caa_daemon_config, "log-level", "LOG_LEVEL", CAA_OPT_STRING, log_level, "info",
               "log level: error, warn, info, debug or trace"),
    CAA_OPTION(caa_daemon_config, "kubeconfig", NULL, CAA_OPT_STRING, kubeconfig, "",
               "kubeconfig of the Kubernetes API server (default: in-cluster, else $KUBECONFIG)"),
    CAA_OPTION_INT(caa_daemon_config, "probe-port", "PROBE_PORT", probe_port, "8000", 0, 65535,
                   "port of the /startup, /healthz and /metrics endpoint on 127.0.0.1 (0: off)"),
    CAA_OPTION(caa_daemon_config, "secure-comms", "SECURE_COMMS", CAA_OPT_BOOL, secure_comms, "false",
               "SSH to the pod VMs instead of TLS (docs/secure-comms.md)"),
    CAA_OPTION(caa_daemon_config, "secure-comms-no-trustee", "SECURE_COMMS_NO_TRUSTEE", CAA_OPT_BOOL,
               secure_comms_no_trustee, "false",
               "secure comms keys in the user-data (apf.json) instead of the KBS"),
    CAA_OPTION(caa_daemon_config, "secure-comms-inbounds", "SECURE_COMMS_INBOUNDS", CAA_OPT_STRING,
               secure_comms_inbounds, "", "worker inbound tunnel tags (Phase:Name[:Namespace]:Port,...)"),
    CAA_OPTION(caa_daemon_config, "secure-comms-outbounds", "SECURE_COMMS_OUTBOUNDS", CAA_OPT_STRING,
               secure_comms_outbounds, "", "worker outbound tunnel tags (Phase:Name[:Host]:Port,...)"),
    CAA_OPTION(caa_daemon_config, "secure-comms-pp-inbounds", "SECURE_COMMS_PP_INBOUNDS", CAA_OPT_STRING,
               secure_comms_pp_inbounds, "", "pod VM inbound tunnel tags, sent in apf.json"),
    CAA_OPTION(caa_daemon_config, "secure-comms-pp-outbounds", "SECURE_COMMS_PP_OUTBOUNDS", CAA_OPT_STRING,
               secure_comms_pp_outbounds, "", "pod VM outbound tunnel tags, sent in apf.json"),
    CAA_OPTION(caa_daemon_config, "secure-comms-kbs", "SECURE_COMMS_KBS_ADDR", CAA_OPT_STRING,
               secure_comms_kbs_addr, "kbs-service.trustee-operator-system:8080",
               "KBS host:port behind the VM's 127.0.0.1:8080"),
    CAA_OPTION(caa_daemon_config, "secure-comms-kbs-admin-key", "SECURE_COMMS_KBS_ADMIN_KEY", CAA_OPT_STRING,
               secure_comms_kbs_admin_key, "",
               "Trustee mode: the KBS admin key (Ed25519 PKCS#8 PEM, Secret kbs-client's privateKey) file"),
    CAA_OPTION_INT(caa_daemon_config, "secure-comms-ssh-port", NULL, secure_comms_ssh_port, "2222", 1, 65535,
                   "SSH port of the pod VMs (upstream's fixed 2222)"),
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
