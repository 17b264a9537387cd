/* Upstream's isOldPeerPod duty: when a PeerPod without deletionTimestamp is
 * reconciled, every older PeerPod of the same Pod (ownerReferences[0].uid,
 * earlier creationTimestamp) is deleted, so that a VM left behind by an
 * earlier daemon (upgrade, crash, node loss) is collected through its
 * PeerPod's finalizer even while the Pod itself lives on.
 *
 * The controller does not keep listed objects, so this index remembers just
 * enough of each PeerPod (namespace, name, uid, owner, creationTimestamp,
 * being deleted) to find the older ones of an owner when a newer one shows
 * up in a list or on the watch. A full list refreshes it: entries no list
 * saw since the previous one are dropped. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

typedef struct owner_group owner_group;

/* A hash table of owner uid -> that owner's PeerPods (plain C records:
 * about 0.3 kB per PeerPod, so 10,000 PeerPods cost a few MiB). */
typedef struct caa_peerpod_owners {
    owner_group **buckets;
    size_t n_buckets, n_groups;
    uint64_t generation;
} caa_peerpod_owners;

void caa_peerpod_owners_init(caa_peerpod_owners *o);
void caa_peerpod_owners_done(caa_peerpod_owners *o);

/* Records or refreshes a PeerPod; returns its owner uid (valid until the
 * entry goes) or NULL when it has no owner, uid or creationTimestamp (then
 * it takes no part, as upstream can only compare owned PeerPods). */
const char *caa_peerpod_owners_put(caa_peerpod_owners *o, const json_t *peerpod);
/* Forgets a PeerPod (watch DELETED). */
void caa_peerpod_owners_remove(caa_peerpod_owners *o, const json_t *peerpod);

/* A full list starts / completed: what the completed list did not see is gone. */
void caa_peerpod_owners_list_started(caa_peerpod_owners *o);
void caa_peerpod_owners_list_done(caa_peerpod_owners *o);

/* Appends to out (a JSON array) the PeerPods of owner to delete: created
 * before the newest PeerPod of the owner that is not being deleted, not
 * being deleted themselves, and not asked for already. Each is
 * {"namespace", "name", "uid", "owner"} and is marked asked. */
void caa_peerpod_owners_superseded(caa_peerpod_owners *o, const char *owner, json_t *out);
/* Every owner's, after a full list. */
void caa_peerpod_owners_all_superseded(caa_peerpod_owners *o, json_t *out);
/* The delete asked for failed: ask again at the next chance. */
void caa_peerpod_owners_delete_failed(caa_peerpod_owners *o, const char *owner, const char *uid);
/* Entries held (for tests and the memory bench). */
size_t caa_peerpod_owners_count(const caa_peerpod_owners *o);
