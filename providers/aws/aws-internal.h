/* The AWS provider's shared state: settings copied from the options at init
 * (the config struct belongs to the daemon and is freed right after
 * teardown), the startup sequence and the operations in flight. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "aws-api.h"
#include "aws-config.h"
#include "ec2-xml.h"
#include "instance-type.h"
#include "provider-op.h"
#include "provider.h"
#include "refcount.h"

/* Resolves where credentials come from (static keys, profile, web identity,
 * instance role) and the profile's region (*ret_region, may be NULL). */
int aws_resolve_credentials(const aws_config *cfg, bool imds_enabled, aws_cred_source *ret, char **ret_region,
                            caa_error **err);

typedef enum aws_milestone {
    AWS_NEED_REGION, /* endpoints known: delete, list, get */
    AWS_NEED_READY,  /* instance types and image known: create */
} aws_milestone;

typedef enum aws_startup_state {
    AWS_START_IDLE,
    AWS_START_RUNNING,
    AWS_START_DONE,
    AWS_START_FAILED,
} aws_startup_state;

typedef struct aws_image_info {
    char *id;
    char *root_device_name;
    int64_t root_volume_size;
} aws_image_info;

typedef struct aws_op aws_op;

typedef struct aws_provider {
    uv_loop_t *loop;
    aws_api *api;

    /* settings */
    char *image_id;
    char *default_type;
    char **allowed_types;
    char *subnet_id;
    char **sg_ids;
    char *key_name;
    bool use_lt;
    char *lt_name;
    bool public_ip;
    int64_t root_volume_size;
    bool disable_cvm;
    aws_kv *tags;
    size_t n_tags;
    char *node_name;
    uint64_t running_wait_ms;
    char *region;
    char *ec2_endpoint; /* overrides from the environment, or NULL */
    char *sts_endpoint;
    bool net_from_imds; /* subnet / security groups still to read */
    bool key_from_imds;

    /* startup */
    aws_startup_state startup;
    bool region_ready;
    bool ready;
    unsigned startup_steps; /* outstanding steps of the current phase */
    caa_error *startup_err;
    caa_instance_type *types;
    size_t n_types;
    aws_image_info *images;
    size_t n_images;

    caa_op_set ops;       /* operations in flight */
    caa_refcount pending; /* the op set, startup steps: everything whose callback uses p */
    bool stopping;
} aws_provider;

void aws_provider_release(aws_provider *p);

/* aws-startup.c: starts the sequence if it is idle or failed. */
void aws_startup_ensure(aws_provider *p, aws_milestone need);
const aws_image_info *aws_image_find(const aws_provider *p, const char *id);
void aws_image_add(aws_provider *p, const ec2_image *img);
/* Root volume size to ask for with this image (0: leave it to the AMI). */
int64_t aws_root_volume_size(const aws_provider *p, const aws_image_info *img);

/* aws-ops.c */

/* Ownership tags on every instance, add-on ENI and Elastic IP the provider
 * makes (caa.instance-name, the pod's instance name, and caa.instance-id, the
 * instance it was made for: on the ENI and the Elastic IP only). */
#define AWS_TAG_NODE "caa.node"
#define AWS_TAG_SANDBOX "caa.sandbox-id"
#define AWS_TAG_INSTANCE_NAME "caa.instance-name"
#define AWS_TAG_INSTANCE_ID "caa.instance-id"

int aws_op_create(aws_provider *p, const caa_instance_spec *spec, caa_instance_cb cb, void *opaque,
                  caa_error **err);
/* delete (id), list (id NULL) or get (id); cb set through the member of its kind.
 * A delete also takes a leftover add-on ENI ("eni-...") or Elastic IP
 * ("eipalloc-...") that list reported. */
int aws_op_start(aws_provider *p, caa_op_kind kind, const char *id, caa_op_cb cb, void *opaque,
                 caa_error **err);
/* Startup reached a milestone, or failed (err): wakes the waiting ops. */
void aws_ops_startup_event(aws_provider *p, const caa_error *err);
/* Teardown: every op ends with -ECANCELED (partial instances returned). */
bool aws_instance_id_valid(const char *id);
/* An id of the form <prefix><8..17 lower-case hex digits> ("i-", "eni-", "eipalloc-"). */
bool aws_resource_id_valid(const char *id, const char *prefix);
