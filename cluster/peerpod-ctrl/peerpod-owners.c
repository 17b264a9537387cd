/* The owner index of upstream's isOldPeerPod; see peerpod-owners.h. */
#include "peerpod-owners.h"

#include <string.h>

#include "xalloc.h"

typedef struct owner_entry {
    char *uid, *ns, *name, *created; /* one allocation, uid first */
    uint64_t generation;
    bool deleting, asked;
} owner_entry;

struct owner_group {
    owner_group *next; /* hash chain */
    char *owner;
    owner_entry *entries;
    size_t n, cap;
};

#define FIRST_BUCKETS 64

void caa_peerpod_owners_init(caa_peerpod_owners *o)
{
    memset(o, 0, sizeof(*o));
    o->n_buckets = FIRST_BUCKETS;
    o->buckets = xnew0(owner_group *, o->n_buckets);
}

static void entry_done(owner_entry *e)
{
    free(e->uid);
}

static void group_free(owner_group *g)
{
    for (size_t i = 0; i < g->n; i++)
        entry_done(&g->entries[i]);
    free(g->entries);
    free(g->owner);
    free(g);
}

void caa_peerpod_owners_done(caa_peerpod_owners *o)
{
    for (size_t b = 0; b < o->n_buckets; b++) {
        owner_group *next;
        for (owner_group *g = o->buckets[b]; g; g = next) {
            next = g->next;
            group_free(g);
        }
    }
    free(o->buckets);
    memset(o, 0, sizeof(*o));
}

