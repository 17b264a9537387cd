/* Readers of EC2 (and STS) Query-protocol answers, with libxml2. Pure
 * functions over a buffer; hostile input (truncated, deep, huge, with a DTD)
 * gives -EPROTO. Elements are matched by local name, namespaces ignored,
 * unknown elements skipped, as the official SDK does. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "instance-type.h"
#include "sigv4.h"

typedef struct ec2_error {
    char *code;
    char *message;
    char *request_id;
} ec2_error;

/* An EC2 (<Response><Errors><Error>) or STS (<ErrorResponse><Error>) error
 * document. 0 when one was found, -EPROTO otherwise. */
int ec2_parse_error(const char *xml, size_t len, ec2_error *ret);
void ec2_error_done(ec2_error *e);

typedef struct ec2_nic {
    char *private_ip;
    char *public_ip;      /* association/publicIp */
    int64_t device_index; /* -1 when not given */
} ec2_nic;

typedef struct ec2_instance {
    char *id;
    char *state; /* instanceState/name */
    char *instance_type;
    char *private_ip; /* privateIpAddress */
    char *public_ip;  /* ipAddress */
    ec2_nic *nics;
    size_t n_nics;
    aws_kv *tags; /* owned strings */
    size_t n_tags;
} ec2_instance;

typedef struct ec2_instance_list {
    ec2_instance *v;
    size_t n;
    char *next_token;
} ec2_instance_list;

/* RunInstancesResponse/instancesSet and DescribeInstancesResponse/
 * reservationSet/item/instancesSet (all reservations, in order). */
int ec2_parse_run_instances(const char *xml, size_t len, ec2_instance_list *ret, caa_error **err);
int ec2_parse_describe_instances(const char *xml, size_t len, ec2_instance_list *ret, caa_error **err);
void ec2_instance_list_done(ec2_instance_list *l);
const char *ec2_instance_tag(const ec2_instance *inst, const char *key);
/* The address the daemon should use: public (NIC with device index 0, else
 * the first NIC, else ipAddress) when want_public, else private
 * (privateIpAddress, else that NIC's). NULL when there is none. */
const char *ec2_instance_address(const ec2_instance *inst, int want_public);

typedef struct ec2_instance_type_list {
    caa_instance_type *v;
    size_t n;
    char *next_token;
} ec2_instance_type_list;

/* vcpus = vCpuInfo/defaultVCpus, memory = memoryInfo/sizeInMiB, gpus = sum
 * of gpuInfo/gpus/item/count. */
int ec2_parse_describe_instance_types(const char *xml, size_t len, ec2_instance_type_list *ret,
                                      caa_error **err);
void ec2_instance_type_list_done(ec2_instance_type_list *l);

typedef struct ec2_image {
    char *id;
    char *root_device_name;
    int64_t
        root_volume_size; /* GiB of the root device's EBS mapping (else the first mapping's); 0 when none */
} ec2_image;

typedef struct ec2_image_list {
    ec2_image *v;
    size_t n;
} ec2_image_list;

int ec2_parse_describe_images(const char *xml, size_t len, ec2_image_list *ret, caa_error **err);
void ec2_image_list_done(ec2_image_list *l);

/* The value of tag key, NULL when absent. */
const char *ec2_tag(const aws_kv *tags, size_t n_tags, const char *key);

typedef struct ec2_address {
    char *public_ip;
    char *allocation_id;
    char *association_id;
    char *instance_id;
    char *network_interface_id; /* the ENI it is associated with */
    aws_kv *tags;               /* tagSet, owned strings */
    size_t n_tags;
} ec2_address;

typedef struct ec2_address_list {
    ec2_address *v;
    size_t n;
} ec2_address_list;

int ec2_parse_describe_addresses(const char *xml, size_t len, ec2_address_list *ret, caa_error **err);
void ec2_address_list_done(ec2_address_list *l);

typedef struct ec2_eni {
    char *id;                   /* networkInterfaceId */
    char *status;               /* available, in-use, ... */
    char *attached_instance_id; /* attachment/instanceId */
    char *attachment_id;        /* attachment/attachmentId */
    bool delete_on_termination; /* attachment/deleteOnTermination is "true" */
    aws_kv *tags;               /* tagSet, owned strings */
    size_t n_tags;
} ec2_eni;

typedef struct ec2_eni_list {
    ec2_eni *v;
    size_t n;
    char *next_token;
} ec2_eni_list;

/* DescribeNetworkInterfacesResponse/networkInterfaceSet/item, and nextToken. */
int ec2_parse_describe_network_interfaces(const char *xml, size_t len, ec2_eni_list *ret, caa_error **err);
void ec2_eni_list_done(ec2_eni_list *l);

/* Checks that the document's root element is `root` (e.g.
 * "TerminateInstancesResponse"). */
/* CreateNetworkInterface: networkInterface/networkInterfaceId; AttachNetworkInterface:
 * attachmentId. Both refuse a missing or non-id-like value. */
int ec2_parse_create_network_interface(const char *xml, size_t len, char **ret_eni_id, caa_error **err);
int ec2_parse_attach_network_interface(const char *xml, size_t len, char **ret_attachment_id,
                                       caa_error **err);
/* AllocateAddress: allocationId. */
int ec2_parse_allocate_address(const char *xml, size_t len, char **ret_allocation_id, caa_error **err);
int ec2_parse_expect_root(const char *xml, size_t len, const char *root, caa_error **err);

/* TerminateInstancesResponse/instancesSet/item: ids and current states. */
int ec2_parse_terminate_instances(const char *xml, size_t len, ec2_instance_list *ret, caa_error **err);

/* AssumeRoleWithWebIdentityResponse: credentials and their expiry. */
int sts_parse_assume_role(const char *xml, size_t len, aws_credentials *ret, caa_error **err);

/* ISO 8601 UTC time ("2026-11-28T12:00:00Z", fractional seconds allowed,
 * also "+00:00") to a time_t. */
int aws_parse_iso8601(const char *s, time_t *ret);
