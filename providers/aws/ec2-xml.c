/* Readers of EC2/STS Query-protocol answers (see ec2-xml.h). */
#include "ec2-xml.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "cleanup.h"
#include "parse.h"
#include "xalloc.h"

/* Longest text we keep from one element (ids, addresses, messages). */
#define MAX_TEXT 65536

static void doc_freep(xmlDocPtr *d)
{
    if (*d)
        xmlFreeDoc(*d);
}
#define _cleanup_doc_ _cleanup_(doc_freep)

static xmlDocPtr read_doc(const char *xml, size_t len)
{
    if (!xml || len == 0 || len > INT_MAX)
        return NULL;
    xmlDocPtr d =
        xmlReadMemory(xml, (int)len, NULL, NULL,
                      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA);
    if (!d)
        return NULL;
    /* EC2 never sends a DTD; one could only serve entity expansion games. */
    if (d->intSubset || d->extSubset || !xmlDocGetRootElement(d)) {
        xmlFreeDoc(d);
        return NULL;
    }
    return d;
}

static bool is(const xmlNode *n, const char *name)
{
    return n && n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

static xmlNodePtr child(const xmlNode *n, const char *name)
{
    for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next)
        if (is(c, name))
            return c;
    return NULL;
}

/* child(child(n, a), b)... for a "a/b/c" path. */
static xmlNodePtr path(const xmlNode *n, const char *p)
{
    char buf[128];
    const xmlNode *cur = n;
    while (cur && *p) {
        size_t l = strcspn(p, "/");
        if (l >= sizeof(buf))
            return NULL;
        memcpy(buf, p, l);
        buf[l] = '\0';
        cur = child(cur, buf);
        p += l;
        if (*p == '/')
            p++;
    }
    return (xmlNodePtr)cur;
}

/* The element's own text (text and CDATA children), or NULL when the element
 * is missing. Whitespace at the ends is kept: the SDK keeps it too. */
static char *text(const xmlNode *n)
{
    if (!n)
        return NULL;
    size_t len = 0;
    for (xmlNodePtr c = n->children; c; c = c->next)
        if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content)
            len += strlen((const char *)c->content);
    if (len > MAX_TEXT)
        len = MAX_TEXT;
    char *out = xmalloc(len + 1);
    size_t o = 0;
    for (xmlNodePtr c = n->children; c && o < len; c = c->next) {
        if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content) {
            size_t l = strlen((const char *)c->content);
            if (l > len - o)
                l = len - o;
            memcpy(out + o, c->content, l);
            o += l;
        }
    }
    out[o] = '\0';
    return out;
}

static char *path_text(const xmlNode *n, const char *p)
{
    return text(path(n, p));
}

/* Integer element: -1 missing, -EPROTO malformed, 0 ok. */
static int path_int(const xmlNode *n, const char *p, int64_t *ret)
{
    _cleanup_free_ char *t = path_text(n, p);
    if (!t)
        return -1;
    char *b = t;
    while (isspace((unsigned char)*b))
        b++;
    char *e = b + strlen(b);
    while (e > b && isspace((unsigned char)e[-1]))
        *--e = '\0';
    if (caa_parse_int64(b, INT64_MIN, INT64_MAX, ret) < 0)
        return -EPROTO;
    return 0;
}

static int bad(caa_error **err, const char *what)
{
    return caa_error_set(err, -EPROTO, "malformed %s answer", what);
}

/* Reads the answer into *doc; its root element when that is <action>Response. */
static xmlNodePtr response_root(xmlDocPtr *doc, const char *xml, size_t len, const char *action)
{
    *doc = read_doc(xml, len);
    xmlNodePtr root = *doc ? xmlDocGetRootElement(*doc) : NULL;
    _cleanup_free_ char *want = xasprintf("%sResponse", action);
    return is(root, want) ? root : NULL;
}

/* ---- errors ---- */

void ec2_error_done(ec2_error *e)
{
    if (!e)
        return;
    free(e->code);
    free(e->message);
    free(e->request_id);
    memset(e, 0, sizeof(*e));
}

