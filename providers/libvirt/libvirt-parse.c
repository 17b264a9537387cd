/* Readers for libvirt's XML answers. Walks the tree by hand (no XPath built
 * from untrusted strings); never resolves entities or touches the network. */
#include "libvirt-parse.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "cleanup.h"
#include "domain-xml.h"
#include "parse.h"
#include "strv.h"
#include "xalloc.h"

static void docp_free(xmlDocPtr *d)
{
    if (*d)
        xmlFreeDoc(*d);
}
#define _cleanup_doc_ _cleanup_(docp_free)

static int read_doc(const char *xml, size_t len, const char *what, xmlDocPtr *ret, caa_error **err)
{
    if (!xml || len == 0)
        return caa_error_set(err, -EINVAL, "empty %s XML", what);
    if (len > LV_PARSE_MAX_XML || len > INT_MAX)
        return caa_error_set(err, -EINVAL, "%s XML is too large (%zu bytes)", what, len);
    xmlDocPtr doc =
        xmlReadMemory(xml, (int)len, NULL, NULL,
                      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOBLANKS);
    if (!doc || !xmlDocGetRootElement(doc)) {
        if (doc)
            xmlFreeDoc(doc);
        return caa_error_set(err, -EINVAL, "malformed %s XML", what);
    }
    /* libvirt never sends a DTD; refusing one rules out entity tricks. */
    if (doc->intSubset || doc->extSubset) {
        xmlFreeDoc(doc);
        return caa_error_set(err, -EINVAL, "%s XML with a document type declaration", what);
    }
    *ret = doc;
    return 0;
}

static bool is_el(xmlNodePtr n, const char *name)
{
    return n && n->type == XML_ELEMENT_NODE && xmlStrcmp(n->name, (const xmlChar *)name) == 0;
}

static xmlNodePtr child(xmlNodePtr parent, const char *name)
{
    for (xmlNodePtr c = parent ? parent->children : NULL; c; c = c->next)
        if (is_el(c, name))
            return c;
    return NULL;
}

/* Text content as a new string, or NULL when the node is absent. */
static char *text_of(xmlNodePtr n)
{
    if (!n)
        return NULL;
    xmlChar *t = xmlNodeGetContent(n);
    if (!t)
        return xstrdup("");
    char *s = xstrdup((const char *)t);
    xmlFree(t);
    return s;
}

static char *prop(xmlNodePtr n, const char *name)
{
    if (!n)
        return NULL;
    xmlChar *v = xmlGetNoNsProp(n, (const xmlChar *)name);
    if (!v)
        return NULL;
    char *s = xstrdup((const char *)v);
    xmlFree(v);
    return s;
}

static bool text_equals(xmlNodePtr n, const char *want)
{
    _cleanup_free_ char *t = text_of(n);
    return t && strcmp(t, want) == 0;
}

static void note_machine(lv_caps *c, xmlNodePtr m)
{
    _cleanup_free_ char *alias = text_of(m);
    _cleanup_free_ char *canonical = prop(m, "canonical");
    const char *name = canonical ? canonical : alias;
    char **slot = NULL;
    if (!alias || !name || !lv_xml_text_ok(name))
        return;
    if (strcmp(alias, "q35") == 0)
        slot = &c->machine_q35;
    else if (strcmp(alias, "s390-ccw-virtio") == 0)
        slot = &c->machine_s390;
    else if (strcmp(alias, "virt") == 0)
        slot = &c->machine_virt;
    if (slot && !*slot)
        *slot = xstrdup(name);
}

/* read_doc, then the root element, which must be <root_name>. */
static int read_root(const char *xml, size_t len, const char *what, const char *root_name, xmlDocPtr *ret_doc,
                     xmlNodePtr *ret_root, caa_error **err)
{
    int r = read_doc(xml, len, what, ret_doc, err);
    if (r < 0)
        return r;
    *ret_root = xmlDocGetRootElement(*ret_doc);
    if (!is_el(*ret_root, root_name))
        return caa_error_set(err, -EINVAL, "%s XML without <%s>", what, root_name);
    return 0;
}

void lv_caps_done(lv_caps *c)
{
    free(c->host_arch);
    free(c->machine_q35);
    free(c->machine_s390);
    free(c->machine_virt);
    memset(c, 0, sizeof(*c));
}

int lv_parse_capabilities(const char *xml, size_t len, lv_caps *ret, caa_error **err)
{
    _cleanup_doc_ xmlDocPtr doc = NULL;
    xmlNodePtr root = NULL;
    int r = read_root(xml, len, "capabilities", "capabilities", &doc, &root, err);
    if (r < 0)
        return r;
    lv_caps c = {0};
    c.host_arch = text_of(child(child(child(root, "host"), "cpu"), "arch"));
    if (!c.host_arch || !*c.host_arch) {
        lv_caps_done(&c);
        return caa_error_set(err, -EINVAL, "capabilities XML without host CPU architecture");
    }
    for (xmlNodePtr g = root->children; g; g = g->next) {
        if (!is_el(g, "guest") || !text_equals(child(g, "os_type"), "hvm"))
            continue;
        for (xmlNodePtr a = g->children; a; a = a->next) {
            _cleanup_free_ char *arch = is_el(a, "arch") ? prop(a, "name") : NULL;
            if (!arch || strcmp(arch, c.host_arch) != 0)
                continue;
            for (xmlNodePtr d = a->children; d; d = d->next) {
                if (is_el(d, "machine"))
                    note_machine(&c, d);
                if (!is_el(d, "domain"))
                    continue;
                _cleanup_free_ char *type = prop(d, "type");
                if (type && strcmp(type, "kvm") == 0)
                    c.guest_types |= LV_GUEST_KVM;
                else if (type && strcmp(type, "qemu") == 0)
                    c.guest_types |= LV_GUEST_QEMU;
                for (xmlNodePtr m = d->children; m; m = m->next)
                    if (is_el(m, "machine"))
                        note_machine(&c, m);
            }
        }
    }
    *ret = c;
    return 0;
}

