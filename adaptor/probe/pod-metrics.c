/* Pod observer -> caa_pods{state} gauge. */
#include "pod-metrics.h"

#include "metrics.h"
#include "pod.h"

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

void caa_pod_metrics_register(caa_manager *m)
{
    caa_manager_add_pod_observer(m, &pod_metrics_observer, NULL);
}
