/* The body of PUT .../virtualMachines/<name>: what upstream's
 * getVMParameters sends (see docs/provider-azure.md), built with jansson. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define AZ_TAG_NODE "caa-node"
#define AZ_TAG_SANDBOX "caa-sandbox-id"
#define AZ_COMMUNITY_GALLERY_PREFIX "/CommunityGalleries/"

typedef struct az_vm_params {
    const char *name;     /* VM name = computer name */
    const char *location; /* region */
    const char *size;     /* hardwareProfile.vmSize */
    const char *image_id; /* ARM image id or /CommunityGalleries/... */
    const char *admin_user;
    const char *ssh_public_key; /* authorized_keys line */
    const char *subnet_id;
    /* Non-NULL: a second NIC "<name>-ext" on this subnet, which then carries
     * the public IP (upstream's multi-NIC mode for external-net-via-pod-vm). */
    const char *secondary_subnet_id;
    const char *nsg_id; /* NULL or "": none */
    bool cvm;
    bool secure_boot;
    bool public_ip;
    int64_t disk_size_gb; /* 0: the image's size */
    char *const *tags;    /* "k=v", NULL-terminated, may be NULL */
    const char *node;     /* caa-node tag */
    const char *sandbox_id;
    const void *user_data; /* raw; sent base64-encoded */
    size_t user_data_len;
} az_vm_params;

/* Returns a new reference. */
json_t *az_vm_body(const az_vm_params *p);
/* Base64 (standard alphabet, padded) as a new string. */
char *az_base64(const void *data, size_t len);
/* Length of the base64 text for len bytes. */
size_t az_base64_len(size_t len);
