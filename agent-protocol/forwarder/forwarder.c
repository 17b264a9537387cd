/* agent-protocol-forwarder serving part (see forwarder.h). */
#define LOG_COMPONENT "forwarder"

#include "forwarder.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "agent-link.h"
#include "agent-rewrite.h"
#include "cleanup.h"
#include "log.h"
#include "tls-listener.h"
#include "ttrpc.h"
#include "xalloc.h"
#include "refcount.h"
#include "timeutil.h"

struct caa_forwarder {
    uv_loop_t *loop;
    char *listen_host;
    uint16_t listen_port;
    char *pod_namespace;
    SSL_CTX *tls;
    int64_t tls_handshake_timeout_ns;
    caa_relay_rewrite rewrites[2];
    caa_relay *relay;
    fwd_agent_link *link;
    fwd_tls_listener *tls_listener;
    bool listening;

    caa_forwarder_serving_cb serving_cb;
    void *serving_opaque;
    bool serving_reported;

    bool closing;
    caa_refcount pending;
    void (*done)(void *opaque);
    void *done_opaque;
};

static int rewrite_create_sandbox(void *opaque, const uint8_t *payload, size_t len, uint8_t **ret,
                                  size_t *ret_len, caa_error **err)
{
    (void)opaque;
    return caa_agent_rewrite_sandbox_dns(payload, len, ret, ret_len, err);
}

static int rewrite_create_container(void *opaque, const uint8_t *payload, size_t len, uint8_t **ret,
                                    size_t *ret_len, caa_error **err)
{
    caa_forwarder *f = opaque;
    return caa_agent_rewrite_container_netns(payload, len, f->pod_namespace, ret, ret_len, err);
}

static void report_serving(caa_forwarder *f, int status, caa_error *err, uint16_t port)
{
    if (f->serving_reported) {
        caa_error_free(err);
        return;
    }
    f->serving_reported = true;
    f->serving_cb(status, err, port, f->serving_opaque);
}

static void start_listening(caa_forwarder *f)
{
    _cleanup_error_ caa_error *e = NULL;
    int r;
    uint16_t port;
    if (f->tls) {
        r = fwd_tls_listen(f->loop, caa_relay_server(f->relay), f->tls, f->listen_host, f->listen_port,
                           &f->tls_listener, &e);
        port = r == 0 ? fwd_tls_listener_port(f->tls_listener) : 0;
        if (r == 0 && f->tls_handshake_timeout_ns > 0)
            fwd_tls_listener_set_handshake_timeout(f->tls_listener,
                                                   caa_ns_to_ms_ceil(f->tls_handshake_timeout_ns));
    } else {
        ttrpc_server *s = caa_relay_server(f->relay);
        r = ttrpc_server_listen_tcp(s, f->listen_host, f->listen_port, &e);
        port = r == 0 ? ttrpc_server_tcp_port(s) : 0;
    }
    if (r < 0) {
        report_serving(f, r, TAKE_PTR(e), 0);
        return;
    }
    f->listening = true;
    report_serving(f, 0, NULL, port);
}

static void on_agent_connected(bool first, void *opaque)
{
    caa_forwarder *f = opaque;
    if (first && !f->closing)
        start_listening(f);
}

static void on_upstream_lost(caa_relay *r, void *opaque)
{
    caa_forwarder *f = opaque;
    (void)r;
    fwd_agent_link_lost(f->link);
}

int caa_forwarder_start(uv_loop_t *loop, const caa_forwarder_config *cfg, caa_forwarder_serving_cb cb,
                        void *opaque, caa_forwarder **ret, caa_error **err)
{
    if (!loop || !cfg || !cb || !ret || !cfg->agent_socket || !cfg->pod_namespace)
        return caa_error_set(err, -EINVAL, "forwarder: missing argument");
    caa_forwarder *f = xnew0(caa_forwarder, 1);
    f->loop = loop;
    f->listen_host = xstrdup(cfg->listen_host ? cfg->listen_host : "");
    f->listen_port = cfg->listen_port;
    f->pod_namespace = xstrdup(cfg->pod_namespace);
    if (cfg->tls) {
        SSL_CTX_up_ref(cfg->tls);
        f->tls = cfg->tls;
        f->tls_handshake_timeout_ns = cfg->tls_handshake_timeout_ns;
    }
    f->serving_cb = cb;
    f->serving_opaque = opaque;
    f->rewrites[0] = (caa_relay_rewrite){CAA_AGENT_SERVICE, "CreateSandbox", rewrite_create_sandbox};
    f->rewrites[1] = (caa_relay_rewrite){CAA_AGENT_SERVICE, "CreateContainer", rewrite_create_container};

    _cleanup_free_ char *name = xasprintf("kata-agent %s", cfg->agent_socket);
    caa_relay_config rc = {
        .name = name,
        .rewrites = f->rewrites,
        .n_rewrites = CAA_ARRAY_SIZE(f->rewrites),
        .rewrite_opaque = f,
        .max_wait_ns = cfg->agent_wait_ns > 0 ? cfg->agent_wait_ns : FWD_AGENT_WAIT_NS,
        .upstream_lost = on_upstream_lost,
        .opaque = f,
    };
    int r = caa_relay_new(loop, &rc, &f->relay, err);
    if (r == 0)
        r = fwd_agent_link_start(loop, cfg->agent_socket, f->relay, on_agent_connected, f, &f->link, err);
    if (r < 0) {
        if (f->relay) {
            f->serving_reported = true;
            caa_forwarder_close(f, NULL, NULL);
        } else {
            SSL_CTX_free(f->tls);
            free(f->listen_host);
            free(f->pod_namespace);
            free(f);
        }
        return r;
    }
    *ret = f;
    return 0;
}

void caa_forwarder_get_stats(const caa_forwarder *f, caa_relay_stats *ret)
{
    caa_relay_get_stats(f->relay, ret);
}

static void finish_part(void *opaque)
{
    caa_forwarder *f = opaque;
    if (!caa_unref(&f->pending))
        return;
    report_serving(f, -ECANCELED,
                   caa_error_new(-ECANCELED, "forwarder closed before the kata-agent answered"), 0);
    void (*done)(void *) = f->done;
    void *done_opaque = f->done_opaque;
    SSL_CTX_free(f->tls);
    free(f->listen_host);
    free(f->pod_namespace);
    free(f);
    if (done)
        done(done_opaque);
}

void caa_forwarder_close(caa_forwarder *f, void (*done)(void *opaque), void *opaque)
{
    if (!f || f->closing)
        return;
    f->closing = true;
    f->done = done;
    f->done_opaque = opaque;
    caa_refcount_init(&f->pending, 1);
    if (f->link) {
        caa_ref(&f->pending);
        fwd_agent_link_close(f->link, finish_part, f);
    }
    if (f->tls_listener) {
        caa_ref(&f->pending);
        fwd_tls_listener_close(f->tls_listener, finish_part, f);
    }
    caa_relay_close(f->relay, finish_part, f);
}
