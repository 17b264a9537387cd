/* peerpod-ctrl: deletes the cloud instances of PeerPods whose pods are gone
 * but whose daemon never released them; see controller.h. */
#define LOG_COMPONENT "peerpod-ctrl"
#include "ctrl-main.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "caa-version.h"
#include "cleanup.h"
#include "controller.h"
#include "ctrl-http.h"
#include "ctrl-options.h"
#include "http-server.h"
#include "kube-config.h"
#include "log.h"
#include "provider.h"
#include "xalloc.h"

typedef struct ctrl_app {
    uv_loop_t loop;
    uv_signal_t sigterm, sigint;
    caa_http_server *servers[2];
    size_t n_servers;
    controller *ctrl;
    caa_kube_client *kube;
    caa_provider *provider;
} ctrl_app;

static void shutdown_app(ctrl_app *a)
{
    for (size_t i = 0; i < a->n_servers; i++)
        caa_http_server_close(a->servers[i]);
    a->n_servers = 0;
    if (a->ctrl)
        controller_stop(a->ctrl);
    caa_kube_client_close(a->kube);
    a->kube = NULL;
    caa_provider_teardown(a->provider);
    uv_close((uv_handle_t *)&a->sigterm, NULL);
    uv_close((uv_handle_t *)&a->sigint, NULL);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    log_info("signal %d: shutting down", signum);
    shutdown_app(sig->data);
}

static int start_plain(ctrl_app *a, const char *flag, const char *address, caa_http_handler fn,
                       caa_error **err)
{
    _cleanup_free_ char *host = NULL;
    int port = 0;
    if (caa_http_parse_bind_address(flag, address, &host, &port, err) < 0)
        return -EINVAL;
    if (!host)
        return 0;
    caa_http_server_config cfg = {.host = host,
                                  .port = port,
                                  .handler = fn,
                                  .opaque = a->ctrl,
                                  .max_body = 0,
                                  .max_connections = 64,
                                  .idle_timeout_ms = 30000};
    if (caa_http_server_start(&a->loop, &cfg, &a->servers[a->n_servers], err) < 0)
        return caa_error_prefix(err, "-%s", flag);
    log_info("-%s: listening on %s:%d", flag, host, caa_http_server_port(a->servers[a->n_servers]));
    a->n_servers++;
    return 0;
}

static void usage(FILE *out)
{
    const char *names[32] = {0};
    caa_provider_names(names, 31);
    fprintf(out, "usage: peerpod-ctrl <provider> [flags]   (peerpod-ctrl <provider> -help lists the flags)\n"
                 "providers:");
    for (size_t i = 0; names[i]; i++)
        fprintf(out, " %s", names[i]);
    fprintf(out, "\n");
}

