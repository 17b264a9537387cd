/* IPv4 routes, addresses and neighbours through libnl-route. */
#define LOG_COMPONENT "podnetwork/route"
#include <errno.h>
#include <linux/if_addr.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/route.h>
#include <string.h>

#include "log.h"
#include "podnet-error.h"
#include "podnet-nl.h"
#include "podnet-route.h"
#include "xalloc.h"

CAA_DEFINE_CLEANUP(struct nl_cache *, nl_cache_free)
CAA_DEFINE_CLEANUP(struct nl_addr *, nl_addr_put)
#define _cleanup_cache_ _cleanup_(nl_cache_freep)
#define _cleanup_nladdr_ _cleanup_(nl_addr_putp)

/* An IPv4 nl_addr as in_addr + prefix length (a zero-length address is 0.0.0.0). */
static bool nladdr_to_prefix(struct nl_addr *a, caa_podnet_prefix *ret)
{
    memset(ret, 0, sizeof(*ret));
    if (!a)
        return true;
    if (nl_addr_get_family(a) != AF_INET)
        return false;
    if (nl_addr_get_len(a) == sizeof(struct in_addr))
        memcpy(&ret->addr, nl_addr_get_binary_addr(a), sizeof(struct in_addr));
    else if (nl_addr_get_len(a) != 0)
        return false;
    ret->len = (uint8_t)nl_addr_get_prefixlen(a);
    return ret->len <= 32;
}

/* The single next hop of a route, or NULL for multipath/none. */
static struct rtnl_nexthop *single_nexthop(struct rtnl_route *r)
{
    return rtnl_route_get_nnexthops(r) == 1 ? rtnl_route_nexthop_n(r, 0) : NULL;
}

static bool is_main_ipv4_unicast(struct rtnl_route *r)
{
    return rtnl_route_get_family(r) == AF_INET && rtnl_route_get_table(r) == RT_TABLE_MAIN &&
           rtnl_route_get_type(r) == RTN_UNICAST;
}

int caa_podnet_default_route_get(struct nl_sock *sk, caa_podnet_default_route *ret, caa_error **err)
{
    return caa_podnet_default_route_of(sk, 0, ret, err);
}

int caa_podnet_default_route_of(struct nl_sock *sk, int ifindex, caa_podnet_default_route *ret,
                                caa_error **err)
{
    _cleanup_cache_ struct nl_cache *cache = NULL;
    int r = rtnl_route_alloc_cache(sk, AF_INET, 0, &cache);
    if (r < 0)
        return caa_podnet_nl_error(err, r, "listing routes");
    bool found = false;
    uint32_t best_metric = 0;
    for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
        struct rtnl_route *route = (struct rtnl_route *)o;
        caa_podnet_prefix dst;
        struct rtnl_nexthop *nh = single_nexthop(route);
        if (!is_main_ipv4_unicast(route) || !nh || !nladdr_to_prefix(rtnl_route_get_dst(route), &dst) ||
            dst.len != 0 || (ifindex > 0 && rtnl_route_nh_get_ifindex(nh) != ifindex))
            continue;
        uint32_t metric = rtnl_route_get_priority(route);
        if (found && metric >= best_metric)
            continue;
        found = true;
        best_metric = metric;
        ret->ifindex = rtnl_route_nh_get_ifindex(nh);
        caa_podnet_prefix gw;
        ret->has_gw = nladdr_to_prefix(rtnl_route_nh_get_gateway(nh), &gw) && rtnl_route_nh_get_gateway(nh);
        ret->gw = ret->has_gw ? gw.addr : (struct in_addr){0};
    }
    if (!found)
        return caa_error_set(err, -ENOENT, "no IPv4 default route");
    return 0;
}

int caa_podnet_default_routes_delete(struct nl_sock *sk, caa_error **err)
{
    _cleanup_cache_ struct nl_cache *cache = NULL;
    int r = rtnl_route_alloc_cache(sk, AF_INET, 0, &cache);
    if (r < 0)
        return caa_podnet_nl_error(err, r, "listing routes");
    for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
        struct rtnl_route *route = (struct rtnl_route *)o;
        caa_podnet_prefix dst;
        if (!is_main_ipv4_unicast(route) || !nladdr_to_prefix(rtnl_route_get_dst(route), &dst) ||
            dst.len != 0)
            continue;
        if ((r = rtnl_route_delete(sk, route, 0)) < 0 && r != -NLE_OBJ_NOTFOUND)
            return caa_podnet_nl_error(err, r, "deleting a default route");
    }
    return 0;
}

