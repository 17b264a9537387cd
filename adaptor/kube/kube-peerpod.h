/* PeerPod objects (CRD peerpods.confidentialcontainers.org/v1alpha1), as
 * upstream's k8sops/peerpod.go: one per pod VM, created in the pod's
 * namespace once the instance exists, named <pod>-resource-<5 random>, with
 * finalizer peer.pod/finalizer, a controller ownerReference to the Pod
 * (blockOwnerDeletion) and spec {cloudProvider: $CLOUD_PROVIDER, instanceID};
 * released (finalizer removed by JSON patch) once the instance is deleted.
 * If the daemon cannot release it, the Pod's garbage collection deletes the
 * PeerPod and peerpod-ctrl deletes the instance.
 *
 * Follows the lifecycle through a pod observer. The object's name is kept in
 * <pods-dir>/<id>/peerpod.json so a restarted daemon can still release it.
 * Failures are one log line each (and counted in caa_kube_requests_total);
 * they never fail StartVM or StopVM. Requests: 1 POST per pod (plus a GET of
 * the pod when the shim gave no pod UID annotation), 1 PATCH at release. */
#pragma once

#include <jansson.h>

#include "list.h"
#include "manager.h"

#define CAA_PEERPOD_FILE "peerpod.json"
#define CAA_PEERPOD_FINALIZER "peer.pod/finalizer"

typedef struct caa_kube_peerpods {
    caa_manager *m;
    char *cloud_provider; /* $CLOUD_PROVIDER; NULL: PeerPods off */
    caa_list entries;
    bool logged_off;
} caa_kube_peerpods;

/* Register before caa_manager_start() (recovered pods load their names). */
void caa_kube_peerpods_init(caa_kube_peerpods *pp, caa_manager *m, const char *cloud_provider);
/* After the loop ran dry. */
void caa_kube_peerpods_done(caa_kube_peerpods *pp);

/* The PeerPod object (a new reference), exposed for tests. */
json_t *caa_kube_peerpod_object(const char *name, const char *ns, const char *pod_name, const char *pod_uid,
                                const char *cloud_provider, const char *instance_id);
