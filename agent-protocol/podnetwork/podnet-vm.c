/* Pod VM side of the pod network tunnel. */
#define LOG_COMPONENT "podnetwork/vm"
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "netns.h"
#include "podnet-error.h"
#include "podnet-extnet.h"
#include "podnet-netns.h"
#include "podnet-nl.h"
#include "podnet-notrack.h"
#include "podnet-route.h"
#include "podnet-vm.h"

static const char *netns_path_of(const caa_podnet_vm_opts *opts)
{
    return opts && opts->netns_path && *opts->netns_path ? opts->netns_path : CAA_PODNET_DEFAULT_POD_NETNS;
}

/* Removes a stale tunnel of the same VNI; -EEXIST for any other device named so. */
static int clear_stale_device(struct nl_sock *pod, const caa_podnet_config *cfg, const char *path,
                              caa_error **err)
{
    _cleanup_error_ caa_error *e = NULL;
    uint32_t vni;
    int r = caa_podnet_vxlan_get_id(pod, cfg->interface, &vni, &e);
    if (r == -ENOENT)
        return 0;
    if (r == 0 && vni == cfg->vxlan_id) {
        log_debug("replacing tunnel device %s left by an earlier run", cfg->interface);
        return caa_podnet_link_delete(pod, cfg->interface, err);
    }
    if (r == 0 || r == -EINVAL)
        return caa_error_set(err, -EEXIST, "a device named \"%s\" already exists in network namespace \"%s\"",
                             cfg->interface, path);
    return caa_error_propagate(err, &e);
}

static int configure(struct nl_sock *pod, const caa_podnet_config *cfg, caa_error **err)
{
    int ifindex = caa_podnet_link_ifindex(pod, cfg->interface, err);
    if (ifindex < 0)
        return ifindex;
    /* The kernel's connected route is not wanted for non-/32 prefixes (PTP
     * style CNIs); the pod's route list brings it back where it existed. */
    int r = caa_podnet_addr_add(pod, ifindex, &cfg->pod_ip, cfg->pod_ip.len < 32, err);
    if (r < 0)
        return r;
    if ((r = caa_podnet_link_set_up(pod, ifindex, err)) < 0)
        return r;
    /* Routes without a gateway first: they make the gateways reachable. */
    for (int with_gw = 0; with_gw < 2; with_gw++)
        for (size_t i = 0; i < cfg->n_routes; i++)
            if (cfg->routes[i].has_gw == (with_gw == 1) &&
                (r = caa_podnet_route_add(pod, &cfg->routes[i], err)) < 0)
                return r;
    for (size_t i = 0; i < cfg->n_neighbors; i++)
        if ((r = caa_podnet_neighbor_add(pod, &cfg->neighbors[i], err)) < 0)
            return r;
    return 0;
}

int caa_podnet_vm_setup(const caa_podnet_config *cfg, const caa_podnet_vm_opts *opts, caa_error **err)
{
    const char *path = netns_path_of(opts);
    bool notrack = !(opts && opts->no_notrack);
    _cleanup_close_ int nsfd = -1;
    _cleanup_nl_sock_ struct nl_sock *root = NULL, *pod = NULL;
    int r;

    if ((r = caa_podnet_config_validate(cfg, err)) < 0)
        return r;
    if ((r = caa_podnet_require_net_admin(err)) < 0 || (r = caa_podnet_netns_ensure(path, NULL, err)) < 0)
        return r;
    if ((nsfd = caa_netns_open(path, err)) < 0)
        return nsfd;
    if ((r = caa_podnet_nl_open(NULL, &root, err)) < 0 || (r = caa_podnet_nl_open_fd(nsfd, &pod, err)) < 0)
        return r;

    int lo = caa_podnet_link_ifindex(pod, "lo", err);
    if (lo < 0 || (r = caa_podnet_link_set_up(pod, lo, err)) < 0)
        return lo < 0 ? lo : r;
    if ((r = clear_stale_device(pod, cfg, path, err)) < 0)
        return r;

    if (notrack &&
        (r = caa_podnet_notrack_add(cfg->vxlan_id, cfg->worker_node_ip.addr, cfg->vxlan_port, err)) < 0)
        return r;
    uint32_t mtu = cfg->mtu == 0 || cfg->mtu > CAA_PODNET_VM_MAX_MTU ? CAA_PODNET_VM_MAX_MTU : cfg->mtu;
    /* Some kernels (Debian's 6.1) check a new device's name against the
     * namespace of the request, not the one it is placed in, and the VM's own
     * NIC is usually called like the pod interface (eth0). So the device is
     * created under a name that cannot clash and renamed inside the pod netns,
     * as upstream does. */
    char tmp_name[16];
    snprintf(tmp_name, sizeof(tmp_name), "caavx%u", cfg->vxlan_id);
    caa_podnet_vxlan_spec spec = {
        .name = tmp_name,
        .vni = cfg->vxlan_id,
        .remote = cfg->worker_node_ip.addr,
        .port = cfg->vxlan_port,
        .netns_fd = nsfd,
        .hw_addr = cfg->pod_hw_addr,
        .mtu = mtu,
    };
    r = caa_podnet_vxlan_create(root, &spec, err);
    if (r == 0) {
        r = caa_podnet_link_rename(pod, tmp_name, cfg->interface, err);
        if (r < 0)
            caa_podnet_link_delete(pod, tmp_name, NULL);
    }
    if (r == 0)
        r = configure(pod, cfg, err);
    if (r == 0 && cfg->external_net_via_pod_vm)
        r = caa_podnet_extnet_setup(root, pod, nsfd, err);
    if (r < 0) {
        /* Undo: the device takes its addresses, routes and neighbours along. */
        caa_podnet_vm_teardown(cfg, opts, NULL);
        return PODNET_PREFIXED(r, err, "setting up the pod network in \"%s\"", path);
    }
    log_debug("pod network ready in %s: %s vni %u", path, cfg->interface, cfg->vxlan_id);
    return 0;
}

int caa_podnet_vm_teardown(const caa_podnet_config *cfg, const caa_podnet_vm_opts *opts, caa_error **err)
{
    const char *path = netns_path_of(opts);
    _cleanup_error_ caa_error *e = NULL;
    _cleanup_nl_sock_ struct nl_sock *pod = NULL;
    int first = 0, r;

    r = caa_podnet_nl_open(path, &pod, &e);
    if (r == -ENOENT) {
        caa_error_freep(&e); /* the namespace and everything in it is gone */
        r = 0;
    } else if (r == 0) {
        uint32_t vni;
        int g = caa_podnet_vxlan_get_id(pod, cfg->interface, &vni, &e);
        if (g == 0 && vni == cfg->vxlan_id) {
            r = caa_podnet_link_delete(pod, cfg->interface, &e);
        } else if (g == 0 || g == -ENOENT || g == -EINVAL) {
            caa_error_freep(&e); /* gone, or not ours */
        } else {
            r = g;
        }
    }
    if (r < 0)
        first = caa_error_propagate(err, &e);
    if (!(opts && opts->no_notrack)) {
        r = caa_podnet_notrack_remove(cfg->vxlan_id, first < 0 ? NULL : err);
        if (r < 0 && first == 0)
            first = r;
    }
    return first;
}
