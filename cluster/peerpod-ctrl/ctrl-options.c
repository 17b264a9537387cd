/* peerpod-ctrl flags; see ctrl-options.h. */
#include "ctrl-options.h"

#include <stddef.h>

#include "cleanup.h"

#define OPT(field) offsetof(ctrl_options, field)

static const caa_option ctrl_options_table[] = {
    {"kubeconfig", NULL, CAA_OPT_STRING, OPT(kubeconfig), "", 0, 0, 0,
     "API server (default: in-cluster, else $KUBECONFIG)"},
    {"leader-elect", NULL, CAA_OPT_BOOL, OPT(leader_elect), "false", 0, 0, 0,
     "elect one active replica through a coordination.k8s.io/v1 Lease"},
    {"leader-election-namespace", "POD_NAMESPACE", CAA_OPT_STRING, OPT(lease_namespace),
     "confidential-containers-system", 0, 0, 0, "namespace of the Lease"},
    {"leader-election-id", NULL, CAA_OPT_STRING, OPT(lease_name), "peerpod-ctrl.confidentialcontainers.org",
     0, 0, 0, "name of the Lease"},
    {"identity", "POD_NAME", CAA_OPT_STRING, OPT(identity), "", 0, 0, 0,
     "holder identity in the Lease (default: hostname and process id)"},
    {"leader-election-lease-duration", NULL, CAA_OPT_DURATION, OPT(lease_duration_ns), "15s", 0, 0, 0,
     "how long a silent leader keeps the Lease"},
    {"leader-election-renew-deadline", NULL, CAA_OPT_DURATION, OPT(renew_deadline_ns), "10s", 0, 0, 0,
     "a leader that could not renew for this long stops acting"},
    {"leader-election-retry-period", NULL, CAA_OPT_DURATION, OPT(retry_period_ns), "2s", 0, 0, 0,
     "how often the Lease is read and renewed"},
    {"resync-period", "PEERPOD_CTRL_RESYNC_PERIOD", CAA_OPT_DURATION, OPT(resync_period_ns), "30s", 0, 0, 0,
     "how often all PeerPods are listed"},
    {"retry-backoff", NULL, CAA_OPT_DURATION, OPT(backoff_base_ns), "5s", 0, 0, 0,
     "first retry delay of a failed delete (doubling)"},
    {"retry-backoff-max", NULL, CAA_OPT_DURATION, OPT(backoff_max_ns), "5m", 0, 0, 0,
     "longest retry delay of a failed delete"},
    {"metrics-bind-address", NULL, CAA_OPT_STRING, OPT(metrics_bind_address), ":8080", 0, 0, 0,
     "plain-HTTP /metrics address (\"0\": off)"},
    {"health-probe-bind-address", NULL, CAA_OPT_STRING, OPT(health_probe_bind_address), ":8081", 0, 0, 0,
     "plain-HTTP /healthz and /readyz address (\"0\": off)"},
    {"log-level", "LOG_LEVEL", CAA_OPT_STRING, OPT(log_level), "info", 0, 0, 0,
     "error, warn, info, debug or trace"},
    {"log-format", "LOG_FORMAT", CAA_OPT_STRING, OPT(log_format), "text", 0, 0, 0, "text or json"},
};

caa_option_set ctrl_option_set(ctrl_options *o)
{
    return (caa_option_set){
        .title = "peerpod-ctrl",
        .opts = ctrl_options_table,
        .n_opts = CAA_ARRAY_SIZE(ctrl_options_table),
        .target = o,
    };
}
