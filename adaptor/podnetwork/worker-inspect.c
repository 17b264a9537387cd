/* Worker side, CreateVM: what the pod's network looks like. */
#define LOG_COMPONENT "adaptor/podnetwork"
#include <errno.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <linux/rtnetlink.h>
#include <string.h>

#include "log.h"
#include "podnet-error.h"
#include "podnet-netns.h"
#include "podnet-nl.h"
#include "podnet-route.h"
#include "podnet-worker.h"
#include "strv.h"

CAA_DEFINE_CLEANUP(struct rtnl_link *, rtnl_link_put)

/* The host's primary interface and its first IPv4 prefix. */
static int inspect_host(const caa_podnet_inspect_opts *opts, caa_podnet_config *cfg, caa_error **err)
{
    _cleanup_nl_sock_ struct nl_sock *host = NULL;
    _cleanup_(rtnl_link_putp) struct rtnl_link *link = NULL;
    _cleanup_error_ caa_error *e = NULL;
    caa_podnet_default_route def;
    const char *override = opts->host_interface && *opts->host_interface ? opts->host_interface : NULL;
    int r;

    if ((r = caa_podnet_nl_open(NULL, &host, err)) < 0)
        return r;
    r = caa_podnet_default_route_get(host, &def, &e);
    if (r < 0 && (r != -ENOENT || !override)) {
        r = caa_error_propagate(err, &e);
        return PODNET_PREFIXED(r, err, "finding the host's primary interface");
    }
    bool have_default = r == 0;

    if (override) {
        if ((r = caa_podnet_link_get(host, override, &link, err)) < 0)
            return PODNET_PREFIXED(r, err, "host interface");
        cfg->dedicated = !have_default || rtnl_link_get_ifindex(link) != def.ifindex;
    } else if ((r = rtnl_link_get_kernel(host, def.ifindex, NULL, &link)) < 0) {
        return caa_podnet_nl_error(err, r, "reading the host's default-route device");
    }
    const char *name = rtnl_link_get_name(link);
    _cleanup_free_ caa_podnet_prefix *addrs = NULL;
    int n = caa_podnet_addrs_get(host, rtnl_link_get_ifindex(link), &addrs, err);
    if (n < 0)
        return n;
    if (n == 0)
        return caa_error_set(err, -ENOENT, "host interface \"%s\" has no IPv4 address", name);
    cfg->worker_node_ip = addrs[0];
    return 0;
}

static int inspect_pod(const char *netns_path, const caa_podnet_inspect_opts *opts, caa_podnet_config *cfg,
                       caa_error **err)
{
    _cleanup_nl_sock_ struct nl_sock *pod = NULL;
    _cleanup_(rtnl_link_putp) struct rtnl_link *link = NULL;
    _cleanup_free_ caa_podnet_prefix *addrs = NULL;
    caa_podnet_default_route def;
    int r;

    if ((r = caa_podnet_nl_open(netns_path, &pod, err)) < 0)
        return r;
    if ((r = caa_podnet_default_route_get(pod, &def, err)) < 0)
        return PODNET_PREFIXED(r, err, "pod network namespace \"%s\"", netns_path);
    if ((r = rtnl_link_get_kernel(pod, def.ifindex, NULL, &link)) < 0)
        return caa_podnet_nl_error(err, r, "reading the pod's default-route device");

    const char *name = rtnl_link_get_name(link);
    struct nl_addr *mac = rtnl_link_get_addr(link);
    if (!name || !caa_podnet_ifname_valid(name))
        return caa_error_set(err, -EINVAL, "pod interface has an unusable name");
    if (!mac || nl_addr_get_len(mac) != 6)
        return caa_error_set(err, -EINVAL, "pod interface \"%s\" is not an Ethernet device", name);
    snprintf(cfg->interface, sizeof(cfg->interface), "%s", name);
    memcpy(cfg->pod_hw_addr, nl_addr_get_binary_addr(mac), 6);
    cfg->mtu = rtnl_link_get_mtu(link);

    int n = caa_podnet_addrs_get(pod, def.ifindex, &addrs, err);
    if (n < 0)
        return n;
    if (n == 0)
        return caa_error_set(err, -ENOENT, "pod interface \"%s\" in \"%s\" has no IPv4 address", name,
                             netns_path);
    if (n > 1)
        return caa_error_set(err, -EINVAL,
                             "pod interface \"%s\" in \"%s\" has %d IPv4 addresses; exactly one is supported",
                             name, netns_path, n);
    cfg->pod_ip = addrs[0];

    if ((r = caa_podnet_routes_collect(pod, def.ifindex, name, cfg, err)) < 0 ||
        (r = caa_podnet_neighbors_collect(pod, def.ifindex, name, cfg, err)) < 0)
        return PODNET_PREFIXED(r, err, "pod network namespace \"%s\"", netns_path);

    /* -pod-subnet-cidrs: extra routes through the pod's default gateway. */
    for (size_t i = 0; opts->pod_subnet_cidrs && opts->pod_subnet_cidrs[i]; i++) {
        caa_podnet_route extra = {
            .has_gw = def.has_gw, .gw = def.gw, .protocol = RTPROT_BOOT, .scope = RT_SCOPE_UNIVERSE};
        if ((r = caa_podnet_prefix_parse(opts->pod_subnet_cidrs[i], &extra.dst, err)) < 0)
            return PODNET_PREFIXED(r, err, "pod-subnet-cidrs");
        if (!def.has_gw)
            return caa_error_set(err, -EINVAL, "pod-subnet-cidrs: the pod's default route has no gateway");
        extra.dst.addr = caa_podnet_prefix_network(&extra.dst);
        snprintf(extra.dev, sizeof(extra.dev), "%s", name);
        if ((r = caa_podnet_config_add_route(cfg, &extra, err)) < 0)
            return r;
    }
    return 0;
}

int caa_podnet_worker_inspect(const char *netns_path, const caa_podnet_inspect_opts *opts,
                              caa_podnet_config **ret, caa_error **err)
{
    _cleanup_podnet_config_ caa_podnet_config *cfg = caa_podnet_config_new();
    int r;

    if (!netns_path || !*netns_path)
        return caa_error_set(err, -EINVAL, "no pod network namespace given");
    if (opts->vxlan_id > CAA_PODNET_MAX_VNI)
        return caa_error_set(err, -EINVAL, "VXLAN id %u above %u", opts->vxlan_id, CAA_PODNET_MAX_VNI);
    cfg->vxlan_id = opts->vxlan_id;
    cfg->index = opts->index;
    cfg->vxlan_port = opts->vxlan_port ? opts->vxlan_port : CAA_PODNET_DEFAULT_VXLAN_PORT;

    if ((r = inspect_pod(netns_path, opts, cfg, err)) < 0 || (r = inspect_host(opts, cfg, err)) < 0)
        return r;
    if ((r = caa_podnet_config_validate(cfg, err)) < 0)
        return r;
    log_debug("pod %s: interface %s, %zu routes, %zu neighbours, vni %u", netns_path, cfg->interface,
              cfg->n_routes, cfg->n_neighbors, cfg->vxlan_id);
    *ret = TAKE_PTR(cfg);
    return 0;
}
