/* Agent proxy hooks: the shim's agent socket (<pods-dir>/<id>/agent.ttrpc)
 * relayed to the agent-protocol-forwarder at <VM ip>:<-forwarder-port>
 * (adaptor/proxy/agent-proxy.h), over TLS unless -disable-tls. */
#define LOG_COMPONENT "adaptor/proxy"
#include <errno.h>
#include <stdlib.h>

#include "agent-proxy.h"
#include "daemon-sc.h"
#include "daemon-tls.h"
#include "log.h"
#include "pod-hooks.h"
#include "pod-internal.h"
#include "xalloc.h"

static int agent_proxy_start(caa_manager *m, caa_pod *pod, caa_done_cb cb, void *opaque, caa_error **err)
{
    const caa_daemon_config *cfg = m->cfg;
    const caa_agent_dialer *dialer = m->sc ? caa_daemon_sc_dialer(m->sc) : caa_agent_dialer_tcp();
    int r = m->tls ? caa_daemon_tls_dialer(m->tls, &dialer, err) : 0;
    if (r < 0)
        return r;
    caa_agent_proxy_config pc = {
        .sandbox_id = pod->rec.sandbox_id,
        .socket_path = pod->agent_socket,
        .host = pod->rec.instance_ips[0],
        .port = (uint16_t)cfg->forwarder_port,
        .dialer = dialer,
        .server_name = m->sc    ? pod->rec.sandbox_id
                       : m->tls ? caa_daemon_tls_server_name(m->tls, pod->rec.instance_name)
                                : NULL,
        .timeout_ns = cfg->proxy_timeout_ns,
        .gpus = pod->rec.gpus,
        /* A ready pod (recovered after a restart) has a VM that runs: keep
         * dialling it for as long as the pod exists. */
        .retry_forever = pod->rec.state == CAA_POD_READY,
    };
    caa_agent_proxy *p = NULL;
    /* The proxy's ready callback has caa_done_cb's shape and contract. */
    r = caa_agent_proxy_start(m->loop, &pc, cb, opaque, &p, err);
    if (r < 0)
        return r;
    pod->proxy = p;
    log_pod_info(pod->rec.sandbox_id, "agent proxy: connecting to %s:%u (%s)", pc.host, pc.port,
                 m->sc    ? "SSH"
                 : m->tls ? "TLS"
                          : "plain TCP");
    return 0;
}

/* Secure comms, Trustee mode: the keys reach the KBS before the proxy starts. */
typedef struct sc_prepare {
    caa_manager *m;
    caa_pod *pod;
    caa_done_cb cb;
    void *opaque;
} sc_prepare;

static void on_sc_prepared(int status, caa_error *err, void *opaque)
{
    sc_prepare *sp = opaque;
    /* -ECANCELED: StopVM ran (caa_daemon_sc_forget), the pod may be gone. */
    if (status == 0 && (status = agent_proxy_start(sp->m, sp->pod, sp->cb, sp->opaque, &err)) == 0) {
        free(sp);
        return;
    }
    sp->cb(status, err, sp->opaque);
    free(sp);
}

int caa_pod_proxy_start(caa_manager *m, caa_pod *pod, caa_done_cb cb, void *opaque, caa_error **err)
{
    if (pod->proxy)
        return caa_error_set(err, -EALREADY, "the agent proxy of sandbox %s is already running",
                             pod->rec.sandbox_id);
    if (!pod->rec.instance_ips || !pod->rec.instance_ips[0])
        return caa_error_set(err, -EINVAL, "instance %s has no IP address", pod->rec.instance_name);
    sc_prepare *sp = xnew0(sc_prepare, 1);
    *sp = (sc_prepare){m, pod, cb, opaque};
    int r = caa_daemon_sc_prepare(m->sc, pod->rec.sandbox_id, pod->dir, on_sc_prepared, sp, err);
    if (r != 0) {
        free(sp);
        return r < 0 ? r : agent_proxy_start(m, pod, cb, opaque, err);
    }
    return 0;
}

void caa_pod_proxy_stop(caa_manager *m, caa_pod *pod)
{
    caa_daemon_sc_forget(m->sc, pod->rec.sandbox_id, !m->shutting_down);
    caa_agent_proxy *p = pod->proxy;
    if (!p)
        return;
    pod->proxy = NULL;
    /* Asynchronous: a ready callback still pending runs later with -ECANCELED. */
    caa_agent_proxy_shutdown(p, NULL, NULL);
}
