/* Fuzzes what peerpod-ctrl reads from the API server: a watch stream (cut
 * at the first byte's offset into two feeds), each event's object through the
 * PeerPod classification and the finalizer release patch, and the same
 * object as a Lease through the election step, and every event's object
 * into one owner index (older PeerPods of a Pod). Never crash or leak; a
 * release patch only for an object carrying our finalizer; a superseded
 * PeerPod is handed out once. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lease-election.h"
#include "peerpod-owners.h"
#include "peerpod-reconcile.h"
#include "watch-stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_object(const json_t *obj)
{
    caa_peerpod_action a;
    caa_peerpod_ref ref;
    caa_error *err = NULL;
    if (caa_peerpod_classify(obj, &a, &ref, &err) == 0) {
        json_t *patch = caa_peerpod_release_patch(obj);
        if (a == CAA_PEERPOD_DELETE_INSTANCE && (!patch || !ref.instance_id || !ref.cloud_provider))
            abort();
        json_decref(patch);
        caa_peerpod_ref_done(&ref);
    } else {
        caa_error_free(err);
        err = NULL;
    }
    caa_lease_elector e;
    if (caa_lease_elector_init(&e, "fuzz", "ns", "lease", 15, 10, &err) < 0)
        abort();
    caa_lease_verdict v;
    json_t *out = NULL;
    if (caa_lease_step(&e, obj, 0, "2026-12-07T00:00:00.000000Z", &v, &out, &err) == 0) {
        if ((v == CAA_LEASE_FOLLOW) != (out == NULL))
            abort();
        json_decref(out);
    } else {
        caa_error_free(err);
    }
    caa_lease_elector_done(&e);
}

/* As the controller: record, then judge the owner. Each victim names a
 * PeerPod fully (namespace, name, uid, owner) and is handed out once. */
static void check_owners(caa_peerpod_owners *ix, const caa_watch_event *ev)
{
    if (ev->type == CAA_WATCH_DELETED) {
        caa_peerpod_owners_remove(ix, ev->object);
        return;
    }
    const char *owner = caa_peerpod_owners_put(ix, ev->object);
    if (!owner)
        return;
    json_t *victims = json_array(), *again = json_array();
    caa_peerpod_owners_superseded(ix, owner, victims);
    caa_peerpod_owners_superseded(ix, owner, again);
    size_t i;
    json_t *v;
    json_array_foreach(victims, i, v)
    {
        const char *keys[] = {"namespace", "name", "uid", "owner"};
        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
            if (!json_is_string(json_object_get(v, keys[k])))
                abort();
    }
    if (json_array_size(again) != 0)
        abort();
    json_decref(victims);
    json_decref(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t cut = data[0] % size;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    if (cut > len)
        cut = len;
    caa_watch_decoder d = {0};
    caa_peerpod_owners ix;
    caa_peerpod_owners_init(&ix);
    caa_peerpod_owners_list_started(&ix);
    caa_error *err = NULL;
    for (int part = 0; part < 2; part++) {
        const char *p = part ? text + cut : text;
        size_t n = part ? len - cut : cut;
        if (caa_watch_decoder_feed(&d, p, n, &err) < 0) {
            caa_error_free(err);
            break;
        }
        const char *line;
        size_t ll;
        while (caa_watch_decoder_next(&d, &line, &ll)) {
            if (ll == 0 || memchr(line, '\n', ll))
                abort();
            caa_watch_event ev;
            if (caa_watch_event_parse(line, ll, &ev, &err) == 0) {
                check_object(ev.object);
                check_owners(&ix, &ev);
                caa_watch_event_done(&ev);
            } else {
                caa_error_free(err);
                err = NULL;
            }
        }
    }
    caa_watch_decoder_done(&d);
    json_t *rest = json_array();
    caa_peerpod_owners_list_done(&ix);
    caa_peerpod_owners_all_superseded(&ix, rest);
    json_decref(rest);
    caa_peerpod_owners_done(&ix);
    return 0;
}
