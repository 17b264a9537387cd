/* Azure provider options (flags and environment variables as upstream, plus
 * a few of ours for sovereign clouds, managed identity and timing) and their
 * validation into the settings the provider works with. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "options.h"

/* Pinned REST api-versions. Compute matches @azure/arm-compute 23.x, whose
 * mappers validate our request bodies in the tests. */
#define AZ_COMPUTE_API_VERSION "2025-04-01"
#define AZ_NETWORK_API_VERSION "2024-05-01"
#define AZ_IMDS_API_VERSION "2018-02-01"

#define AZ_DEFAULT_AUTHORITY "https://login.microsoftonline.com"
#define AZ_DEFAULT_ARM "https://management.azure.com"
#define AZ_DEFAULT_IMDS "http://169.254.169.254"
#define AZ_DEFAULT_SIZE "Standard_DC2as_v5"

/* Azure's limit on VirtualMachine.properties.userData: 64 KiB of base64. */
#define AZ_USERDATA_MAX_B64 (64u * 1024u)

#define AZ_N_OPTIONS 35

/* Filled by the daemon from az_options (strings and lists owned by it). */
typedef struct az_config {
    char *client_id;
    char *client_secret;
    char *tenant_id;
    char *subscription_id;
    char *region;
    char *resource_group;
    char *subnet_id;
    char *secondary_subnet_id; /* second NIC for external-net-via-pod-vm; "" = none */
    char *nsg_id;
    char *image_id;
    char *instance_size;
    char **instance_sizes;
    char *ssh_key_path;
    char *ssh_username;
    bool disable_cvm;
    bool enable_secure_boot;
    bool use_public_ip;
    int64_t root_volume_size; /* GiB, 0: the image's size */
    char **tags;              /* "k=v" */
    char *zone;               /* accepted, unused (as upstream) */

    /* Beyond upstream. */
    char *authority_host;
    char *arm_endpoint;
    char *arm_audience;
    char *federated_token_file;
    char *imds_endpoint;
    char *node_name;
    char *ssh_key_type;
    int64_t max_requests;
    int64_t request_timeout; /* nanoseconds */
    int64_t create_timeout;
    int64_t delete_timeout;
    int64_t poll_interval;
    int64_t poll_interval_fast;
    int64_t retry_max_delay;
    int64_t max_retries;
} az_config;

extern const caa_option az_options[AZ_N_OPTIONS];

typedef enum az_auth_method {
    AZ_AUTH_CLIENT_SECRET,
    AZ_AUTH_WORKLOAD_IDENTITY,
    AZ_AUTH_MANAGED_IDENTITY,
} az_auth_method;

typedef enum az_key_type {
    AZ_KEY_ED25519,
    AZ_KEY_RSA4096,
} az_key_type;

/* The validated view of az_config; strings are owned (az_settings_done). */
typedef struct az_settings {
    az_auth_method auth;
    az_key_type key_type;
    char *authority;  /* without trailing '/' */
    char *arm;        /* without trailing '/' */
    char *scope;      /* "<audience>/.default" */
    char *resource;   /* audience for IMDS ("<audience>/") */
    char *imds;       /* without trailing '/' */
    char *token_file; /* federated token file or NULL */
    char *node_name;  /* value of the caa-node tag */
    char *
        vm_base_path; /* /subscriptions/<s>/resourceGroups/<rg>/providers/Microsoft.Compute/virtualMachines */
    uint64_t request_timeout_ms;
    uint64_t create_timeout_ms;
    uint64_t delete_timeout_ms;
    uint64_t poll_interval_ms;
    uint64_t poll_interval_fast_ms; /* at most poll_interval_ms */
    uint64_t retry_max_delay_ms;
    unsigned max_retries;
} az_settings;

/* Checks every option; fills ret (az_settings_done frees it). */
int az_config_validate(const az_config *cfg, az_settings *ret, caa_error **err);
void az_settings_done(az_settings *s);

/* An ARM resource id of the given provider type, e.g.
 * "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/n":
 * starts with /subscriptions/, only URL-safe path characters, no empty, "." or
 * ".." segments. type may be NULL (any id). */
bool az_arm_id_valid(const char *id, const char *type);
/* Names that go into URL paths: subscription, resource group, region, VM name. */
bool az_resource_group_valid(const char *s);
bool az_region_valid(const char *s);
/* Azure tag limits: name 1..512 without <>%&\?/, value <= 256, at most 50 tags. */
int az_tags_validate(char *const *tags, caa_error **err);
/* Linux user names Azure accepts for adminUsername. */
bool az_username_valid(const char *s);
