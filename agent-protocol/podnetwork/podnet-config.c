/* The pod-network config object: building, validating and strict parsing. */
#include <errno.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <string.h>

#include "podnet-config.h"
#include "podnet-error.h"
#include "xalloc.h"

#define QUOTE_MAX 64

caa_podnet_config *caa_podnet_config_new(void)
{
    caa_podnet_config *cfg = xnew0(caa_podnet_config, 1);
    cfg->vxlan_port = CAA_PODNET_DEFAULT_VXLAN_PORT;
    return cfg;
}

caa_podnet_config *caa_podnet_config_free(caa_podnet_config *cfg)
{
    if (!cfg)
        return NULL;
    free(cfg->routes);
    free(cfg->neighbors);
    free(cfg);
    return NULL;
}

int caa_podnet_config_add_route(caa_podnet_config *cfg, const caa_podnet_route *r, caa_error **err)
{
    if (cfg->n_routes >= CAA_PODNET_MAX_ROUTES)
        return caa_error_set(err, -E2BIG, "more than %d routes", CAA_PODNET_MAX_ROUTES);
    /* Grow in powers of two; the bound above keeps this small. */
    if ((cfg->n_routes & (cfg->n_routes - 1)) == 0)
        cfg->routes = xrealloc(cfg->routes, sizeof(*cfg->routes) * (cfg->n_routes ? cfg->n_routes * 2 : 1));
    cfg->routes[cfg->n_routes++] = *r;
    return 0;
}

int caa_podnet_config_add_neighbor(caa_podnet_config *cfg, const caa_podnet_neighbor *n, caa_error **err)
{
    if (cfg->n_neighbors >= CAA_PODNET_MAX_NEIGHBORS)
        return caa_error_set(err, -E2BIG, "more than %d neighbors", CAA_PODNET_MAX_NEIGHBORS);
    if ((cfg->n_neighbors & (cfg->n_neighbors - 1)) == 0)
        cfg->neighbors =
            xrealloc(cfg->neighbors, sizeof(*cfg->neighbors) * (cfg->n_neighbors ? cfg->n_neighbors * 2 : 1));
    cfg->neighbors[cfg->n_neighbors++] = *n;
    return 0;
}

int caa_podnet_config_validate(const caa_podnet_config *cfg, caa_error **err)
{
    if (!caa_podnet_ifname_valid(cfg->interface))
        return caa_error_set(err, -EINVAL, "pod-network: interface: invalid interface name \"%.*s\"",
                             QUOTE_MAX, cfg->interface);
    if (cfg->pod_ip.len > 32 || cfg->worker_node_ip.len > 32)
        return caa_error_set(err, -EINVAL, "pod-network: prefix length above 32");
    if (cfg->mtu != 0 && (cfg->mtu < 68 || cfg->mtu > 65535))
        return caa_error_set(err, -EINVAL, "pod-network: mtu: %u out of range 68..65535", cfg->mtu);
    if (cfg->vxlan_port == 0)
        return caa_error_set(err, -EINVAL, "pod-network: vxlan-port: must be 1..65535");
    if (cfg->vxlan_id > CAA_PODNET_MAX_VNI)
        return caa_error_set(err, -EINVAL, "pod-network: vxlan-id: %u above %u", cfg->vxlan_id,
                             CAA_PODNET_MAX_VNI);
    if (cfg->n_routes > CAA_PODNET_MAX_ROUTES)
        return caa_error_set(err, -E2BIG, "pod-network: routes: more than %d", CAA_PODNET_MAX_ROUTES);
    if (cfg->n_neighbors > CAA_PODNET_MAX_NEIGHBORS)
        return caa_error_set(err, -E2BIG, "pod-network: neighbors: more than %d", CAA_PODNET_MAX_NEIGHBORS);
    for (size_t i = 0; i < cfg->n_routes; i++) {
        const caa_podnet_route *r = &cfg->routes[i];
        if (!caa_podnet_ifname_valid(r->dev))
            return caa_error_set(err, -EINVAL,
                                 "pod-network: routes[%zu].dev: invalid interface name \"%.*s\"", i,
                                 QUOTE_MAX, r->dev);
        if (r->dst.len > 32)
            return caa_error_set(err, -EINVAL, "pod-network: routes[%zu].dst: prefix length above 32", i);
        if (!caa_podnet_route_protocol_name(r->protocol))
            return caa_error_set(err, -EINVAL, "pod-network: routes[%zu].protocol: unsupported value %u", i,
                                 r->protocol);
        if (!caa_podnet_route_scope_name(r->scope))
            return caa_error_set(err, -EINVAL, "pod-network: routes[%zu].scope: unsupported value %u", i,
                                 r->scope);
    }
    for (size_t i = 0; i < cfg->n_neighbors; i++) {
        const caa_podnet_neighbor *n = &cfg->neighbors[i];
        if (!caa_podnet_ifname_valid(n->dev))
            return caa_error_set(err, -EINVAL,
                                 "pod-network: neighbors[%zu].dev: invalid interface name \"%.*s\"", i,
                                 QUOTE_MAX, n->dev);
        if (!caa_podnet_neigh_state_name(n->state))
            return caa_error_set(err, -EINVAL, "pod-network: neighbors[%zu].state: unsupported value %u", i,
                                 n->state);
    }
    return 0;
}

