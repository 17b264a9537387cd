/* Pod observer -> caa_pods{state}; sampler -> caa_agent_proxy_connections.
 * Reads the proxy through pod-internal.h (read-only, on the loop thread). */
#include "pod-metrics.h"

#include <stdlib.h>
#include <string.h>

#include "agent-proxy.h"
#include "metrics.h"
#include "pod-internal.h"
#include "pod.h"
#include "xalloc.h"

#define SAMPLE_INTERVAL_MS 2000

static void on_added(const caa_pod *pod, void *opaque)
{
    caa_pod_metrics *pm = opaque;
    caa_metrics_pod_state(NULL, caa_pod_state_name(caa_pod_get_state(pod)));
    pm->ids = xrealloc(pm->ids, (pm->n_ids + 1) * sizeof(*pm->ids));
    pm->ids[pm->n_ids++] = xstrdup(caa_pod_id(pod));
}

static void on_state(const caa_pod *pod, caa_pod_state from, caa_pod_state to, void *opaque)
{
    (void)pod;
    (void)opaque;
    caa_metrics_pod_state(caa_pod_state_name(from), caa_pod_state_name(to));
}

static void on_removed(const caa_pod *pod, void *opaque)
{
    caa_pod_metrics *pm = opaque;
    caa_metrics_pod_state(caa_pod_state_name(caa_pod_get_state(pod)), NULL);
    for (size_t i = 0; i < pm->n_ids; i++) {
        if (strcmp(pm->ids[i], caa_pod_id(pod)) == 0) {
            free(pm->ids[i]);
            pm->ids[i] = pm->ids[--pm->n_ids];
            break;
        }
    }
}

static const caa_pod_observer pod_metrics_observer = {
    .pod_added = on_added,
    .state_changed = on_state,
    .pod_removed = on_removed,
};

static void on_sample(uv_timer_t *t)
{
    caa_pod_metrics *pm = t->data;
    size_t connected = 0;
    for (size_t i = 0; i < pm->n_ids; i++) {
        caa_pod *pod = caa_pod_find(pm->m, pm->ids[i]);
        if (!pod || !pod->proxy)
            continue;
        caa_agent_proxy_stats st;
        caa_agent_proxy_get_stats(pod->proxy, &st);
        connected += st.connected == 1;
    }
    caa_metrics_set_agent_proxy_connections(connected);
}

void caa_pod_metrics_init(caa_pod_metrics *pm, caa_manager *m)
{
    *pm = (caa_pod_metrics){.m = m};
    caa_manager_add_pod_observer(m, &pod_metrics_observer, pm);
    uv_timer_init(m->loop, &pm->sampler);
    pm->sampler.data = pm;
    uv_timer_start(&pm->sampler, on_sample, SAMPLE_INTERVAL_MS, SAMPLE_INTERVAL_MS);
    uv_unref((uv_handle_t *)&pm->sampler); /* never keeps the daemon alive */
}

void caa_pod_metrics_done(caa_pod_metrics *pm)
{
    uv_close((uv_handle_t *)&pm->sampler, NULL);
    for (size_t i = 0; i < pm->n_ids; i++)
        free(pm->ids[i]);
    free(pm->ids);
    pm->ids = NULL;
    pm->n_ids = 0;
}
