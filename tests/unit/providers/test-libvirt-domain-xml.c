/* Domain and volume XML: golden files (regenerate with CAA_REGEN_GOLDEN=1),
 * validation against the installed libvirt schema (virt-xml-validate), the
 * real libvirt parser (test driver), and escaping of hostile values. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include "domain-xml.h"
#include "lv-test-util.h"

#define SCHEMA "/usr/share/libvirt/schemas/domaincommon.rng"

static char *const tags[] = {"owner=node-1", "cluster=c1", NULL};

static lv_domain_params base_params(lv_launch_security launch, lv_arch arch)
{
    return (lv_domain_params){
        .name = "podvm-nginx-0123abcd",
        .uuid = "8f4e2a0c-5d1b-4c3e-9a7f-1b2c3d4e5f60",
        .domain_type = "kvm",
        .arch = arch,
        .vcpus = 2,
        .memory_mib = 8192,
        .cpuset = "0-3,8",
        .loader = arch == LV_ARCH_X86_64 ? "/usr/share/OVMF/OVMF_CODE_4M.fd" : NULL,
        .launch = launch,
        .sev_cbitpos = 51,
        .sev_reduced_phys_bits = 1,
        .snp_policy = LV_SNP_DEFAULT_POLICY,
        .tdx_policy = LV_TDX_DEFAULT_POLICY,
        .pool = "default",
        .root_volume = "podvm-nginx-0123abcd-root.qcow2",
        .cidata_volume = "podvm-nginx-0123abcd-cloudinit.iso",
        .network = "default",
        .console_log = "/var/log/libvirt/qemu/podvm-nginx-0123abcd-console.log",
        .sandbox_id = "0123abcd4567ef890123abcd4567ef890123abcd4567ef890123abcd4567ef89",
        .pod_name = "nginx",
        .pod_namespace = "default",
        .image = "podvm-base.qcow2",
        .idempotency_key = "0123abcd4567ef89",
        .tags = tags,
    };
}

typedef struct variant {
    const char *file;
    lv_launch_security launch;
    lv_arch arch;
    const char *loader;      /* overrides the default when set */
    const char *schema_word; /* word the schema must know for the whole document to validate */
} variant;

static const variant variants[] = {
    {"libvirt-domain-none.xml", LV_LAUNCH_NONE, LV_ARCH_X86_64, NULL, NULL},
    {"libvirt-domain-sev-snp.xml", LV_LAUNCH_SEV_SNP, LV_ARCH_X86_64, "/usr/share/ovmf/OVMF.amdsev.fd",
     "sev-snp"},
    {"libvirt-domain-tdx.xml", LV_LAUNCH_TDX, LV_ARCH_X86_64, "/usr/share/ovmf/OVMF.inteltdx.fd", "tdx"},
    {"libvirt-domain-s390-pv.xml", LV_LAUNCH_S390_PV, LV_ARCH_S390X, NULL, NULL},
    {"libvirt-domain-aarch64.xml", LV_LAUNCH_NONE, LV_ARCH_AARCH64, NULL, NULL},
};

static char *variant_xml(const variant *v)
{
    lv_domain_params p = base_params(v->launch, v->arch);
    if (v->loader)
        p.loader = v->loader;
    if (v->arch == LV_ARCH_S390X)
        p.machine = "s390-ccw-virtio-7.2";
    caa_error *err = NULL;
    char *xml = lv_domain_xml(&p, &err);
    if (!xml)
        fail_msg("%s: %s", v->file, caa_error_msg(err));
    return xml;
}

static char *golden_path(const char *file)
{
    const char *root = getenv("CAA_SOURCE_ROOT");
    char *path = NULL;
    if (asprintf(&path, "%s/tests/unit/providers/golden/%s", root ? root : ".", file) < 0)
        abort();
    return path;
}

static void check_golden(const char *file, const char *actual)
{
    char *path = golden_path(file);
    const char *regen = getenv("CAA_REGEN_GOLDEN");
    if (regen && strcmp(regen, "1") == 0) {
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        fputs(actual, f);
        fclose(f);
        lvt_note("regenerated %s\n", path);
    }
    char *expected = lvt_read_file(path, NULL);
    if (!expected)
        fail_msg("missing golden file %s (run with CAA_REGEN_GOLDEN=1)", path);
    if (strcmp(expected, actual) != 0) {
        lvt_note("--- expected %s\n%s--- actual\n%s", path, expected, actual);
        fail_msg("%s differs from the generated XML (CAA_REGEN_GOLDEN=1 regenerates)", file);
    }
    free(expected);
    free(path);
}