static size_t hash(const char *s)
{
    size_t h = 14695981039346656037u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

static owner_group **slot_of(caa_peerpod_owners *o, const char *owner)
{
    owner_group **p = &o->buckets[hash(owner) % o->n_buckets];
    while (*p && strcmp((*p)->owner, owner) != 0)
        p = &(*p)->next;
    return p;
}

static void grow(caa_peerpod_owners *o)
{
    size_t n = o->n_buckets * 2;
    owner_group **buckets = xnew0(owner_group *, n);
    for (size_t b = 0; b < o->n_buckets; b++) {
        owner_group *next;
        for (owner_group *g = o->buckets[b]; g; g = next) {
            next = g->next;
            size_t h = hash(g->owner) % n;
            g->next = buckets[h];
            buckets[h] = g;
        }
    }
    free(o->buckets);
    o->buckets = buckets;
    o->n_buckets = n;
}

static void unlink_group(caa_peerpod_owners *o, owner_group **slot)
{
    owner_group *g = *slot;
    *slot = g->next;
    group_free(g);
    o->n_groups--;
}

static const char *md_string(const json_t *peerpod, const char *key)
{
    const char *s = json_string_value(json_object_get(json_object_get(peerpod, "metadata"), key));
    return s && s[0] ? s : NULL;
}

static const char *owner_of(const json_t *peerpod)
{
    const json_t *owners = json_object_get(json_object_get(peerpod, "metadata"), "ownerReferences");
    const char *s = json_string_value(json_object_get(json_array_get(owners, 0), "uid"));
    return s && s[0] ? s : NULL;
}

static owner_entry *find_entry(owner_group *g, const char *uid)
{
    for (size_t i = 0; g && i < g->n; i++)
        if (strcmp(g->entries[i].uid, uid) == 0)
            return &g->entries[i];
    return NULL;
}

/* The four strings in one block: uid\0ns\0name\0created\0. */
static void entry_set(owner_entry *e, const char *uid, const char *ns, const char *name, const char *created)
{
    size_t lu = strlen(uid) + 1, ln = strlen(ns) + 1, lm = strlen(name) + 1, lc = strlen(created) + 1;
    char *block = xmalloc(lu + ln + lm + lc);
    e->uid = memcpy(block, uid, lu);
    e->ns = memcpy(block + lu, ns, ln);
    e->name = memcpy(block + lu + ln, name, lm);
    e->created = memcpy(block + lu + ln + lm, created, lc);
}

const char *caa_peerpod_owners_put(caa_peerpod_owners *o, const json_t *peerpod)
{
    const char *owner = owner_of(peerpod), *uid = md_string(peerpod, "uid");
    const char *ns = md_string(peerpod, "namespace"), *name = md_string(peerpod, "name");
    const char *created = md_string(peerpod, "creationTimestamp");
    if (!owner || !uid || !ns || !name || !created)
        return NULL;
    owner_group **slot = slot_of(o, owner);
    if (!*slot) {
        if (o->n_groups >= o->n_buckets * 2) {
            grow(o);
            slot = slot_of(o, owner);
        }
        *slot = xnew0(owner_group, 1);
        (*slot)->owner = xstrdup(owner);
        o->n_groups++;
    }
    owner_group *g = *slot;
    owner_entry *e = find_entry(g, uid);
    if (e) {
        entry_done(e);
    } else {
        if (g->n == g->cap) {
            g->cap = g->cap ? g->cap * 2 : 1;
            g->entries = xrealloc(g->entries, g->cap * sizeof(*g->entries));
        }
        e = &g->entries[g->n++];
        e->asked = false; /* an asked mark outlives refreshes */
    }
    entry_set(e, uid, ns, name, created);
    e->deleting = md_string(peerpod, "deletionTimestamp") != NULL;
    e->generation = o->generation;
    return g->owner;
}

static void remove_at(owner_group *g, size_t i)
{
    entry_done(&g->entries[i]);
    g->entries[i] = g->entries[--g->n];
}

void caa_peerpod_owners_remove(caa_peerpod_owners *o, const json_t *peerpod)
{
    const char *owner = owner_of(peerpod), *uid = md_string(peerpod, "uid");
    if (!owner || !uid)
        return;
    owner_group **slot = slot_of(o, owner);
    owner_group *g = *slot;
    for (size_t i = 0; g && i < g->n; i++) {
        if (strcmp(g->entries[i].uid, uid) == 0) {
            remove_at(g, i);
            break;
        }
    }
    if (g && g->n == 0)
        unlink_group(o, slot);
}

void caa_peerpod_owners_list_started(caa_peerpod_owners *o)
{
    o->generation++;
}

void caa_peerpod_owners_list_done(caa_peerpod_owners *o)
{
    for (size_t b = 0; b < o->n_buckets; b++) {
        owner_group **slot = &o->buckets[b];
        while (*slot) {
            owner_group *g = *slot;
            for (size_t i = g->n; i-- > 0;)
                if (g->entries[i].generation < o->generation)
                    remove_at(g, i);
            if (g->n == 0)
                unlink_group(o, slot);
            else
                slot = &g->next;
        }
    }
}

/* Upstream's CreationTimestamp.Before: RFC 3339 UTC timestamps of the same
 * shape ("...Z", second precision) order as strings. */
static bool created_before(const owner_entry *a, const owner_entry *b)
{
    return strlen(a->created) == strlen(b->created) && strcmp(a->created, b->created) < 0;
}

static void superseded_in(owner_group *g, json_t *out)
{
    /* Upstream compares each live PeerPod with every other of its owner;
     * being older than the newest live one is the same as being older than
     * some live one. */
    const owner_entry *newest = NULL;
    for (size_t i = 0; i < g->n; i++)
        if (!g->entries[i].deleting && (!newest || created_before(newest, &g->entries[i])))
            newest = &g->entries[i];
    if (!newest)
        return;
    for (size_t i = 0; i < g->n; i++) {
        owner_entry *e = &g->entries[i];
        if (e->deleting || e->asked || !created_before(e, newest))
            continue;
        e->asked = true;
        json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:s}", "namespace", e->ns, "name", e->name,
                                             "uid", e->uid, "owner", g->owner));
    }
}

void caa_peerpod_owners_superseded(caa_peerpod_owners *o, const char *owner, json_t *out)
{
    owner_group *g = *slot_of(o, owner);
    if (g)
        superseded_in(g, out);
}

void caa_peerpod_owners_all_superseded(caa_peerpod_owners *o, json_t *out)
{
    for (size_t b = 0; b < o->n_buckets; b++)
        for (owner_group *g = o->buckets[b]; g; g = g->next)
            if (g->n > 1)
                superseded_in(g, out);
}

void caa_peerpod_owners_delete_failed(caa_peerpod_owners *o, const char *owner, const char *uid)
{
    owner_entry *e = find_entry(*slot_of(o, owner), uid);
    if (e)
        e->asked = false;
}

size_t caa_peerpod_owners_count(const caa_peerpod_owners *o)
{
    size_t n = 0;
    for (size_t b = 0; b < o->n_buckets; b++)
        for (const owner_group *g = o->buckets[b]; g; g = g->next)
            n += g->n;
    return n;
}
