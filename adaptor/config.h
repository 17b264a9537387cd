/* The daemon's own options (upstream's global flags) and their table.
 *
 * Providers have their own tables; caa_adaptor_main merges both for parsing
 * and help. The struct is filled by lib/options.c and validated here. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "log.h"
#include "options.h"

typedef struct caa_daemon_config {
    char *socket_path;
    char *pods_dir;
    char *pause_image;
    int64_t forwarder_port;
    char *ca_cert_file;
    char *cert_file;
    char *cert_key;
    bool tls_skip_verify;
    char *tls_min_version;
    char *tls_cipher_suites;
    bool disable_tls;
    bool secure_comms; /* SSH instead of TLS (daemon-sc.h) */
    bool secure_comms_no_trustee;
    char *secure_comms_inbounds;
    char *secure_comms_outbounds;
    char *secure_comms_pp_inbounds;
    char *secure_comms_pp_outbounds;
    char *secure_comms_kbs_addr;
    char *secure_comms_kbs_admin_key;
    int64_t secure_comms_ssh_port; /* ours; upstream fixed 2222 */
    int64_t proxy_timeout_ns;
    char *tunnel_type;
    int64_t vxlan_port;
    int64_t vxlan_min_id;
    char *host_interface;
    char *initdata; /* gzip+base64 TOML; may hold secrets, never logged */
    bool cloud_config_verify;
    int64_t peerpods_limit_per_node;
    bool enable_scratch_space;
    bool ext_network_via_podvm;
    char **pod_subnet_cidrs;
    char *log_format;
    char *log_level;
    char *kubeconfig;   /* Kubernetes API: kubeconfig file (else in-cluster, else $KUBECONFIG) */
    int64_t probe_port; /* probe/health/metrics endpoint on 127.0.0.1; 0: off */
    int64_t orphan_sweep_interval_ns; /* 0: no orphan sweep */
    int64_t orphan_sweep_grace_ns;
    bool orphan_sweep_dry_run;

    /* Derived by caa_daemon_config_validate(). */
    caa_log_level log_level_value;
    caa_log_format log_format_value;
} caa_daemon_config;

extern const caa_option caa_daemon_options[];
extern const size_t caa_daemon_n_options;

/* The option set describing cfg (title "cloud-api-adaptor"). */
caa_option_set caa_daemon_option_set(caa_daemon_config *cfg);
/* Checks values the table cannot express (enums, path lengths). */
int caa_daemon_config_validate(caa_daemon_config *cfg, caa_error **err);
/* Frees what the option parser allocated. */
void caa_daemon_config_done(caa_daemon_config *cfg);
