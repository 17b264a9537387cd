/* Feeds the pod metrics from the lifecycle: caa_pods{state} through a pod
 * observer, and caa_agent_proxy_connections sampled every 2 s on the loop
 * from the agent proxies' own statistics (a proxy reconnects by itself, so
 * its connection state is read, not inferred from events). */
#pragma once

#include <stddef.h>

#include <uv.h>

#include "manager.h"

typedef struct caa_pod_metrics {
    caa_manager *m;
    uv_timer_t sampler;
} caa_pod_metrics;

/* Before caa_manager_start() to count the recovered pods too. */
void caa_pod_metrics_init(caa_pod_metrics *pm, caa_manager *m);
/* After caa_manager_done(): closes the sampler (run the loop once more). */
void caa_pod_metrics_done(caa_pod_metrics *pm);
