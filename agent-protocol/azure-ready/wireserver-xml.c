/* XML of the WireServer exchange (libxml2): versions and goal state in,
 * the Health report out. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "cleanup.h"
#include "wireserver.h"
#include "xalloc.h"

void caa_wire_goal_state_done(caa_wire_goal_state *gs)
{
    free(gs->incarnation);
    free(gs->container_id);
    free(gs->instance_id);
    *gs = (caa_wire_goal_state){0};
}

static void doc_freep(xmlDocPtr *d)
{
    if (*d)
        xmlFreeDoc(*d);
}

/* No network, no DTD loading, no entity substitution: the document is
 * data, nothing in it may make the parser fetch or expand anything. */
static xmlDocPtr parse(const char *xml, size_t len, const char *what, caa_error **err)
{
    if (len > CAA_WIRE_MAX_BODY || len > INT32_MAX) {
        caa_error_set(err, -EINVAL, "%s: answer of %zu bytes is too large", what, len);
        return NULL;
    }
    xmlDocPtr d =
        xmlReadMemory(xml, (int)len, NULL, NULL, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!d)
        caa_error_set(err, -EINVAL, "%s: not well-formed XML", what);
    return d;
}

static bool named(xmlNodePtr n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

/* Follows the element path (child names, NULL-terminated) down from n and
 * returns the last element's text, or NULL when a step is missing or the
 * text is empty. The first matching child is taken at every step. */
static char *text_at(xmlNodePtr n, ...)
{
    va_list ap;
    va_start(ap, n);
    for (const char *step; n && (step = va_arg(ap, const char *));) {
        xmlNodePtr c = n->children;
        while (c && !named(c, step))
            c = c->next;
        n = c;
    }
    va_end(ap);
    xmlChar *t = n ? xmlNodeGetContent(n) : NULL;
    char *ret = t && *t ? xstrdup((const char *)t) : NULL;
    xmlFree(t);
    return ret;
}

static xmlNodePtr root_named(xmlDocPtr d, const char *name)
{
    xmlNodePtr r = xmlDocGetRootElement(d);
    return r && strcmp((const char *)r->name, name) == 0 ? r : NULL;
}

int caa_wire_pick_version(const char *xml, size_t len, char **ret, caa_error **err)
{
    __attribute__((cleanup(doc_freep))) xmlDocPtr d = parse(xml, len, "versions", err);
    if (!d)
        return -EINVAL;
    xmlNodePtr versions = root_named(d, "Versions"), supported = NULL;
    for (xmlNodePtr c = versions ? versions->children : NULL; c && !supported; c = c->next)
        if (named(c, "Supported"))
            supported = c;
    char *first = NULL;
    for (xmlNodePtr c = supported ? supported->children : NULL; c; c = c->next) {
        if (!named(c, "Version"))
            continue;
        char *v = text_at(c, (const char *)NULL);
        if (v && strcmp(v, CAA_WIRE_VERSION) == 0) {
            free(first);
            *ret = v;
            return 0;
        }
        if (!first)
            first = v;
        else
            free(v);
    }
    if (!first)
        return caa_error_set(err, -EINVAL, "versions: the WireServer lists no supported version");
    *ret = first;
    return 0;
}

int caa_wire_parse_goal_state(const char *xml, size_t len, caa_wire_goal_state *ret, caa_error **err)
{
    __attribute__((cleanup(doc_freep))) xmlDocPtr d = parse(xml, len, "goal state", err);
    if (!d)
        return -EINVAL;
    xmlNodePtr gs = root_named(d, "GoalState");
    caa_wire_goal_state s = {
        .incarnation = text_at(gs, "Incarnation", (const char *)NULL),
        .container_id = text_at(gs, "Container", "ContainerId", (const char *)NULL),
        .instance_id =
            text_at(gs, "Container", "RoleInstanceList", "RoleInstance", "InstanceId", (const char *)NULL),
    };
    if (!s.incarnation || !s.container_id || !s.instance_id) {
        caa_error_set(err, -EINVAL, "incomplete goal state:%s%s%s", s.incarnation ? "" : " no Incarnation",
                      s.container_id ? "" : " no ContainerId", s.instance_id ? "" : " no InstanceId");
        caa_wire_goal_state_done(&s);
        return -EINVAL;
    }
    *ret = s;
    return 0;
}

static xmlNodePtr add(xmlNodePtr parent, const char *name, const char *text)
{
    xmlNodePtr n = xmlNewTextChild(parent, NULL, (const xmlChar *)name, (const xmlChar *)text);
    if (!n)
        caa_oom();
    return n;
}

char *caa_wire_health_ready(const caa_wire_goal_state *gs, size_t *ret_len, caa_error **err)
{
    __attribute__((cleanup(doc_freep))) xmlDocPtr d = xmlNewDoc((const xmlChar *)"1.0");
    if (!d)
        caa_oom();
    xmlNodePtr health = xmlNewNode(NULL, (const xmlChar *)"Health");
    if (!health)
        caa_oom();
    xmlDocSetRootElement(d, health);
    add(health, "GoalStateIncarnation", gs->incarnation);
    xmlNodePtr container = add(health, "Container", NULL);
    add(container, "ContainerId", gs->container_id);
    xmlNodePtr role = add(add(container, "RoleInstanceList", NULL), "Role", NULL);
    add(role, "InstanceId", gs->instance_id);
    add(add(role, "Health", NULL), "State", "Ready");

    xmlChar *buf = NULL;
    int len = 0;
    xmlDocDumpFormatMemoryEnc(d, &buf, &len, "utf-8", 1);
    if (!buf || len <= 0) {
        xmlFree(buf);
        caa_error_set(err, -EINVAL, "building the Health report (are the goal state values valid UTF-8?)");
        return NULL;
    }
    char *ret = xmemdup(buf, (size_t)len + 1);
    xmlFree(buf);
    *ret_len = (size_t)len;
    return ret;
}
