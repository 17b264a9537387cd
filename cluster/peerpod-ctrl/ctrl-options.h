/* peerpod-ctrl flags and environment (upstream's names where it has them). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "options.h"

typedef struct ctrl_options {
    char *kubeconfig;
    bool leader_elect;
    char *lease_namespace;
    char *lease_name;
    char *identity;
    int64_t lease_duration_ns, renew_deadline_ns, retry_period_ns;
    int64_t resync_period_ns;
    int64_t backoff_base_ns, backoff_max_ns;
    char *metrics_bind_address;
    char *health_probe_bind_address;
    char *log_level;
    char *log_format;
} ctrl_options;

caa_option_set ctrl_option_set(ctrl_options *o);
