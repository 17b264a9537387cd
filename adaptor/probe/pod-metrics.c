/* Pod observer -> caa_pods{state}; sampler -> caa_agent_proxy_connections.
 * Reads the proxy through pod-internal.h (read-only, on the loop thread). */
#include "pod-metrics.h"

#include "agent-proxy.h"
#include "metrics.h"
#include "pod-internal.h"
#include "pod.h"

#define SAMPLE_INTERVAL_MS 2000

static void on_added(const caa_pod *pod, void *opaque)
{
    (void)opaque;
    caa_metrics_pod_state(NULL, caa_pod_state_name(caa_pod_get_state(pod)));
}

static void on_state(const caa_pod *pod, caa_pod_state from, caa_pod_state to, void *opaque)
{
    (void)pod;
    (void)opaque;
    caa_metrics_pod_state(caa_pod_state_name(from), caa_pod_state_name(to));
}

static void on_removed(const caa_pod *pod, void *opaque)
{
    (void)opaque;
    caa_metrics_pod_state(caa_pod_state_name(caa_pod_get_state(pod)), NULL);
}

static const caa_pod_observer pod_metrics_observer = {
    .pod_added = on_added,
    .state_changed = on_state,
    .pod_removed = on_removed,
};

static void count_connected(const caa_pod *pod, void *opaque)
{
    size_t *connected = opaque;
    if (!pod->proxy)
        return;
    caa_agent_proxy_stats st;
    caa_agent_proxy_get_stats(pod->proxy, &st);
    *connected += st.connected == 1;
}

/* One pass over the pod table: no copy of the ids, no lookup per pod. */
static void on_sample(uv_timer_t *t)
{
    caa_pod_metrics *pm = t->data;
    size_t connected = 0;
    caa_pods_foreach(pm->m, count_connected, &connected);
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
}
