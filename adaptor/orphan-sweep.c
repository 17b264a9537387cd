/* Orphan sweep (orphan-sweep.h): list this node's instances, delete the
 * ones no pod knows once they were seen unknown for the grace period. */
#define LOG_COMPONENT "adaptor/orphans"
#include "orphan-sweep.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "log.h"
#include "manager.h"
#include "metrics.h"
#include "parse.h"
#include "pod.h"
#include "strv.h"
#include "timeutil.h"
#include "xalloc.h"

/* An unknown instance and when a run first saw it. */
typedef struct sighting {
    char *id;
    uint64_t first_seen_ms;
} sighting;

struct caa_orphan_sweep {
    caa_manager *m;
    caa_orphan_sweep_options opts;
    uv_timer_t timer;
    bool timer_live; /* initialised and not closed */
    caa_orphan_sweep_stats stats;

    sighting *seen; /* unknown at the last listing */
    size_t n_seen;

    /* The run under way. */
    bool running;
    char **doomed; /* ids to delete, DELETES_IN_FLIGHT at a time */
    size_t next_doomed;
    size_t in_flight; /* deletes asked and not answered */
    uint64_t found;   /* unknown instances this run */
    caa_orphan_sweep_done_fn done;
    void *done_opaque;
};

static void sightings_free(sighting *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].id);
    free(v);
}

caa_orphan_sweep *caa_orphan_sweep_new(caa_manager *m, const caa_orphan_sweep_options *opts)
{
    caa_orphan_sweep *s = xnew0(caa_orphan_sweep, 1);
    s->m = m;
    s->opts = *opts;
    return s;
}

void caa_orphan_sweep_free(caa_orphan_sweep *s)
{
    if (!s)
        return;
    sightings_free(s->seen, s->n_seen);
    caa_strv_free(s->doomed);
    free(s);
}

caa_orphan_sweep_stats caa_orphan_sweep_get_stats(const caa_orphan_sweep *s)
{
    return s->stats;
}

/* ---------------------------------------------------------------- one run */

/* Into the metrics registry, which /metrics renders. */
static void publish_stats(const caa_orphan_sweep *s)
{
    const caa_orphan_sweep_stats *st = &s->stats;
    caa_metrics_set_orphan_sweep(&(caa_metrics_orphan_sweep){
        .runs = st->runs,
        .list_failures = st->list_failures,
        .found = st->found,
        .deleted = st->deleted,
        .delete_failures = st->delete_failures,
        .last_found = st->last_found,
    });
}

static void run_finish(caa_orphan_sweep *s)
{
    s->stats.runs++;
    s->stats.last_found = s->found;
    publish_stats(s);
    log_info("orphan sweep: %" PRIu64 " unknown instance(s); %" PRIu64 " deleted, %" PRIu64
             " failed so far%s",
             s->found, s->stats.deleted, s->stats.delete_failures, s->opts.dry_run ? " (dry run)" : "");
    caa_strv_free(s->doomed);
    s->doomed = NULL;
    s->next_doomed = 0;
    s->running = false;
    caa_orphan_sweep_done_fn done = s->done;
    s->done = NULL;
    if (done)
        done(s->done_opaque);
}

/* Deletes in flight at once. One after the other, 10,000 Azure deletes (a
 * DELETE and a poll of its operation each) took minutes; a few at a time cut
 * that, while the cloud's write rate limit still paces them (its 429s carry
 * a Retry-After that the providers wait out). */
#define DELETES_IN_FLIGHT 8

/* One delete of the run: doomed[index]. */
typedef struct sweep_delete {
    caa_orphan_sweep *s;
    size_t index;
} sweep_delete;

static void delete_next(caa_orphan_sweep *s);

static void on_deleted(int status, caa_error *err, void *opaque)
{
    sweep_delete *sd = opaque;
    caa_orphan_sweep *s = sd->s;
    const char *id = s->doomed[sd->index];
    free(sd);
    s->in_flight--;
    if (status < 0) {
        s->stats.delete_failures++;
        log_warn("orphan sweep: deleting instance %s failed: %s (the next run retries)", id,
                 err ? caa_error_msg(err) : "failed");
    } else {
        s->stats.deleted++;
        log_info("orphan sweep: deleted instance %s", id);
    }
    caa_error_free(err);
    delete_next(s);
}

/* Starts deletes up to DELETES_IN_FLIGHT; the run ends with the last answer. */
static void delete_next(caa_orphan_sweep *s)
{
    caa_manager *m = s->m;
    while (s->in_flight < DELETES_IN_FLIGHT && s->doomed && s->doomed[s->next_doomed] && !m->shutting_down) {
        size_t index = s->next_doomed++;
        const char *id = s->doomed[index];
        /* A pod may have claimed it since the listing (its create answered). */
        if (caa_pod_knows_instance(m, id, NULL))
            continue;
        sweep_delete *sd = xnew0(sweep_delete, 1);
        *sd = (sweep_delete){s, index};
        s->in_flight++;
        _cleanup_error_ caa_error *e = NULL;
        if (caa_provider_delete_instance(m->provider, id, on_deleted, sd, &e) == 0)
            continue;
        s->in_flight--;
        free(sd);
        s->stats.delete_failures++;
        log_warn("orphan sweep: deleting instance %s failed: %s (the next run retries)", id,
                 caa_error_msg(e));
    }
    if (s->in_flight == 0 && s->running)
        run_finish(s);
}