static void test_golden(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        char *xml = variant_xml(&variants[i]);
        check_golden(variants[i].file, xml);
        free(xml);
    }
    caa_error *err = NULL;
    char *vol = lv_root_volume_xml("podvm-nginx-0123abcd-root.qcow2", UINT64_C(10) << 30,
                                   "/var/lib/libvirt/images/podvm-base.qcow2", "qcow2", &err);
    assert_non_null(vol);
    check_golden("libvirt-volume-root.xml", vol);
    free(vol);
    vol = lv_raw_volume_xml("podvm-nginx-0123abcd-cloudinit.iso", 376832, &err);
    assert_non_null(vol);
    check_golden("libvirt-volume-cidata.xml", vol);
    free(vol);
}

static bool schema_knows(const char *word)
{
    char *rng = lvt_read_file(SCHEMA, NULL);
    if (!rng)
        return false;
    char quoted[64];
    snprintf(quoted, sizeof(quoted), "<value>%s</value>", word);
    bool known = strstr(rng, quoted) != NULL;
    free(rng);
    return known;
}

static int validate(const char *xml, const char *type, char **ret_out)
{
    char *path = lvt_write_temp("doc.xml", xml, strlen(xml));
    assert_non_null(path);
    char *argv[] = {"virt-xml-validate", path, (char *)type, NULL};
    int st = lvt_run(argv, ret_out);
    lvt_remove_temp(path);
    return st;
}

/* Removes <launchSecurity> (text-level; the builder emits it last in <domain>). */
static char *without_launch_security(const char *xml)
{
    const char *a = strstr(xml, "  <launchSecurity");
    const char *b = strstr(xml, "</launchSecurity>\n");
    assert_non_null(a);
    assert_non_null(b);
    b += strlen("</launchSecurity>\n");
    char *out = malloc(strlen(xml) + 1);
    size_t n = (size_t)(a - xml);
    memcpy(out, xml, n);
    strcpy(out + n, b);
    return out;
}

static void test_schema_validation(void **state)
{
    (void)state;
    if (!lvt_have("virt-xml-validate") || !lvt_have("xmllint")) {
        lvt_note("virt-xml-validate (libvirt-clients) or xmllint not installed\n");
        skip();
    }
    for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        const variant *v = &variants[i];
        char *xml = variant_xml(v);
        char *out = NULL;
        int st = validate(xml, "domain", &out);
        if (!v->schema_word || schema_knows(v->schema_word)) {
            if (st != 0)
                fail_msg("%s does not validate:\n%s", v->file, out);
            lvt_note("%s: validates\n", v->file);
        } else {
            /* The installed schema (libvirt 9.0) predates this launch
             * security type: everything but that element must validate. */
            assert_int_not_equal(st, 0);
            assert_non_null(strstr(out, "launchSecurity"));
            char *rest = without_launch_security(xml);
            char *out2 = NULL;
            if (validate(rest, "domain", &out2) != 0)
                fail_msg("%s without <launchSecurity> does not validate:\n%s", v->file, out2);
            lvt_note("%s: schema lacks %s; validates without <launchSecurity>\n", v->file, v->schema_word);
            free(out2);
            free(rest);
        }
        free(out);
        free(xml);
    }
    char *vol = lv_root_volume_xml("r.qcow2", 1, "/p/base.qcow2", "qcow2", NULL);
    char *out = NULL;
    if (validate(vol, "storagevol", &out) != 0)
        fail_msg("root volume XML does not validate:\n%s", out);
    free(out);
    free(vol);
    vol = lv_raw_volume_xml("c.iso", 2048, NULL);
    if (validate(vol, "storagevol", &out) != 0)
        fail_msg("cidata volume XML does not validate:\n%s", out);
    free(out);
    free(vol);
}

static void quiet(void *opaque, virErrorPtr e)
{
    (void)opaque;
    (void)e;
}

/* The real libvirt parser (test driver) accepts what the schema accepts,
 * and rejects sev-snp/tdx exactly where 9.0 does not know them. */
static void test_libvirt_parser(void **state)
{
    (void)state;
    virSetErrorFunc(NULL, quiet);
    virConnectPtr conn = virConnectOpen("test:///default");
    assert_non_null(conn);
    char *xml = variant_xml(&variants[0]);
    virDomainPtr dom = virDomainDefineXML(conn, xml);
    if (!dom)
        fail_msg("test driver rejected the domain: %s", virGetLastErrorMessage());
    char uuid[VIR_UUID_STRING_BUFLEN];
    assert_int_equal(virDomainGetUUIDString(dom, uuid), 0);
    assert_string_equal(uuid, "8f4e2a0c-5d1b-4c3e-9a7f-1b2c3d4e5f60");
    char *md = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, LV_METADATA_NS, 0);
    assert_non_null(md);
    assert_non_null(strstr(md, "0123abcd4567ef890123abcd4567ef890123abcd4567ef890123abcd4567ef89"));
    free(md);
    assert_int_equal(virDomainUndefine(dom), 0);
    virDomainFree(dom);
    free(xml);

    for (size_t i = 1; i <= 2; i++) {
        xml = variant_xml(&variants[i]);
        dom = virDomainDefineXML(conn, xml);
        if (dom) {
            /* A newer libvirt knows the element. */
            virDomainUndefine(dom);
            virDomainFree(dom);
        } else {
            assert_non_null(strstr(virGetLastErrorMessage(), "launchSecurity"));
        }
        free(xml);
    }
    virConnectClose(conn);
}

