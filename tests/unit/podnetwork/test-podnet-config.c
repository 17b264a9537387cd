/* The pod-network config: text forms, building, strict parsing, hostile input. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <cmocka.h>

#include "podnet-config.h"
#include "xalloc.h"

/* ---- text forms ---- */

static void test_prefix_text(void **state)
{
    (void)state;
    static const char *good[] = {"10.244.1.7/24", "0.0.0.0/0", "255.255.255.255/32", "198.19.0.5/32",
                                 "1.2.3.4/9"};
    static const char *bad[] = {
        "",           "10.0.0.1",    "10.0.0.1/33",  "10.0.0.1/",        "010.0.0.1/8",
        "1.2.3.4/08", "1.2.3/8",     "1.2.3.4.5/8",  "256.1.1.1/8",      "fd00::1/64",
        "1.2.3.4/-1", " 1.2.3.4/8",  "1.2.3.4/8 ",   "1.2.3.4/+8",       "1..3.4/8",
        "1.2.3.4//8", "1.2.3.4/8/8", "1.2.3.4/1000", "::ffff:1.2.3.4/8", "1.2.3.4\n/8"};
    for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
        caa_podnet_prefix p;
        char buf[CAA_PODNET_PREFIX_STRLEN];
        assert_int_equal(caa_podnet_prefix_parse(good[i], &p, NULL), 0);
        caa_podnet_prefix_format(&p, buf);
        assert_string_equal(buf, good[i]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        caa_podnet_prefix p;
        caa_error *err = NULL;
        assert_int_equal(caa_podnet_prefix_parse(bad[i], &p, &err), -EINVAL);
        assert_non_null(strstr(err->msg, "invalid IPv4 prefix"));
        caa_error_free(err);
    }
    caa_podnet_prefix p;
    assert_int_equal(caa_podnet_prefix_parse("10.244.1.7/20", &p, NULL), 0);
    struct in_addr net = caa_podnet_prefix_network(&p);
    char buf[CAA_PODNET_ADDR_STRLEN];
    caa_podnet_addr_format(net, buf);
    assert_string_equal(buf, "10.244.0.0");
    assert_int_equal(caa_podnet_prefix_parse("10.244.1.7/0", &p, NULL), 0);
    assert_int_equal(caa_podnet_prefix_network(&p).s_addr, 0);
}

