/* NOTRACK rules for the tunnel's UDP through libnftables JSON commands. */
#define LOG_COMPONENT "podnetwork/notrack"
#include <errno.h>
#include <jansson.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "podnet-error.h"
#include "podnet-notrack.h"
#include "podnet-text.h"
#include "xalloc.h"

/* The raw-table priority: before conntrack (-200) sees the packet. */
#define NFT_PRIO_RAW -300

static const char *const chains[][2] = {
    /* {chain, hook} */
    {"prerouting", "prerouting"},
    {"output", "output"},
};

CAA_DEFINE_CLEANUP(struct nft_ctx *, nft_ctx_free)

static void comment_for(uint32_t vni, char buf[40])
{
    snprintf(buf, 40, "peerpod [vni:%u]", vni);
}

/* Runs one JSON batch. On success *ret_output (if given) gets a copy of the
 * JSON output. -ENOENT when nftables reports a missing table. */
static int nft_run(json_t *cmds, char **ret_output, caa_error **err)
{
    json_auto_t *doc = json_pack("{s:o}", "nftables", cmds);
    _cleanup_free_ char *text = json_dumps(doc, JSON_COMPACT);
    _cleanup_(nft_ctx_freep) struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
    if (!doc || !text || !ctx)
        caa_oom();
    /* JSON output mode also selects the JSON input parser. */
    nft_ctx_output_set_flags(ctx, NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE);
    if (nft_ctx_buffer_output(ctx) < 0 || nft_ctx_buffer_error(ctx) < 0)
        return caa_error_set(err, -EIO, "nftables: cannot buffer output");
    int r = nft_run_cmd_from_buffer(ctx, text);
    if (r != 0) {
        const char *e = nft_ctx_get_error_buffer(ctx);
        _cleanup_free_ char *msg = xstrdup(e && *e ? e : "unknown error");
        msg[strcspn(msg, "\n")] = '\0';
        if (strstr(e ? e : "", "Operation not permitted"))
            return caa_error_set(err, -EPERM, "nftables: %s (CAP_NET_ADMIN is needed)", msg);
        if (strstr(e ? e : "", "No such file or directory"))
            return caa_error_set(err, -ENOENT, "nftables: %s", msg);
        return caa_error_set(err, -EIO, "nftables: %s", msg);
    }
    if (ret_output) {
        const char *out = nft_ctx_get_output_buffer(ctx);
        *ret_output = xstrdup(out ? out : "");
    }
    return 0;
}

typedef struct rule_ref {
    char chain[32];
    json_int_t handle;
} rule_ref;

/* Lists our table: whether it exists, the rules carrying comment, and the
 * total number of rules in it. */
static int list_rules(const char *comment, bool *ret_exists, rule_ref **ret_refs, size_t *ret_n,
                      size_t *ret_total, caa_error **err)
{
    _cleanup_error_ caa_error *e = NULL;
    _cleanup_free_ char *out = NULL;
    json_t *cmd =
        json_pack("[{s:{s:{s:s,s:s}}}]", "list", "table", "family", "ip", "name", CAA_PODNET_NFT_TABLE);
    int r = nft_run(cmd, &out, &e);
    *ret_exists = false;
    *ret_refs = NULL;
    *ret_n = *ret_total = 0;
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return caa_error_propagate(err, &e);
    *ret_exists = true;

    json_auto_t *doc = json_loads(out, 0, NULL);
    json_t *items = json_object_get(doc, "nftables");
    if (!json_is_array(items))
        return caa_error_set(err, -EPROTO, "nftables: unexpected listing output");
    size_t i, cap = 0;
    json_t *item;
    rule_ref *refs = NULL;
    json_array_foreach(items, i, item)
    {
        json_t *rule = json_object_get(item, "rule");
        if (!rule)
            continue;
        (*ret_total)++;
        const char *c = json_string_value(json_object_get(rule, "comment"));
        const char *chain = json_string_value(json_object_get(rule, "chain"));
        json_t *h = json_object_get(rule, "handle");
        if (!c || strcmp(c, comment) != 0 || !chain || !json_is_integer(h))
            continue;
        if (*ret_n == cap) {
            cap = cap ? cap * 2 : 4;
            refs = xrealloc(refs, cap * sizeof(*refs));
        }
        snprintf(refs[*ret_n].chain, sizeof(refs[*ret_n].chain), "%s", chain);
        refs[*ret_n].handle = json_integer_value(h);
        (*ret_n)++;
    }
    *ret_refs = refs;
    return 0;
}

