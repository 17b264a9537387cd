/* Strict text forms of the pod-network config values (see podnet-text.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <string.h>

#include "podnet-text.h"

#include "parse.h"

/* Longest text echoed back in an error message: the input may be hostile. */
#define QUOTE_MAX 64

/* Parses 1-3 decimal digits without a leading zero; advances *p. -1 on error. */
static int parse_small_decimal(const char **p, int max)
{
    const char *s = *p;
    int v = 0, n = 0;
    while (s[n] >= '0' && s[n] <= '9' && n < 4) {
        v = v * 10 + (s[n] - '0');
        n++;
    }
    if (n == 0 || n > 3 || (n > 1 && s[0] == '0') || v > max)
        return -1;
    *p = s + n;
    return v;
}

static int addr_parse_prefix_of(const char **p, struct in_addr *ret)
{
    uint32_t host = 0;
    for (int i = 0; i < 4; i++) {
        if (i > 0) {
            if (**p != '.')
                return -1;
            (*p)++;
        }
        int v = parse_small_decimal(p, 255);
        if (v < 0)
            return -1;
        host = (host << 8) | (uint32_t)v;
    }
    ret->s_addr = htonl(host);
    return 0;
}

int caa_podnet_addr_parse(const char *s, struct in_addr *ret, caa_error **err)
{
    const char *p = s;
    struct in_addr a;
    if (!s || addr_parse_prefix_of(&p, &a) < 0 || *p != '\0')
        return caa_error_set(err, -EINVAL, "invalid IPv4 address \"%.*s\"", QUOTE_MAX, s ? s : "");
    *ret = a;
    return 0;
}

void caa_podnet_addr_format(struct in_addr a, char buf[static CAA_PODNET_ADDR_STRLEN])
{
    inet_ntop(AF_INET, &a, buf, CAA_PODNET_ADDR_STRLEN);
}

int caa_podnet_prefix_parse(const char *s, caa_podnet_prefix *ret, caa_error **err)
{
    const char *p = s;
    struct in_addr a;
    int len;
    if (!s || addr_parse_prefix_of(&p, &a) < 0 || *p != '/')
        goto bad;
    p++;
    len = parse_small_decimal(&p, 32);
    if (len < 0 || *p != '\0')
        goto bad;
    ret->addr = a;
    ret->len = (uint8_t)len;
    return 0;
bad:
    return caa_error_set(err, -EINVAL, "invalid IPv4 prefix \"%.*s\"", QUOTE_MAX, s ? s : "");
}

void caa_podnet_prefix_format(const caa_podnet_prefix *p, char buf[static CAA_PODNET_PREFIX_STRLEN])
{
    char a[CAA_PODNET_ADDR_STRLEN];
    caa_podnet_addr_format(p->addr, a);
    snprintf(buf, CAA_PODNET_PREFIX_STRLEN, "%s/%u", a, (unsigned)p->len);
}

struct in_addr caa_podnet_prefix_network(const caa_podnet_prefix *p)
{
    uint32_t mask = p->len == 0 ? 0 : 0xffffffffu << (32 - p->len);
    return (struct in_addr){.s_addr = htonl(ntohl(p->addr.s_addr) & mask)};
}

int caa_podnet_mac_parse(const char *s, uint8_t ret[static 6], caa_error **err)
{
    uint8_t mac[6];
    if (!s || strlen(s) != 17)
        goto bad;
    for (int i = 0; i < 6; i++) {
        const char *g = s + 3 * i;
        int hi = caa_hex_digit_value(g[0]), lo = caa_hex_digit_value(g[1]);
        if (hi < 0 || lo < 0)
            goto bad;
        /* One separator kind throughout, like Go's net.ParseMAC. */
        if (i < 5 && (g[2] != s[2] || (g[2] != ':' && g[2] != '-')))
            goto bad;
        mac[i] = (uint8_t)(hi << 4 | lo);
    }
    memcpy(ret, mac, 6);
    return 0;
bad:
    return caa_error_set(err, -EINVAL, "invalid MAC address \"%.*s\"", QUOTE_MAX, s ? s : "");
}

void caa_podnet_mac_format(const uint8_t mac[static 6], char buf[static CAA_PODNET_MAC_STRLEN])
{
    snprintf(buf, CAA_PODNET_MAC_STRLEN, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
             mac[4], mac[5]);
}

bool caa_podnet_ifname_valid(const char *s)
{
    if (!s || !*s || strlen(s) >= CAA_PODNET_IFNAMSIZ || !strcmp(s, ".") || !strcmp(s, ".."))
        return false;
    for (const char *p = s; *p; p++)
        if (*p == '/' || *p == ':' || *p <= ' ' || *p >= 0x7f)
            return false;
    return true;
}

typedef struct name_value {
    const char *name;
    unsigned value;
} name_value;

static const name_value route_protocols[] = {
    {"kernel", RTPROT_KERNEL},
    {"boot", RTPROT_BOOT},
    {"static", RTPROT_STATIC},
    {"dhcp", RTPROT_DHCP},
};

static const name_value route_scopes[] = {
    {"universe", RT_SCOPE_UNIVERSE}, {"site", RT_SCOPE_SITE},       {"link", RT_SCOPE_LINK},
    {"host", RT_SCOPE_HOST},         {"nowhere", RT_SCOPE_NOWHERE},
};

static const name_value neigh_states[] = {
    {"none", NUD_NONE},     {"incomplete", NUD_INCOMPLETE}, {"reachable", NUD_REACHABLE},
    {"stale", NUD_STALE},   {"delay", NUD_DELAY},           {"probe", NUD_PROBE},
    {"failed", NUD_FAILED}, {"noarp", NUD_NOARP},           {"permanent", NUD_PERMANENT},
};

static const char *nv_name(const name_value *t, size_t n, unsigned v)
{
    for (size_t i = 0; i < n; i++)
        if (t[i].value == v)
            return t[i].name;
    return NULL;
}

static int nv_parse(const name_value *t, size_t n, const char *s, unsigned *ret)
{
    for (size_t i = 0; s && i < n; i++)
        if (!strcmp(t[i].name, s)) {
            *ret = t[i].value;
            return 0;
        }
    return -EINVAL;
}

const char *caa_podnet_route_protocol_name(uint8_t protocol)
{
    return nv_name(route_protocols, CAA_ARRAY_SIZE(route_protocols), protocol);
}

int caa_podnet_route_protocol_parse(const char *s, uint8_t *ret)
{
    unsigned v;
    int r = nv_parse(route_protocols, CAA_ARRAY_SIZE(route_protocols), s, &v);
    if (r == 0)
        *ret = (uint8_t)v;
    return r;
}

const char *caa_podnet_route_scope_name(uint8_t scope)
{
    return nv_name(route_scopes, CAA_ARRAY_SIZE(route_scopes), scope);
}

int caa_podnet_route_scope_parse(const char *s, uint8_t *ret)
{
    unsigned v;
    int r = nv_parse(route_scopes, CAA_ARRAY_SIZE(route_scopes), s, &v);
    if (r == 0)
        *ret = (uint8_t)v;
    return r;
}

const char *caa_podnet_neigh_state_name(uint16_t state)
{
    return nv_name(neigh_states, CAA_ARRAY_SIZE(neigh_states), state);
}

int caa_podnet_neigh_state_parse(const char *s, uint16_t *ret)
{
    unsigned v;
    int r = nv_parse(neigh_states, CAA_ARRAY_SIZE(neigh_states), s, &v);
    if (r == 0)
        *ret = (uint16_t)v;
    return r;
}
