/* Pod VM side of the pod network tunnel (called by agent-protocol-forwarder
 * before it listens).
 *
 * From the pod-network config it builds, in the VM's pod network namespace, an
 * interface that looks like the pod's own: a VXLAN device towards the worker
 * (created through a socket of the VM's root namespace, so its UDP socket uses
 * the VM's underlay, and placed directly in the pod namespace) named like the
 * pod interface, with the pod's MAC, MTU min(pod MTU, 1450), the pod IP, the
 * pod's routes (those without gateway first) and permanent neighbours. With
 * external-net-via-pod-vm the VM's secondary interface then moves into the
 * pod namespace and takes its default route (podnet-extnet.h). */
#pragma once

#include <stdbool.h>

#include "error.h"
#include "podnet-config.h"

#define CAA_PODNET_DEFAULT_POD_NETNS "/run/netns/podns"
#define CAA_PODNET_VM_MAX_MTU 1450

typedef struct caa_podnet_vm_opts {
    const char *netns_path; /* NULL: /run/netns/podns; created (like `ip netns add`) when missing */
    bool no_notrack;        /* skip the NOTRACK rules for the tunnel in the VM's root namespace */
} caa_podnet_vm_opts;

/* Runs in the calling thread's network namespace (the VM's root namespace).
 * A device of the same name left by an earlier run with the same VNI is
 * replaced; any other device of that name is -EEXIST. On failure everything
 * created is removed again (the namespace itself is kept; a secondary
 * interface already moved stays in it, as upstream leaves it there). */
int caa_podnet_vm_setup(const caa_podnet_config *cfg, const caa_podnet_vm_opts *opts, caa_error **err);

/* Removes the tunnel device (only when it is a VXLAN device with cfg's VNI)
 * and the NOTRACK rules. Missing pieces, including the namespace, are success. */
int caa_podnet_vm_teardown(const caa_podnet_config *cfg, const caa_podnet_vm_opts *opts, caa_error **err);