int ec2_parse_error(const char *xml, size_t len, ec2_error *ret)
{
    memset(ret, 0, sizeof(*ret));
    _cleanup_doc_ xmlDocPtr d = read_doc(xml, len);
    if (!d)
        return -EPROTO;
    xmlNodePtr root = xmlDocGetRootElement(d);
    xmlNodePtr error = NULL;
    if (is(root, "Response"))
        error = path(root, "Errors/Error");
    else if (is(root, "ErrorResponse"))
        error = child(root, "Error");
    else if (is(root, "Error"))
        error = root;
    if (!error || !child(error, "Code"))
        return -EPROTO;
    ret->code = path_text(error, "Code");
    ret->message = path_text(error, "Message");
    ret->request_id = path_text(root, "RequestID");
    if (!ret->request_id)
        ret->request_id = path_text(root, "RequestId");
    return 0;
}

/* ---- instances ---- */

static size_t count_items(const xmlNode *set)
{
    size_t n = 0;
    for (xmlNodePtr c = set ? set->children : NULL; c; c = c->next)
        n += is(c, "item");
    return n;
}

/* item/tagSet/item/{key,value}; a missing key or value reads as "". */
static void parse_tags(const xmlNode *item, aws_kv **ret, size_t *ret_n)
{
    xmlNodePtr tags = child(item, "tagSet");
    size_t nt = count_items(tags);
    if (!nt)
        return;
    *ret = xnew0(aws_kv, nt);
    for (xmlNodePtr c = tags->children; c; c = c->next) {
        if (!is(c, "item"))
            continue;
        char *k = path_text(c, "key");
        char *v = path_text(c, "value");
        (*ret)[*ret_n].key = k ? k : xstrdup("");
        (*ret)[*ret_n].value = v ? v : xstrdup("");
        (*ret_n)++;
    }
}

static void tags_free(aws_kv *tags, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        free((char *)tags[k].key);
        free((char *)tags[k].value);
    }
    free(tags);
}

const char *ec2_tag(const aws_kv *tags, size_t n_tags, const char *key)
{
    for (size_t i = 0; i < n_tags; i++)
        if (strcmp(tags[i].key, key) == 0)
            return tags[i].value;
    return NULL;
}

static void instance_done(ec2_instance *i)
{
    free(i->id);
    free(i->state);
    free(i->instance_type);
    free(i->private_ip);
    free(i->public_ip);
    for (size_t k = 0; k < i->n_nics; k++) {
        free(i->nics[k].private_ip);
        free(i->nics[k].public_ip);
    }
    free(i->nics);
    tags_free(i->tags, i->n_tags);
}

void ec2_instance_list_done(ec2_instance_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        instance_done(&l->v[i]);
    free(l->v);
    free(l->next_token);
    memset(l, 0, sizeof(*l));
}

static int parse_instance(const xmlNode *item, ec2_instance *inst)
{
    inst->id = path_text(item, "instanceId");
    inst->state = path_text(item, "instanceState/name");
    if (!inst->state)
        inst->state = path_text(item, "currentState/name");
    inst->instance_type = path_text(item, "instanceType");
    inst->private_ip = path_text(item, "privateIpAddress");
    inst->public_ip = path_text(item, "ipAddress");
    xmlNodePtr nics = child(item, "networkInterfaceSet");
    size_t nn = count_items(nics);
    if (nn) {
        inst->nics = xnew0(ec2_nic, nn);
        for (xmlNodePtr c = nics->children; c; c = c->next) {
            if (!is(c, "item"))
                continue;
            ec2_nic *nic = &inst->nics[inst->n_nics++];
            nic->private_ip = path_text(c, "privateIpAddress");
            nic->public_ip = path_text(c, "association/publicIp");
            int r = path_int(c, "attachment/deviceIndex", &nic->device_index);
            if (r == -1)
                nic->device_index = -1;
            else if (r < 0)
                return r;
        }
    }
    parse_tags(item, &inst->tags, &inst->n_tags);
    return 0;
}

static int parse_instance_set(const xmlNode *set, ec2_instance_list *ret)
{
    size_t n = count_items(set);
    if (!n)
        return 0;
    ret->v = xrealloc(ret->v, (ret->n + n) * sizeof(*ret->v));
    memset(ret->v + ret->n, 0, n * sizeof(*ret->v));
    for (xmlNodePtr c = set->children; c; c = c->next) {
        if (!is(c, "item"))
            continue;
        int r = parse_instance(c, &ret->v[ret->n++]);
        if (r < 0)
            return r;
    }
    return 0;
}

