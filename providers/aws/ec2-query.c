/* EC2 Query protocol requests (see ec2-query.h). */
#include "ec2-query.h"

#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "cleanup.h"
#include "xalloc.h"

void aws_params_add(aws_params *p, const char *key, const char *value)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 16;
        p->v = xrealloc(p->v, p->cap * sizeof(*p->v));
    }
    p->v[p->n].key = xstrdup(key);
    p->v[p->n].value = xstrdup(value ? value : "");
    p->n++;
}

void aws_params_addf(aws_params *p, const char *value, const char *keyfmt, ...)
{
    va_list ap;
    va_start(ap, keyfmt);
    _cleanup_free_ char *key = xvasprintf(keyfmt, ap);
    va_end(ap);
    aws_params_add(p, key, value);
}

const char *aws_params_get(const aws_params *p, const char *key)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->v[i].key, key) == 0)
            return p->v[i].value;
    return NULL;
}

char *aws_params_encode(const aws_params *p)
{
    size_t total = 1;
    char **parts = xnew0(char *, p->n ? p->n : 1);
    for (size_t i = 0; i < p->n; i++) {
        _cleanup_free_ char *k = aws_uri_escape(p->v[i].key);
        _cleanup_free_ char *v = aws_uri_escape(p->v[i].value);
        parts[i] = xasprintf("%s=%s", k, v);
        total += strlen(parts[i]) + 1;
    }
    char *out = xmalloc(total);
    char *o = out;
    for (size_t i = 0; i < p->n; i++) {
        if (i)
            *o++ = '&';
        size_t l = strlen(parts[i]);
        memcpy(o, parts[i], l);
        o += l;
        free(parts[i]);
    }
    *o = '\0';
    free(parts);
    return out;
}

void aws_params_done(aws_params *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free((char *)p->v[i].key);
        free((char *)p->v[i].value);
    }
    free(p->v);
    memset(p, 0, sizeof(*p));
}

void aws_params_action(aws_params *p, const char *action, const char *version)
{
    aws_params_add(p, "Action", action);
    aws_params_add(p, "Version", version);
}

static void add_list(aws_params *p, const char *prefix, char *const *items)
{
    for (size_t i = 0; items && items[i]; i++)
        aws_params_addf(p, items[i], "%s.%zu", prefix, i + 1);
}

/* TagSpecification.1: the tags of the resource the call creates, so it
 * never exists untagged. */
static void add_tag_spec(aws_params *out, const char *resource_type, const aws_kv *tags, size_t n_tags)
{
    if (!n_tags)
        return;
    aws_params_add(out, "TagSpecification.1.ResourceType", resource_type);
    for (size_t i = 0; i < n_tags; i++) {
        aws_params_addf(out, tags[i].key, "TagSpecification.1.Tag.%zu.Key", i + 1);
        aws_params_addf(out, tags[i].value, "TagSpecification.1.Tag.%zu.Value", i + 1);
    }
}

static void add_filters(aws_params *out, const ec2_filter *filters, size_t n_filters)
{
    for (size_t i = 0; i < n_filters; i++) {
        aws_params_addf(out, filters[i].name, "Filter.%zu.Name", i + 1);
        for (size_t j = 0; filters[i].values && filters[i].values[j]; j++)
            aws_params_addf(out, filters[i].values[j], "Filter.%zu.Value.%zu", i + 1, j + 1);
    }
}

static void add_page(aws_params *out, int max_results, const char *next_token)
{
    if (max_results > 0) {
        char n[16];
        snprintf(n, sizeof(n), "%d", max_results);
        aws_params_add(out, "MaxResults", n);
    }
    if (next_token && *next_token)
        aws_params_add(out, "NextToken", next_token);
}

void ec2_build_run_instances(const ec2_run_request *r, aws_params *out)
{
    aws_params_action(out, "RunInstances", EC2_API_VERSION);
    aws_params_add(out, "MinCount", "1");
    aws_params_add(out, "MaxCount", "1");
    bool lt = r->launch_template && *r->launch_template;
    if (lt) {
        aws_params_add(out, "LaunchTemplate.LaunchTemplateName", r->launch_template);
    } else {
        aws_params_add(out, "ImageId", r->image_id);
        aws_params_add(out, "InstanceType", r->instance_type);
        if (r->public_ip) {
            aws_params_add(out, "NetworkInterface.1.DeviceIndex", "0");
            aws_params_add(out, "NetworkInterface.1.AssociatePublicIpAddress", "true");
            aws_params_add(out, "NetworkInterface.1.DeleteOnTermination", "true");
            if (r->subnet_id && *r->subnet_id)
                aws_params_add(out, "NetworkInterface.1.SubnetId", r->subnet_id);
            add_list(out, "NetworkInterface.1.SecurityGroupId", r->security_group_ids);
        } else {
            if (r->subnet_id && *r->subnet_id)
                aws_params_add(out, "SubnetId", r->subnet_id);
            add_list(out, "SecurityGroupId", r->security_group_ids);
        }
        if (r->key_name && *r->key_name)
            aws_params_add(out, "KeyName", r->key_name);
        if (r->sev_snp)
            aws_params_add(out, "CpuOptions.AmdSevSnp", "enabled");
    }
    if (r->root_volume_size > 0 && r->root_device_name && *r->root_device_name) {
        char size[24];
        snprintf(size, sizeof(size), "%lld", (long long)r->root_volume_size);
        aws_params_add(out, "BlockDeviceMapping.1.DeviceName", r->root_device_name);
        aws_params_add(out, "BlockDeviceMapping.1.Ebs.VolumeSize", size);
    }
    if (r->user_data_b64 && *r->user_data_b64)
        aws_params_add(out, "UserData", r->user_data_b64);
    aws_params_add(out, "MetadataOptions.HttpTokens", "required");
    add_tag_spec(out, "instance", r->tags, r->n_tags);
    if (r->client_token && *r->client_token)
        aws_params_add(out, "ClientToken", r->client_token);
}

