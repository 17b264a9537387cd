/* Owner of the Kubernetes client and the node resource operations. */
#define LOG_COMPONENT "adaptor/kube"
#include "kube-service.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kube-node.h"
#include "log.h"
#include "probe-server.h"
#include "xalloc.h"

struct caa_kube_service {
    caa_kube_client *client;
    caa_kube_node *node_op; /* advertise or release in flight */
    char *node_name, *pod_uid;
    caa_probe_server *probe;
    bool advertised;
    bool shutting_down;
};

static void service_close(caa_kube_service *s)
{
    caa_kube_client_close(s->client);
    free(s->node_name);
    free(s->pod_uid);
    free(s);
}

static void on_advertised(int status, caa_error *err, void *opaque)
{
    caa_kube_service *s = opaque;
    s->node_op = NULL;
    caa_error_free(err);
    if (status == 0) {
        s->advertised = true;
        caa_probe_set_node_resource(s->probe, true, true);
    }
}

static void on_released(int status, caa_error *err, void *opaque)
{
    caa_kube_service *s = opaque;
    s->node_op = NULL;
    if (status < 0)
        log_warn("removing %s from node %s: %s", CAA_KUBE_NODE_RESOURCE, s->node_name, caa_error_msg(err));
    caa_error_free(err);
    service_close(s);
}

int caa_kube_service_start(uv_loop_t *loop, const caa_kube_service_options *opts, caa_kube_service **ret,
                           caa_error **err)
{
    *ret = NULL;
    caa_kube_config cfg = {0};
    int r = caa_kube_config_load(opts->kubeconfig, &cfg, err);
    if (r < 0)
        return caa_error_prefix(err, "Kubernetes API configuration");
    if (r == 1) {
        log_info("no Kubernetes API server configured (in-cluster or kubeconfig): node resource, image-pull "
                 "secrets and PeerPod objects are off");
        return 0;
    }
    if (cfg.insecure_skip_verify)
        log_warn("kubeconfig sets insecure-skip-tls-verify: the API server's certificate is not verified");
    caa_kube_client *client;
    r = caa_kube_client_new(loop, &cfg, &client, err);
    if (r < 0) {
        caa_kube_config_done(&cfg);
        return r;
    }
    log_info("Kubernetes API server %s (from %s, namespace %s, %s)", cfg.server, cfg.source, cfg.namespace,
             cfg.token || cfg.token_file ? "bearer token"
                                         : (cfg.cert_pem ? "client certificate" : "anonymous"));
    caa_kube_config_done(&cfg);

    caa_kube_service *s = xnew0(caa_kube_service, 1);
    s->client = client;
    s->probe = opts->probe;
    s->node_name = opts->node_name && *opts->node_name ? xstrdup(opts->node_name) : NULL;
    s->pod_uid = opts->pod_uid && *opts->pod_uid ? xstrdup(opts->pod_uid) : NULL;
    if (!s->node_name) {
        log_info("NODE_NAME is not set: the node resource %s is not advertised", CAA_KUBE_NODE_RESOURCE);
    } else if (opts->limit_per_node < 0) {
        log_info("-peerpods-limit-per-node is negative: no node resource to advertise");
    } else {
        if ((r = caa_kube_node_advertise(client, s->node_name, s->pod_uid, opts->limit_per_node,
                                         on_advertised, s, &s->node_op, err)) < 0) {
            service_close(s);
            return r;
        }
        caa_probe_set_node_resource(s->probe, true, false);
    }
    *ret = s;
    return 0;
}

void caa_kube_service_shutdown(caa_kube_service *s)
{
    if (!s || s->shutting_down)
        return;
    s->shutting_down = true;
    caa_kube_node_free(s->node_op); /* an advertise still retrying */
    s->node_op = NULL;
    if (s->advertised &&
        caa_kube_node_release(s->client, s->node_name, s->pod_uid, on_released, s, &s->node_op, NULL) == 0)
        return;
    service_close(s);
}

caa_kube_client *caa_kube_service_client(caa_kube_service *s)
{
    return s && !s->shutting_down ? s->client : NULL;
}
