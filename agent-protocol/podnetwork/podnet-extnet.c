/* external-net-via-pod-vm: the VM's secondary interface moves into the pod
 * namespace and carries its default route (see podnet-extnet.h). */
#define LOG_COMPONENT "podnetwork/vm"
#include <errno.h>
#include <linux/rtnetlink.h>
#include <netlink/route/link.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "log.h"
#include "podnet-extnet.h"
#include "podnet-nl.h"
#include "podnet-route.h"
#include "podnet-text.h"

/* Upstream's isInterfaceFilteredOut: virtual and local devices never
 * carry the VM's second network. */
static bool ignored(const char *name)
{
    static const char *const prefixes[] = {"veth", "lo",   "docker", "podman", "br-",
                                           "cni",  "tunl", "tun",    "tap"};
    for (size_t i = 0; i < CAA_ARRAY_SIZE(prefixes); i++)
        if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    return false;
}

typedef struct secondary {
    int ifindex;
    char name[CAA_PODNET_IFNAMSIZ];
    caa_podnet_prefix addr;
    caa_podnet_default_route route;
} secondary;

/* The first IPv4 address of ifindex; false when it has none. */
static bool first_addr(struct nl_sock *root, int ifindex, caa_podnet_prefix *ret, caa_error **err)
{
    caa_podnet_prefix *addrs = NULL;
    int n = caa_podnet_addrs_get(root, ifindex, &addrs, err);
    if (n > 0)
        *ret = addrs[0];
    free(addrs);
    return n > 0;
}

static int find_secondary(struct nl_sock *root, secondary *ret, caa_error **err)
{
    caa_podnet_default_route primary;
    int r = caa_podnet_default_route_get(root, &primary, err);
    if (r < 0)
        return caa_error_prefix(err, "external-net-via-pod-vm: finding the primary interface");
    caa_podnet_prefix primary_addr = {0};
    bool primary_has_addr = first_addr(root, primary.ifindex, &primary_addr, NULL);

    struct nl_cache *cache = NULL;
    if ((r = rtnl_link_alloc_cache(root, AF_UNSPEC, &cache)) < 0)
        return caa_podnet_nl_error(err, r, "listing devices");
    r = -ENOENT;
    for (struct nl_object *o = nl_cache_get_first(cache); o && r == -ENOENT; o = nl_cache_get_next(o)) {
        struct rtnl_link *l = (struct rtnl_link *)o;
        const char *name = rtnl_link_get_name(l);
        int ifindex = rtnl_link_get_ifindex(l);
        caa_podnet_prefix addr;
        if (!name || ignored(name) || ifindex == primary.ifindex || strlen(name) >= CAA_PODNET_IFNAMSIZ ||
            !first_addr(root, ifindex, &addr, NULL))
            continue;
        caa_podnet_default_route route;
        if (caa_podnet_default_route_of(root, ifindex, &route, NULL) < 0) {
            /* No default route of its own: as upstream, one with a prefix of
             * the primary's length uses the primary's gateway. */
            if (!primary_has_addr || addr.len != primary_addr.len)
                continue;
            route = primary;
            route.ifindex = ifindex;
        }
        *ret = (secondary){.ifindex = ifindex, .addr = addr, .route = route};
        memcpy(ret->name, name, strlen(name) + 1);
        r = 0;
    }
    nl_cache_free(cache);
    if (r == -ENOENT)
        caa_error_set(
            err, -ENOENT,
            "external-net-via-pod-vm: the VM has no secondary interface (another device than the "
            "default route's, with an IPv4 address and a default route or a subnet like the primary's)");
    return r;
}

int caa_podnet_extnet_setup(struct nl_sock *root, struct nl_sock *pod, int pod_nsfd, caa_error **err)
{
    secondary sec;
    int r = find_secondary(root, &sec, err);
    if (r < 0)
        return r;
    char addr[CAA_PODNET_PREFIX_STRLEN], gw[CAA_PODNET_ADDR_STRLEN] = "";
    caa_podnet_prefix_format(&sec.addr, addr);
    if (sec.route.has_gw)
        caa_podnet_addr_format(sec.route.gw, gw);
    log_info("external-net-via-pod-vm: moving %s (%s) into the pod namespace, default route%s%s", sec.name,
             addr, sec.route.has_gw ? " via " : "", gw);

    if ((r = caa_podnet_link_set_netns(root, sec.ifindex, pod_nsfd, err)) < 0)
        return r;
    /* The move leaves the addresses behind and may renumber the device. */
    int ifindex = caa_podnet_link_ifindex(pod, sec.name, err);
    if (ifindex < 0)
        return ifindex;
    caa_podnet_route def = {
        .has_gw = sec.route.has_gw,
        .gw = sec.route.gw,
        .protocol = RTPROT_BOOT,
        .scope = sec.route.has_gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK,
    };
    memcpy(def.dev, sec.name, sizeof(def.dev));
    if ((r = caa_podnet_addr_add(pod, ifindex, &sec.addr, false, err)) < 0 ||
        (r = caa_podnet_link_set_up(pod, ifindex, err)) < 0 ||
        (r = caa_podnet_default_routes_delete(pod, err)) < 0 ||
        (r = caa_podnet_route_add(pod, &def, err)) < 0)
        return caa_error_prefix(err, "external-net-via-pod-vm: configuring %s in the pod namespace",
                                sec.name);
    return 0;
}
