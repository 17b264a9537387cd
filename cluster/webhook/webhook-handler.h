/* What the webhook's HTTP servers answer: /mutate-v1-pod on the HTTPS port,
 * /healthz and /readyz on the probe port, /metrics on the metrics port
 * (Prometheus text: reviews by verdict, HTTP answers by code, time spent). */
#pragma once

#include <stdint.h>

#include "http-server.h"
#include "pod-mutation.h"
#include "serving-cert.h"

#define WEBHOOK_MUTATE_PATH "/mutate-v1-pod"

typedef struct webhook_stats {
    uint64_t reviews[4];       /* by caa_admission_verdict */
    uint64_t refused_requests; /* wrong path, method or content type */
    uint64_t review_ns_total;  /* time spent answering reviews */
} webhook_stats;

typedef struct webhook_handler {
    caa_pod_mutation_config mutation;
    caa_serving_cert *serving_cert; /* HTTPS port's certificate */
    webhook_stats stats;
} webhook_handler;

/* HTTPS port (opaque: webhook_handler). */
void webhook_handle_admission(const caa_http_request *req, caa_http_response *resp, void *opaque);
/* Probe and metrics ports (opaque: webhook_handler). */
void webhook_handle_probe(const caa_http_request *req, caa_http_response *resp, void *opaque);
void webhook_handle_metrics(const caa_http_request *req, caa_http_response *resp, void *opaque);
