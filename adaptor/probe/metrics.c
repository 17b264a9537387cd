/* Metrics registry: small label tables, no lock. Everything that records
 * runs on the daemon's loop thread (pod hooks, ttRPC handlers, provider
 * results, which the provider operation helper delivers on the loop, the
 * Kubernetes client's HTTP callbacks, the orphan sweep), and so does the
 * probe endpoint that renders them; debug builds check it. The label values
 * are the daemon's own constants (states, ops, verbs, codes) but are escaped
 * anyway as the text format requires. */
#include "metrics.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caa-version.h"
#include "xalloc.h"

#define MAX_SERIES 64

static const double duration_buckets[] = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};
#define N_BUCKETS (sizeof(duration_buckets) / sizeof(duration_buckets[0]))

typedef struct series {
    char *labels[2]; /* values; NULL when unused */
    double value;
} series;

typedef struct family {
    series s[MAX_SERIES];
    size_t n;
} family;

typedef struct histogram {
    uint64_t buckets[N_BUCKETS]; /* cumulative when rendered */
    uint64_t count;
    double sum;
} histogram;

static family pods, provider_requests, kube_requests;
static histogram startvm, stopvm;
static double agent_connections;
static caa_metrics_orphan_sweep orphan_sweep;

/* Debug builds: the first thread that touches the registry owns it, any
 * other one aborts (a recorder moved off the loop needs a lock again). */
static void assert_owner_thread(void)
{
#ifndef NDEBUG
    static pthread_t owner;
    static bool owned;
    if (!owned) {
        owner = pthread_self();
        owned = true;
    }
    assert(pthread_equal(owner, pthread_self()));
#endif
}

/* The series with these label values; created at 0. NULL when the family is
 * full (a bounded registry: label values never come from outside). */
static series *find(family *f, const char *a, const char *b)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->s[i].labels[0], a) == 0 && (!b || strcmp(f->s[i].labels[1], b) == 0))
            return &f->s[i];
    if (f->n == MAX_SERIES)
        return NULL;
    series *s = &f->s[f->n++];
    s->labels[0] = xstrdup(a);
    s->labels[1] = b ? xstrdup(b) : NULL;
    s->value = 0;
    return s;
}

static void add(family *f, const char *a, const char *b, double delta)
{
    assert_owner_thread();
    series *s = find(f, a, b);
    if (s)
        s->value += delta;
}

void caa_metrics_pod_state(const char *from, const char *to)
{
    if (from)
        add(&pods, from, NULL, -1);
    if (to)
        add(&pods, to, NULL, 1);
}

static void observe(histogram *h, double seconds)
{
    assert_owner_thread();
    for (size_t i = 0; i < N_BUCKETS; i++)
        if (seconds <= duration_buckets[i])
            h->buckets[i]++;
    h->count++;
    h->sum += seconds;
}

void caa_metrics_observe_startvm(double seconds)
{
    observe(&startvm, seconds);
}

void caa_metrics_observe_stopvm(double seconds)
{
    observe(&stopvm, seconds);
}

void caa_metrics_provider_request(const char *op, const char *result)
{
    add(&provider_requests, op, result, 1);
}

void caa_metrics_kube_request(const char *verb, long http_status)
{
    char code[24];
    if (http_status > 0)
        snprintf(code, sizeof(code), "%ld", http_status);
    else
        snprintf(code, sizeof(code), "error");
    add(&kube_requests, verb, code, 1);
}

void caa_metrics_provider_result(const char *op, int status)
{
    caa_metrics_provider_request(op, status == 0 ? "ok" : (status == -ECANCELED ? "cancelled" : "error"));
}

void caa_metrics_set_agent_proxy_connections(size_t n)
{
    assert_owner_thread();
    agent_connections = (double)n;
}

void caa_metrics_set_orphan_sweep(const caa_metrics_orphan_sweep *v)
{
    assert_owner_thread();
    orphan_sweep = *v;
}

/* ---------------------------------------------------------------- render */