static const sighting *find_sighting(const caa_orphan_sweep *s, const char *id)
{
    for (size_t i = 0; i < s->n_seen; i++)
        if (strcmp(s->seen[i].id, id) == 0)
            return &s->seen[i];
    return NULL;
}

/* Sorts the listing into known (skipped), unknown within the grace (remembered)
 * and unknown for longer (doomed). Sightings of instances no longer listed go. */
static void classify(caa_orphan_sweep *s, caa_instance **list)
{
    uint64_t now = uv_now(s->m->loop);
    uint64_t grace_ms = caa_ns_to_ms_ceil(s->opts.grace_ns);
    sighting *seen = NULL;
    size_t n_seen = 0;
    for (size_t i = 0; list && list[i]; i++) {
        const caa_instance *inst = list[i];
        if (!inst->id || !*inst->id || caa_pod_knows_instance(s->m, inst->id, inst->name))
            continue;
        s->found++;
        s->stats.found++;
        const sighting *old = find_sighting(s, inst->id);
        uint64_t first = old ? old->first_seen_ms : now;
        seen = xrealloc(seen, (n_seen + 1) * sizeof(*seen));
        seen[n_seen++] = (sighting){xstrdup(inst->id), first};
        const char *name = inst->name ? inst->name : "?";
        if (now - first < grace_ms)
            log_info("orphan sweep: instance %s (%s) belongs to no pod; deleted if still so in %" PRIu64 " s",
                     inst->id, name, (grace_ms - (now - first) + 999) / 1000);
        else if (s->opts.dry_run)
            log_warn("orphan sweep: instance %s (%s) belongs to no pod; dry run, not deleting", inst->id,
                     name);
        else {
            log_warn("orphan sweep: instance %s (%s) belongs to no pod; deleting it", inst->id, name);
            caa_strv_push(&s->doomed, inst->id);
        }
    }
    sightings_free(s->seen, s->n_seen);
    s->seen = seen;
    s->n_seen = n_seen;
}

static void on_listed(int status, caa_instance **list, caa_error *err, void *opaque)
{
    caa_orphan_sweep *s = opaque;
    if (status < 0) {
        s->stats.list_failures++;
        log_warn("orphan sweep: listing instances failed: %s", err ? caa_error_msg(err) : "failed");
    } else if (!s->m->shutting_down) {
        classify(s, list);
    }
    caa_error_free(err);
    caa_instance_list_free(list);
    delete_next(s);
}

int caa_orphan_sweep_run(caa_orphan_sweep *s, caa_orphan_sweep_done_fn done, void *opaque)
{
    caa_manager *m = s->m;
    if (s->running)
        return -EBUSY;
    if (m->shutting_down)
        return -ESHUTDOWN;
    _cleanup_error_ caa_error *e = NULL;
    int r = caa_provider_list_instances(m->provider, on_listed, s, &e);
    if (r < 0) {
        s->stats.list_failures++;
        publish_stats(s);
        log_warn("orphan sweep: listing instances failed: %s", caa_error_msg(e));
        return r;
    }
    s->running = true;
    s->found = 0;
    s->done = done;
    s->done_opaque = opaque;
    return 0;
}

/* ---------------------------------------------------------------- schedule */

static void on_tick(uv_timer_t *t)
{
    caa_orphan_sweep *s = t->data;
    if (caa_orphan_sweep_run(s, NULL, NULL) == -EBUSY)
        log_debug("orphan sweep: the previous run is still under way");
}

void caa_orphan_sweep_start(caa_orphan_sweep *s)
{
    char every[32] = "never", grace[32];
    if (s->opts.interval_ns > 0)
        caa_format_duration(s->opts.interval_ns, every, sizeof(every));
    caa_format_duration(s->opts.grace_ns, grace, sizeof(grace));
    log_info("orphan sweep: now and every %s, grace %s%s", every, grace, s->opts.dry_run ? ", dry run" : "");
    if (caa_orphan_sweep_run(s, NULL, NULL) == -EOPNOTSUPP) {
        log_warn("orphan sweep: provider %s cannot list its instances; sweep off", s->m->provider->ops->name);
        return;
    }
    if (s->opts.interval_ns <= 0)
        return;
    uint64_t ms = caa_ns_to_ms_ceil(s->opts.interval_ns);
    uv_timer_init(s->m->loop, &s->timer);
    s->timer.data = s;
    s->timer_live = true;
    uv_timer_start(&s->timer, on_tick, ms, ms);
}

void caa_orphan_sweep_stop(caa_orphan_sweep *s)
{
    if (!s || !s->timer_live)
        return;
    s->timer_live = false;
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, NULL);
}