void ec2_build_terminate_instances(const char *instance_id, aws_params *out)
{
    aws_params_action(out, "TerminateInstances", EC2_API_VERSION);
    aws_params_add(out, "InstanceId.1", instance_id);
}

void ec2_build_describe_instances(char *const *ids, const ec2_filter *filters, size_t n_filters,
                                  int max_results, const char *next_token, aws_params *out)
{
    aws_params_action(out, "DescribeInstances", EC2_API_VERSION);
    add_list(out, "InstanceId", ids);
    add_filters(out, filters, n_filters);
    add_page(out, max_results, next_token);
}

void ec2_build_describe_network_interfaces(const ec2_filter *filters, size_t n_filters, int max_results,
                                           const char *next_token, aws_params *out)
{
    aws_params_action(out, "DescribeNetworkInterfaces", EC2_API_VERSION);
    add_filters(out, filters, n_filters);
    add_page(out, max_results, next_token);
}

void ec2_build_describe_instance_types(char *const *types, const char *next_token, aws_params *out)
{
    aws_params_action(out, "DescribeInstanceTypes", EC2_API_VERSION);
    add_list(out, "InstanceType", types);
    if (next_token && *next_token)
        aws_params_add(out, "NextToken", next_token);
}

void ec2_build_describe_images(char *const *image_ids, aws_params *out)
{
    aws_params_action(out, "DescribeImages", EC2_API_VERSION);
    add_list(out, "ImageId", image_ids);
}

void ec2_build_describe_addresses(const char *instance_id, aws_params *out)
{
    aws_params_action(out, "DescribeAddresses", EC2_API_VERSION);
    aws_params_add(out, "Filter.1.Name", "instance-id");
    aws_params_add(out, "Filter.1.Value.1", instance_id);
}

void ec2_build_describe_addresses_by(const char *allocation_id, const ec2_filter *filters, size_t n_filters,
                                     aws_params *out)
{
    aws_params_action(out, "DescribeAddresses", EC2_API_VERSION);
    if (allocation_id)
        aws_params_add(out, "AllocationId.1", allocation_id);
    add_filters(out, filters, n_filters);
}

/* An EC2 action whose only parameter is one id. */
static void ec2_action_on(const char *action, const char *key, const char *id, aws_params *out)
{
    aws_params_action(out, action, EC2_API_VERSION);
    aws_params_add(out, key, id);
}

void ec2_build_release_address(const char *allocation_id, aws_params *out)
{
    ec2_action_on("ReleaseAddress", "AllocationId", allocation_id, out);
}

void ec2_build_disassociate_address(const char *association_id, aws_params *out)
{
    ec2_action_on("DisassociateAddress", "AssociationId", association_id, out);
}

void ec2_build_create_network_interface(const char *subnet_id, char *const *security_group_ids,
                                        const aws_kv *tags, size_t n_tags, const char *client_token,
                                        aws_params *out)
{
    aws_params_action(out, "CreateNetworkInterface", EC2_API_VERSION);
    aws_params_add(out, "ClientToken", client_token);
    add_list(out, "SecurityGroupId", security_group_ids);
    if (subnet_id && *subnet_id)
        aws_params_add(out, "SubnetId", subnet_id);
    add_tag_spec(out, "network-interface", tags, n_tags);
}

void ec2_build_attach_network_interface(const char *instance_id, const char *eni_id, int device_index,
                                        aws_params *out)
{
    aws_params_action(out, "AttachNetworkInterface", EC2_API_VERSION);
    char index[16];
    snprintf(index, sizeof(index), "%d", device_index);
    aws_params_add(out, "DeviceIndex", index);
    aws_params_add(out, "InstanceId", instance_id);
    aws_params_add(out, "NetworkInterfaceId", eni_id);
}

void ec2_build_eni_delete_on_termination(const char *eni_id, const char *attachment_id, aws_params *out)
{
    aws_params_action(out, "ModifyNetworkInterfaceAttribute", EC2_API_VERSION);
    aws_params_add(out, "Attachment.AttachmentId", attachment_id);
    aws_params_add(out, "Attachment.DeleteOnTermination", "true");
    aws_params_add(out, "NetworkInterfaceId", eni_id);
}

void ec2_build_allocate_address(const aws_kv *tags, size_t n_tags, aws_params *out)
{
    aws_params_action(out, "AllocateAddress", EC2_API_VERSION);
    aws_params_add(out, "Domain", "vpc");
    add_tag_spec(out, "elastic-ip", tags, n_tags);
}

void ec2_build_associate_address(const char *allocation_id, const char *eni_id, aws_params *out)
{
    aws_params_action(out, "AssociateAddress", EC2_API_VERSION);
    aws_params_add(out, "AllocationId", allocation_id);
    aws_params_add(out, "AllowReassociation", "true");
    aws_params_add(out, "NetworkInterfaceId", eni_id);
}

void ec2_build_delete_network_interface(const char *eni_id, aws_params *out)
{
    ec2_action_on("DeleteNetworkInterface", "NetworkInterfaceId", eni_id, out);
}

void sts_build_assume_role_with_web_identity(const char *role_arn, const char *session_name,
                                             const char *token, aws_params *out)
{
    aws_params_action(out, "AssumeRoleWithWebIdentity", STS_API_VERSION);
    aws_params_add(out, "RoleArn", role_arn);
    aws_params_add(out, "RoleSessionName", session_name);
    aws_params_add(out, "WebIdentityToken", token);
}
