/* The node's extended resource kata.peerpods.io/vm (upstream's
 * k8sops/node.go): advertised at start as the node status capacity, with the
 * node annotation kata.peerpods.io/caa-owner = this daemon's pod UID, and
 * removed at shutdown only while the annotation still names this daemon (a
 * newer daemon of a rolling update keeps its resource).
 *
 * Requests: start 2 (merge-patch the annotation, JSON-patch the status; the
 * annotation only with a pod UID), shutdown 2 (GET the node, JSON-patch). */
#pragma once

#include <stdint.h>

#include "kube-client.h"

#define CAA_KUBE_NODE_RESOURCE "kata.peerpods.io/vm"
#define CAA_KUBE_OWNER_ANNOTATION "kata.peerpods.io/caa-owner"

typedef struct caa_kube_node caa_kube_node;

/* status 0 or the error of the last failure (err belongs to the callback). */
typedef void (*caa_kube_node_cb)(int status, caa_error *err, void *opaque);

/* Advertises limit on node_name, retrying every failure (API server down,
 * 401 before a token rotation, 403 before RBAC is fixed, ...) with backoff
 * up to 30 s until it succeeds or caa_kube_node_free() stops it; each failure
 * is one log line. cb runs once on success. pod_uid may be NULL/"". */
int caa_kube_node_advertise(caa_kube_client *c, const char *node_name, const char *pod_uid, int64_t limit,
                            caa_kube_node_cb cb, void *opaque, caa_kube_node **ret, caa_error **err);
/* Removes the resource when the owner annotation still equals pod_uid (or,
 * without a pod UID, always); a few attempts, short timeouts. cb runs once. */
int caa_kube_node_release(caa_kube_client *c, const char *node_name, const char *pod_uid, caa_kube_node_cb cb,
                          void *opaque, caa_kube_node **ret, caa_error **err);
/* Both fail synchronously (-EINVAL: node name not a valid name) or call cb
 * exactly once, later; the operation frees itself after cb. */

/* Before cb ran: cancels what is in flight; cb never runs and the operation
 * frees itself once its call has ended. NULL-safe. */
void caa_kube_node_free(caa_kube_node *n);

/* JSON documents (new references), exposed for tests. */
json_t *caa_kube_node_capacity_patch(const char *op, int64_t limit);
json_t *caa_kube_node_owner_patch(const char *pod_uid);
