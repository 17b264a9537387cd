/* The Azure provider: VMs through Azure Resource Manager REST calls on the
 * daemon's libuv loop (see docs/provider-azure.md). */
#pragma once

#include "provider.h"

extern const caa_provider_ops caa_azure_provider;

/* The VM name of an instance id
 * "/subscriptions/<s>/resourceGroups/<rg>/providers/Microsoft.Compute/virtualMachines/<name>"
 * (keywords case-insensitive, as upstream's pattern), or NULL. New string. */
char *az_vm_name_of_id(const char *id);
