/* peerpods-webhook flags and environment (upstream's names and defaults). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "options.h"

#define WEBHOOK_DEFAULT_CERT_DIR "/tmp/k8s-webhook-server/serving-certs"

typedef struct webhook_options {
    char *cert_dir;
    char *host;
    int64_t port;
    char *metrics_bind_address;
    char *health_probe_bind_address;
    bool leader_elect;
    char *target_runtime_class;
    char *extended_resource;
    char *tls_min_version;
    char **tls_cipher_suites;
    char *log_level;
    char *log_format;
    bool version;
} webhook_options;

caa_option_set webhook_option_set(webhook_options *o);