/* ---- building ---- */

static json_t *prefix_json(const caa_podnet_prefix *p)
{
    char buf[CAA_PODNET_PREFIX_STRLEN];
    caa_podnet_prefix_format(p, buf);
    return json_string(buf);
}

static json_t *addr_json(struct in_addr a)
{
    char buf[CAA_PODNET_ADDR_STRLEN];
    caa_podnet_addr_format(a, buf);
    return json_string(buf);
}

static json_t *mac_json(const uint8_t mac[6])
{
    char buf[CAA_PODNET_MAC_STRLEN];
    caa_podnet_mac_format(mac, buf);
    return json_string(buf);
}

static json_t *route_json(const caa_podnet_route *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "dst", prefix_json(&r->dst));
    /* Go marshals the zero netip.Addr as "" (no gateway). */
    json_object_set_new(o, "gw", r->has_gw ? addr_json(r->gw) : json_string(""));
    json_object_set_new(o, "dev", json_string(r->dev));
    const char *proto = caa_podnet_route_protocol_name(r->protocol);
    const char *scope = caa_podnet_route_scope_name(r->scope);
    json_object_set_new(o, "protocol", json_string(proto ? proto : "boot"));
    json_object_set_new(o, "scope", json_string(scope ? scope : "universe"));
    return o;
}

static json_t *neighbor_json(const caa_podnet_neighbor *n)
{
    json_t *o = json_object();
    const char *state = caa_podnet_neigh_state_name(n->state);
    json_object_set_new(o, "ip", addr_json(n->ip));
    json_object_set_new(o, "hw-addr", mac_json(n->hw_addr));
    json_object_set_new(o, "dev", json_string(n->dev));
    json_object_set_new(o, "state", json_string(state ? state : "permanent"));
    return o;
}

json_t *caa_podnet_config_to_json(const caa_podnet_config *cfg)
{
    json_t *o = json_object();
    json_object_set_new(o, "podip", prefix_json(&cfg->pod_ip));
    json_object_set_new(o, "pod-hw-addr", mac_json(cfg->pod_hw_addr));
    json_object_set_new(o, "interface", json_string(cfg->interface));
    json_object_set_new(o, "worker-node-ip", prefix_json(&cfg->worker_node_ip));
    json_object_set_new(o, "tunnel-type", json_string(CAA_PODNET_TUNNEL_TYPE));
    json_t *routes = json_array();
    for (size_t i = 0; i < cfg->n_routes; i++)
        json_array_append_new(routes, route_json(&cfg->routes[i]));
    json_object_set_new(o, "routes", routes);
    json_t *neighbors = json_array();
    for (size_t i = 0; i < cfg->n_neighbors; i++)
        json_array_append_new(neighbors, neighbor_json(&cfg->neighbors[i]));
    json_object_set_new(o, "neighbors", neighbors);
    json_object_set_new(o, "mtu", json_integer(cfg->mtu));
    json_object_set_new(o, "index", json_integer(cfg->index));
    json_object_set_new(o, "vxlan-port", json_integer(cfg->vxlan_port));
    json_object_set_new(o, "vxlan-id", json_integer(cfg->vxlan_id));
    json_object_set_new(o, "dedicated", json_boolean(cfg->dedicated));
    json_object_set_new(o, "external-net-via-pod-vm", json_boolean(cfg->external_net_via_pod_vm));
    return o;
}

