/* peerpod-ctrl's plain-HTTP endpoints: /healthz and /readyz on the probe
 * port, /metrics (Prometheus text) on the metrics port. opaque: controller. */
#pragma once

#include "http-server.h"

void ctrl_handle_probe(const caa_http_request *req, caa_http_response *resp, void *opaque);
void ctrl_handle_metrics(const caa_http_request *req, caa_http_response *resp, void *opaque);
