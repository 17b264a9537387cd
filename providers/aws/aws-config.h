/* AWS provider options (flags and environment variables as upstream, plus a
 * few of ours for limits) and their validation. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "options.h"
#include "sigv4.h"

#define AWS_DEFAULT_INSTANCE_TYPE "m6a.large"
#define AWS_N_OPTIONS 24
/* EC2 limits for tags on one resource. */
#define AWS_MAX_TAGS 50
#define AWS_MAX_TAG_KEY 128
#define AWS_MAX_TAG_VALUE 256
/* EC2 refuses user data above 16 KiB (before base64). */
#define AWS_MAX_USER_DATA 16384

/* Filled by the daemon from aws_options (strings and lists owned by it). */
typedef struct aws_config {
    char *access_key_id;
    char *secret_key;
    char *session_token;
    char *profile;
    char *region;
    char *image_id;
    char *instance_type;
    char **instance_types;
    char *subnet_id;
    char **security_group_ids;
    char *key_name;
    bool use_lt;
    char *lt_name;
    bool use_public_ip;
    int64_t root_volume_size; /* GiB */
    bool disable_cvm;
    char **tags; /* "k=v" */
    /* ours */
    int64_t max_concurrent;
    int64_t request_timeout; /* ns, one HTTP request */
    int64_t max_attempts;    /* per call, throttling and transient errors */
    int64_t running_wait;    /* ns, public-IP mode: wait for "running" */
    char *ca_bundle;
    int64_t max_response; /* bytes */
    char *node_name;
} aws_config;

extern const caa_option aws_options[AWS_N_OPTIONS];

/* Checks the options that need no network (tags, sizes, names). */
int aws_config_validate(const aws_config *cfg, caa_error **err);

/* Parses "k=v" items into kv pairs (owned strings), checking EC2's rules
 * (non-empty key, no "aws:" prefix, no "Name" or "caa." keys, lengths). */
int aws_parse_tags(char *const *items, aws_kv **ret, size_t *ret_n, caa_error **err);
void aws_kv_free(aws_kv *kv, size_t n);