/* ---- parsing ---- */

/* `what` names the field in messages, e.g. "routes[2].dst". */
static int get_string(const json_t *o, const char *key, const char *what, bool required, const char **ret,
                      caa_error **err)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        if (required)
            return caa_error_set(err, -EINVAL, "pod-network: %s: missing", what);
        *ret = NULL;
        return 0;
    }
    if (!json_is_string(v))
        return caa_error_set(err, -EINVAL, "pod-network: %s: expected a string", what);
    *ret = json_string_value(v);
    return 0;
}

static int get_uint(const json_t *o, const char *key, const char *what, json_int_t max, bool *ret_present,
                    json_int_t *ret, caa_error **err)
{
    json_t *v = json_object_get(o, key);
    *ret_present = v != NULL;
    if (!v)
        return 0;
    if (!json_is_integer(v))
        return caa_error_set(err, -EINVAL, "pod-network: %s: expected an integer", what);
    json_int_t n = json_integer_value(v);
    if (n < 0 || n > max)
        return caa_error_set(err, -EINVAL, "pod-network: %s: %lld out of range 0..%lld", what, (long long)n,
                             (long long)max);
    *ret = n;
    return 0;
}

static int get_bool(const json_t *o, const char *key, bool *ret, caa_error **err)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        *ret = false;
        return 0;
    }
    if (!json_is_boolean(v))
        return caa_error_set(err, -EINVAL, "pod-network: %s: expected a boolean", key);
    *ret = json_is_true(v);
    return 0;
}

static int get_ifname(const json_t *o, const char *key, const char *what, char out[CAA_PODNET_IFNAMSIZ],
                      caa_error **err)
{
    const char *s = NULL;
    int r = get_string(o, key, what, true, &s, err);
    if (r < 0)
        return r;
    if (!caa_podnet_ifname_valid(s))
        return caa_error_set(err, -EINVAL,
                             "pod-network: %s: invalid interface name \"%.*s\" (1-15 printable characters, "
                             "no '/', ':' or spaces)",
                             what, QUOTE_MAX, s);
    strcpy(out, s);
    return 0;
}

static int get_prefix(const json_t *o, const char *key, const char *what, caa_podnet_prefix *ret,
                      caa_error **err)
{
    const char *s = NULL;
    int r = get_string(o, key, what, true, &s, err);
    if (r < 0)
        return r;
    r = caa_podnet_prefix_parse(s, ret, err);
    return r < 0 ? PODNET_PREFIXED(r, err, "pod-network: %s", what) : 0;
}

static int get_mac(const json_t *o, const char *key, const char *what, uint8_t ret[6], caa_error **err)
{
    const char *s = NULL;
    int r = get_string(o, key, what, true, &s, err);
    if (r < 0)
        return r;
    r = caa_podnet_mac_parse(s, ret, err);
    return r < 0 ? PODNET_PREFIXED(r, err, "pod-network: %s", what) : 0;
}

/* Go marshals a nil slice as null: accept null and a missing key as empty. */
static int get_list(const json_t *o, const char *key, size_t max, const json_t **ret, caa_error **err)
{
    json_t *v = json_object_get(o, key);
    *ret = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_array(v))
        return caa_error_set(err, -EINVAL, "pod-network: %s: expected an array", key);
    if (json_array_size(v) > max)
        return caa_error_set(err, -E2BIG, "pod-network: %s: %zu entries, at most %zu allowed", key,
                             json_array_size(v), max);
    *ret = v;
    return 0;
}