int ec2_parse_run_instances(const char *xml, size_t len, ec2_instance_list *ret, caa_error **err)
{
    memset(ret, 0, sizeof(*ret));
    _cleanup_doc_ xmlDocPtr d = NULL;
    xmlNodePtr root = response_root(&d, xml, len, "RunInstances");
    if (!root)
        return bad(err, "RunInstances");
    if (parse_instance_set(child(root, "instancesSet"), ret) < 0) {
        ec2_instance_list_done(ret);
        return bad(err, "RunInstances");
    }
    return 0;
}

int ec2_parse_describe_instances(const char *xml, size_t len, ec2_instance_list *ret, caa_error **err)
{
    memset(ret, 0, sizeof(*ret));
    _cleanup_doc_ xmlDocPtr d = NULL;
    xmlNodePtr root = response_root(&d, xml, len, "DescribeInstances");
    if (!root)
        return bad(err, "DescribeInstances");
    xmlNodePtr set = child(root, "reservationSet");
    for (xmlNodePtr c = set ? set->children : NULL; c; c = c->next) {
        if (!is(c, "item"))
            continue;
        if (parse_instance_set(child(c, "instancesSet"), ret) < 0) {
            ec2_instance_list_done(ret);
            return bad(err, "DescribeInstances");
        }
    }
    ret->next_token = path_text(root, "nextToken");
    return 0;
}

int ec2_parse_terminate_instances(const char *xml, size_t len, ec2_instance_list *ret, caa_error **err)
{
    memset(ret, 0, sizeof(*ret));
    _cleanup_doc_ xmlDocPtr d = NULL;
    xmlNodePtr root = response_root(&d, xml, len, "TerminateInstances");
    if (!root)
        return bad(err, "TerminateInstances");
    if (parse_instance_set(child(root, "instancesSet"), ret) < 0) {
        ec2_instance_list_done(ret);
        return bad(err, "TerminateInstances");
    }
    return 0;
}

const char *ec2_instance_tag(const ec2_instance *inst, const char *key)
{
    return ec2_tag(inst->tags, inst->n_tags, key);
}

static const ec2_nic *primary_nic(const ec2_instance *inst)
{
    for (size_t i = 0; i < inst->n_nics; i++)
        if (inst->nics[i].device_index == 0)
            return &inst->nics[i];
    return inst->n_nics ? &inst->nics[0] : NULL;
}

static const char *nonempty(const char *s)
{
    return s && *s ? s : NULL;
}

const char *ec2_instance_address(const ec2_instance *inst, int want_public)
{
    const ec2_nic *nic = primary_nic(inst);
    if (want_public) {
        if (nic && nonempty(nic->public_ip))
            return nic->public_ip;
        return nonempty(inst->public_ip);
    }
    if (nonempty(inst->private_ip))
        return inst->private_ip;
    return nic ? nonempty(nic->private_ip) : NULL;
}

/* ---- instance types ---- */

void ec2_instance_type_list_done(ec2_instance_type_list *l)
{
    if (!l)
        return;
    caa_instance_types_free(l->v, l->n);
    free(l->next_token);
    memset(l, 0, sizeof(*l));
}

int ec2_parse_describe_instance_types(const char *xml, size_t len, ec2_instance_type_list *ret,
                                      caa_error **err)
{
    memset(ret, 0, sizeof(*ret));
    _cleanup_doc_ xmlDocPtr d = NULL;
    xmlNodePtr root = response_root(&d, xml, len, "DescribeInstanceTypes");
    if (!root)
        return bad(err, "DescribeInstanceTypes");
    xmlNodePtr set = child(root, "instanceTypeSet");
    size_t n = count_items(set);
    ret->v = xnew0(caa_instance_type, n ? n : 1);
    for (xmlNodePtr c = set ? set->children : NULL; c; c = c->next) {
        if (!is(c, "item"))
            continue;
        caa_instance_type *t = &ret->v[ret->n++];
        t->name = path_text(c, "instanceType");
        int r = path_int(c, "vCpuInfo/defaultVCpus", &t->vcpus);
        if (r == -EPROTO || (r = path_int(c, "memoryInfo/sizeInMiB", &t->memory_mib)) == -EPROTO ||
            !t->name) {
            ec2_instance_type_list_done(ret);
            return bad(err, "DescribeInstanceTypes");
        }
        xmlNodePtr gpus = path(c, "gpuInfo/gpus");
        for (xmlNodePtr g = gpus ? gpus->children : NULL; g; g = g->next) {
            int64_t count = 0;
            if (!is(g, "item"))
                continue;
            r = path_int(g, "count", &count);
            if (r == -EPROTO || count < 0 || count > 1024) {
                ec2_instance_type_list_done(ret);
                return bad(err, "DescribeInstanceTypes");
            }
            t->gpus += r == 0 ? count : 0;
        }
    }
    ret->next_token = path_text(root, "nextToken");
    return 0;
}

