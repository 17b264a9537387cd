/* The daemon's metrics, rendered in the Prometheus text format (0.0.4) for
 * GET /metrics. Upstream has no metrics; the names are ours:
 *
 *   caa_pods{state}                              gauge: pods per lifecycle state
 *   caa_startvm_duration_seconds                 histogram of StartVM calls
 *   caa_stopvm_duration_seconds                  histogram of StopVM calls
 *   caa_provider_requests_total{op,result}       counter
 *   caa_kube_requests_total{verb,code}           counter (code "error": no answer)
 *   caa_agent_proxy_connections                  gauge: agent connections up
 *   caa_orphan_sweep_*_total, _last_found        the orphan sweep's counters
 *   caa_build_info{version}                      always 1
 *
 * One process-wide registry without a lock: recorded and rendered on the
 * loop thread only (debug builds abort on a second thread; docs/metrics.md). */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* The orphan sweep's counters (adaptor/orphan-sweep.h), as the sweep
 * publishes them after each run. */
typedef struct caa_metrics_orphan_sweep {
    uint64_t runs;
    uint64_t list_failures;
    uint64_t found;
    uint64_t deleted;
    uint64_t delete_failures;
    uint64_t last_found;
} caa_metrics_orphan_sweep;

void caa_metrics_pod_state(const char *from, const char *to); /* NULL: none (created / freed) */
void caa_metrics_observe_startvm(double seconds);
void caa_metrics_observe_stopvm(double seconds);
void caa_metrics_provider_request(const char *op, const char *result);
/* result from a provider callback's status: ok, cancelled or error. */
void caa_metrics_provider_result(const char *op, int status);
void caa_metrics_kube_request(const char *verb, long http_status); /* 0: no answer */
void caa_metrics_set_agent_proxy_connections(size_t n);
void caa_metrics_set_orphan_sweep(const caa_metrics_orphan_sweep *v);

/* The whole exposition as a new string. */
char *caa_metrics_render(void);
/* Forgets every value (tests). */
void caa_metrics_reset(void);