static int parse_route(const json_t *o, size_t i, caa_podnet_route *r, caa_error **err)
{
    char what[48];
    const char *s = NULL;
    int ret;
    memset(r, 0, sizeof(*r));
    if (!json_is_object(o))
        return caa_error_set(err, -EINVAL, "pod-network: routes[%zu]: expected an object", i);
    snprintf(what, sizeof(what), "routes[%zu].dst", i);
    if ((ret = get_prefix(o, "dst", what, &r->dst, err)) < 0)
        return ret;
    snprintf(what, sizeof(what), "routes[%zu].gw", i);
    if ((ret = get_string(o, "gw", what, false, &s, err)) < 0)
        return ret;
    if (s && *s) {
        if ((ret = caa_podnet_addr_parse(s, &r->gw, err)) < 0)
            return PODNET_PREFIXED(ret, err, "pod-network: %s", what);
        r->has_gw = true;
    }
    snprintf(what, sizeof(what), "routes[%zu].dev", i);
    if ((ret = get_ifname(o, "dev", what, r->dev, err)) < 0)
        return ret;
    snprintf(what, sizeof(what), "routes[%zu].protocol", i);
    if ((ret = get_string(o, "protocol", what, false, &s, err)) < 0)
        return ret;
    r->protocol = RTPROT_BOOT;
    if (s && caa_podnet_route_protocol_parse(s, &r->protocol) < 0)
        return caa_error_set(err, -EINVAL, "pod-network: %s: \"%.*s\" is not static, boot, dhcp or kernel",
                             what, QUOTE_MAX, s);
    snprintf(what, sizeof(what), "routes[%zu].scope", i);
    if ((ret = get_string(o, "scope", what, false, &s, err)) < 0)
        return ret;
    r->scope = RT_SCOPE_UNIVERSE;
    if (s && caa_podnet_route_scope_parse(s, &r->scope) < 0)
        return caa_error_set(err, -EINVAL, "pod-network: %s: unknown scope \"%.*s\"", what, QUOTE_MAX, s);
    return 0;
}

static int parse_neighbor(const json_t *o, size_t i, caa_podnet_neighbor *n, caa_error **err)
{
    char what[48];
    const char *s = NULL;
    int ret;
    memset(n, 0, sizeof(*n));
    if (!json_is_object(o))
        return caa_error_set(err, -EINVAL, "pod-network: neighbors[%zu]: expected an object", i);
    snprintf(what, sizeof(what), "neighbors[%zu].ip", i);
    if ((ret = get_string(o, "ip", what, true, &s, err)) < 0)
        return ret;
    if ((ret = caa_podnet_addr_parse(s, &n->ip, err)) < 0)
        return PODNET_PREFIXED(ret, err, "pod-network: %s", what);
    snprintf(what, sizeof(what), "neighbors[%zu].hw-addr", i);
    if ((ret = get_mac(o, "hw-addr", what, n->hw_addr, err)) < 0)
        return ret;
    snprintf(what, sizeof(what), "neighbors[%zu].dev", i);
    if ((ret = get_ifname(o, "dev", what, n->dev, err)) < 0)
        return ret;
    snprintf(what, sizeof(what), "neighbors[%zu].state", i);
    if ((ret = get_string(o, "state", what, false, &s, err)) < 0)
        return ret;
    n->state = NUD_PERMANENT;
    if (s && caa_podnet_neigh_state_parse(s, &n->state) < 0)
        return caa_error_set(err, -EINVAL, "pod-network: %s: unknown state \"%.*s\"", what, QUOTE_MAX, s);
    return 0;
}

