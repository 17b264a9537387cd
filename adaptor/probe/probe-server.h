/* Probe, health and metrics endpoint on 127.0.0.1:PROBE_PORT:
 *
 *   GET /startup  200 once the daemon serves the hypervisor socket and, where
 *                 Kubernetes is on, the node's extended resource is set; 503 before
 *   GET /healthz  200 while the daemon runs (and its loop answers)
 *   GET /metrics  Prometheus text format (metrics.h)
 *
 * Served on the daemon's loop by cluster/http's HTTP/1.1 server (connection
 * limit, idle timeout, bounded request head); its handles do not keep the
 * loop running (docs/metrics.md says why it is not libmicrohttpd any more). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "error.h"

typedef struct caa_probe_server caa_probe_server;

/* port 0: an ephemeral port (tests; read it back with _port()). */
int caa_probe_server_start(uv_loop_t *loop, const char *address, uint16_t port, caa_probe_server **ret,
                           caa_error **err);
uint16_t caa_probe_server_port(const caa_probe_server *p);
/* Closes the socket and the connections (the handles close on the loop's
 * next run). NULL-safe. */
void caa_probe_server_stop(caa_probe_server *p);

/* Readiness inputs. */
void caa_probe_set_serving(caa_probe_server *p, bool serving);
/* needed: Kubernetes is on; done: the node resource is advertised. */
void caa_probe_set_node_resource(caa_probe_server *p, bool needed, bool done);
