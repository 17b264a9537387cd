/* Feeds one input to every reader of libvirt's answers (capabilities,
 * domain capabilities, volume XML, our metadata, /proc/cpuinfo, cpuset) and
 * checks the domain XML writer's escaping: a pod name built from the input
 * is either rejected or comes back unchanged from a parse of the output.
 * Also reads the input as a volume name (pod-volumes.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "domain-xml.h"
#include "libvirt-config.h"
#include "libvirt-parse.h"
#include "pod-volumes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_writer(const char *s)
{
    lv_domain_params p = {
        .name = "podvm-fuzz-00000000",
        .uuid = "00000000-0000-4000-8000-000000000000",
        .domain_type = "qemu",
        .vcpus = 1,
        .memory_mib = 64,
        .pool = "p",
        .root_volume = "r",
        .cidata_volume = "c",
        .network = "n",
        .sandbox_id = "sb",
        .pod_name = s,
        .image = "img",
    };
    caa_error *err = NULL;
    char *xml = lv_domain_xml(&p, &err);
    if (!xml) {
        caa_error_free(err);
        return;
    }
    xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), NULL, NULL, XML_PARSE_NONET | XML_PARSE_NOERROR);
    if (!doc)
        abort(); /* the writer produced something that is not XML */
    xmlNodePtr md = NULL;
    for (xmlNodePtr c = xmlDocGetRootElement(doc)->children; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name, "metadata") == 0)
            md = c;
    xmlNodePtr inst = md ? xmlFirstElementChild(md) : NULL;
    xmlNodePtr pod = NULL;
    for (xmlNodePtr c = inst ? inst->children : NULL; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name, "pod") == 0)
            pod = c;
    xmlChar *name = pod ? xmlGetProp(pod, (const xmlChar *)"name") : NULL;
    if (!name || strcmp((const char *)name, s) != 0)
        abort(); /* escaping changed the value */
    xmlFree(name);
    xmlFreeDoc(doc);
    free(xml);
}

/* A volume name that reads as a pod's gives back an instance name whose own
 * volume names include it again. */
static void check_volume_name(const char *s)
{
    char *name = lv_volume_instance_name(s);
    if (!name)
        return;
    char *root = lv_root_volume_name(name);
    char *iso = lv_cidata_volume_name(name);
    char uuid[VIR_UUID_STRING_BUFLEN];
    if ((strcmp(root, s) != 0 && strcmp(iso, s) != 0) || lv_instance_uuid(name, uuid) < 0 ||
        strlen(uuid) != 36)
        abort();
    free(root);
    free(iso);
    free(name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *xml = (const char *)data;
    caa_error *err = NULL;

    lv_caps caps = {0};
    if (lv_parse_capabilities(xml, size, &caps, &err) == 0)
        lv_caps_done(&caps);
    caa_error_free(err);
    err = NULL;

    lv_domcaps dc = {0};
    if (lv_parse_domcaps(xml, size, &dc, &err) == 0)
        lv_domcaps_done(&dc);
    caa_error_free(err);
    err = NULL;

    char *format = NULL;
    if (lv_parse_volume_format(xml, size, &format, &err) == 0)
        free(format);
    caa_error_free(err);
    err = NULL;

    lv_metadata md = {0};
    if (lv_parse_metadata(xml, size, &md, &err) == 0)
        lv_metadata_done(&md);
    caa_error_free(err);

    (void)lv_cpuinfo_has_hw_virt(xml, size);

    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    (void)lv_cpuset_valid(s);
    check_volume_name(s);
    if (size < 4096)
        check_writer(s);
    free(s);
    return 0;
}
