/* The owner index of upstream's isOldPeerPod; see peerpod-owners.h. */
#include "peerpod-owners.h"

#include <string.h>

#include "peerpod-reconcile.h"

void caa_peerpod_owners_init(caa_peerpod_owners *o)
{
    o->by_owner = json_object();
    o->generation = 0;
}

void caa_peerpod_owners_done(caa_peerpod_owners *o)
{
    json_decref(o->by_owner);
    o->by_owner = NULL;
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

const char *caa_peerpod_owners_put(caa_peerpod_owners *o, const json_t *peerpod)
{
    const char *owner = owner_of(peerpod), *uid = md_string(peerpod, "uid");
    const char *ns = md_string(peerpod, "namespace"), *name = md_string(peerpod, "name");
    const char *created = md_string(peerpod, "creationTimestamp");
    if (!owner || !uid || !ns || !name || !created)
        return NULL;
    json_t *group = json_object_get(o->by_owner, owner);
    if (!group) {
        group = json_object();
        json_object_set_new(o->by_owner, owner, group);
    }
    const json_t *old = json_object_get(group, uid);
    bool asked = json_is_true(json_object_get(old, "asked"));
    /* Shaped as a PeerPod, so caa_peerpod_is_superseded() compares entries. */
    json_t *entry = json_pack("{s:{s:s, s:s, s:s, s:s, s:[{s:s}]}, s:b, s:b, s:I}", "metadata", "namespace",
                              ns, "name", name, "uid", uid, "creationTimestamp", created, "ownerReferences",
                              "uid", owner, "deleting", md_string(peerpod, "deletionTimestamp") != NULL,
                              "asked", asked, "gen", (json_int_t)o->generation);
    json_object_set_new(group, uid, entry);
    /* The index's own copy of the key: valid while the group exists. */
    return json_object_iter_key(json_object_iter_at(o->by_owner, owner));
}

void caa_peerpod_owners_remove(caa_peerpod_owners *o, const json_t *peerpod)
{
    const char *owner = owner_of(peerpod), *uid = md_string(peerpod, "uid");
    json_t *group = owner ? json_object_get(o->by_owner, owner) : NULL;
    if (!group || !uid)
        return;
    json_object_del(group, uid);
    if (json_object_size(group) == 0)
        json_object_del(o->by_owner, owner);
}

void caa_peerpod_owners_list_started(caa_peerpod_owners *o)
{
    o->generation++;
}

void caa_peerpod_owners_list_done(caa_peerpod_owners *o)
{
    const char *owner, *uid;
    json_t *group, *entry;
    void *tmp, *tmp2;
    json_object_foreach_safe(o->by_owner, tmp, owner, group)
    {
        json_object_foreach_safe(group, tmp2, uid, entry)
        {
            if ((uint64_t)json_integer_value(json_object_get(entry, "gen")) < o->generation)
                json_object_del(group, uid);
        }
        if (json_object_size(group) == 0)
            json_object_del(o->by_owner, owner);
    }
}

static bool is_deleting(const json_t *entry)
{
    return json_is_true(json_object_get(entry, "deleting"));
}

void caa_peerpod_owners_superseded(caa_peerpod_owners *o, const char *owner, json_t *out)
{
    json_t *group = json_object_get(o->by_owner, owner);
    const char *uid;
    json_t *entry;
    /* Upstream compares each live PeerPod with every other of its owner;
     * being older than the newest live one is the same as being older than
     * some live one. */
    const json_t *newest = NULL;
    json_object_foreach(group, uid, entry)
    {
        if (!is_deleting(entry) && (!newest || caa_peerpod_is_superseded(newest, entry)))
            newest = entry;
    }
    if (!newest)
        return;
    json_object_foreach(group, uid, entry)
    {
        if (is_deleting(entry) || json_is_true(json_object_get(entry, "asked")) ||
            !caa_peerpod_is_superseded(entry, newest))
            continue;
        json_object_set_new(entry, "asked", json_true());
        const json_t *md = json_object_get(entry, "metadata");
        json_array_append_new(
            out, json_pack("{s:O, s:O, s:O, s:s}", "namespace", json_object_get(md, "namespace"), "name",
                           json_object_get(md, "name"), "uid", json_object_get(md, "uid"), "owner", owner));
    }
}

void caa_peerpod_owners_all_superseded(caa_peerpod_owners *o, json_t *out)
{
    const char *owner;
    json_t *group;
    json_object_foreach(o->by_owner, owner, group)
    {
        if (json_object_size(group) > 1)
            caa_peerpod_owners_superseded(o, owner, out);
    }
}

void caa_peerpod_owners_delete_failed(caa_peerpod_owners *o, const char *owner, const char *uid)
{
    json_t *entry = json_object_get(json_object_get(o->by_owner, owner), uid);
    if (entry)
        json_object_set_new(entry, "asked", json_false());
}

size_t caa_peerpod_owners_count(const caa_peerpod_owners *o)
{
    size_t n = 0;
    const char *owner;
    json_t *group;
    json_object_foreach(o->by_owner, owner, group) n += json_object_size(group);
    return n;
}
