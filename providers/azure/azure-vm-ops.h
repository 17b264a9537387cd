/* Two building blocks of the provider operations:
 *  - deleting a VM and following the deletion to its end (404 = gone =
 *    success; 409 while another operation runs is retried);
 *  - looking a VM up with its addresses: GET the VM, its NICs and (with
 *    -use-public-ip) their public IPs; public addresses first, as upstream.
 * Both follow the async contract and end at their deadline. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "azure-arm.h"
#include "azure-json.h"
#include "provider.h"

typedef struct az_vm_delete az_vm_delete;
typedef void (*az_vm_delete_cb)(int status, caa_error *err, void *opaque);

/* vm_path: the VM's ARM id. */
int az_vm_delete_start(az_ctx *ctx, const char *vm_path, uint64_t deadline, az_vm_delete_cb cb, void *opaque,
                       az_vm_delete **ret, caa_error **err);
void az_vm_delete_cancel(az_vm_delete *d);

typedef struct az_vm_lookup az_vm_lookup;
/* status 0: inst has id (vm_path), name and addresses; vm is the parsed VM
 * (tags, provisioning state). Both belong to the callback. -ENOENT when the
 * VM does not exist. */
typedef void (*az_vm_lookup_cb)(int status, caa_instance *inst, az_vm *vm, caa_error *err, void *opaque);

int az_vm_lookup_start(az_ctx *ctx, const char *vm_path, bool public_ip, uint64_t deadline,
                       az_vm_lookup_cb cb, void *opaque, az_vm_lookup **ret, caa_error **err);
void az_vm_lookup_cancel(az_vm_lookup *l);

/* "<arm><path>?api-version=<version>" */
char *az_url(const az_ctx *ctx, const char *path, const char *api_version);