int caa_podnet_addrs_get(struct nl_sock *sk, int ifindex, caa_podnet_prefix **ret, caa_error **err)
{
    _cleanup_cache_ struct nl_cache *cache = NULL;
    int r = rtnl_addr_alloc_cache(sk, &cache);
    if (r < 0)
        return caa_podnet_nl_error(err, r, "listing addresses");
    caa_podnet_prefix *list = NULL;
    int n = 0;
    /* Two passes: primaries first, so [0] is the interface's main address. */
    for (int pass = 0; pass < 2; pass++)
        for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
            struct rtnl_addr *a = (struct rtnl_addr *)o;
            bool secondary = (rtnl_addr_get_flags(a) & IFA_F_SECONDARY) != 0;
            caa_podnet_prefix p;
            if (rtnl_addr_get_family(a) != AF_INET || rtnl_addr_get_ifindex(a) != ifindex ||
                secondary != (pass == 1) || !nladdr_to_prefix(rtnl_addr_get_local(a), &p))
                continue;
            p.len = (uint8_t)rtnl_addr_get_prefixlen(a);
            list = xrealloc(list, sizeof(*list) * (size_t)(n + 1));
            list[n++] = p;
        }
    *ret = list;
    return n;
}

int caa_podnet_routes_collect(struct nl_sock *sk, int ifindex, const char *ifname, caa_podnet_config *cfg,
                              caa_error **err)
{
    _cleanup_cache_ struct nl_cache *cache = NULL;
    int r = rtnl_route_alloc_cache(sk, AF_INET, 0, &cache);
    if (r < 0)
        return caa_podnet_nl_error(err, r, "listing routes");
    for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
        struct rtnl_route *route = (struct rtnl_route *)o;
        struct rtnl_nexthop *nh = single_nexthop(route);
        caa_podnet_route out = {0};
        uint8_t proto = rtnl_route_get_protocol(route);
        if (!is_main_ipv4_unicast(route) || !nh || rtnl_route_nh_get_ifindex(nh) != ifindex ||
            !caa_podnet_route_protocol_name(proto) || !nladdr_to_prefix(rtnl_route_get_dst(route), &out.dst))
            continue;
        struct nl_addr *gw = rtnl_route_nh_get_gateway(nh);
        caa_podnet_prefix gwp;
        if (gw && nladdr_to_prefix(gw, &gwp)) {
            out.has_gw = true;
            out.gw = gwp.addr;
        }
        snprintf(out.dev, sizeof(out.dev), "%s", ifname);
        out.protocol = proto;
        out.scope = rtnl_route_get_scope(route);
        if (!caa_podnet_route_scope_name(out.scope))
            continue;
        if ((r = caa_podnet_config_add_route(cfg, &out, err)) < 0)
            return r;
    }
    return 0;
}

int caa_podnet_neighbors_collect(struct nl_sock *sk, int ifindex, const char *ifname, caa_podnet_config *cfg,
                                 caa_error **err)
{
    _cleanup_cache_ struct nl_cache *cache = NULL;
    int r = rtnl_neigh_alloc_cache(sk, &cache);
    if (r < 0)
        return caa_podnet_nl_error(err, r, "listing neighbours");
    for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
        struct rtnl_neigh *ng = (struct rtnl_neigh *)o;
        caa_podnet_neighbor out = {0};
        caa_podnet_prefix ip;
        struct nl_addr *ll = rtnl_neigh_get_lladdr(ng);
        if (rtnl_neigh_get_family(ng) != AF_INET || rtnl_neigh_get_ifindex(ng) != ifindex ||
            !(rtnl_neigh_get_state(ng) & NUD_PERMANENT) || !nladdr_to_prefix(rtnl_neigh_get_dst(ng), &ip) ||
            !ll || nl_addr_get_len(ll) != 6)
            continue;
        out.ip = ip.addr;
        memcpy(out.hw_addr, nl_addr_get_binary_addr(ll), 6);
        snprintf(out.dev, sizeof(out.dev), "%s", ifname);
        out.state = NUD_PERMANENT;
        if ((r = caa_podnet_config_add_neighbor(cfg, &out, err)) < 0)
            return r;
    }
    return 0;
}

