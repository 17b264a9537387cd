/* Worker side of the pod network tunnel, called by the daemon:
 *
 *   CreateVM: caa_podnet_vni_alloc() + caa_podnet_worker_inspect()
 *             -> config (its JSON goes into apf.json as "pod-network")
 *   StartVM:  caa_podnet_worker_setup() with the VM's IP
 *   StopVM:   caa_podnet_worker_teardown()
 *
 * Everything runs synchronously on the calling thread (a few netlink round
 * trips and one nftables batch): the thread briefly enters the pod's network
 * namespace only to open a netlink socket there. Host-side objects (the VXLAN
 * UDP socket, the NOTRACK rules) go into the calling thread's namespace. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "podnet-config.h"

/* Name of the tunnel device inside the pod's namespace (as upstream). */
#define CAA_PODNET_WORKER_VXLAN_NAME "vxlan1"

/* Picks VNI = min_id + the lowest index whose VNI is not in in_use (the VNIs
 * of live pods, persisted by the daemon; order and duplicates do not matter).
 * -EINVAL when min_id is above 2^24-1, -ENOSPC when no VNI is left. */
int caa_podnet_vni_alloc(uint32_t min_id, const uint32_t *in_use, size_t n_in_use, uint32_t *ret_vni,
                         uint32_t *ret_index, caa_error **err);

typedef struct caa_podnet_inspect_opts {
    const char *host_interface;    /* -host-interface; NULL/"": the host's IPv4 default-route device */
    uint32_t vxlan_id;             /* from caa_podnet_vni_alloc() */
    uint32_t index;                /* idem */
    uint16_t vxlan_port;           /* 0: 4789 */
    char *const *pod_subnet_cidrs; /* -pod-subnet-cidrs, NULL-terminated, may be NULL */
} caa_podnet_inspect_opts;

/* Reads the pod's network (netns_path, e.g. /var/run/netns/cni-...) and the
 * host's primary interface into a new config. The pod interface is the device
 * of the pod's IPv4 default route and must have exactly one IPv4 address.
 * Errors: -ENOENT (no such namespace, no default route, no IPv4 address, host
 * interface missing), -EINVAL (several IPv4 addresses, not Ethernet, bad
 * options), -EPERM (entering the namespace not allowed). */
int caa_podnet_worker_inspect(const char *netns_path, const caa_podnet_inspect_opts *opts,
                              caa_podnet_config **ret, caa_error **err);

/* Creates the tunnel for a pod whose VM has the IPv4 address vm_ip: NOTRACK
 * rules for UDP to/from vm_ip:vxlan-port in the host namespace, the VXLAN
 * device (id vxlan-id, remote vm_ip, nolearning) created through the host
 * namespace and placed in the pod namespace as "vxlan1", and a tc mirred
 * bridge between it and the pod interface. On failure whatever was created is
 * removed again. Errors: -EEXIST ("vxlan1" already in the pod namespace, or
 * the VNI clashes with another tunnel on the host), -ENOENT (namespace or pod
 * interface missing), -EPERM (CAP_NET_ADMIN missing), -EINVAL (bad vm_ip). */
int caa_podnet_worker_setup(const char *netns_path, const caa_podnet_config *cfg, const char *vm_ip,
                            caa_error **err);

/* Removes what setup created: the filters (and the ingress qdisc when it is
 * left empty) on the pod interface, "vxlan1" if it carries cfg's VNI, and the
 * NOTRACK rules of that VNI. Safe to run twice, after a partial setup, and
 * after the pod namespace was deleted. Returns the first error but tries
 * every step. */
int caa_podnet_worker_teardown(const char *netns_path, const caa_podnet_config *cfg, caa_error **err);
