/* Connection-tracking exemption for the tunnel's UDP packets.
 *
 * VXLAN packets to and from the peer must not be tracked by conntrack (it
 * costs per packet and, on busy nodes, fills the table). Upstream adds raw-table
 * NOTRACK rules with iptables; here the same rules go into a dedicated nftables
 * table through libnftables (JSON commands built with jansson):
 *
 *   table ip peerpod {
 *     chain prerouting { type filter hook prerouting priority raw; policy accept;
 *       ip saddr <remote> udp dport <port> notrack comment "peerpod [vni:<id>]" }
 *     chain output { type filter hook output priority raw; policy accept;
 *       ip daddr <remote> udp dport <port> notrack comment "peerpod [vni:<id>]" }
 *   }
 *
 * Rules act on the calling thread's network namespace. The table is removed
 * with its last rule. See docs/podnetwork.md for why nftables. */
#pragma once

#include <netinet/in.h>
#include <stdint.h>

#include "error.h"

#define CAA_PODNET_NFT_TABLE "peerpod"

/* Adds (or replaces) the two rules of a tunnel. */
int caa_podnet_notrack_add(uint32_t vni, struct in_addr remote, uint16_t port, caa_error **err);
/* Removes the rules of a tunnel; nothing to remove is success. */
int caa_podnet_notrack_remove(uint32_t vni, caa_error **err);
