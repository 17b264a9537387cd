/* Parser and formatter of secure comms tunnel tags (grammar in sc-tags.h). */
#include "sc-tags.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "strv.h"
#include "xalloc.h"

static const struct {
    const char *word;
    caa_sc_phase phase;
} phase_words[] = {
    {"ATTESTATION_PHASE", CAA_SC_PHASE_ATTESTATION},
    {"KUBERNETES_PHASE", CAA_SC_PHASE_KUBERNETES},
    {"BOTH_PHASES", CAA_SC_PHASE_BOTH},
};

const char *caa_sc_phase_name(caa_sc_phase phase)
{
    for (size_t i = 0; i < CAA_ARRAY_SIZE(phase_words); i++)
        if (phase_words[i].phase == phase)
            return phase_words[i].word;
    return "?";
}

void caa_sc_tags_init(caa_sc_tags *tags, caa_sc_direction direction)
{
    memset(tags, 0, sizeof(*tags));
    tags->direction = direction;
}

static void tag_done(caa_sc_tag *t)
{
    free(t->name);
    free(t->netns);
    free(t->host);
    memset(t, 0, sizeof(*t));
}

void caa_sc_tags_done(caa_sc_tags *tags)
{
    for (size_t i = 0; i < tags->n; i++)
        tag_done(&tags->items[i]);
    free(tags->items);
    tags->items = NULL;
    tags->n = 0;
}

const caa_sc_tag *caa_sc_tags_find(const caa_sc_tags *tags, const char *name)
{
    for (size_t i = 0; i < tags->n; i++)
        if (strcmp(tags->items[i].name, name) == 0)
            return &tags->items[i];
    return NULL;
}

static bool is_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

static bool is_name_char(char c)
{
    /* Printable ASCII except the separators and space. */
    return c > ' ' && c < 0x7f && c != ':' && c != ',';
}

static int check_chars(const char *s, bool (*ok)(char), const char *what, const char *tag, caa_error **err)
{
    for (const char *p = s; *p; p++)
        if (!ok(*p))
            return caa_error_set(err, -EINVAL, "secure comms tag '%s': invalid character in the %s", tag,
                                 what);
    return 0;
}

/* Splits one trimmed tag into up to 5 ':'-separated fields (5 = too many). */
static size_t split_fields(char *s, char *fields[5])
{
    size_t n = 0;
    fields[n++] = s;
    for (char *p = s; *p; p++) {
        if (*p != ':')
            continue;
        *p = '\0';
        if (n == 5)
            return 5;
        fields[n++] = p + 1;
    }
    return n;
}

static int parse_one(caa_sc_direction dir, const char *text, caa_sc_tag *ret, caa_error **err)
{
    _cleanup_free_ char *copy = xstrdup(text);
    char *f[5];
    size_t n = split_fields(copy, f);
    if (n != 3 && n != 4)
        return caa_error_set(err, -EINVAL,
                             "secure comms tag '%s': expected PHASE:NAME:PORT or PHASE:NAME:%s:PORT", text,
                             dir == CAA_SC_INBOUND ? "NAMESPACE" : "HOST");
    caa_sc_tag t = {0};
    for (size_t i = 0; i < CAA_ARRAY_SIZE(phase_words); i++)
        if (strcmp(f[0], phase_words[i].word) == 0)
            t.phase = phase_words[i].phase;
    if (!t.phase)
        return caa_error_set(err, -EINVAL,
                             "secure comms tag '%s': unknown phase (ATTESTATION_PHASE, KUBERNETES_PHASE or "
                             "BOTH_PHASES)",
                             text);
    if (!*f[1] || strlen(f[1]) > CAA_SC_TAG_MAX_NAME)
        return caa_error_set(err, -EINVAL, "secure comms tag '%s': the name must have 1 to %d characters",
                             text, CAA_SC_TAG_MAX_NAME);
    int r = check_chars(f[1], is_name_char, "name", text, err);
    if (r < 0)
        return r;
    const char *port_text = f[n - 1];
    int64_t port;
    if (caa_parse_int64(port_text, 0, 65535, &port) < 0)
        return caa_error_set(err, -EINVAL, "secure comms tag '%s': port must be a number from 0 to 65535",
                             text);
    const char *third = n == 4 ? f[2] : "";
    if (strlen(third) > CAA_SC_TAG_MAX_THIRD)
        return caa_error_set(err, -EINVAL, "secure comms tag '%s': %s longer than %d characters", text,
                             dir == CAA_SC_INBOUND ? "namespace" : "host", CAA_SC_TAG_MAX_THIRD);
    if (dir == CAA_SC_INBOUND && *third) {
        /* One path component under /run/netns: the same characters as a host, but no "." or "..". */
        if ((r = check_chars(third, is_host_char, "namespace", text, err)) < 0)
            return r;
        if (strcmp(third, ".") == 0 || strcmp(third, "..") == 0)
            return caa_error_set(err, -EINVAL, "secure comms tag '%s': invalid namespace name", text);
        t.netns = xstrdup(third);
    } else if (dir == CAA_SC_OUTBOUND) {
        if ((r = check_chars(third, is_host_char, "host", text, err)) < 0)
            return r;
        if (dir == CAA_SC_OUTBOUND && port == 0)
            return caa_error_set(err, -EINVAL, "secure comms tag '%s': an outbound needs a port", text);
        t.host = xstrdup(*third ? third : "127.0.0.1");
    }
    t.name = xstrdup(f[1]);
    t.port = (uint16_t)port;
    *ret = t;
    return 0;
}