int caa_podnet_addr_add(struct nl_sock *sk, int ifindex, const caa_podnet_prefix *p, bool noprefixroute,
                        caa_error **err)
{
    char text[CAA_PODNET_PREFIX_STRLEN];
    caa_podnet_prefix_format(p, text);
    struct rtnl_addr *a = rtnl_addr_alloc();
    _cleanup_nladdr_ struct nl_addr *local = nl_addr_build(AF_INET, &p->addr, sizeof(p->addr));
    _cleanup_nladdr_ struct nl_addr *bcast = NULL;
    if (!a || !local)
        caa_oom();
    nl_addr_set_prefixlen(local, p->len);
    rtnl_addr_set_ifindex(a, ifindex);
    rtnl_addr_set_local(a, local);
    rtnl_addr_set_prefixlen(a, p->len);
    /* Like Go netlink.AddrAdd: a broadcast address for subnets wider than /31. */
    if (p->len < 31) {
        struct in_addr b = caa_podnet_prefix_network(p);
        b.s_addr |= htonl(p->len == 0 ? 0xffffffffu : (1u << (32 - p->len)) - 1);
        bcast = nl_addr_build(AF_INET, &b, sizeof(b));
        if (!bcast)
            caa_oom();
        rtnl_addr_set_broadcast(a, bcast);
    }
    if (noprefixroute)
        rtnl_addr_set_flags(a, IFA_F_NOPREFIXROUTE);
    int r = rtnl_addr_add(sk, a, NLM_F_CREATE | NLM_F_EXCL);
    rtnl_addr_put(a);
    if (r < 0)
        return caa_podnet_nl_error(err, r, "adding address %s", text);
    return 0;
}

int caa_podnet_route_add(struct nl_sock *sk, const caa_podnet_route *rt, caa_error **err)
{
    char dst[CAA_PODNET_PREFIX_STRLEN];
    caa_podnet_prefix net = {.addr = caa_podnet_prefix_network(&rt->dst), .len = rt->dst.len};
    caa_podnet_prefix_format(&net, dst);
    int ifindex = caa_podnet_link_ifindex(sk, rt->dev, err);
    if (ifindex < 0)
        return PODNET_PREFIXED(ifindex, err, "adding route %s", dst);

    struct rtnl_route *route = rtnl_route_alloc();
    struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
    _cleanup_nladdr_ struct nl_addr *d = nl_addr_build(AF_INET, &net.addr, sizeof(net.addr));
    _cleanup_nladdr_ struct nl_addr *gw = rt->has_gw ? nl_addr_build(AF_INET, &rt->gw, sizeof(rt->gw)) : NULL;
    if (!route || !nh || !d || (rt->has_gw && !gw))
        caa_oom();
    nl_addr_set_prefixlen(d, net.len);
    rtnl_route_set_family(route, AF_INET);
    rtnl_route_set_table(route, RT_TABLE_MAIN);
    rtnl_route_set_type(route, RTN_UNICAST);
    rtnl_route_set_dst(route, d);
    rtnl_route_set_protocol(route, rt->protocol);
    rtnl_route_set_scope(route, rt->scope);
    rtnl_route_nh_set_ifindex(nh, ifindex);
    if (gw)
        rtnl_route_nh_set_gateway(nh, gw);
    rtnl_route_add_nexthop(route, nh); /* the route owns nh now */
    int r = rtnl_route_add(sk, route, NLM_F_CREATE | NLM_F_REPLACE);
    rtnl_route_put(route);
    if (r < 0)
        return caa_podnet_nl_error(err, r, "adding route %s dev %s", dst, rt->dev);
    return 0;
}

int caa_podnet_neighbor_add(struct nl_sock *sk, const caa_podnet_neighbor *n, caa_error **err)
{
    char ip[CAA_PODNET_ADDR_STRLEN];
    caa_podnet_addr_format(n->ip, ip);
    int ifindex = caa_podnet_link_ifindex(sk, n->dev, err);
    if (ifindex < 0)
        return PODNET_PREFIXED(ifindex, err, "adding neighbour %s", ip);
    struct rtnl_neigh *ng = rtnl_neigh_alloc();
    _cleanup_nladdr_ struct nl_addr *dst = nl_addr_build(AF_INET, &n->ip, sizeof(n->ip));
    _cleanup_nladdr_ struct nl_addr *ll = nl_addr_build(AF_LLC, n->hw_addr, 6);
    if (!ng || !dst || !ll)
        caa_oom();
    rtnl_neigh_set_ifindex(ng, ifindex);
    rtnl_neigh_set_dst(ng, dst);
    rtnl_neigh_set_lladdr(ng, ll);
    rtnl_neigh_set_state(ng, n->state);
    int r = rtnl_neigh_add(sk, ng, NLM_F_CREATE | NLM_F_REPLACE);
    rtnl_neigh_put(ng);
    if (r < 0)
        return caa_podnet_nl_error(err, r, "adding neighbour %s dev %s", ip, n->dev);
    return 0;
}