/* ---- images ---- */

void ec2_image_list_done(ec2_image_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].id);
        free(l->v[i].root_device_name);
    }
    free(l->v);
    memset(l, 0, sizeof(*l));
}

int ec2_parse_describe_images(const char *xml, size_t len, ec2_image_list *ret, caa_error **err)
{
    memset(ret, 0, sizeof(*ret));
    _cleanup_doc_ xmlDocPtr d = NULL;
    xmlNodePtr root = response_root(&d, xml, len, "DescribeImages");
    if (!root)
        return bad(err, "DescribeImages");
    xmlNodePtr set = child(root, "imagesSet");
    size_t n = count_items(set);
    ret->v = xnew0(ec2_image, n ? n : 1);
    for (xmlNodePtr c = set ? set->children : NULL; c; c = c->next) {
        if (!is(c, "item"))
            continue;
        ec2_image *img = &ret->v[ret->n++];
        img->id = path_text(c, "imageId");
        img->root_device_name = path_text(c, "rootDeviceName");
        xmlNodePtr maps = child(c, "blockDeviceMapping");
        int64_t first = 0, root_size = 0;
        bool have_first = false, have_root = false;
        for (xmlNodePtr m = maps ? maps->children : NULL; m; m = m->next) {
            if (!is(m, "item"))
                continue;
            _cleanup_free_ char *dev = path_text(m, "deviceName");
            int64_t size = 0;
            int r = path_int(m, "ebs/volumeSize", &size);
            if (r == -EPROTO || size < 0) {
                ec2_image_list_done(ret);
                return bad(err, "DescribeImages");
            }
            if (r != 0)
                size = 0;
            if (!have_first) {
                first = size;
                have_first = true;
            }
            if (!have_root && dev && img->root_device_name && strcmp(dev, img->root_device_name) == 0) {
                root_size = size;
                have_root = true;
            }
        }
        img->root_volume_size = have_root ? root_size : first;
    }
    return 0;
}

/* ---- addresses ---- */

void ec2_address_list_done(ec2_address_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].public_ip);
        free(l->v[i].allocation_id);
        free(l->v[i].association_id);
        free(l->v[i].instance_id);
        free(l->v[i].network_interface_id);
        tags_free(l->v[i].tags, l->v[i].n_tags);
    }
    free(l->v);
    memset(l, 0, sizeof(*l));
}

int ec2_parse_describe_addresses(const char *xml, size_t len, ec2_address_list *ret, caa_error **err)
{
    memset(ret, 0, sizeof(*ret));
    _cleanup_doc_ xmlDocPtr d = NULL;
    xmlNodePtr root = response_root(&d, xml, len, "DescribeAddresses");
    if (!root)
        return bad(err, "DescribeAddresses");
    xmlNodePtr set = child(root, "addressesSet");
    size_t n = count_items(set);
    ret->v = xnew0(ec2_address, n ? n : 1);
    for (xmlNodePtr c = set ? set->children : NULL; c; c = c->next) {
        if (!is(c, "item"))
            continue;
        ec2_address *a = &ret->v[ret->n++];
        a->public_ip = path_text(c, "publicIp");
        a->allocation_id = path_text(c, "allocationId");
        a->association_id = path_text(c, "associationId");
        a->instance_id = path_text(c, "instanceId");
        a->network_interface_id = path_text(c, "networkInterfaceId");
        parse_tags(c, &a->tags, &a->n_tags);
    }
    return 0;
}

/* ---- network interfaces ---- */

void ec2_eni_list_done(ec2_eni_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].id);
        free(l->v[i].status);
        free(l->v[i].attached_instance_id);
        free(l->v[i].attachment_id);
        tags_free(l->v[i].tags, l->v[i].n_tags);
    }
    free(l->v);
    free(l->next_token);
    memset(l, 0, sizeof(*l));
}

