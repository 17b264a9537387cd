/* Orphan sweep: deletes the instances this node created that no pod knows.
 *
 * A VM whose pod state is gone (a node reboot wiped a /run pods dir, a pod
 * dir removed by hand, a create whose answer was lost with its daemon) costs
 * money until someone deletes it. At start and then every `interval`, the
 * sweep asks the provider for this node's instances (list_instances: only
 * instances carrying this node's ownership tags/metadata) and deletes each one
 * that no registered pod knows, neither by instance id nor by instance name
 * (a create in flight has a name before it has an id), once it has been seen
 * unknown for at least `grace` (so a create that just answered is never
 * raced). Dry run: the same, but only logged.
 *
 * One run at a time (its deletes a few in flight at once); a run that is due
 * while one is under way is skipped.
 * Counters for metrics: caa_orphan_sweep_stats(). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

typedef struct caa_manager caa_manager;
typedef struct caa_orphan_sweep caa_orphan_sweep;

typedef struct caa_orphan_sweep_options {
    int64_t interval_ns; /* > 0: periodic runs after the first; 0: only caa_orphan_sweep_run() */
    int64_t grace_ns;    /* an unknown instance is deleted once seen unknown this long (0: at once) */
    bool dry_run;        /* log what would be deleted, delete nothing */
} caa_orphan_sweep_options;

typedef struct caa_orphan_sweep_stats {
    uint64_t runs;            /* finished runs */
    uint64_t list_failures;   /* runs whose listing failed */
    uint64_t found;           /* unknown instances seen (each time a run sees one) */
    uint64_t deleted;         /* deletions that succeeded */
    uint64_t delete_failures; /* deletions that failed (retried by the next run) */
    uint64_t last_found;      /* unknown instances of the last finished run */
} caa_orphan_sweep_stats;

/* Called once when a run finished (tests). */
typedef void (*caa_orphan_sweep_done_fn)(void *opaque);

/* Creates the sweep on m's loop and provider. NULL-free: never fails. */
caa_orphan_sweep *caa_orphan_sweep_new(caa_manager *m, const caa_orphan_sweep_options *opts);
/* First run now, then every interval_ns (when > 0). */
void caa_orphan_sweep_start(caa_orphan_sweep *s);
/* One run now (unless one is under way: -EBUSY). done (may be NULL) runs when it finished. */
int caa_orphan_sweep_run(caa_orphan_sweep *s, caa_orphan_sweep_done_fn done, void *opaque);
/* Stops the timer (closes its handle); runs under way end with the provider's answers. */
void caa_orphan_sweep_stop(caa_orphan_sweep *s);
/* After the loop ran dry (the timer handle closed). NULL-safe. */
void caa_orphan_sweep_free(caa_orphan_sweep *s);
caa_orphan_sweep_stats caa_orphan_sweep_get_stats(const caa_orphan_sweep *s);
