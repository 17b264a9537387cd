/* What peerpod-ctrl does with one PeerPod object (upstream's Reconcile):
 *
 *  - no metadata.deletionTimestamp: nothing to collect (the daemon still owns
 *    the VM); upstream also deletes older PeerPods of the same owner then,
 *    see peerpod-owners.h;
 *  - deletionTimestamp set and finalizer peer.pod/finalizer present: the Pod
 *    is gone but the daemon never released the VM (node lost, daemon dead,
 *    /run wiped): delete spec.instanceID through spec.cloudProvider's
 *    provider (an instance already gone counts as done), then remove the
 *    finalizer so the API server can drop the object;
 *  - deletionTimestamp set without our finalizer: nothing to do.
 *
 * Objects come from the API server but are still validated as hostile input:
 * a PeerPod we cannot read is skipped with a message, never acted on. */
#pragma once

#include <stdbool.h>

#include <jansson.h>

#include "error.h"

#define CAA_PEERPOD_CTRL_FINALIZER "peer.pod/finalizer"

typedef enum caa_peerpod_action {
    CAA_PEERPOD_KEEP,            /* live, or nothing of ours to collect */
    CAA_PEERPOD_DELETE_INSTANCE, /* delete the instance, then release */
    CAA_PEERPOD_RELEASE_ONLY,    /* being deleted, no instance recorded: only remove the finalizer */
} caa_peerpod_action;

typedef struct caa_peerpod_ref {
    char *ns, *name, *uid, *resource_version;
    char *cloud_provider, *instance_id; /* NULL for KEEP */
} caa_peerpod_ref;

/* Classifies obj; fills *ret (caa_peerpod_ref_done) for every action.
 * -EINVAL for an object without namespace/name/uid/resourceVersion, with
 * fields of the wrong type, or being deleted with our finalizer but without
 * spec.cloudProvider. */
int caa_peerpod_classify(const json_t *obj, caa_peerpod_action *action, caa_peerpod_ref *ret,
                         caa_error **err);
void caa_peerpod_ref_done(caa_peerpod_ref *r);

/* JSON Patch (RFC 6902) that removes our finalizer and nothing else: a
 * `test` of the current finalizers list, then its replacement without ours,
 * so a concurrent change makes the API server refuse the patch (re-read and
 * retry) instead of dropping someone else's finalizer. NULL when obj does
 * not carry our finalizer. */
json_t *caa_peerpod_release_patch(const json_t *obj);