int peerpod_ctrl_main(int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && (strcmp(argv[1], "-version") == 0 || strcmp(argv[1], "--version") == 0)) {
            printf("peerpod-ctrl version %s\n  commit: %s\n", CAA_VERSION, CAA_GIT_COMMIT);
            return 0;
        }
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    _cleanup_error_ caa_error *e = NULL;
    const caa_provider_ops *ops = caa_provider_find(argv[1], &e);
    if (!ops) {
        fprintf(stderr, "peerpod-ctrl: %s\n", caa_error_msg(e));
        return 2;
    }
    ctrl_app a = {0};
    int r = uv_loop_init(&a.loop);
    if (r < 0) {
        fprintf(stderr, "peerpod-ctrl: event loop: %s\n", uv_strerror(r));
        return 1;
    }
    ctrl_options o = {0};
    a.provider = caa_provider_new(ops, &a.loop);
    caa_option_set sets[2] = {ctrl_option_set(&o), caa_provider_option_set(a.provider)};
    int exit_code = 1;
    caa_kube_config kcfg = {0};
    bool kcfg_loaded = false;
    _cleanup_free_ char *identity = NULL;

    r = caa_options_parse(sets, 2, argc - 2, argv + 2, &e);
    if (r == 1) {
        caa_options_print_help(stdout, sets, 2);
        exit_code = 0;
        goto out;
    }
    if (r < 0) {
        fprintf(stderr, "peerpod-ctrl: %s\n", caa_error_msg(e));
        exit_code = 2;
        goto out;
    }
    caa_log_level level;
    caa_log_format format;
    if (caa_log_parse_level(o.log_level, &level) < 0 || caa_log_parse_format(o.log_format, &format) < 0) {
        fprintf(stderr, "peerpod-ctrl: bad -log-level '%s' or -log-format '%s'\n", o.log_level, o.log_format);
        exit_code = 2;
        goto out;
    }
    caa_log_set_level(level);
    caa_log_set_format(format);
    signal(SIGPIPE, SIG_IGN);

    if (caa_provider_init(a.provider, &e) < 0)
        goto out;
    r = caa_kube_config_load(o.kubeconfig[0] ? o.kubeconfig : NULL, &kcfg, &e);
    if (r < 0)
        goto out;
    kcfg_loaded = r == 0;
    if (r == 1) {
        caa_error_set(&e, -EINVAL,
                      "no Kubernetes API server: not in a cluster and no -kubeconfig/$KUBECONFIG");
        goto out;
    }
    if (caa_kube_client_new(&a.loop, &kcfg, &a.kube, &e) < 0)
        goto out;

    char host[128] = "";
    gethostname(host, sizeof(host) - 1);
    identity = o.identity[0] ? xstrdup(o.identity)
                             : xasprintf("%s_%ld", host[0] ? host : "peerpod-ctrl", (long)getpid());
    ctrl_config cfg = {
        .provider_name = ops->name,
        .leader_elect = o.leader_elect,
        .identity = identity,
        .lease_namespace = o.lease_namespace,
        .lease_name = o.lease_name,
        .lease_duration_s = (int)(o.lease_duration_ns / 1000000000),
        .renew_deadline_s = (int)(o.renew_deadline_ns / 1000000000),
        .retry_period_ms = o.retry_period_ns / 1000000,
        .resync_period_ms = o.resync_period_ns / 1000000,
        .backoff_base_ms = o.backoff_base_ns / 1000000,
        .backoff_max_ms = o.backoff_max_ns / 1000000,
    };
    if (cfg.retry_period_ms <= 0 || cfg.resync_period_ms <= 0 || cfg.backoff_base_ms <= 0 ||
        cfg.backoff_max_ms < cfg.backoff_base_ms) {
        caa_error_set(&e, -EINVAL, "periods must be positive and -retry-backoff-max >= -retry-backoff");
        goto out;
    }
    if (controller_start(&a.loop, &cfg, a.kube, a.provider, &a.ctrl, &e) < 0)
        goto out;
    log_info(
        "peerpod-ctrl %s: provider %s, API server %s, leader election %s (identity %s), resync every %lld ms",
        CAA_VERSION, ops->name, kcfg.server, o.leader_elect ? "on" : "off", identity,
        (long long)cfg.resync_period_ms);
    uv_signal_init(&a.loop, &a.sigterm);
    uv_signal_init(&a.loop, &a.sigint);
    a.sigterm.data = a.sigint.data = &a;
    if (start_plain(&a, "health-probe-bind-address", o.health_probe_bind_address, ctrl_handle_probe, &e) <
            0 ||
        start_plain(&a, "metrics-bind-address", o.metrics_bind_address, ctrl_handle_metrics, &e) < 0) {
        shutdown_app(&a);
        uv_run(&a.loop, UV_RUN_DEFAULT);
        goto out;
    }
    uv_signal_start(&a.sigterm, on_signal, SIGTERM);
    uv_signal_start(&a.sigint, on_signal, SIGINT);
    uv_run(&a.loop, UV_RUN_DEFAULT);
    exit_code = 0;

out:
    if (e)
        log_error("%s", caa_error_msg(e));
    if (a.kube) { /* start failed after the client was made */
        caa_kube_client_close(a.kube);
        uv_run(&a.loop, UV_RUN_DEFAULT);
    }
    controller_free(a.ctrl);
    caa_options_free(sets, 2); /* before the provider: its option set points into the provider's config */
    caa_provider_free(a.provider);
    uv_run(&a.loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&a.loop) < 0)
        log_debug("event loop still had handles at exit");
    if (kcfg_loaded)
        caa_kube_config_done(&kcfg);
    return exit_code;
}
