/* external-net-via-pod-vm (upstream's podnode, common.go
 * setupExternalNetwork): the pod's external traffic leaves through the VM's
 * secondary interface instead of the tunnel to the worker.
 *
 * In the VM's root namespace the primary interface is the one of the IPv4
 * default route with the lowest metric. The secondary interface is the first
 * other link (not lo, veth*, docker*, podman*, br-*, cni*, tunl*, tun*, tap*)
 * with an IPv4 address and either a default route of its own, or a prefix
 * of the primary's length (then the primary's gateway is used, as upstream
 * does). It is moved into the pod namespace, gets its address back and is
 * set up; the pod namespace's default routes are replaced by one through
 * it. Routes to the pod subnets (from the pod's routes, -pod-subnet-cidrs)
 * stay on the tunnel. */
#pragma once

#include "error.h"

struct nl_sock;

/* root: socket in the VM's root namespace; pod: in the pod namespace, whose
 * fd is pod_nsfd. -ENOENT when there is no secondary interface. */
int caa_podnet_extnet_setup(struct nl_sock *root, struct nl_sock *pod, int pod_nsfd, caa_error **err);