int ec2_parse_describe_network_interfaces(const char *xml, size_t len, ec2_eni_list *ret, caa_error **err)
{
    memset(ret, 0, sizeof(*ret));
    _cleanup_doc_ xmlDocPtr d = NULL;
    xmlNodePtr root = response_root(&d, xml, len, "DescribeNetworkInterfaces");
    if (!root)
        return bad(err, "DescribeNetworkInterfaces");
    xmlNodePtr set = child(root, "networkInterfaceSet");
    size_t n = count_items(set);
    ret->v = xnew0(ec2_eni, n ? n : 1);
    for (xmlNodePtr c = set ? set->children : NULL; c; c = c->next) {
        if (!is(c, "item"))
            continue;
        ec2_eni *eni = &ret->v[ret->n++];
        eni->id = path_text(c, "networkInterfaceId");
        eni->status = path_text(c, "status");
        eni->attached_instance_id = path_text(c, "attachment/instanceId");
        eni->attachment_id = path_text(c, "attachment/attachmentId");
        _cleanup_free_ char *dot = path_text(c, "attachment/deleteOnTermination");
        eni->delete_on_termination = dot && strcmp(dot, "true") == 0;
        parse_tags(c, &eni->tags, &eni->n_tags);
    }
    ret->next_token = path_text(root, "nextToken");
    return 0;
}

/* The id-like text at `at` under <action>Response: present, 1..255 of
 * [A-Za-z0-9-] (what EC2 ids look like; it goes into the next request). */
static int response_id(const char *xml, size_t len, const char *action, const char *at, char **ret,
                       caa_error **err)
{
    _cleanup_doc_ xmlDocPtr d = NULL;
    xmlNodePtr root = response_root(&d, xml, len, action);
    if (!root)
        return bad(err, action);
    _cleanup_free_ char *id = path_text(root, at);
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > 255 ||
        strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != n)
        return caa_error_set(err, -EPROTO, "malformed %s answer (no usable %s)", action, at);
    *ret = TAKE_PTR(id);
    return 0;
}

int ec2_parse_create_network_interface(const char *xml, size_t len, char **ret_eni_id, caa_error **err)
{
    return response_id(xml, len, "CreateNetworkInterface", "networkInterface/networkInterfaceId", ret_eni_id,
                       err);
}

int ec2_parse_attach_network_interface(const char *xml, size_t len, char **ret_attachment_id, caa_error **err)
{
    return response_id(xml, len, "AttachNetworkInterface", "attachmentId", ret_attachment_id, err);
}

int ec2_parse_allocate_address(const char *xml, size_t len, char **ret_allocation_id, caa_error **err)
{
    return response_id(xml, len, "AllocateAddress", "allocationId", ret_allocation_id, err);
}

int ec2_parse_expect_root(const char *xml, size_t len, const char *root_name, caa_error **err)
{
    _cleanup_doc_ xmlDocPtr d = read_doc(xml, len);
    xmlNodePtr root = d ? xmlDocGetRootElement(d) : NULL;
    if (!is(root, root_name))
        return caa_error_set(err, -EPROTO, "malformed answer (expected %s)", root_name);
    return 0;
}

/* ---- STS ---- */

int aws_parse_iso8601(const char *s, time_t *ret)
{
    struct tm tm = {0};
    if (!s)
        return -EINVAL;
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return -EINVAL;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return -EINVAL;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0 && strcmp(p, "z") != 0)
        return -EINVAL;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -EINVAL;
    *ret = t;
    return 0;
}

int sts_parse_assume_role(const char *xml, size_t len, aws_credentials *ret, caa_error **err)
{
    memset(ret, 0, sizeof(*ret));
    _cleanup_doc_ xmlDocPtr d = NULL;
    xmlNodePtr root = response_root(&d, xml, len, "AssumeRoleWithWebIdentity");
    if (!root)
        return bad(err, "AssumeRoleWithWebIdentity");
    xmlNodePtr c = path(root, "AssumeRoleWithWebIdentityResult/Credentials");
    _cleanup_free_ char *exp = path_text(c, "Expiration");
    ret->access_key_id = path_text(c, "AccessKeyId");
    ret->secret_access_key = path_text(c, "SecretAccessKey");
    ret->session_token = path_text(c, "SessionToken");
    if (!ret->access_key_id || !*ret->access_key_id || !ret->secret_access_key || !*ret->secret_access_key ||
        !ret->session_token || !exp || aws_parse_iso8601(exp, &ret->expiration) < 0) {
        aws_credentials_clear(ret);
        return bad(err, "AssumeRoleWithWebIdentity");
    }
    return 0;
}
