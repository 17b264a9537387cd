/* Text forms used by the pod-network config (upstream's tunneler.Config):
 * IPv4 addresses and prefixes in Go netip syntax, MAC addresses, interface
 * names, and the netlink names of route protocols, route scopes and
 * neighbour states. Only IPv4 is supported, like upstream. */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"

#define CAA_PODNET_IFNAMSIZ 16 /* IFNAMSIZ: at most 15 characters plus NUL */
#define CAA_PODNET_ADDR_STRLEN 16
#define CAA_PODNET_PREFIX_STRLEN 20
#define CAA_PODNET_MAC_STRLEN 18

typedef struct caa_podnet_prefix {
    struct in_addr addr; /* network byte order; host bits may be set (an interface address) */
    uint8_t len;         /* 0..32 */
} caa_podnet_prefix;

/* Dotted quad, four decimal fields 0..255 without leading zeros (Go netip). -EINVAL otherwise. */
int caa_podnet_addr_parse(const char *s, struct in_addr *ret, caa_error **err);
void caa_podnet_addr_format(struct in_addr a, char buf[static CAA_PODNET_ADDR_STRLEN]);
/* "a.b.c.d/n" with n in 0..32 written without leading zeros. */
int caa_podnet_prefix_parse(const char *s, caa_podnet_prefix *ret, caa_error **err);
void caa_podnet_prefix_format(const caa_podnet_prefix *p, char buf[static CAA_PODNET_PREFIX_STRLEN]);
/* The network address of p (host bits cleared). */
struct in_addr caa_podnet_prefix_network(const caa_podnet_prefix *p);
/* Six hex octets separated by ':' or '-' (either case). */
int caa_podnet_mac_parse(const char *s, uint8_t ret[static 6], caa_error **err);
/* Lower-case, colon-separated (Go net.HardwareAddr.String). */
void caa_podnet_mac_format(const uint8_t mac[static 6], char buf[static CAA_PODNET_MAC_STRLEN]);
/* The kernel's rule for device names (dev_valid_name) plus printable ASCII only. */
bool caa_podnet_ifname_valid(const char *s);

/* RTPROT_STATIC/BOOT/DHCP/KERNEL <-> "static"/"boot"/"dhcp"/"kernel"; NULL or -EINVAL for others. */
const char *caa_podnet_route_protocol_name(uint8_t protocol);
int caa_podnet_route_protocol_parse(const char *s, uint8_t *ret);
/* RT_SCOPE_* <-> "universe"/"site"/"link"/"host"/"nowhere". */
const char *caa_podnet_route_scope_name(uint8_t scope);
int caa_podnet_route_scope_parse(const char *s, uint8_t *ret);
/* A single NUD_* state <-> "none"/"incomplete"/.../"permanent". */
const char *caa_podnet_neigh_state_name(uint16_t state);
int caa_podnet_neigh_state_parse(const char *s, uint16_t *ret);