void lv_domcaps_done(lv_domcaps *c)
{
    caa_strv_free(c->loaders);
    memset(c, 0, sizeof(*c));
}

static unsigned small_uint(xmlNodePtr n)
{
    _cleanup_free_ char *t = text_of(n);
    uint64_t v;
    if (!t || caa_parse_uint64(t, 1023, &v) < 0)
        return 0;
    return (unsigned)v;
}

int lv_parse_domcaps(const char *xml, size_t len, lv_domcaps *ret, caa_error **err)
{
    _cleanup_doc_ xmlDocPtr doc = NULL;
    xmlNodePtr root = NULL;
    int r = read_root(xml, len, "domain capabilities", "domainCapabilities", &doc, &root, err);
    if (r < 0)
        return r;
    lv_domcaps c = {0};
    xmlNodePtr sev = child(child(root, "features"), "sev");
    _cleanup_free_ char *supported = prop(sev, "supported");
    if (supported && strcmp(supported, "yes") == 0) {
        c.sev_supported = true;
        c.cbitpos = small_uint(child(sev, "cbitpos"));
        c.reduced_phys_bits = small_uint(child(sev, "reducedPhysBits"));
    }
    xmlNodePtr loader = child(child(root, "os"), "loader");
    for (xmlNodePtr v = loader ? loader->children : NULL; v; v = v->next) {
        if (!is_el(v, "value"))
            continue;
        _cleanup_free_ char *path = text_of(v);
        if (path && *path == '/' && lv_xml_text_ok(path) && caa_strv_len(c.loaders) < 64)
            caa_strv_push(&c.loaders, path);
    }
    *ret = c;
    return 0;
}

int lv_parse_volume_format(const char *xml, size_t len, char **ret, caa_error **err)
{
    _cleanup_doc_ xmlDocPtr doc = NULL;
    xmlNodePtr root = NULL;
    int r = read_root(xml, len, "volume", "volume", &doc, &root, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *format = prop(child(child(root, "target"), "format"), "type");
    if (format && (!*format || strlen(format) > 32 ||
                   strspn(format, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(format)))
        return caa_error_set(err, -EINVAL, "volume XML with an unusable format \"%.32s\"", format);
    *ret = TAKE_PTR(format);
    return 0;
}

void lv_metadata_done(lv_metadata *m)
{
    free(m->sandbox_id);
    free(m->node);
    free(m->pool);
    free(m->image);
    free(m->pod_name);
    free(m->pod_namespace);
    memset(m, 0, sizeof(*m));
}

/* virDomainGetMetadata filters by our namespace URI and hands the element
 * back without a namespace; a whole domain XML carries it with ours. */
static bool ours(xmlNodePtr n, const char *name, const xmlNs *want)
{
    if (!is_el(n, name))
        return false;
    if (!want)
        return n->ns == NULL;
    return n->ns && n->ns->href && xmlStrcmp(n->ns->href, want->href) == 0;
}

static xmlNodePtr our_child(xmlNodePtr parent, const char *name)
{
    for (xmlNodePtr c = parent->children; c; c = c->next)
        if (ours(c, name, parent->ns))
            return c;
    return NULL;
}

int lv_parse_metadata(const char *xml, size_t len, lv_metadata *ret, caa_error **err)
{
    _cleanup_doc_ xmlDocPtr doc = NULL;
    int r = read_doc(xml, len, "domain metadata", &doc, err);
    if (r < 0)
        return r;
    xmlNodePtr root = xmlDocGetRootElement(doc);
    bool ns_ok =
        !root->ns || (root->ns->href && xmlStrcmp(root->ns->href, (const xmlChar *)LV_METADATA_NS) == 0);
    if (!is_el(root, "instance") || !ns_ok)
        return caa_error_set(err, -ENOENT, "domain metadata is not the adaptor's");
    lv_metadata m = {0};
    m.sandbox_id = text_of(our_child(root, "sandbox-id"));
    m.pool = text_of(our_child(root, "pool"));
    m.image = text_of(our_child(root, "image"));
    m.node = text_of(our_child(root, "node"));
    xmlNodePtr pod = our_child(root, "pod");
    m.pod_name = prop(pod, "name");
    m.pod_namespace = prop(pod, "namespace");
    if (!m.sandbox_id || !*m.sandbox_id) {
        lv_metadata_done(&m);
        return caa_error_set(err, -EPROTO, "adaptor metadata without a sandbox id");
    }
    if (m.pool && (!*m.pool || !lv_xml_text_ok(m.pool))) {
        lv_metadata_done(&m);
        return caa_error_set(err, -EPROTO, "adaptor metadata with an unusable pool name");
    }
    *ret = m;
    return 0;
}

bool lv_cpuinfo_has_hw_virt(const char *text, size_t len)
{
    const char *p = text, *end = text + len;
    while (p && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        if ((size_t)(eol - p) > 5 && memcmp(p, "flags", 5) == 0) {
            const char *colon = memchr(p, ':', (size_t)(eol - p));
            for (const char *w = colon ? colon + 1 : eol; w < eol;) {
                while (w < eol && (*w == ' ' || *w == '\t'))
                    w++;
                const char *we = w;
                while (we < eol && *we != ' ' && *we != '\t')
                    we++;
                size_t n = (size_t)(we - w);
                if (n == 3 && (memcmp(w, "vmx", 3) == 0 || memcmp(w, "svm", 3) == 0))
                    return true;
                w = we;
            }
        }
        p = nl ? nl + 1 : NULL;
    }
    return false;
}