static void test_addr_mac_ifname(void **state)
{
    (void)state;
    struct in_addr a;
    assert_int_equal(caa_podnet_addr_parse("198.18.0.2", &a, NULL), 0);
    assert_int_equal(ntohl(a.s_addr), 0xc6120002);
    assert_int_equal(caa_podnet_addr_parse("198.18.0.2/32", &a, NULL), -EINVAL);
    assert_int_equal(caa_podnet_addr_parse("198.18.0", &a, NULL), -EINVAL);
    assert_int_equal(caa_podnet_addr_parse(NULL, &a, NULL), -EINVAL);

    uint8_t mac[6];
    char buf[CAA_PODNET_MAC_STRLEN];
    assert_int_equal(caa_podnet_mac_parse("AA:bb:0c:dd:ee:ff", mac, NULL), 0);
    caa_podnet_mac_format(mac, buf);
    assert_string_equal(buf, "aa:bb:0c:dd:ee:ff");
    assert_int_equal(caa_podnet_mac_parse("aa-bb-0c-dd-ee-ff", mac, NULL), 0);
    static const char *bad[] = {"aa:bb:cc:dd:ee",    "aa:bb:cc:dd:ee:ff:00", "aa:bb-cc:dd:ee:ff",
                                "aa:bb:cc:dd:ee:fg", "aabb.ccdd.eeff",       "",
                                "aa.bb.cc.dd.ee.ff", "a:bb:cc:dd:ee:fff"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        assert_int_equal(caa_podnet_mac_parse(bad[i], mac, NULL), -EINVAL);

    assert_true(caa_podnet_ifname_valid("eth0"));
    assert_true(caa_podnet_ifname_valid("123456789012345"));
    assert_false(caa_podnet_ifname_valid("1234567890123456"));
    assert_false(caa_podnet_ifname_valid(""));
    assert_false(caa_podnet_ifname_valid("."));
    assert_false(caa_podnet_ifname_valid(".."));
    assert_false(caa_podnet_ifname_valid("a/b"));
    assert_false(caa_podnet_ifname_valid("eth0:1"));
    assert_false(caa_podnet_ifname_valid("eth 0"));
    assert_false(caa_podnet_ifname_valid("eth\t0"));
    assert_false(caa_podnet_ifname_valid("eth\x7f"));
    assert_false(caa_podnet_ifname_valid(NULL));

    uint8_t v8;
    uint16_t v16;
    assert_int_equal(caa_podnet_route_protocol_parse("dhcp", &v8), 0);
    assert_int_equal(v8, RTPROT_DHCP);
    assert_int_equal(caa_podnet_route_protocol_parse("bird", &v8), -EINVAL);
    assert_int_equal(caa_podnet_route_scope_parse("link", &v8), 0);
    assert_int_equal(v8, RT_SCOPE_LINK);
    assert_string_equal(caa_podnet_route_scope_name(RT_SCOPE_NOWHERE), "nowhere");
    assert_int_equal(caa_podnet_neigh_state_parse("noarp", &v16), 0);
    assert_int_equal(v16, NUD_NOARP);
    assert_null(caa_podnet_neigh_state_name(NUD_PERMANENT | NUD_NOARP));
}

/* ---- building ---- */

static caa_podnet_config *sample(void)
{
    caa_podnet_config *cfg = caa_podnet_config_new();
    assert_int_equal(caa_podnet_prefix_parse("10.244.1.7/24", &cfg->pod_ip, NULL), 0);
    assert_int_equal(caa_podnet_mac_parse("aa:bb:cc:dd:ee:ff", cfg->pod_hw_addr, NULL), 0);
    strcpy(cfg->interface, "eth0");
    assert_int_equal(caa_podnet_prefix_parse("192.168.122.63/24", &cfg->worker_node_ip, NULL), 0);
    caa_podnet_route r1 = {.dev = "eth0", .protocol = RTPROT_KERNEL, .scope = RT_SCOPE_LINK};
    assert_int_equal(caa_podnet_prefix_parse("10.244.1.0/24", &r1.dst, NULL), 0);
    caa_podnet_route r2 = {
        .dev = "eth0", .protocol = RTPROT_BOOT, .scope = RT_SCOPE_UNIVERSE, .has_gw = true};
    assert_int_equal(caa_podnet_prefix_parse("0.0.0.0/0", &r2.dst, NULL), 0);
    assert_int_equal(caa_podnet_addr_parse("10.244.1.1", &r2.gw, NULL), 0);
    assert_int_equal(caa_podnet_config_add_route(cfg, &r1, NULL), 0);
    assert_int_equal(caa_podnet_config_add_route(cfg, &r2, NULL), 0);
    caa_podnet_neighbor n = {.dev = "eth0", .state = NUD_PERMANENT};
    assert_int_equal(caa_podnet_addr_parse("169.254.1.1", &n.ip, NULL), 0);
    assert_int_equal(caa_podnet_mac_parse("ee:ee:ee:ee:ee:ee", n.hw_addr, NULL), 0);
    assert_int_equal(caa_podnet_config_add_neighbor(cfg, &n, NULL), 0);
    cfg->mtu = 1450;
    cfg->index = 3;
    cfg->vxlan_id = 555003;
    return cfg;
}

static const char sample_json[] =
    "{\"podip\": \"10.244.1.7/24\", \"pod-hw-addr\": \"aa:bb:cc:dd:ee:ff\", \"interface\": \"eth0\", "
    "\"worker-node-ip\": \"192.168.122.63/24\", \"tunnel-type\": \"vxlan\", \"routes\": [{\"dst\": "
    "\"10.244.1.0/24\", \"gw\": \"\", \"dev\": \"eth0\", \"protocol\": \"kernel\", \"scope\": \"link\"}, "
    "{\"dst\": \"0.0.0.0/0\", \"gw\": \"10.244.1.1\", \"dev\": \"eth0\", \"protocol\": \"boot\", \"scope\": "
    "\"universe\"}], \"neighbors\": [{\"ip\": \"169.254.1.1\", \"hw-addr\": \"ee:ee:ee:ee:ee:ee\", \"dev\": "
    "\"eth0\", \"state\": \"permanent\"}], \"mtu\": 1450, \"index\": 3, \"vxlan-port\": 4789, \"vxlan-id\": "
    "555003, \"dedicated\": false, \"external-net-via-pod-vm\": false}";

static void test_to_json_layout(void **state)
{
    (void)state;
    caa_podnet_config *cfg = sample();
    json_t *j = caa_podnet_config_to_json(cfg);
    char *s = json_dumps(j, 0);
    assert_string_equal(s, sample_json);
    free(s);
    json_decref(j);
    caa_podnet_config_free(cfg);
}

static void test_round_trip(void **state)
{
    (void)state;
    caa_podnet_config *cfg = NULL;
    assert_int_equal(caa_podnet_config_parse(sample_json, strlen(sample_json), &cfg, NULL), 0);
    assert_string_equal(cfg->interface, "eth0");
    assert_int_equal(cfg->pod_ip.len, 24);
    assert_int_equal(ntohl(cfg->pod_ip.addr.s_addr), 0x0af40107);
    assert_int_equal(cfg->n_routes, 2);
    assert_false(cfg->routes[0].has_gw);
    assert_int_equal(cfg->routes[0].protocol, RTPROT_KERNEL);
    assert_int_equal(cfg->routes[0].scope, RT_SCOPE_LINK);
    assert_true(cfg->routes[1].has_gw);
    assert_int_equal(cfg->n_neighbors, 1);
    assert_int_equal(cfg->neighbors[0].hw_addr[0], 0xee);
    assert_int_equal(cfg->vxlan_id, 555003);
    assert_int_equal(cfg->vxlan_port, 4789);
    json_t *j = caa_podnet_config_to_json(cfg);
    char *s = json_dumps(j, 0);
    assert_string_equal(s, sample_json);
    free(s);
    json_decref(j);
    caa_podnet_config_free(cfg);
}

/* What upstream's Go daemon emits for a pod without routes: nil slices as null,
 * plus fields we do not know; defaults for optional members. */
static void test_lenient_where_go_is(void **state)
{
    (void)state;
    static const char doc[] =
        "{\"podip\":\"10.0.0.2/32\",\"pod-hw-addr\":\"02:00:00:00:00:01\",\"interface\":\"eth0\","
        "\"worker-node-ip\":\"192.168.1.2/24\",\"tunnel-type\":\"vxlan\",\"routes\":null,"
        "\"neighbors\":null,\"vxlan-id\":555000,\"future-field\":{\"x\":[1,2]},"
        "\"routes-extra\":7}";
    caa_podnet_config *cfg = NULL;
    caa_error *err = NULL;
    assert_int_equal(caa_podnet_config_parse(doc, strlen(doc), &cfg, &err), 0);
    assert_null(err);
    assert_int_equal(cfg->n_routes, 0);
    assert_int_equal(cfg->n_neighbors, 0);
    assert_int_equal(cfg->vxlan_port, 4789);
    assert_int_equal(cfg->mtu, 0);
    assert_false(cfg->dedicated);
    caa_podnet_config_free(cfg);

    /* A route without protocol/scope/gw gets boot/universe/none. */
    static const char doc2[] =
        "{\"podip\":\"10.0.0.2/32\",\"pod-hw-addr\":\"02:00:00:00:00:01\",\"interface\":"
        "\"eth0\",\"worker-node-ip\":\"192.168.1.2/24\",\"tunnel-type\":\"vxlan\","
        "\"vxlan-id\":1,\"routes\":[{\"dst\":\"0.0.0.0/0\",\"dev\":\"eth0\"}]}";
    assert_int_equal(caa_podnet_config_parse(doc2, strlen(doc2), &cfg, NULL), 0);
    assert_int_equal(cfg->routes[0].protocol, RTPROT_BOOT);
    assert_int_equal(cfg->routes[0].scope, RT_SCOPE_UNIVERSE);
    assert_false(cfg->routes[0].has_gw);
    caa_podnet_config_free(cfg);
}

/* ---- hostile input ---- */

typedef struct bad_case {
    const char *key;   /* member to replace in sample_json (NULL: whole document below) */
    const char *value; /* its JSON text, or NULL to delete it */
    int code;
    const char *msg; /* expected substring */
} bad_case;

static char *with_member(const char *key, const char *value)
{
    json_t *j = json_loads(sample_json, 0, NULL);
    assert_non_null(j);
    if (value) {
        json_t *v = json_loads(value, JSON_DECODE_ANY, NULL);
        assert_non_null(v);
        json_object_set_new(j, key, v);
    } else {
        json_object_del(j, key);
    }
    char *s = json_dumps(j, 0);
    json_decref(j);
    return s;
}

static void expect_bad(const char *doc, size_t len, int code, const char *msg)
{
    caa_podnet_config *cfg = NULL;
    caa_error *err = NULL;
    int r = caa_podnet_config_parse(doc, len, &cfg, &err);
    if (r != code || !err || !strstr(err->msg, msg))
        fail_msg("document %.200s: got %d \"%s\", want %d \"%s\"", doc, r, err ? err->msg : "(none)", code,
                 msg);
    assert_null(cfg);
    caa_error_free(err);
}

static void test_bad_members(void **state)
{
    (void)state;
    static const bad_case cases[] = {
        {"podip", "5", -EINVAL, "podip: expected a string"},
        {"podip", "\"10.0.0.1/33\"", -EINVAL, "podip: invalid IPv4 prefix"},
        {"podip", "\"10.0.0.1\"", -EINVAL, "podip: invalid IPv4 prefix"},
        {"podip", "\"fd00::1/64\"", -EINVAL, "podip: invalid IPv4 prefix"},
        {"podip", NULL, -EINVAL, "podip: missing"},
        {"pod-hw-addr", "\"zz:bb:cc:dd:ee:ff\"", -EINVAL, "pod-hw-addr: invalid MAC"},
        {"pod-hw-addr", "null", -EINVAL, "pod-hw-addr: expected a string"},
        {"interface", "\"\"", -EINVAL, "interface: invalid interface name"},
        {"interface", "\"../../etc\"", -EINVAL, "interface: invalid interface name"},
        {"interface", "\"a/b\"", -EINVAL, "interface: invalid interface name"},
        {"interface", "\"0123456789abcdef\"", -EINVAL, "interface: invalid interface name"},
        {"interface", "\"eth 0\"", -EINVAL, "interface: invalid interface name"},
        {"interface", "[\"eth0\"]", -EINVAL, "interface: expected a string"},
        {"worker-node-ip", "\"192.168.122.63\"", -EINVAL, "worker-node-ip: invalid IPv4 prefix"},
        {"tunnel-type", "\"routing\"", -EINVAL, "tunnel-type: \"routing\" is not supported"},
        {"tunnel-type", NULL, -EINVAL, "tunnel-type: missing"},
        {"vxlan-id", "16777216", -EINVAL, "vxlan-id: 16777216 out of range"},
        {"vxlan-id", "-1", -EINVAL, "vxlan-id: -1 out of range"},
        {"vxlan-id", "\"555000\"", -EINVAL, "vxlan-id: expected an integer"},
        {"vxlan-id", "555000.5", -EINVAL, "vxlan-id: expected an integer"},
        {"vxlan-id", NULL, -EINVAL, "vxlan-id: missing"},
        {"vxlan-port", "0", -EINVAL, "vxlan-port: must be 1..65535"},
        {"vxlan-port", "70000", -EINVAL, "vxlan-port: 70000 out of range"},
        {"mtu", "40", -EINVAL, "mtu: 40 out of range"},
        {"mtu", "65536", -EINVAL, "mtu: 65536 out of range"},
        {"index", "true", -EINVAL, "index: expected an integer"},
        {"dedicated", "\"yes\"", -EINVAL, "dedicated: expected a boolean"},
        {"external-net-via-pod-vm", "1", -EINVAL, "external-net-via-pod-vm: expected a boolean"},
        {"routes", "{}", -EINVAL, "routes: expected an array"},
        {"routes", "[7]", -EINVAL, "routes[0]: expected an object"},
        {"routes", "[{\"dev\":\"eth0\"}]", -EINVAL, "routes[0].dst: missing"},
        {"routes", "[{\"dst\":\"0.0.0.0/0\",\"gw\":\"10.0.0.256\",\"dev\":\"eth0\"}]", -EINVAL,
         "routes[0].gw: invalid IPv4 address"},
        {"routes", "[{\"dst\":\"0.0.0.0/0\",\"dev\":\"averyveryverylongname\"}]", -EINVAL,
         "routes[0].dev: invalid interface name"},
        {"routes", "[{\"dst\":\"0.0.0.0/0\",\"dev\":\"eth0\",\"protocol\":\"bird\"}]", -EINVAL,
         "routes[0].protocol: \"bird\" is not static, boot, dhcp or kernel"},
        {"routes", "[{\"dst\":\"0.0.0.0/0\",\"dev\":\"eth0\",\"scope\":\"galaxy\"}]", -EINVAL,
         "routes[0].scope: unknown scope"},
        {"routes", "[{\"dst\":\"0.0.0.0/0\",\"dev\":\"eth0\",\"scope\":253}]", -EINVAL,
         "routes[0].scope: expected a string"},
        {"neighbors", "[{\"ip\":\"1.2.3.4/32\",\"hw-addr\":\"ee:ee:ee:ee:ee:ee\",\"dev\":\"eth0\"}]", -EINVAL,
         "neighbors[0].ip: invalid IPv4 address"},
        {"neighbors", "[{\"ip\":\"1.2.3.4\",\"dev\":\"eth0\"}]", -EINVAL, "neighbors[0].hw-addr: missing"},
        {"neighbors",
         "[{\"ip\":\"1.2.3.4\",\"hw-addr\":\"ee:ee:ee:ee:ee:ee\",\"dev\":\"eth0\",\"state\":\"bogus\"}]",
         -EINVAL, "neighbors[0].state: unknown state"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        char *doc = with_member(cases[i].key, cases[i].value);
        expect_bad(doc, strlen(doc), cases[i].code, cases[i].msg);
        free(doc);
    }
}

static void test_bad_documents(void **state)
{
    (void)state;
    expect_bad("", 0, -EINVAL, "invalid JSON");
    expect_bad("{", 1, -EINVAL, "invalid JSON");
    expect_bad("[]", 2, -EINVAL, "expected a JSON object");
    expect_bad("\"x\"", 3, -EINVAL, "invalid JSON"); /* jansson needs an array or object at the top */
    static const char dup[] = "{\"podip\":\"10.0.0.1/8\",\"podip\":\"10.0.0.2/8\"}";
    expect_bad(dup, strlen(dup), -EINVAL, "duplicate");
    static const char nul[] = "{\"interface\":\"eth\\u00000\"}";
    expect_bad(nul, strlen(nul), -EINVAL, "invalid JSON");
    /* Trailing garbage after the object. */
    char *doc = with_member("mtu", "1500");
    size_t n = strlen(doc);
    doc = xrealloc(doc, n + 3);
    memcpy(doc + n, " {", 3);
    expect_bad(doc, n + 2, -EINVAL, "invalid JSON");
    free(doc);
}

static void test_size_limits(void **state)
{
    (void)state;
    /* 257 routes: one too many. */
    json_t *j = json_loads(sample_json, 0, NULL);
    json_t *routes = json_array();
    for (int i = 0; i <= CAA_PODNET_MAX_ROUTES; i++)
        json_array_append_new(routes, json_pack("{s:s,s:s}", "dst", "10.0.0.0/8", "dev", "eth0"));
    json_object_set_new(j, "routes", routes);
    char *doc = json_dumps(j, 0);
    expect_bad(doc, strlen(doc), -E2BIG, "routes: 257 entries, at most 256 allowed");
    free(doc);
    /* Exactly the limit is fine. */
    json_array_remove(routes, 0);
    doc = json_dumps(j, 0);
    caa_podnet_config *cfg = NULL;
    assert_int_equal(caa_podnet_config_parse(doc, strlen(doc), &cfg, NULL), 0);
    assert_int_equal(cfg->n_routes, CAA_PODNET_MAX_ROUTES);
    caa_error *err = NULL;
    caa_podnet_route extra = cfg->routes[0];
    assert_int_equal(caa_podnet_config_add_route(cfg, &extra, &err), -E2BIG);
    caa_error_free(err);
    caa_podnet_config_free(cfg);
    free(doc);

    json_t *neigh = json_array();
    for (int i = 0; i <= CAA_PODNET_MAX_NEIGHBORS; i++)
        json_array_append_new(neigh, json_pack("{s:s,s:s,s:s}", "ip", "1.2.3.4", "hw-addr",
                                               "02:00:00:00:00:01", "dev", "eth0"));
    json_object_set_new(j, "neighbors", neigh);
    doc = json_dumps(j, 0);
    expect_bad(doc, strlen(doc), -E2BIG, "neighbors: 257 entries");
    free(doc);
    json_decref(j);

    /* Documents above 1 MiB are refused before parsing. */
    size_t big = CAA_PODNET_MAX_CONFIG_SIZE + 1;
    char *huge = xmalloc(big);
    memset(huge, ' ', big);
    huge[0] = '{';
    huge[big - 1] = '}';
    expect_bad(huge, big, -E2BIG, "exceeds");
    free(huge);
}

static void test_validate(void **state)
{
    (void)state;
    caa_podnet_config *cfg = sample();
    caa_error *err = NULL;
    assert_int_equal(caa_podnet_config_validate(cfg, NULL), 0);
    cfg->routes[1].protocol = 99;
    assert_int_equal(caa_podnet_config_validate(cfg, &err), -EINVAL);
    assert_non_null(strstr(err->msg, "routes[1].protocol"));
    caa_error_free(err);
    err = NULL;
    cfg->routes[1].protocol = RTPROT_STATIC;
    strcpy(cfg->neighbors[0].dev, "a:b");
    assert_int_equal(caa_podnet_config_validate(cfg, &err), -EINVAL);
    assert_non_null(strstr(err->msg, "neighbors[0].dev"));
    caa_error_free(err);
    strcpy(cfg->neighbors[0].dev, "eth0");
    cfg->vxlan_id = CAA_PODNET_MAX_VNI + 1;
    assert_int_equal(caa_podnet_config_validate(cfg, NULL), -EINVAL);
    caa_podnet_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefix_text),
        cmocka_unit_test(test_addr_mac_ifname),
        cmocka_unit_test(test_to_json_layout),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_lenient_where_go_is),
        cmocka_unit_test(test_bad_members),
        cmocka_unit_test(test_bad_documents),
        cmocka_unit_test(test_size_limits),
        cmocka_unit_test(test_validate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