/* ---- hostile values ---- */

static char *xpath_string(xmlDocPtr doc, const char *expr)
{
    xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
    xmlXPathRegisterNs(ctx, (const xmlChar *)"caa", (const xmlChar *)LV_METADATA_NS);
    xmlXPathObjectPtr obj = xmlXPathEvalExpression((const xmlChar *)expr, ctx);
    assert_non_null(obj);
    xmlChar *s = xmlXPathCastToString(obj);
    char *out = strdup((const char *)s);
    xmlFree(s);
    xmlXPathFreeObject(obj);
    xmlXPathFreeContext(ctx);
    return out;
}

static double xpath_number(xmlDocPtr doc, const char *expr)
{
    xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
    xmlXPathObjectPtr obj = xmlXPathEvalExpression((const xmlChar *)expr, ctx);
    double n = xmlXPathCastToNumber(obj);
    xmlXPathFreeObject(obj);
    xmlXPathFreeContext(ctx);
    return n;
}

static void test_injection_escaped(void **state)
{
    (void)state;
    const char *evil_pod = "x'\"/><evil a='1'/><name>pwn</name>&amp;]]>";
    const char *evil_ns = "ns\"><devices><disk type='file'/></devices><x y=\"";
    const char *evil_image = "img']]><evil/><!--";
    const char *evil_sandbox = "sb<![CDATA[ ]]>&lt;\"'";
    char *const evil_tags[] = {"k<e>y=v&l\"u'e]]>", "=<evil/>", NULL};
    lv_domain_params p = base_params(LV_LAUNCH_NONE, LV_ARCH_X86_64);
    p.pod_name = evil_pod;
    p.pod_namespace = evil_ns;
    p.image = evil_image;
    p.sandbox_id = evil_sandbox;
    p.tags = evil_tags;
    p.cpuset = NULL;
    caa_error *err = NULL;
    char *xml = lv_domain_xml(&p, &err);
    assert_non_null(xml);
    assert_null(strstr(xml, "<evil"));
    assert_null(strstr(xml, "]]>"));

    xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), NULL, NULL, XML_PARSE_NONET);
    assert_non_null(doc);
    /* Structure unchanged: one name, one devices, two disks, no stray elements. */
    assert_int_equal((int)xpath_number(doc, "count(/domain/name)"), 1);
    assert_int_equal((int)xpath_number(doc, "count(/domain/devices)"), 1);
    assert_int_equal((int)xpath_number(doc, "count(//disk)"), 2);
    assert_int_equal((int)xpath_number(doc, "count(//*[local-name()='evil'])"), 0);
    assert_int_equal((int)xpath_number(doc, "count(//comment())"), 0);
    /* Values come back byte for byte. */
    char *s = xpath_string(doc, "/domain/metadata/caa:instance/caa:pod/@name");
    assert_string_equal(s, evil_pod);
    free(s);
    s = xpath_string(doc, "/domain/metadata/caa:instance/caa:pod/@namespace");
    assert_string_equal(s, evil_ns);
    free(s);
    s = xpath_string(doc, "/domain/metadata/caa:instance/caa:image");
    assert_string_equal(s, evil_image);
    free(s);
    s = xpath_string(doc, "/domain/metadata/caa:instance/caa:sandbox-id");
    assert_string_equal(s, evil_sandbox);
    free(s);
    s = xpath_string(doc, "/domain/metadata/caa:instance/caa:tag[1]/@key");
    assert_string_equal(s, "k<e>y");
    free(s);
    s = xpath_string(doc, "/domain/metadata/caa:instance/caa:tag[1]");
    assert_string_equal(s, "v&l\"u'e]]>");
    free(s);
    s = xpath_string(doc, "/domain/name");
    assert_string_equal(s, "podvm-nginx-0123abcd");
    free(s);
    xmlFreeDoc(doc);

    if (lvt_have("virt-xml-validate")) {
        char *out = NULL;
        if (validate(xml, "domain", &out) != 0)
            fail_msg("escaped document does not validate:\n%s", out);
        free(out);
    }
    free(xml);

    /* Volume XML: a hostile backing path is escaped too. */
    char *vol = lv_root_volume_xml("r.qcow2", 1, "/p/a'b\"<c>&d]]>", "qcow2", &err);
    assert_non_null(vol);
    doc = xmlReadMemory(vol, (int)strlen(vol), NULL, NULL, XML_PARSE_NONET);
    assert_non_null(doc);
    s = xpath_string(doc, "/volume/backingStore/path");
    assert_string_equal(s, "/p/a'b\"<c>&d]]>");
    free(s);
    xmlFreeDoc(doc);
    free(vol);
}

