/* peerpods-webhook: the peer-pods mutating admission webhook (HTTPS on
 * -port, /mutate-v1-pod), plus plain-HTTP probe and metrics ports. */
#define LOG_COMPONENT "webhook"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <uv.h>

#include "caa-version.h"
#include "admission-review.h"
#include "cleanup.h"
#include "http-server.h"
#include "log.h"
#include "serving-cert.h"
#include "tls-profile.h"
#include "webhook-handler.h"
#include "webhook-options.h"

#define IDLE_TIMEOUT_MS 60000
#define MAX_CONNECTIONS 1024

typedef struct app {
    uv_loop_t loop;
    uv_signal_t sigterm, sigint;
    caa_http_server *servers[3];
    size_t n_servers;
} app;

static void on_signal(uv_signal_t *sig, int signum)
{
    app *a = sig->data;
    log_info("signal %d: shutting down", signum);
    for (size_t i = 0; i < a->n_servers; i++)
        caa_http_server_close(a->servers[i]);
    a->n_servers = 0;
    uv_close((uv_handle_t *)&a->sigterm, NULL);
    uv_close((uv_handle_t *)&a->sigint, NULL);
}

static SSL_CTX *current_tls_ctx(void *opaque)
{
    webhook_handler *h = opaque;
    return caa_serving_cert_ctx(h->serving_cert);
}

static int start_server(app *a, const char *host, int port, caa_http_tls_ctx_cb tls, caa_http_handler fn,
                        webhook_handler *h, const char *what, caa_error **err)
{
    caa_http_server_config cfg = {
        .host = host,
        .port = port,
        .tls_ctx = tls,
        .handler = fn,
        .opaque = h,
        .max_body = CAA_ADMISSION_MAX_BODY,
        .max_connections = MAX_CONNECTIONS,
        .idle_timeout_ms = IDLE_TIMEOUT_MS,
    };
    caa_http_server *s = NULL;
    if (caa_http_server_start(&a->loop, &cfg, &s, err) < 0)
        return caa_error_prefix(err, "%s", what);
    a->servers[a->n_servers++] = s;
    log_info("%s listening on %s:%d", what, host, caa_http_server_port(s));
    return 0;
}

/* Starts the probe or metrics port unless its address is "0". */
static int start_plain_server(app *a, const char *flag, const char *address, caa_http_handler fn,
                              webhook_handler *h, caa_error **err)
{
    _cleanup_free_ char *host = NULL;
    int port = 0;
    if (caa_http_parse_bind_address(flag, address, &host, &port, err) < 0)
        return -EINVAL;
    if (!host)
        return 0;
    return start_server(a, host, port, NULL, fn, h, flag, err);
}

int main(int argc, char **argv)
{
    webhook_options o = {0};
    caa_option_set set = webhook_option_set(&o);
    _cleanup_error_ caa_error *e = NULL;

    int r = caa_options_parse_program("peerpods-webhook", &set, 1, argc, argv, &o.version, CAA_VERSION,
                                      CAA_GIT_COMMIT);
    if (r >= 0)
        return r;
    caa_log_level level;
    caa_log_format format;
    if (caa_log_parse_level(o.log_level, &level) < 0 || caa_log_parse_format(o.log_format, &format) < 0) {
        fprintf(stderr, "peerpods-webhook: bad -log-level '%s' or -log-format '%s'\n", o.log_level,
                o.log_format);
        caa_options_free(&set, 1);
        return 2;
    }
    caa_log_set_level(level);
    caa_log_set_format(format);
    signal(SIGPIPE, SIG_IGN);

    int exit_code = 1;
    caa_tls_profile profile = {0};
    webhook_handler h = {
        .mutation = {.runtime_class = o.target_runtime_class, .extended_resource = o.extended_resource},
    };
    app a = {0};
    bool loop_ready = false;

    if (caa_tls_profile_parse(o.tls_min_version, o.tls_cipher_suites, &profile, &e) < 0)
        goto out;
    if (caa_serving_cert_new(o.cert_dir, &profile, &h.serving_cert, &e) < 0)
        goto out;
    log_info("peerpods-webhook %s: runtime class %s, extended resource %s, certificates from %s, TLS %s+",
             CAA_VERSION, o.target_runtime_class, o.extended_resource, o.cert_dir,
             caa_tls_profile_min_version_name(&profile));
    if (o.leader_elect)
        log_info("-leader-elect has no effect: the webhook keeps no state");

    if ((r = uv_loop_init(&a.loop)) < 0) {
        caa_error_set(&e, r, "event loop: %s", uv_strerror(r));
        goto out;
    }
    loop_ready = true;
    const char *host = o.host[0] ? o.host : "0.0.0.0";
    if (start_server(&a, host, (int)o.port, current_tls_ctx, webhook_handle_admission, &h, "webhook", &e) <
            0 ||
        start_plain_server(&a, "health-probe-bind-address", o.health_probe_bind_address, webhook_handle_probe,
                           &h, &e) < 0 ||
        start_plain_server(&a, "metrics-bind-address", o.metrics_bind_address, webhook_handle_metrics, &h,
                           &e) < 0) {
        for (size_t i = 0; i < a.n_servers; i++)
            caa_http_server_close(a.servers[i]);
        uv_run(&a.loop, UV_RUN_DEFAULT);
        goto out;
    }
    uv_signal_init(&a.loop, &a.sigterm);
    uv_signal_init(&a.loop, &a.sigint);
    a.sigterm.data = a.sigint.data = &a;
    uv_signal_start(&a.sigterm, on_signal, SIGTERM);
    uv_signal_start(&a.sigint, on_signal, SIGINT);
    uv_run(&a.loop, UV_RUN_DEFAULT);
    exit_code = 0;

out:
    if (e)
        log_error("%s", caa_error_msg(e));
    if (loop_ready && uv_loop_close(&a.loop) < 0)
        log_debug("event loop still had handles at exit");
    caa_serving_cert_free(h.serving_cert);
    caa_tls_profile_done(&profile);
    caa_options_free(&set, 1);
    return exit_code;
}
