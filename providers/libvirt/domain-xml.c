/* Domain and volume XML for libvirt, through the libxml2 tree API. */
#include "domain-xml.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <libxml/tree.h>
#include <libxml/xmlsave.h>

#include "cleanup.h"
#include "xalloc.h"

#define X(s) ((const xmlChar *)(s))

static void docp_free(xmlDocPtr *d)
{
    if (*d)
        xmlFreeDoc(*d);
}
#define _cleanup_doc_ _cleanup_(docp_free)

/* Strict UTF-8 (no overlong forms, surrogates or values past U+10FFFF) of
 * characters XML 1.0 can carry, minus all control characters. libxml2's
 * xmlCheckUTF8 accepts overlong forms, which its own parser then rejects. */
bool lv_xml_text_ok(const char *s)
{
    if (!s)
        return true;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p, cp, n;
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return false;
            p++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        for (unsigned i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return false; /* overlong or out of range */
        if ((cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff || (cp >= 0x80 && cp <= 0x9f))
            return false; /* surrogates, XML non-characters, C1 controls */
        p += n + 1;
    }
    return true;
}

/* Building state: the first unusable value is remembered and reported once. */
typedef struct builder {
    xmlDocPtr doc;
    const char *bad; /* what carried an unusable value */
} builder;

static xmlNodePtr el(builder *b, xmlNodePtr parent, const char *name, const char *text)
{
    if (text && !lv_xml_text_ok(text) && !b->bad)
        b->bad = name;
    /* xmlNewTextChild escapes text; xmlNewChild would not. */
    return xmlNewTextChild(parent, NULL, X(name), text ? X(text) : NULL);
}

static xmlNodePtr elf(builder *b, xmlNodePtr parent, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static xmlNodePtr elf(builder *b, xmlNodePtr parent, const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *text = xvasprintf(fmt, ap);
    va_end(ap);
    return el(b, parent, name, text);
}

static void attr(builder *b, xmlNodePtr node, const char *name, const char *value)
{
    if (!lv_xml_text_ok(value) && !b->bad)
        b->bad = name;
    xmlNewProp(node, X(name), X(value));
}

/* Serialises and frees the document. */
static char *serialize(builder *b, caa_error **err)
{
    _cleanup_doc_ xmlDocPtr doc = TAKE_PTR(b->doc);
    if (b->bad) {
        caa_error_set(err, -EINVAL, "value for <%s> contains control characters or invalid UTF-8", b->bad);
        return NULL;
    }
    xmlBufferPtr buf = xmlBufferCreate();
    xmlSaveCtxtPtr ctx = xmlSaveToBuffer(buf, "UTF-8", XML_SAVE_FORMAT | XML_SAVE_NO_DECL);
    if (!ctx) {
        xmlBufferFree(buf);
        caa_oom();
    }
    long r = xmlSaveDoc(ctx, doc);
    xmlSaveClose(ctx);
    if (r < 0) {
        xmlBufferFree(buf);
        caa_error_set(err, -EIO, "serialising XML failed");
        return NULL;
    }
    char *out = xstrdup((const char *)xmlBufferContent(buf));
    xmlBufferFree(buf);
    return out;
}

static xmlNodePtr new_root(builder *b, const char *name)
{
    b->doc = xmlNewDoc(X("1.0"));
    if (!b->doc)
        caa_oom();
    xmlNodePtr root = xmlNewNode(NULL, X(name));
    xmlDocSetRootElement(b->doc, root);
    return root;
}

static void add_metadata(builder *b, xmlNodePtr domain, const lv_domain_params *p)
{
    xmlNodePtr md = el(b, domain, "metadata", NULL);
    xmlNodePtr inst = xmlNewChild(md, NULL, X("instance"), NULL);
    xmlNsPtr ns = xmlNewNs(inst, X(LV_METADATA_NS), X(LV_METADATA_PREFIX));
    xmlSetNs(inst, ns);
    xmlNewTextChild(inst, ns, X("sandbox-id"), X(p->sandbox_id));
    xmlNodePtr pod = xmlNewChild(inst, ns, X("pod"), NULL);
    if (p->pod_namespace)
        attr(b, pod, "namespace", p->pod_namespace);
    if (p->pod_name)
        attr(b, pod, "name", p->pod_name);
    xmlNewTextChild(inst, ns, X("pool"), X(p->pool));
    xmlNewTextChild(inst, ns, X("image"), X(p->image));
    if (p->idempotency_key)
        xmlNewTextChild(inst, ns, X("idempotency-key"), X(p->idempotency_key));
    if (p->node && *p->node)
        xmlNewTextChild(inst, ns, X("node"), X(p->node));
    for (size_t i = 0; p->tags && p->tags[i]; i++) {
        const char *eq = strchr(p->tags[i], '=');
        _cleanup_free_ char *key = eq ? xstrndup(p->tags[i], (size_t)(eq - p->tags[i])) : xstrdup(p->tags[i]);
        xmlNodePtr tag = xmlNewTextChild(inst, ns, X("tag"), X(eq ? eq + 1 : ""));
        attr(b, tag, "key", key);
    }
    const char *checked[] = {p->sandbox_id, p->pool, p->image, p->idempotency_key, p->node};
    for (size_t i = 0; i < CAA_ARRAY_SIZE(checked); i++)
        if (!lv_xml_text_ok(checked[i]) && !b->bad)
            b->bad = "metadata";
    for (size_t i = 0; p->tags && p->tags[i]; i++)
        if (!lv_xml_text_ok(p->tags[i]) && !b->bad)
            b->bad = "tag";
}

static void add_os(builder *b, xmlNodePtr domain, const lv_domain_params *p)
{
    static const char *const arch_names[] = {"x86_64", "s390x", "aarch64"};
    static const char *const machines[] = {"q35", "s390-ccw-virtio", "virt"};
    xmlNodePtr os = el(b, domain, "os", NULL);
    bool cvm_rom = p->launch == LV_LAUNCH_SEV_SNP || p->launch == LV_LAUNCH_TDX;
    if (p->arch != LV_ARCH_S390X && !p->loader)
        attr(b, os, "firmware", "efi");
    xmlNodePtr type = el(b, os, "type", "hvm");
    attr(b, type, "arch", arch_names[p->arch]);
    attr(b, type, "machine", p->machine ? p->machine : machines[p->arch]);
    if (p->arch != LV_ARCH_S390X && p->loader) {
        xmlNodePtr loader = el(b, os, "loader", p->loader);
        if (cvm_rom) {
            /* Encrypted guests boot from a measured ROM image without a
             * separate variable store (QEMU -bios). */
            attr(b, loader, "type", "rom");
            attr(b, loader, "stateless", "yes");
        } else {
            attr(b, loader, "readonly", "yes");
            attr(b, loader, "type", "pflash");
        }
    }
}

static void add_features_cpu(builder *b, xmlNodePtr domain, const lv_domain_params *p)
{
    bool kvm = strcmp(p->domain_type, "kvm") == 0;
    if (p->arch == LV_ARCH_X86_64) {
        xmlNodePtr f = el(b, domain, "features", NULL);
        el(b, f, "acpi", NULL);
        el(b, f, "apic", NULL);
        attr(b, el(b, f, "vmport", NULL), "state", "off");
        /* TDX needs the split IRQ chip (I/O APIC emulated by QEMU). */
        if (p->launch == LV_LAUNCH_TDX)
            attr(b, el(b, f, "ioapic", NULL), "driver", "qemu");
    } else if (p->arch == LV_ARCH_AARCH64) {
        xmlNodePtr f = el(b, domain, "features", NULL);
        el(b, f, "acpi", NULL);
        attr(b, el(b, f, "gic", NULL), "version", "3");
    }
    /* TCG cannot model the host CPU; QEMU's default model is used then. */
    if (!kvm)
        return;
    bool passthrough =
        p->arch == LV_ARCH_AARCH64 || p->launch == LV_LAUNCH_SEV_SNP || p->launch == LV_LAUNCH_TDX;
    attr(b, el(b, domain, "cpu", NULL), "mode", passthrough ? "host-passthrough" : "host-model");
}

static void add_volume_disk(builder *b, xmlNodePtr devices, const lv_domain_params *p, bool root,
                            const char *dev, const char *bus, bool iommu)
{
    bool cdrom = !root && strcmp(bus, "virtio") != 0;
    xmlNodePtr disk = el(b, devices, "disk", NULL);
    attr(b, disk, "type", "volume");
    attr(b, disk, "device", cdrom ? "cdrom" : "disk");
    xmlNodePtr drv = el(b, disk, "driver", NULL);
    attr(b, drv, "name", "qemu");
    attr(b, drv, "type", root ? "qcow2" : "raw");
    if (iommu)
        attr(b, drv, "iommu", "on");
    xmlNodePtr src = el(b, disk, "source", NULL);
    attr(b, src, "pool", p->pool);
    attr(b, src, "volume", root ? p->root_volume : p->cidata_volume);
    xmlNodePtr tgt = el(b, disk, "target", NULL);
    attr(b, tgt, "dev", dev);
    attr(b, tgt, "bus", bus);
    if (root)
        attr(b, el(b, disk, "boot", NULL), "order", "1");
    else
        el(b, disk, "readonly", NULL);
    if (strcmp(bus, "sata") == 0 || strcmp(bus, "scsi") == 0) {
        xmlNodePtr addr = el(b, disk, "address", NULL);
        attr(b, addr, "type", "drive");
        attr(b, addr, "controller", "0");
        attr(b, addr, "bus", "0");
        attr(b, addr, "target", "0");
        attr(b, addr, "unit", root || strcmp(bus, "scsi") == 0 ? "0" : "1");
    }
}

static void add_iommu_driver(builder *b, xmlNodePtr dev, bool iommu)
{
    if (iommu)
        attr(b, el(b, dev, "driver", NULL), "iommu", "on");
}

static void add_devices(builder *b, xmlNodePtr domain, const lv_domain_params *p)
{
    xmlNodePtr devices = el(b, domain, "devices", NULL);
    bool cvm = p->launch != LV_LAUNCH_NONE;
    /* Virtio devices of encrypted or protected guests must use the platform
     * IOMMU path (bounce buffers in shared memory). s390x follows upstream,
     * which sets it on every virtio device. */
    bool iommu = cvm || p->arch != LV_ARCH_X86_64;

    switch (p->arch) {
    case LV_ARCH_X86_64:
        add_volume_disk(b, devices, p, true, "sda", "sata", false);
        add_volume_disk(b, devices, p, false, "sdb", "sata", false);
        break;
    case LV_ARCH_S390X:
        add_volume_disk(b, devices, p, true, "vda", "virtio", iommu);
        add_volume_disk(b, devices, p, false, "vdb", "virtio", iommu);
        break;
    case LV_ARCH_AARCH64: {
        add_volume_disk(b, devices, p, true, "vda", "virtio", iommu);
        xmlNodePtr ctl = el(b, devices, "controller", NULL);
        attr(b, ctl, "type", "scsi");
        attr(b, ctl, "index", "0");
        attr(b, ctl, "model", "virtio-scsi");
        add_iommu_driver(b, ctl, iommu);
        add_volume_disk(b, devices, p, false, "sda", "scsi", false);
        break;
    }
    }

    xmlNodePtr nic = el(b, devices, "interface", NULL);
    attr(b, nic, "type", "network");
    attr(b, el(b, nic, "source", NULL), "network", p->network);
    attr(b, el(b, nic, "model", NULL), "type", "virtio");
    add_iommu_driver(b, nic, iommu);

    if (p->arch == LV_ARCH_S390X) {
        xmlNodePtr con = el(b, devices, "console", NULL);
        attr(b, con, "type", "pty");
        if (p->console_log) {
            xmlNodePtr log = el(b, con, "log", NULL);
            attr(b, log, "file", p->console_log);
            attr(b, log, "append", "off");
        }
        xmlNodePtr t = el(b, con, "target", NULL);
        attr(b, t, "type", "sclp");
        attr(b, t, "port", "0");
    } else {
        xmlNodePtr ser = el(b, devices, "serial", NULL);
        attr(b, ser, "type", "pty");
        if (p->console_log) {
            xmlNodePtr log = el(b, ser, "log", NULL);
            attr(b, log, "file", p->console_log);
            attr(b, log, "append", "off");
        }
        attr(b, el(b, ser, "target", NULL), "port", "0");
        xmlNodePtr con = el(b, devices, "console", NULL);
        attr(b, con, "type", "pty");
        xmlNodePtr t = el(b, con, "target", NULL);
        attr(b, t, "type", "serial");
        attr(b, t, "port", "0");
    }

    if (p->arch != LV_ARCH_X86_64) {
        xmlNodePtr rng = el(b, devices, "rng", NULL);
        attr(b, rng, "model", "virtio");
        attr(b, el(b, rng, "backend", "/dev/urandom"), "model", "random");
        add_iommu_driver(b, rng, iommu);
    }
    /* A balloon lets the host read guest pages back; useless for encrypted
     * guests, so they get none. */
    xmlNodePtr balloon = el(b, devices, "memballoon", NULL);
    if (cvm && p->arch == LV_ARCH_X86_64) {
        attr(b, balloon, "model", "none");
    } else {
        attr(b, balloon, "model", "virtio");
        add_iommu_driver(b, balloon, iommu);
    }
}

static void add_launch_security(builder *b, xmlNodePtr domain, const lv_domain_params *p)
{
    xmlNodePtr ls;
    switch (p->launch) {
    case LV_LAUNCH_NONE:
    case LV_LAUNCH_S390_PV:
        /* s390-pv needs no element: the guest image is prepared for protected
         * virtualization and the IOMMU setting above does the rest. */
        return;
    case LV_LAUNCH_SEV_SNP:
        ls = el(b, domain, "launchSecurity", NULL);
        attr(b, ls, "type", "sev-snp");
        elf(b, ls, "cbitpos", "%u", p->sev_cbitpos);
        elf(b, ls, "reducedPhysBits", "%u", p->sev_reduced_phys_bits);
        elf(b, ls, "policy", "0x%08" PRIx64, p->snp_policy);
        return;
    case LV_LAUNCH_TDX:
        ls = el(b, domain, "launchSecurity", NULL);
        attr(b, ls, "type", "tdx");
        elf(b, ls, "policy", "0x%08" PRIx64, p->tdx_policy);
        /* Quotes for remote attestation come from the host's QGS daemon. */
        el(b, ls, "quoteGenerationService", NULL);
        return;
    }
}

char *lv_domain_xml(const lv_domain_params *p, caa_error **err)
{
    builder b = {0};
    xmlNodePtr domain = new_root(&b, "domain");

    attr(&b, domain, "type", p->domain_type);
    el(&b, domain, "name", p->name);
    el(&b, domain, "uuid", p->uuid);
    el(&b, domain, "description", LV_DESCRIPTION);
    add_metadata(&b, domain, p);
    xmlNodePtr mem = elf(&b, domain, "memory", "%" PRId64, p->memory_mib);
    attr(&b, mem, "unit", "MiB");
    attr(&b, mem, "dumpCore", "on");
    xmlNodePtr vcpu = elf(&b, domain, "vcpu", "%" PRId64, p->vcpus);
    attr(&b, vcpu, "placement", "static");
    if (p->cpuset && *p->cpuset)
        attr(&b, vcpu, "cpuset", p->cpuset);
    add_os(&b, domain, p);
    add_features_cpu(&b, domain, p);
    attr(&b, el(&b, domain, "clock", NULL), "offset", "utc");
    el(&b, domain, "on_poweroff", "destroy");
    el(&b, domain, "on_reboot", "restart");
    el(&b, domain, "on_crash", "destroy");
    add_devices(&b, domain, p);
    add_launch_security(&b, domain, p);
    return serialize(&b, err);
}

/* <volume> with name, capacity and a 0644 target of the given format. */
static xmlNodePtr volume_head(builder *b, const char *name, uint64_t capacity_bytes, const char *format)
{
    xmlNodePtr vol = new_root(b, "volume");
    el(b, vol, "name", name);
    attr(b, elf(b, vol, "capacity", "%" PRIu64, capacity_bytes), "unit", "bytes");
    xmlNodePtr target = el(b, vol, "target", NULL);
    attr(b, el(b, target, "format", NULL), "type", format);
    el(b, el(b, target, "permissions", NULL), "mode", "0644");
    return vol;
}

char *lv_root_volume_xml(const char *name, uint64_t capacity_bytes, const char *backing_path,
                         const char *backing_format, caa_error **err)
{
    builder b = {0};
    xmlNodePtr vol = volume_head(&b, name, capacity_bytes, "qcow2");
    xmlNodePtr backing = el(&b, vol, "backingStore", NULL);
    el(&b, backing, "path", backing_path);
    attr(&b, el(&b, backing, "format", NULL), "type",
         backing_format && *backing_format ? backing_format : "qcow2");
    return serialize(&b, err);
}

char *lv_raw_volume_xml(const char *name, uint64_t capacity_bytes, caa_error **err)
{
    builder b = {0};
    volume_head(&b, name, capacity_bytes, "raw");
    return serialize(&b, err);
}
