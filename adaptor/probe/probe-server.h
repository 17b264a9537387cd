/* Probe, health and metrics endpoint (libmicrohttpd) on 127.0.0.1:PROBE_PORT:
 *
 *   GET /startup  200 once the daemon serves the hypervisor socket and, where
 *                 Kubernetes is on, the node's extended resource is set; 503 before
 *   GET /healthz  200 while the daemon runs
 *   GET /metrics  Prometheus text format (metrics.h)
 *
 * MHD runs its own thread (MHD_USE_INTERNAL_POLLING_THREAD): it never touches
 * the loop; the loop thread publishes readiness through atomics and metrics
 * through the metrics mutex (docs/metrics.md argues the choice). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

typedef struct caa_probe_server caa_probe_server;

/* port 0: an ephemeral port (tests; read it back with _port()). */
int caa_probe_server_start(const char *address, uint16_t port, caa_probe_server **ret, caa_error **err);
uint16_t caa_probe_server_port(const caa_probe_server *p);
/* Stops the thread and closes the socket. NULL-safe. */
void caa_probe_server_stop(caa_probe_server *p);

/* Readiness inputs, from the loop thread. */
void caa_probe_set_serving(caa_probe_server *p, bool serving);
/* needed: Kubernetes is on; done: the node resource is advertised. */
void caa_probe_set_node_resource(caa_probe_server *p, bool needed, bool done);