static void put_escaped(FILE *out, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fprintf(out, "\\%c", *v);
        else if (*v == '\n')
            fputs("\\n", out);
        else
            fputc(*v, out);
    }
}

static void put_family(FILE *out, const char *name, const char *type, const char *help, const family *f,
                       const char *label_a, const char *label_b)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    for (size_t i = 0; i < f->n; i++) {
        fprintf(out, "%s{%s=\"", name, label_a);
        put_escaped(out, f->s[i].labels[0]);
        if (label_b) {
            fprintf(out, "\",%s=\"", label_b);
            put_escaped(out, f->s[i].labels[1]);
        }
        fprintf(out, "\"} %.17g\n", f->s[i].value);
    }
}

static void put_scalar(FILE *out, const char *name, const char *type, const char *help, uint64_t value)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name, help, name, type, name, value);
}

static void put_orphan_sweep(FILE *out, const caa_metrics_orphan_sweep *v)
{
    put_scalar(out, "caa_orphan_sweep_runs_total", "counter", "Finished orphan sweep runs.", v->runs);
    put_scalar(out, "caa_orphan_sweep_list_failures_total", "counter",
               "Orphan sweep runs whose instance listing failed.", v->list_failures);
    put_scalar(out, "caa_orphan_sweep_found_total", "counter",
               "Instances of this node that no pod knows, counted each time a run sees one.", v->found);
    put_scalar(out, "caa_orphan_sweep_deleted_total", "counter",
               "Unknown instances the orphan sweep deleted.", v->deleted);
    put_scalar(out, "caa_orphan_sweep_delete_failures_total", "counter",
               "Orphan deletions that failed (the next run retries).", v->delete_failures);
    put_scalar(out, "caa_orphan_sweep_last_found", "gauge",
               "Unknown instances seen by the last finished run.", v->last_found);
}

static void put_histogram(FILE *out, const char *name, const char *help, const histogram *h)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (size_t i = 0; i < N_BUCKETS; i++)
        fprintf(out, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, duration_buckets[i], h->buckets[i]);
    fprintf(out, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n%s_sum %.17g\n%s_count %" PRIu64 "\n", name, h->count,
            name, h->sum, name, h->count);
}

char *caa_metrics_render(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out)
        caa_oom();
    assert_owner_thread();
    put_family(out, "caa_pods", "gauge", "Pods by lifecycle state.", &pods, "state", NULL);
    put_histogram(out, "caa_startvm_duration_seconds", "StartVM duration (provider create to agent ready).",
                  &startvm);
    put_histogram(out, "caa_stopvm_duration_seconds", "StopVM duration.", &stopvm);
    put_family(out, "caa_provider_requests_total", "counter", "Provider operations by result.",
               &provider_requests, "op", "result");
    put_family(out, "caa_kube_requests_total", "counter",
               "Kubernetes API requests by HTTP status (error: no answer).", &kube_requests, "verb", "code");
    fprintf(out,
            "# HELP caa_agent_proxy_connections Agent proxy connections to pod VMs.\n"
            "# TYPE caa_agent_proxy_connections gauge\ncaa_agent_proxy_connections %.17g\n",
            agent_connections);
    put_orphan_sweep(out, &orphan_sweep);
    fprintf(out, "# HELP caa_build_info Build of this daemon.\n# TYPE caa_build_info gauge\n"
                 "caa_build_info{version=\"");
    put_escaped(out, CAA_VERSION);
    fputs("\"} 1\n", out);
    if (fclose(out) != 0)
        caa_oom();
    return text;
}

static void clear_family(family *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->s[i].labels[0]);
        free(f->s[i].labels[1]);
    }
    f->n = 0;
}

void caa_metrics_reset(void)
{
    assert_owner_thread();
    clear_family(&pods);
    clear_family(&provider_requests);
    clear_family(&kube_requests);
    startvm = (histogram){0};
    stopvm = (histogram){0};
    agent_connections = 0;
    orphan_sweep = (caa_metrics_orphan_sweep){0};
}
