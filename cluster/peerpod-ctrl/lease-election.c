/* Lease-based leader election; see lease-election.h. */
#include "lease-election.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cleanup.h"
#include "xalloc.h"

int caa_lease_elector_init(caa_lease_elector *e, const char *identity, const char *ns, const char *name,
                           int lease_duration_s, int renew_deadline_s, caa_error **err)
{
    if (!identity || !identity[0] || !ns || !ns[0] || !name || !name[0])
        return caa_error_set(err, -EINVAL, "leader election needs an identity, a namespace and a Lease name");
    if (renew_deadline_s <= 0 || lease_duration_s <= renew_deadline_s)
        return caa_error_set(err, -EINVAL, "lease duration (%ds) must exceed the renew deadline (%ds) > 0",
                             lease_duration_s, renew_deadline_s);
    memset(e, 0, sizeof(*e));
    e->identity = xstrdup(identity);
    e->ns = xstrdup(ns);
    e->name = xstrdup(name);
    e->lease_duration_ms = (int64_t)lease_duration_s * 1000;
    e->renew_deadline_ms = (int64_t)renew_deadline_s * 1000;
    return 0;
}

void caa_lease_elector_done(caa_lease_elector *e)
{
    free(e->identity);
    free(e->ns);
    free(e->name);
    free(e->observed_record);
    memset(e, 0, sizeof(*e));
}

void caa_lease_micro_time(int64_t epoch_us, char *buf, size_t size)
{
    time_t secs = (time_t)(epoch_us / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char date[32];
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, size, "%s.%06" PRId64 "Z", date, epoch_us % 1000000);
}

static json_t *new_lease(const caa_lease_elector *e, const char *now, int64_t transitions)
{
    return json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:I, s:s, s:s, s:I}}", "apiVersion",
                     "coordination.k8s.io/v1", "kind", "Lease", "metadata", "name", e->name, "namespace",
                     e->ns, "spec", "holderIdentity", e->identity, "leaseDurationSeconds",
                     (json_int_t)(e->lease_duration_ms / 1000), "acquireTime", now, "renewTime", now,
                     "leaseTransitions", (json_int_t)transitions);
}

int caa_lease_step(caa_lease_elector *e, const json_t *lease, int64_t now_ms, const char *now_micro_time,
                   caa_lease_verdict *verdict, json_t **ret_object, caa_error **err)
{
    *ret_object = NULL;
    *verdict = CAA_LEASE_FOLLOW;
    if (!lease) {
        *verdict = CAA_LEASE_CREATE;
        *ret_object = new_lease(e, now_micro_time, 0);
        return 0;
    }
    const json_t *md = json_object_get(lease, "metadata");
    const char *rv = json_string_value(json_object_get(md, "resourceVersion"));
    const json_t *spec = json_object_get(lease, "spec");
    if (!json_is_object(md) || !rv || (spec && !json_is_object(spec)))
        return caa_error_set(err, -EINVAL, "Lease %s/%s: no metadata.resourceVersion or bad spec", e->ns,
                             e->name);
    const json_t *jholder = json_object_get(spec, "holderIdentity");
    const json_t *jrenew = json_object_get(spec, "renewTime");
    const json_t *jtrans = json_object_get(spec, "leaseTransitions");
    if ((jholder && !json_is_null(jholder) && !json_is_string(jholder)) ||
        (jrenew && !json_is_null(jrenew) && !json_is_string(jrenew)) ||
        (jtrans && !json_is_null(jtrans) && !json_is_integer(jtrans)))
        return caa_error_set(err, -EINVAL, "Lease %s/%s: spec fields of the wrong type", e->ns, e->name);
    const char *holder = json_string_value(jholder);
    int64_t transitions = json_is_integer(jtrans) ? (int64_t)json_integer_value(jtrans) : 0;

    /* Expiry is judged by how long the record has not changed on our clock. */
    _cleanup_free_ char *record =
        xasprintf("%s|%s|%" PRId64, holder ? holder : "",
                  json_string_value(jrenew) ? json_string_value(jrenew) : "", transitions);
    if (!e->observed_record || strcmp(record, e->observed_record) != 0) {
        free(e->observed_record);
        e->observed_record = TAKE_PTR(record);
        e->observed_at_ms = now_ms;
    }
    bool ours = holder && strcmp(holder, e->identity) == 0;
    bool expired = !holder || !holder[0] || now_ms >= e->observed_at_ms + e->lease_duration_ms;
    if (!ours && !expired) {
        e->leader_until_ms = 0;
        return 0;
    }

    json_t *obj = json_deep_copy(lease);
    json_t *ospec = json_object_get(obj, "spec");
    if (!ospec) {
        ospec = json_object();
        json_object_set_new(obj, "spec", ospec);
    }
    json_object_set_new(ospec, "renewTime", json_string(now_micro_time));
    json_object_set_new(ospec, "leaseDurationSeconds", json_integer(e->lease_duration_ms / 1000));
    if (!ours) {
        json_object_set_new(ospec, "holderIdentity", json_string(e->identity));
        json_object_set_new(ospec, "acquireTime", json_string(now_micro_time));
        json_object_set_new(ospec, "leaseTransitions", json_integer(transitions + 1));
    }
    *verdict = CAA_LEASE_UPDATE;
    *ret_object = obj;
    return 0;
}

void caa_lease_written(caa_lease_elector *e, int64_t now_ms)
{
    e->leader_until_ms = now_ms + e->renew_deadline_ms;
}

bool caa_lease_is_leader(const caa_lease_elector *e, int64_t now_ms)
{
    return e->leader_until_ms != 0 && now_ms < e->leader_until_ms;
}