/* Deletes the rules with comment; with drop_empty_table, the whole table
 * instead when nothing else is in it. */
static int remove_rules(const char *comment, bool drop_empty_table, caa_error **err)
{
    _cleanup_free_ rule_ref *refs = NULL;
    size_t n, total;
    bool exists;
    int r = list_rules(comment, &exists, &refs, &n, &total, err);
    if (r < 0 || !exists)
        return r;
    json_t *cmds = json_array();
    if (drop_empty_table && total == n) {
        json_array_append_new(cmds, json_pack("{s:{s:{s:s,s:s}}}", "delete", "table", "family", "ip", "name",
                                              CAA_PODNET_NFT_TABLE));
    } else {
        for (size_t i = 0; i < n; i++)
            json_array_append_new(cmds, json_pack("{s:{s:{s:s,s:s,s:s,s:I}}}", "delete", "rule", "family",
                                                  "ip", "table", CAA_PODNET_NFT_TABLE, "chain", refs[i].chain,
                                                  "handle", refs[i].handle));
    }
    if (json_array_size(cmds) == 0) {
        json_decref(cmds);
        return 0;
    }
    return nft_run(cmds, NULL, err);
}

static json_t *match_payload(const char *protocol, const char *field, json_t *right)
{
    return json_pack("{s:{s:s,s:{s:{s:s,s:s}},s:o}}", "match", "op", "==", "left", "payload", "protocol",
                     protocol, "field", field, "right", right);
}

int caa_podnet_notrack_add(uint32_t vni, struct in_addr remote, uint16_t port, caa_error **err)
{
    char comment[40], addr[CAA_PODNET_ADDR_STRLEN];
    comment_for(vni, comment);
    caa_podnet_addr_format(remote, addr);

    /* Re-running setup must not duplicate rules. */
    int r = remove_rules(comment, false, err);
    if (r < 0)
        return r;

    json_t *cmds = json_array();
    json_array_append_new(
        cmds, json_pack("{s:{s:{s:s,s:s}}}", "add", "table", "family", "ip", "name", CAA_PODNET_NFT_TABLE));
    for (size_t i = 0; i < CAA_ARRAY_SIZE(chains); i++) {
        json_array_append_new(cmds, json_pack("{s:{s:{s:s,s:s,s:s,s:s,s:s,s:i,s:s}}}", "add", "chain",
                                              "family", "ip", "table", CAA_PODNET_NFT_TABLE, "name",
                                              chains[i][0], "type", "filter", "hook", chains[i][1], "prio",
                                              NFT_PRIO_RAW, "policy", "accept"));
        bool incoming = !strcmp(chains[i][1], "prerouting");
        json_t *expr =
            json_pack("[o,o,{s:n}]", match_payload("ip", incoming ? "saddr" : "daddr", json_string(addr)),
                      match_payload("udp", "dport", json_integer(port)), "notrack");
        json_array_append_new(cmds, json_pack("{s:{s:{s:s,s:s,s:s,s:s,s:o}}}", "add", "rule", "family", "ip",
                                              "table", CAA_PODNET_NFT_TABLE, "chain", chains[i][0], "comment",
                                              comment, "expr", expr));
    }
    r = nft_run(cmds, NULL, err);
    if (r < 0)
        return PODNET_PREFIXED(r, err, "adding NOTRACK rules for VXLAN id %u", vni);
    log_debug("NOTRACK rules for vni %u remote %s port %u added", vni, addr, port);
    return 0;
}

int caa_podnet_notrack_remove(uint32_t vni, caa_error **err)
{
    char comment[40];
    comment_for(vni, comment);
    int r = remove_rules(comment, true, err);
    if (r < 0)
        return PODNET_PREFIXED(r, err, "removing NOTRACK rules for VXLAN id %u", vni);
    return 0;
}
