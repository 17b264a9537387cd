/* Fuzzes what peerpod-ctrl reads from the API server: a watch stream (cut
 * at the first byte's offset into two feeds), each event's object through the
 * PeerPod classification and the finalizer release patch, and the same
 * object as a Lease through the election step. Never crash or leak; a
 * release patch only for an object carrying our finalizer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lease-election.h"
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
                caa_watch_event_done(&ev);
            } else {
                caa_error_free(err);
                err = NULL;
            }
        }
    }
    caa_watch_decoder_done(&d);
    return 0;
}
