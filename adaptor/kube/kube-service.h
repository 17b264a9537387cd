/* The daemon's Kubernetes side: finds the API server (kube-config.h), keeps
 * one client, advertises the node's extended resource at start and removes
 * it at shutdown (kube-node.h). Without an API server the daemon runs as
 * before and says so in one log line.
 *
 * Environment as upstream: NODE_NAME (downward API; without it no node
 * resource), POD_UID (owner annotation), CLOUD_PROVIDER (PeerPod spec). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "error.h"
#include "kube-client.h"

typedef struct caa_kube_service caa_kube_service;
typedef struct caa_probe_server caa_probe_server;

typedef struct caa_kube_service_options {
    const char *kubeconfig; /* -kubeconfig; NULL/"": in-cluster, then $KUBECONFIG */
    const char *node_name;  /* NULL/"": no node resource */
    const char *pod_uid;
    int64_t limit_per_node;  /* negative: no node resource */
    caa_probe_server *probe; /* told when the node resource is set; may be NULL */
} caa_kube_service_options;

/* 0 with *ret set, 0 with *ret NULL (no API server configured: logged once),
 * or an error (a configuration that exists but is wrong: the daemon stops). */
int caa_kube_service_start(uv_loop_t *loop, const caa_kube_service_options *opts, caa_kube_service **ret,
                           caa_error **err);
/* Shutdown: stops advertising, removes the node resource when this daemon
 * still owns it (bounded: a few seconds at most), then closes the client and
 * frees the service. Keep running the loop. NULL-safe. */
void caa_kube_service_shutdown(caa_kube_service *s);
/* The API client (NULL-safe: NULL when Kubernetes is off or shutting down). */
caa_kube_client *caa_kube_service_client(caa_kube_service *s);