static int check_inbound_unique(const caa_sc_tags *tags, const caa_sc_tag *t, const char *text,
                                caa_error **err)
{
    for (size_t i = 0; i < tags->n; i++) {
        const caa_sc_tag *o = &tags->items[i];
        if (strcmp(o->name, t->name) == 0)
            return caa_error_set(err, -EINVAL, "secure comms tag '%s': inbound '%s' given twice", text,
                                 t->name);
        bool same_ns = (!o->netns && !t->netns) || (o->netns && t->netns && strcmp(o->netns, t->netns) == 0);
        if (t->port != 0 && o->port == t->port && same_ns)
            return caa_error_set(err, -EINVAL,
                                 "secure comms tag '%s': port %u is already used by inbound '%s'", text,
                                 (unsigned)t->port, o->name);
    }
    return 0;
}

int caa_sc_tags_parse_append(caa_sc_tags *tags, const char *text, caa_error **err)
{
    if (!text)
        return 0;
    _cleanup_strv_ char **items = NULL;
    caa_strv_split_append(&items, text, ',');
    caa_sc_tags work = {.direction = tags->direction};
    /* Work on a copy so that a failure leaves tags untouched. */
    work.items = xnew0(caa_sc_tag, tags->n + caa_strv_len(items) + 1);
    for (size_t i = 0; i < tags->n; i++) {
        const caa_sc_tag *s = &tags->items[i];
        work.items[work.n++] = (caa_sc_tag){s->phase, xstrdup(s->name), s->netns ? xstrdup(s->netns) : NULL,
                                            s->host ? xstrdup(s->host) : NULL, s->port};
    }
    int r = 0;
    for (char **it = items; it && *it && r == 0; it++) {
        if (work.n >= CAA_SC_TAGS_MAX) {
            r = caa_error_set(err, -E2BIG, "secure comms tags: more than %d", CAA_SC_TAGS_MAX);
            break;
        }
        caa_sc_tag t;
        if ((r = parse_one(tags->direction, *it, &t, err)) < 0)
            break;
        if (tags->direction == CAA_SC_INBOUND) {
            if ((r = check_inbound_unique(&work, &t, *it, err)) < 0) {
                tag_done(&t);
                break;
            }
            work.items[work.n++] = t;
            continue;
        }
        caa_sc_tag *same = (caa_sc_tag *)caa_sc_tags_find(&work, t.name);
        if (same) {
            tag_done(same);
            *same = t;
        } else {
            work.items[work.n++] = t;
        }
    }
    if (r < 0) {
        caa_sc_tags_done(&work);
        return r;
    }
    caa_sc_tags_done(tags);
    *tags = work;
    return 0;
}

char *caa_sc_tags_format(const caa_sc_tags *tags)
{
    _cleanup_strv_ char **parts = NULL;
    for (size_t i = 0; i < tags->n; i++) {
        const caa_sc_tag *t = &tags->items[i];
        const char *third = tags->direction == CAA_SC_OUTBOUND ? t->host : t->netns;
        _cleanup_free_ char *s =
            third ? xasprintf("%s:%s:%s:%u", caa_sc_phase_name(t->phase), t->name, third, (unsigned)t->port)
                  : xasprintf("%s:%s:%u", caa_sc_phase_name(t->phase), t->name, (unsigned)t->port);
        caa_strv_push(&parts, s);
    }
    return parts ? caa_strv_join(parts, ",") : xstrdup("");
}
