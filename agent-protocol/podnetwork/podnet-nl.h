/* libnl-route helpers for the pod network: error translation, links, the
 * VXLAN device, and the tc "mirred" bridge between two devices. All functions
 * act through the socket given, i.e. in that socket's network namespace. */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"

struct nl_sock;
struct rtnl_link;

/* Translates a libnl error code (negative NLE_*) into an errno class and a
 * message "<what>: <libnl text>". Permission errors name CAP_NET_ADMIN. */
int caa_podnet_nl_error(caa_error **err, int nlerr, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Installs the error tracking caa_podnet_nl_error() uses (kernel errno and
 * extended-ack text); caa_podnet_nl_open*() call it on every socket. */
void caa_podnet_nl_track(struct nl_sock *sk);

/* -EPERM with a clear message when the calling thread lacks CAP_NET_ADMIN. */
int caa_podnet_require_net_admin(caa_error **err);

/* Looks a link up by name; -ENOENT when there is none. Caller puts the link (rtnl_link_put). */
int caa_podnet_link_get(struct nl_sock *sk, const char *name, struct rtnl_link **ret, caa_error **err);
/* Returns the ifindex of name (> 0), or -ENOENT. */
int caa_podnet_link_ifindex(struct nl_sock *sk, const char *name, caa_error **err);
int caa_podnet_link_set_up(struct nl_sock *sk, int ifindex, caa_error **err);
/* Renames a link (which must be down) in sk's namespace. */
int caa_podnet_link_rename(struct nl_sock *sk, const char *from, const char *to, caa_error **err);
/* Moves a device into the network namespace netns_fd (its addresses stay behind). */
int caa_podnet_link_set_netns(struct nl_sock *sk, int ifindex, int netns_fd, caa_error **err);
/* Deletes a link by name; a missing link is success. */
int caa_podnet_link_delete(struct nl_sock *sk, const char *name, caa_error **err);

typedef struct caa_podnet_vxlan_spec {
    const char *name;       /* final device name */
    uint32_t vni;           /* 0..2^24-1 */
    struct in_addr remote;  /* unicast peer */
    uint16_t port;          /* UDP destination port */
    int netns_fd;           /* namespace to place the device in; -1: the socket's own */
    const uint8_t *hw_addr; /* 6 bytes, or NULL for a random MAC */
    uint32_t mtu;           /* 0: the kernel's default */
} caa_podnet_vxlan_spec;

/* Creates a VXLAN device (nolearning) through sk. The device's UDP socket
 * lives in sk's namespace even when the device is placed in netns_fd: this is
 * what lets the tunnel ride the host's (or VM's) underlay while the device sits
 * in the pod's namespace. -EEXIST when the kernel reports a clash. */
int caa_podnet_vxlan_create(struct nl_sock *sk, const caa_podnet_vxlan_spec *spec, caa_error **err);
/* Reads back the VNI of a VXLAN device; -ENOENT when missing, -EINVAL when not a VXLAN device. */
int caa_podnet_vxlan_get_id(struct nl_sock *sk, const char *name, uint32_t *ret_vni, caa_error **err);

/* Priority of the u32 filters this module installs (so teardown deletes only ours). */
#define CAA_PODNET_TC_PRIO 0xcaa

/* Redirects every frame arriving on from_ifindex to the egress of to_ifindex:
 * an ingress qdisc (an existing ingress or clsact qdisc is reused) plus a u32
 * match-all filter with a mirred egress-redirect action (verdict STOLEN). */
int caa_podnet_tc_redirect_add(struct nl_sock *sk, int from_ifindex, int to_ifindex, caa_error **err);
/* Removes the filter added above and then the ingress qdisc when no filter is
 * left on it. Missing pieces are success. */
int caa_podnet_tc_redirect_remove(struct nl_sock *sk, int ifindex, caa_error **err);