static void test_injection_rejected(void **state)
{
    (void)state;
    struct {
        const char *what;
        lv_domain_params p;
    } cases[6];
    for (size_t i = 0; i < 6; i++)
        cases[i].p = base_params(LV_LAUNCH_NONE, LV_ARCH_X86_64);
    cases[0].what = "newline in image";
    cases[0].p.image = "base.qcow2\n<evil/>";
    cases[1].what = "control character in pod name";
    cases[1].p.pod_name = "a\x01b";
    cases[2].what = "invalid UTF-8 in namespace";
    cases[2].p.pod_namespace = "ns\xff\xfe";
    cases[3].what = "tab in sandbox id";
    cases[3].p.sandbox_id = "a\tb";
    cases[4].what = "carriage return in a tag";
    char *const bad_tags[] = {"k=v\r", NULL};
    cases[4].p.tags = bad_tags;
    cases[5].what = "DEL in network name";
    cases[5].p.network = "net\x7f";
    for (size_t i = 0; i < 6; i++) {
        caa_error *err = NULL;
        char *xml = lv_domain_xml(&cases[i].p, &err);
        if (xml)
            fail_msg("%s was accepted:\n%s", cases[i].what, xml);
        assert_non_null(err);
        assert_int_equal(err->code, -EINVAL);
        caa_error_free(err);
    }
    caa_error *err = NULL;
    assert_null(lv_root_volume_xml("r\n.qcow2", 1, "/p", "qcow2", &err));
    caa_error_free(err);
    err = NULL;
    assert_null(lv_raw_volume_xml("c\x02.iso", 1, &err));
    caa_error_free(err);
    err = NULL;
    /* UTF-8 that libxml2 would write but not read back (found by fuzzing). */
    const char *bad_utf8[] = {"\xc0\x97",         "\xc1\xbf",     "\xe0\x80\xaf", "\xed\xa0\x80",
                              "\xf4\x90\x80\x80", "\xef\xbf\xbe", "\xc2\x85",     "\xf8\x88\x80\x80\x80",
                              "\xe2\x82"};
    for (size_t i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++) {
        assert_false(lv_xml_text_ok(bad_utf8[i]));
        lv_domain_params p = base_params(LV_LAUNCH_NONE, LV_ARCH_X86_64);
        p.pod_name = bad_utf8[i];
        assert_null(lv_domain_xml(&p, &err));
        caa_error_free(err);
        err = NULL;
    }
    /* Multi-byte UTF-8 is fine. */
    lv_domain_params ok = base_params(LV_LAUNCH_NONE, LV_ARCH_X86_64);
    ok.pod_name = "caf\xc3\xa9-\xe2\x9c\x93-\xf0\x9f\x98\x80";
    char *xml = lv_domain_xml(&ok, NULL);
    assert_non_null(xml);
    assert_non_null(strstr(xml, "caf\xc3\xa9-\xe2\x9c\x93-\xf0\x9f\x98\x80"));
    free(xml);
}

static void test_variant_details(void **state)
{
    (void)state;
    /* TCG: no host CPU model; autoselected firmware when no loader. */
    lv_domain_params p = base_params(LV_LAUNCH_NONE, LV_ARCH_X86_64);
    p.domain_type = "qemu";
    p.loader = NULL;
    p.console_log = NULL;
    p.cpuset = "";
    char *xml = lv_domain_xml(&p, NULL);
    assert_non_null(xml);
    assert_non_null(strstr(xml, "<domain type=\"qemu\">"));
    assert_null(strstr(xml, "<cpu"));
    assert_non_null(strstr(xml, "<os firmware=\"efi\">"));
    assert_null(strstr(xml, "<loader"));
    assert_null(strstr(xml, "cpuset"));
    assert_null(strstr(xml, "<log "));
    assert_non_null(strstr(xml, "<serial type=\"pty\">"));
    free(xml);
    /* Memory and vCPUs come through as given. */
    p.vcpus = 7;
    p.memory_mib = 1536;
    xml = lv_domain_xml(&p, NULL);
    assert_non_null(strstr(xml, ">1536</memory>"));
    assert_non_null(strstr(xml, ">7</vcpu>"));
    free(xml);
}

int main(void)
{
    xmlInitParser();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_schema_validation),
        cmocka_unit_test(test_libvirt_parser),
        cmocka_unit_test(test_injection_escaped),
        cmocka_unit_test(test_injection_rejected),
        cmocka_unit_test(test_variant_details),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
