/* agent-protocol-forwarder: runs in the pod VM, between the worker's agent
 * proxy (TCP :15150, TLS by default) and the kata-agent (unix socket).
 *
 * Start-up: flags -> apf.json -> pod network (when configured) -> TLS
 * context -> wait for the kata-agent -> listen -> READY=1 to systemd.
 * SIGTERM/SIGINT: clean shutdown, exit 0. Exit 1: a start-up step failed;
 * exit 2: bad flags. */
#define LOG_COMPONENT "forwarder"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "caa-version.h"
#include "cleanup.h"
#include "forwarder-options.h"
#include "forwarder-sc.h"
#include "forwarder-setup.h"
#include "forwarder.h"
#include "log.h"
#include "sd-notify.h"
#include "xalloc.h"

typedef struct app {
    uv_loop_t loop;
    uv_signal_t sigterm, sigint;
    caa_forwarder *fwd;
    fwd_sc *sc;
    bool tls;
    int exit_code;
    bool stopping;
} app;

static void on_sc_stopped(void *opaque)
{
    app *a = opaque;
    uv_close((uv_handle_t *)&a->sigterm, NULL);
    uv_close((uv_handle_t *)&a->sigint, NULL);
}

static void on_closed(void *opaque)
{
    app *a = opaque;
    a->fwd = NULL;
    if (a->sc)
        fwd_sc_stop(TAKE_PTR(a->sc), on_sc_stopped, a);
    else
        on_sc_stopped(a);
}

static void stop(app *a)
{
    if (a->stopping)
        return;
    a->stopping = true;
    caa_forwarder_close(a->fwd, on_closed, a);
}

static void on_signal(uv_signal_t *h, int signum)
{
    app *a = h->data;
    log_info("signal %d: shutting down", signum);
    stop(a);
}

static void on_serving(int status, caa_error *err, uint16_t port, void *opaque)
{
    app *a = opaque;
    if (status == -ECANCELED) {
        caa_error_free(err);
        return;
    }
    if (status < 0) {
        log_error("cannot listen: %s", caa_error_msg(err));
        caa_error_free(err);
        a->exit_code = 1;
        stop(a);
        return;
    }
    log_info("listening on port %u (%s)", port,
             a->sc    ? "loopback, reached through SSH"
             : a->tls ? "TLS"
                      : "plain TCP, TLS disabled");
    int r = fwd_sd_notify("READY=1");
    if (r < 0)
        log_warn("systemd notification: %s", strerror(-r));
}

int main(int argc, char **argv)
{
    fwd_options o = {0};
    caa_option_set set = fwd_option_set(&o);
    _cleanup_error_ caa_error *e = NULL;
    int exit_code = 1;

    int r = caa_options_parse_program("agent-protocol-forwarder", &set, 1, argc, argv, &o.version,
                                      CAA_VERSION, CAA_GIT_COMMIT);
    if (r >= 0)
        return r;
    caa_log_level level;
    if (caa_log_parse_level(o.log_level, &level) < 0) {
        fprintf(stderr, "agent-protocol-forwarder: bad -log-level '%s'\n", o.log_level);
        caa_options_free(&set, 1);
        return 2;
    }
    caa_log_set_level(level);
    signal(SIGPIPE, SIG_IGN);

    _cleanup_free_ char *host = NULL;
    uint16_t port = 0;
    caa_apf_config apf = {0};
    SSL_CTX *tls = NULL;
    app a = {.exit_code = 0};
    bool loop_ready = false;

    if (fwd_parse_listen(o.listen, &host, &port, &e) < 0)
        goto out;
    log_info("agent-protocol-forwarder %s starting: config %s, kata-agent %s, listen %s, TLS %s", CAA_VERSION,
             o.config, o.kata_agent_socket, o.listen, o.disable_tls ? "off" : "on");
    if (fwd_config_load(o.config, &apf, &e) < 0)
        goto out;
    /* apf.json's pod-namespace is the pod's Kubernetes namespace, the flag
     * a network namespace path: two different things, nothing to compare. */
    if (apf.pod_namespace && *apf.pod_namespace)
        log_info("pod %s/%s, network namespace %s", apf.pod_namespace, apf.pod_name ? apf.pod_name : "",
                 o.pod_namespace);
    r = fwd_pod_network_setup(&apf, o.pod_namespace, &e);
    if (r < 0)
        goto out;
    if (r == 1)
        log_info("no pod-network in %s: pod network set-up skipped", o.config);
    /* Secure comms wins over TLS (as upstream): the agent port is loopback only. */
    if (apf.sc.enabled || o.secure_comms) {
        free(host);
        host = xstrdup("127.0.0.1");
    } else if (!o.disable_tls && fwd_tls_server_ctx(&o, &apf, &tls, &e) < 0) {
        goto out;
    }

    if ((r = uv_loop_init(&a.loop)) < 0) {
        caa_error_set(&e, r, "event loop: %s", uv_strerror(r));
        goto out;
    }
    loop_ready = true;
    a.tls = tls != NULL;
    uv_signal_init(&a.loop, &a.sigterm);
    uv_signal_init(&a.loop, &a.sigint);
    a.sigterm.data = a.sigint.data = &a;
    uv_signal_start(&a.sigterm, on_signal, SIGTERM);
    uv_signal_start(&a.sigint, on_signal, SIGINT);

    if ((apf.sc.enabled || o.secure_comms) && fwd_sc_start(&a.loop, &o, &apf, port, &a.sc, &e) < 0) {
        uv_close((uv_handle_t *)&a.sigterm, NULL);
        uv_close((uv_handle_t *)&a.sigint, NULL);
        uv_run(&a.loop, UV_RUN_DEFAULT);
        goto out;
    }
    caa_forwarder_config fc = {
        .listen_host = host,
        .listen_port = port,
        .agent_socket = o.kata_agent_socket,
        .pod_namespace = o.pod_namespace,
        .tls = tls,
        .tls_handshake_timeout_ns = o.tls_handshake_timeout_ns,
    };
    if (caa_forwarder_start(&a.loop, &fc, on_serving, &a, &a.fwd, &e) < 0) {
        if (a.sc)
            fwd_sc_stop(TAKE_PTR(a.sc), on_sc_stopped, &a);
        else
            on_sc_stopped(&a);
        uv_run(&a.loop, UV_RUN_DEFAULT);
        goto out;
    }
    uv_run(&a.loop, UV_RUN_DEFAULT);
    exit_code = a.exit_code;

out:
    if (e)
        log_error("%s", caa_error_msg(e));
    if (loop_ready && uv_loop_close(&a.loop) < 0)
        log_debug("event loop still had handles at exit");
    SSL_CTX_free(tls);
    caa_apf_config_done(&apf);
    caa_options_free(&set, 1);
    return exit_code;
}