int caa_podnet_config_from_json(const json_t *obj, caa_podnet_config **ret, caa_error **err)
{
    _cleanup_podnet_config_ caa_podnet_config *cfg = caa_podnet_config_new();
    const json_t *list;
    const char *s = NULL;
    json_int_t n;
    bool present;
    int r;

    if (!json_is_object(obj))
        return caa_error_set(err, -EINVAL, "pod-network: expected a JSON object");
    if ((r = get_prefix(obj, "podip", "podip", &cfg->pod_ip, err)) < 0 ||
        (r = get_mac(obj, "pod-hw-addr", "pod-hw-addr", cfg->pod_hw_addr, err)) < 0 ||
        (r = get_ifname(obj, "interface", "interface", cfg->interface, err)) < 0 ||
        (r = get_prefix(obj, "worker-node-ip", "worker-node-ip", &cfg->worker_node_ip, err)) < 0 ||
        (r = get_string(obj, "tunnel-type", "tunnel-type", true, &s, err)) < 0)
        return r;
    if (strcmp(s, CAA_PODNET_TUNNEL_TYPE) != 0)
        return caa_error_set(err, -EINVAL,
                             "pod-network: tunnel-type: \"%.*s\" is not supported (only \"vxlan\")",
                             QUOTE_MAX, s);

    if ((r = get_list(obj, "routes", CAA_PODNET_MAX_ROUTES, &list, err)) < 0)
        return r;
    for (size_t i = 0; list && i < json_array_size(list); i++) {
        caa_podnet_route route;
        if ((r = parse_route(json_array_get(list, i), i, &route, err)) < 0 ||
            (r = caa_podnet_config_add_route(cfg, &route, err)) < 0)
            return r;
    }
    if ((r = get_list(obj, "neighbors", CAA_PODNET_MAX_NEIGHBORS, &list, err)) < 0)
        return r;
    for (size_t i = 0; list && i < json_array_size(list); i++) {
        caa_podnet_neighbor neigh;
        if ((r = parse_neighbor(json_array_get(list, i), i, &neigh, err)) < 0 ||
            (r = caa_podnet_config_add_neighbor(cfg, &neigh, err)) < 0)
            return r;
    }

    if ((r = get_uint(obj, "mtu", "mtu", 65535, &present, &n, err)) < 0)
        return r;
    cfg->mtu = present ? (uint32_t)n : 0;
    if ((r = get_uint(obj, "index", "index", UINT32_MAX, &present, &n, err)) < 0)
        return r;
    cfg->index = present ? (uint32_t)n : 0;
    if ((r = get_uint(obj, "vxlan-port", "vxlan-port", 65535, &present, &n, err)) < 0)
        return r;
    cfg->vxlan_port = present ? (uint16_t)n : CAA_PODNET_DEFAULT_VXLAN_PORT;
    if ((r = get_uint(obj, "vxlan-id", "vxlan-id", CAA_PODNET_MAX_VNI, &present, &n, err)) < 0)
        return r;
    if (!present)
        return caa_error_set(err, -EINVAL, "pod-network: vxlan-id: missing");
    cfg->vxlan_id = (uint32_t)n;
    if ((r = get_bool(obj, "dedicated", &cfg->dedicated, err)) < 0 ||
        (r = get_bool(obj, "external-net-via-pod-vm", &cfg->external_net_via_pod_vm, err)) < 0)
        return r;

    if ((r = caa_podnet_config_validate(cfg, err)) < 0)
        return r;
    *ret = TAKE_PTR(cfg);
    return 0;
}

int caa_podnet_config_parse(const char *data, size_t len, caa_podnet_config **ret, caa_error **err)
{
    json_error_t jerr;
    if (len > CAA_PODNET_MAX_CONFIG_SIZE)
        return caa_error_set(err, -E2BIG, "pod-network: document of %zu bytes exceeds %d", len,
                             CAA_PODNET_MAX_CONFIG_SIZE);
    json_auto_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return caa_error_set(err, -EINVAL, "pod-network: invalid JSON at line %d column %d: %s", jerr.line,
                             jerr.column, jerr.text);
    return caa_podnet_config_from_json(root, ret, err);
}
