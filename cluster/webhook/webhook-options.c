/* peerpods-webhook flags; see webhook-options.h. */
#include "webhook-options.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "cleanup.h"
#include "parse.h"
#include "pod-mutation.h"
#include "xalloc.h"

#define OPT(field) offsetof(webhook_options, field)

static const caa_option webhook_options_table[] = {
    {"cert-dir", NULL, CAA_OPT_STRING, OPT(cert_dir), WEBHOOK_DEFAULT_CERT_DIR, 0, 0, 0,
     "directory holding tls.crt and tls.key (reloaded when they change)"},
    {"host", NULL, CAA_OPT_STRING, OPT(host), "", 0, 0, 0, "address the webhook listens on (\"\": all)"},
    {"port", NULL, CAA_OPT_INT, OPT(port), "9443", 0, 65535, 0, "HTTPS port of /mutate-v1-pod"},
    {"metrics-bind-address", NULL, CAA_OPT_STRING, OPT(metrics_bind_address), ":8080", 0, 0, 0,
     "plain-HTTP /metrics address (\"0\": off)"},
    {"health-probe-bind-address", NULL, CAA_OPT_STRING, OPT(health_probe_bind_address), ":8081", 0, 0, 0,
     "plain-HTTP /healthz and /readyz address (\"0\": off)"},
    {"leader-elect", NULL, CAA_OPT_BOOL, OPT(leader_elect), "false", 0, 0, 0,
     "accepted for compatibility: the webhook keeps no state, every replica answers"},
    {"target-runtimeclass", "TARGET_RUNTIMECLASS", CAA_OPT_STRING, OPT(target_runtime_class),
     CAA_WEBHOOK_RUNTIMECLASS_DEFAULT, 0, 0, 0, "runtime class of the pods to mutate"},
    {"pod-vm-extended-resource", "POD_VM_EXTENDED_RESOURCE", CAA_OPT_STRING, OPT(extended_resource),
     CAA_WEBHOOK_EXTENDED_RESOURCE_DEFAULT, 0, 0, 0, "extended resource put on the first container"},
    {"tls-min-version", "TLS_MIN_VERSION", CAA_OPT_STRING, OPT(tls_min_version), "", 0, 0, 0,
     "VersionTLS12 (default) or VersionTLS13"},
    {"tls-cipher-suites", "TLS_CIPHER_SUITES", CAA_OPT_LIST, OPT(tls_cipher_suites), NULL, 0, 0, 0,
     "TLS 1.2 cipher suites, IANA names, comma-separated"},
    {"log-level", "LOG_LEVEL", CAA_OPT_STRING, OPT(log_level), "info", 0, 0, 0,
     "error, warn, info, debug or trace"},
    {"log-format", "LOG_FORMAT", CAA_OPT_STRING, OPT(log_format), "text", 0, 0, 0, "text or json"},
    {"version", NULL, CAA_OPT_BOOL, OPT(version), "false", 0, 0, 0, "print the version and exit"},
};

caa_option_set webhook_option_set(webhook_options *o)
{
    return (caa_option_set){
        .title = "peerpods-webhook",
        .opts = webhook_options_table,
        .n_opts = CAA_ARRAY_SIZE(webhook_options_table),
        .target = o,
    };
}
