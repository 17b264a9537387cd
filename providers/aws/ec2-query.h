/* EC2 Query protocol requests (API version 2016-11-15): parameter lists for
 * the actions the provider calls, and their form-urlencoded body. Pure
 * functions; tests compare them with what the official SDK sends. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sigv4.h"

#define EC2_API_VERSION "2016-11-15"
#define STS_API_VERSION "2011-06-15"

/* Ordered key/value pairs (keys may repeat only where the protocol allows). */
typedef struct aws_params {
    aws_kv *v; /* owned strings (cast away const on free) */
    size_t n, cap;
} aws_params;

void aws_params_add(aws_params *p, const char *key, const char *value);
void aws_params_addf(aws_params *p, const char *value, const char *keyfmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *aws_params_get(const aws_params *p, const char *key);
/* key=value&... with both sides escaped as the SDK does. */
char *aws_params_encode(const aws_params *p);
void aws_params_done(aws_params *p);

/* Starts a request: Action=<action>&Version=<version>. */
void aws_params_action(aws_params *p, const char *action, const char *version);

typedef struct ec2_run_request {
    const char *image_id;
    const char *instance_type;
    const char *subnet_id;
    char *const *security_group_ids;
    const char *key_name; /* NULL/"": none */
    const char *user_data_b64;
    bool sev_snp;                 /* CpuOptions.AmdSevSnp=enabled */
    const char *root_device_name; /* with root_volume_size > 0: BlockDeviceMapping */
    int64_t root_volume_size;     /* GiB */
    bool public_ip;               /* network interface with a public address */
    const char *launch_template;  /* launch-template mode when set */
    const aws_kv *tags;           /* instance tags, Name first */
    size_t n_tags;
    const char *client_token;
} ec2_run_request;

void ec2_build_run_instances(const ec2_run_request *r, aws_params *out);
void ec2_build_terminate_instances(const char *instance_id, aws_params *out);

typedef struct ec2_filter {
    const char *name;
    char *const *values;
} ec2_filter;

/* ids and filters may be NULL/0; max_results 0: not sent. */
void ec2_build_describe_instances(char *const *ids, const ec2_filter *filters, size_t n_filters,
                                  int max_results, const char *next_token, aws_params *out);
void ec2_build_describe_instance_types(char *const *types, const char *next_token, aws_params *out);
void ec2_build_describe_images(char *const *image_ids, aws_params *out);
void ec2_build_describe_addresses(const char *instance_id, aws_params *out);
/* DescribeAddresses of one allocation (allocation_id, may be NULL) and/or by
 * filters (e.g. tag:caa.node). The action has no pagination. */
void ec2_build_describe_addresses_by(const char *allocation_id, const ec2_filter *filters, size_t n_filters,
                                     aws_params *out);
/* DescribeNetworkInterfaces by filters (e.g. tag:caa.node, status), paged. */
void ec2_build_describe_network_interfaces(const ec2_filter *filters, size_t n_filters, int max_results,
                                           const char *next_token, aws_params *out);
void ec2_build_release_address(const char *allocation_id, aws_params *out);
void ec2_build_disassociate_address(const char *association_id, aws_params *out);
/* external-net-via-pod-vm's second ENI, as upstream's createAddonNICforInstance:
 * CreateNetworkInterface (tagged at creation: tags), AttachNetworkInterface,
 * ModifyNetworkInterfaceAttribute (Attachment.DeleteOnTermination=true), and
 * DeleteNetworkInterface when the attach failed. */
/* client_token: as the SDKs fill it in, so a retried call makes no second ENI. */
void ec2_build_create_network_interface(const char *subnet_id, char *const *security_group_ids,
                                        const aws_kv *tags, size_t n_tags, const char *client_token,
                                        aws_params *out);
void ec2_build_attach_network_interface(const char *instance_id, const char *eni_id, int device_index,
                                        aws_params *out);
void ec2_build_eni_delete_on_termination(const char *eni_id, const char *attachment_id, aws_params *out);
void ec2_build_delete_network_interface(const char *eni_id, aws_params *out);
/* With -use-public-ip, the second ENI's Elastic IP (upstream's createElasticIPforInstance):
 * AllocateAddress (Domain=vpc, tagged at creation: tags), AssociateAddress with the ENI; ReleaseAddress
 * when the association fails. The delete releases it with the instance's other addresses. */
void ec2_build_allocate_address(const aws_kv *tags, size_t n_tags, aws_params *out);
void ec2_build_associate_address(const char *allocation_id, const char *eni_id, aws_params *out);
void sts_build_assume_role_with_web_identity(const char *role_arn, const char *session_name,
                                             const char *token, aws_params *out);
