/* peerpod-ctrl's control loop, on one libuv loop:
 *
 *  - leader election (lease-election.h) every retry period, unless off;
 *  - while leader: list all PeerPods (at once on becoming leader, then every
 *    resync period as a safety net), then watch from the list's
 *    resourceVersion (bookmarks advance it; 410 Gone lists again; a broken
 *    stream reconnects with backoff); classify each PeerPod
 *    (peerpod-reconcile.h) and keep a work item per PeerPod that needs
 *    collecting;
 *  - per item: delete spec.instanceID through the provider (gone counts as
 *    success), then release the finalizer with a test+replace JSON Patch
 *    (404: already gone, fine; a failed test: re-read at the next list);
 *    a failure is retried with exponential backoff, reported as a Warning
 *    Event on the PeerPod and counted in the metrics;
 *  - a PeerPod of another cloud provider is left alone (one provider per
 *    binary, like the daemon) and logged once;
 *  - as upstream's isOldPeerPod: PeerPods of a Pod older than its newest
 *    live PeerPod are deleted (peerpod-owners.h), their finalizer then
 *    brings them back here as orphans.
 * Work starts only while leader; an item in flight finishes (deletes are
 * idempotent, so a takeover that repeats one is harmless). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "kube-client.h"
#include "lease-election.h"
#include "provider.h"

typedef struct ctrl_config {
    const char *provider_name; /* spec.cloudProvider this binary serves */
    bool leader_elect;
    const char *identity, *lease_namespace, *lease_name;
    int lease_duration_s, renew_deadline_s;
    int64_t retry_period_ms, resync_period_ms;
    int64_t backoff_base_ms, backoff_max_ms;
} ctrl_config;

typedef struct ctrl_stats {
    uint64_t lists_ok, lists_failed;
    uint64_t deletes_ok, deletes_failed;
    uint64_t releases_ok, releases_failed;
    uint64_t superseded_ok, superseded_failed; /* older PeerPods of a Pod deleted */
    uint64_t events_posted;
    uint64_t watch_events, watch_restarts; /* restarts: broken or expired watches */
    uint64_t pending;                      /* PeerPods waiting to be collected */
    bool leader;
} ctrl_stats;

typedef struct controller controller;

int controller_start(uv_loop_t *loop, const ctrl_config *cfg, caa_kube_client *kube, caa_provider *provider,
                     controller **ret, caa_error **err);
const ctrl_stats *controller_stats(const controller *c);
/* Stops timers; calls in flight end with -ECANCELED once the kube client
 * and the provider are closed. Free after the loop ran dry. */
void controller_stop(controller *c);
void controller_free(controller *c);
