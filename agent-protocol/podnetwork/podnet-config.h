/* The `pod-network` object of apf.json (upstream tunneler.Config): what the
 * worker learnt about the pod's network and what the pod VM needs to rebuild
 * it behind a VXLAN tunnel. Built by the adaptor at CreateVM, read by the
 * agent-protocol-forwarder inside the VM.
 *
 * JSON field names and value formats are upstream's (docs/podnetwork.md):
 *   podip, pod-hw-addr, interface, worker-node-ip, tunnel-type, routes[],
 *   neighbors[], mtu, index, vxlan-port, vxlan-id, dedicated,
 *   external-net-via-pod-vm.
 * Parsing is strict: unknown fields are ignored, everything else must have the
 * right type and form. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "podnet-text.h"

#define CAA_PODNET_MAX_ROUTES 256
#define CAA_PODNET_MAX_NEIGHBORS 256
#define CAA_PODNET_MAX_CONFIG_SIZE (1024 * 1024)
#define CAA_PODNET_DEFAULT_VXLAN_PORT 4789
#define CAA_PODNET_DEFAULT_VXLAN_MIN_ID 555000
#define CAA_PODNET_MAX_VNI 0xffffffu
#define CAA_PODNET_TUNNEL_TYPE "vxlan"

typedef struct caa_podnet_route {
    caa_podnet_prefix dst; /* 0.0.0.0/0 for the default route */
    bool has_gw;
    struct in_addr gw;
    char dev[CAA_PODNET_IFNAMSIZ];
    uint8_t protocol; /* RTPROT_STATIC, _BOOT, _DHCP or _KERNEL */
    uint8_t scope;    /* RT_SCOPE_* */
} caa_podnet_route;

typedef struct caa_podnet_neighbor {
    struct in_addr ip;
    uint8_t hw_addr[6];
    char dev[CAA_PODNET_IFNAMSIZ];
    uint16_t state; /* one NUD_* value */
} caa_podnet_neighbor;

typedef struct caa_podnet_config {
    caa_podnet_prefix pod_ip; /* the pod interface's address and prefix length */
    uint8_t pod_hw_addr[6];
    char interface[CAA_PODNET_IFNAMSIZ]; /* pod interface name, e.g. "eth0" */
    caa_podnet_prefix worker_node_ip;    /* first IPv4 prefix of the worker's host interface */
    caa_podnet_route *routes;
    size_t n_routes;
    caa_podnet_neighbor *neighbors;
    size_t n_neighbors;
    uint32_t mtu;        /* pod interface MTU; 0 = unknown (the VM then uses 1450) */
    uint32_t index;      /* VNI - vxlan-min-id */
    uint16_t vxlan_port; /* UDP destination port, 1..65535 */
    uint32_t vxlan_id;   /* VNI, 0..2^24-1 */
    bool dedicated;      /* worker uses a dedicated (non-default-route) host interface */
    bool external_net_via_pod_vm;
} caa_podnet_config;

caa_podnet_config *caa_podnet_config_new(void);
caa_podnet_config *caa_podnet_config_free(caa_podnet_config *cfg);
CAA_DEFINE_CLEANUP(caa_podnet_config *, caa_podnet_config_free)
#define _cleanup_podnet_config_ _cleanup_(caa_podnet_config_freep)

/* Appends a copy; -E2BIG beyond the list bounds. */
int caa_podnet_config_add_route(caa_podnet_config *cfg, const caa_podnet_route *r, caa_error **err);
int caa_podnet_config_add_neighbor(caa_podnet_config *cfg, const caa_podnet_neighbor *n, caa_error **err);

/* Checks a config built in code: names, ranges, list bounds. -EINVAL with the field named. */
int caa_podnet_config_validate(const caa_podnet_config *cfg, caa_error **err);

/* A new JSON object (caller owns the reference) in upstream's layout. */
json_t *caa_podnet_config_to_json(const caa_podnet_config *cfg);
/* Reads a `pod-network` object. */
int caa_podnet_config_from_json(const json_t *obj, caa_podnet_config **ret, caa_error **err);
/* Parses a JSON document holding one `pod-network` object (duplicate keys rejected). */
int caa_podnet_config_parse(const char *data, size_t len, caa_podnet_config **ret, caa_error **err);
