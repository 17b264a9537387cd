/* Leader election on a coordination.k8s.io/v1 Lease, as client-go's
 * leaderelection does it, so two peerpod-ctrl replicas never delete at once:
 *
 *   every retry period: GET the Lease, then caa_lease_step():
 *     absent                         -> CREATE it with us as holder
 *     held by us                     -> UPDATE renewTime (renew)
 *     held by another, record moving -> FOLLOW (not leader)
 *     held by another, record unchanged for leaseDurationSeconds
 *       (measured on OUR monotonic clock since we first saw that record,
 *       so clock skew between replicas does not matter) or no holder
 *                                    -> UPDATE: take over, leaseTransitions + 1
 *   the write carries the read's resourceVersion: if another replica wrote
 *   in between, the API server answers 409 and we stay follower.
 *
 * Leadership lasts until renew_deadline after the last successful write as
 * holder; a leader that cannot renew in time stops acting (before the lease
 * can expire for the others, renew_deadline < lease duration). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "error.h"

typedef enum caa_lease_verdict {
    CAA_LEASE_CREATE, /* POST *ret_object */
    CAA_LEASE_UPDATE, /* PUT *ret_object (carries resourceVersion) */
    CAA_LEASE_FOLLOW, /* another replica leads; nothing to write */
} caa_lease_verdict;

typedef struct caa_lease_elector {
    char *identity, *ns, *name;
    int64_t lease_duration_ms, renew_deadline_ms;
    char *observed_record; /* holder + renewTime + transitions last seen */
    int64_t observed_at_ms;
    int64_t leader_until_ms; /* 0: not leader */
} caa_lease_elector;

/* lease_duration_s > renew_deadline_s > 0 (client-go's defaults: 15, 10). */
int caa_lease_elector_init(caa_lease_elector *e, const char *identity, const char *ns, const char *name,
                           int lease_duration_s, int renew_deadline_s, caa_error **err);
void caa_lease_elector_done(caa_lease_elector *e);

/* lease: the GET answer, NULL when it answered 404. now_ms: monotonic clock;
 * now_micro_time: wall clock as MicroTime ("2026-12-07T13:52:03.123456Z").
 * *ret_object is set for CREATE/UPDATE (new reference). -EINVAL for a Lease
 * we cannot read (then: FOLLOW and retry). */
int caa_lease_step(caa_lease_elector *e, const json_t *lease, int64_t now_ms, const char *now_micro_time,
                   caa_lease_verdict *verdict, json_t **ret_object, caa_error **err);
/* The CREATE/UPDATE written at now_ms succeeded: we lead until now_ms + renew deadline. */
void caa_lease_written(caa_lease_elector *e, int64_t now_ms);
bool caa_lease_is_leader(const caa_lease_elector *e, int64_t now_ms);

/* MicroTime text for a wall-clock time in microseconds since the epoch. */
void caa_lease_micro_time(int64_t epoch_us, char *buf, size_t size);
