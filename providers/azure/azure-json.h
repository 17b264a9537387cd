/* Readers of what Azure sends back: ARM error bodies, Entra ID / IMDS token
 * responses, VM sizes, long-running operation status, VMs, NICs and public
 * IPs. Pure functions over a buffer (fuzzed as azure-arm-json): any input
 * gives either a result or -EPROTO with a message, never a crash. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "error.h"
#include "instance-type.h"

/* Longest cloud-provided text we copy into an error message. */
#define AZ_ERROR_TEXT_MAX 600
/* Most VM sizes one region may list. */
#define AZ_MAX_SIZES 20000
/* Most NICs / IP configurations / VMs per page we read. */
#define AZ_MAX_ITEMS 4096

/* Maps a failed ARM answer (HTTP status and body, usually
 * {"error":{"code","message","details"}}) to a class code and a message that
 * names the ARM code; quota and capacity errors get a clear lead:
 *   -EDQUOT  quota (QuotaExceeded, OperationNotAllowed about quota, ...)
 *   -ENOSPC  size not offered or no capacity (SkuNotAvailable, AllocationFailed, ...)
 *   -EACCES  401, 403, authentication and authorization codes
 *   -ENOENT  404 and *NotFound codes
 *   -EAGAIN  429 and 5xx
 *   -EINVAL  other 400s
 *   -EIO     anything else
 * Always sets *err and returns the code. what: "PUT .../virtualMachines/x". */
int az_arm_error(long http_status, const char *body, size_t len, const char *what, caa_error **err);
/* Code and message of an ARM error object found in body (top-level "error"
 * or the body itself); NULL when there is none. Strings are new. */
void az_arm_error_fields(const char *body, size_t len, char **ret_code, char **ret_message);

/* Entra ID (v2.0 token endpoint) and IMDS token responses:
 * {"access_token": "...", "expires_in": 3599 | "3599", "expires_on": "..."}.
 * The token must be header-safe (printable ASCII without spaces). now: wall
 * clock seconds, for expires_on. */
int az_parse_token(const char *body, size_t len, time_t now, char **ret_token, int64_t *ret_expires_in,
                   caa_error **err);
/* A failed token request: {"error": "...", "error_description": "..."}. Sets
 * *err (-EACCES for 400/401/403, -EAGAIN for 429/5xx, else -EIO) and returns
 * the code. */
int az_token_error(long http_status, const char *body, size_t len, const char *what, caa_error **err);

/* GET .../locations/<region>/vmSizes: {"value": [{"name", "numberOfCores",
 * "memoryInMB", ...}]} -> types (gpus 0; Azure does not say). */
int az_parse_vm_sizes(const char *body, size_t len, caa_instance_type **ret, size_t *ret_n, caa_error **err);

typedef enum az_op_status {
    AZ_OP_RUNNING,
    AZ_OP_SUCCEEDED,
    AZ_OP_FAILED,
    AZ_OP_CANCELED,
} az_op_status;

/* An operation status document ({"status": "InProgress" | "Succeeded" |
 * "Failed" | "Canceled", "error": {...}}) as the Azure SDKs read it: no status
 * means the HTTP status decides (202 running, other 2xx succeeded). For
 * Failed/Canceled *ret_error describes why (may be NULL). */
int az_parse_operation(long http_status, const char *body, size_t len, az_op_status *ret,
                       caa_error **ret_error, caa_error **err);
/* The same from a resource body: properties.provisioningState. */
int az_parse_provisioning(long http_status, const char *body, size_t len, az_op_status *ret,
                          caa_error **ret_error, caa_error **err);

typedef struct az_vm {
    char *id;
    char *name;
    char *provisioning_state; /* may be NULL */
    char *tag_node;           /* caa-node, may be NULL */
    char *tag_sandbox;        /* caa-sandbox-id, may be NULL */
    char **nic_ids;           /* NULL-terminated, may be NULL */
} az_vm;

void az_vm_done(az_vm *vm);
int az_parse_vm(const char *body, size_t len, az_vm *ret, caa_error **err);
/* {"value": [vm...], "nextLink": "..."}; *ret is an array of *ret_n VMs. */
int az_parse_vm_list(const char *body, size_t len, az_vm **ret, size_t *ret_n, char **ret_next_link,
                     caa_error **err);
void az_vm_list_free(az_vm *vms, size_t n);

/* A network interface: private IPs of every IP configuration (primary
 * first), the ARM ids of the public IPs attached to them and, when ret_primary
 * is not NULL, whether it is the VM's primary NIC (properties.primary). */
int az_parse_nic(const char *body, size_t len, char ***ret_private_ips, char ***ret_public_ip_ids,
                 bool *ret_primary, caa_error **err);
/* A public IP: properties.ipAddress, NULL while not allocated. */
int az_parse_public_ip(const char *body, size_t len, char **ret_ip, caa_error **err);

/* Retry-After: delta-seconds or an HTTP date; milliseconds from now, or -1
 * when absent or unreadable. Past dates give 0. */
int64_t az_parse_retry_after(const char *value, time_t now);

/* Percent-encodes everything but RFC 3986 unreserved characters. */
char *az_url_encode(const char *s);
