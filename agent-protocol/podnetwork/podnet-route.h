/* Reading and writing IPv4 routes, addresses and neighbours through libnl
 * (for the worker's inspection of a pod and the VM's rebuild of it). */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>

#include "error.h"
#include "podnet-config.h"

struct nl_sock;

typedef struct caa_podnet_default_route {
    int ifindex;
    bool has_gw;
    struct in_addr gw;
} caa_podnet_default_route;

/* The IPv4 default route of the main table (lowest metric wins). -ENOENT when there is none. */
int caa_podnet_default_route_get(struct nl_sock *sk, caa_podnet_default_route *ret, caa_error **err);
/* The same, restricted to routes through ifindex (0: any device). */
int caa_podnet_default_route_of(struct nl_sock *sk, int ifindex, caa_podnet_default_route *ret,
                                caa_error **err);
/* Deletes every IPv4 default route of the main table. */
int caa_podnet_default_routes_delete(struct nl_sock *sk, caa_error **err);

/* The IPv4 addresses of ifindex (secondary addresses after primaries). *ret is
 * xmalloc'ed (NULL when none); returns the count. */
int caa_podnet_addrs_get(struct nl_sock *sk, int ifindex, caa_podnet_prefix **ret, caa_error **err);

/* Appends to cfg the main-table IPv4 unicast routes on ifindex whose protocol
 * is static, boot, dhcp or kernel; dev is recorded as ifname. */
int caa_podnet_routes_collect(struct nl_sock *sk, int ifindex, const char *ifname, caa_podnet_config *cfg,
                              caa_error **err);
/* Appends to cfg the permanent IPv4 neighbours on ifindex. */
int caa_podnet_neighbors_collect(struct nl_sock *sk, int ifindex, const char *ifname, caa_podnet_config *cfg,
                                 caa_error **err);

/* Adds an address; noprefixroute keeps the kernel from adding the connected subnet route. */
int caa_podnet_addr_add(struct nl_sock *sk, int ifindex, const caa_podnet_prefix *p, bool noprefixroute,
                        caa_error **err);
/* Adds (or replaces) a route in the main table; the device is looked up by name through sk. */
int caa_podnet_route_add(struct nl_sock *sk, const caa_podnet_route *r, caa_error **err);
/* Adds (or replaces) a neighbour entry. */
int caa_podnet_neighbor_add(struct nl_sock *sk, const caa_podnet_neighbor *n, caa_error **err);
