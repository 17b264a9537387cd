/* Command line, configuration, logging setup and the loop's lifetime. */
#define LOG_COMPONENT "adaptor/main"
#include "adaptor-main.h"

#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "caa-version.h"
#include "config.h"
#include "kube-peerpod.h"
#include "kube-service.h"
#include "log.h"
#include "manager.h"
#include "options.h"
#include "pod-metrics.h"
#include "probe-server.h"
#include "provider.h"
#include "xalloc.h"

#define EXIT_USAGE 2
#define MAX_LISTED_PROVIDERS 32

static const char *prog_name(const char *argv0)
{
    const char *slash = argv0 ? strrchr(argv0, '/') : NULL;
    return slash ? slash + 1 : (argv0 ? argv0 : "cloud-api-adaptor");
}

static void print_usage(FILE *out, const char *prog)
{
    const char *names[MAX_LISTED_PROVIDERS];
    caa_provider_names(names, MAX_LISTED_PROVIDERS);
    fprintf(out, "Usage: %s <provider> [flags]\n       %s help | version\n\nProviders:", prog, prog);
    for (size_t i = 0; names[i]; i++)
        fprintf(out, " %s", names[i]);
    fprintf(out, "\n\nRun \"%s <provider> -help\" for the provider's flags.\n", prog);
}

static void print_version(const char *prog)
{
    printf("%s version %s\n  commit: %s\n", prog, CAA_VERSION, CAA_GIT_COMMIT);
}

/* Collects "name=value" pairs of the effective configuration into one line. */
static void append_option(const char *name, const char *value, void *opaque)
{
    char **line = opaque;
    char *next = xasprintf("%s%s%s=%s", *line ? *line : "", *line ? " " : "", name, value);
    free(*line);
    *line = next;
}

static void log_configuration(const caa_option_set *sets, size_t n_sets)
{
    for (size_t i = 0; i < n_sets; i++) {
        _cleanup_free_ char *line = NULL;
        caa_options_dump(&sets[i], 1, append_option, &line);
        log_info("configuration (%s): %s", sets[i].title, line ? line : "");
    }
}

static int run(const char *prog, const caa_provider_ops *ops, int argc, char **argv)
{
    uv_loop_t loop;
    int r = uv_loop_init(&loop);
    if (r < 0) {
        fprintf(stderr, "%s: initialising the event loop: %s\n", prog, uv_strerror(r));
        return 1;
    }
    caa_daemon_config cfg = {0};
    caa_provider *provider = caa_provider_new(ops, &loop);
    caa_option_set sets[2] = {caa_daemon_option_set(&cfg), caa_provider_option_set(provider)};
    _cleanup_error_ caa_error *err = NULL;
    int status = 0;

    r = caa_options_parse(sets, CAA_ARRAY_SIZE(sets), argc, argv, &err);
    if (r == 1) {
        printf("Usage: %s %s [flags]\n", prog, ops->name);
        caa_options_print_help(stdout, sets, CAA_ARRAY_SIZE(sets));
        goto out_provider;
    }
    if (r < 0 || caa_daemon_config_validate(&cfg, &err) < 0) {
        fprintf(stderr, "%s: %s\nRun \"%s %s -help\" for the flags.\n", prog, caa_error_msg(err), prog,
                ops->name);
        status = EXIT_USAGE;
        goto out_provider;
    }
    caa_log_set_format(cfg.log_format_value);
    caa_log_set_level(cfg.log_level_value);
    log_info("%s %s (commit %s) starting with provider %s", prog, CAA_VERSION, CAA_GIT_COMMIT, ops->name);
    log_configuration(sets, CAA_ARRAY_SIZE(sets));

    if (caa_provider_init(provider, &err) < 0) {
        log_error("initialising provider %s: %s", ops->name, caa_error_msg(err));
        status = 1;
        goto out_provider;
    }
    if (cfg.cloud_config_verify && caa_provider_verify_config(provider, &err) < 0) {
        log_error("verifying the %s configuration: %s", ops->name, caa_error_msg(err));
        status = 1;
        goto out_provider;
    }

    /* Before the manager starts: /startup answers 503 until it serves. */
    caa_probe_server *probe = NULL;
    if (cfg.probe_port &&
        caa_probe_server_start(&loop, "127.0.0.1", (uint16_t)cfg.probe_port, &probe, &err) < 0) {
        log_warn("%s: continuing without it", caa_error_msg(err));
        caa_error_freep(&err);
    } else if (probe) {
        log_info("probe endpoint on 127.0.0.1:%u (/startup, /healthz, /metrics)",
                 caa_probe_server_port(probe));
    }
    caa_manager m;
    caa_manager_init(&m, &loop, &cfg);
    caa_pod_metrics pod_metrics;
    caa_pod_metrics_init(&pod_metrics, &m);
    caa_kube_peerpods peerpods;
    caa_kube_peerpods_init(&peerpods, &m, getenv("CLOUD_PROVIDER"));
    if (caa_manager_start(&m, TAKE_PTR(provider), &err) < 0) {
        log_error("starting: %s", caa_error_msg(err));
        status = 1;
    } else {
        caa_probe_set_serving(probe, true);
        caa_kube_service_options kopts = {
            .kubeconfig = cfg.kubeconfig,
            .node_name = getenv("NODE_NAME"),
            .pod_uid = getenv("POD_UID"),
            .limit_per_node = cfg.peerpods_limit_per_node,
            .probe = probe,
        };
        if (caa_kube_service_start(&loop, &kopts, &m.kube, &err) < 0) {
            log_error("%s", caa_error_msg(err));
            status = 1;
            caa_manager_shutdown(&m);
        }
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    caa_probe_server_stop(probe);
    if (!m.forced) {
        caa_manager_done(&m);
        caa_kube_peerpods_done(&peerpods);
        caa_pod_metrics_done(&pod_metrics);
    }
    if (m.forced) {
        /* Second signal: leave at once; the state files are consistent. */
        caa_daemon_config_done(&cfg);
        return 1;
    }
    if (!status)
        status = m.exit_code;
    goto out_loop;

out_provider:
    caa_provider_free(provider);
out_loop:
    uv_run(&loop, UV_RUN_DEFAULT); /* run close callbacks */
    r = uv_loop_close(&loop);
    assert(r == 0 && "a handle was left open at exit");
    (void)r;
    caa_daemon_config_done(&cfg);
    return status;
}

int caa_adaptor_main(int argc, char **argv)
{
    const char *prog = prog_name(argc > 0 ? argv[0] : NULL);
    /* Writes to a peer that went away must fail with EPIPE, not kill us. */
    signal(SIGPIPE, SIG_IGN);

    if (argc < 2) {
        print_usage(stderr, prog);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "-help") == 0 ||
        strcmp(cmd, "--help") == 0) {
        print_usage(stdout, prog);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "-version") == 0 || strcmp(cmd, "--version") == 0) {
        print_version(prog);
        return 0;
    }
    _cleanup_error_ caa_error *err = NULL;
    const caa_provider_ops *ops = caa_provider_find(cmd, &err); /* may load a provider module */
    if (!ops) {
        fprintf(stderr, "%s: %s\n", prog, caa_error_msg(err));
        return err && err->code == -ENOENT ? EXIT_USAGE : 1;
    }
    return run(prog, ops, argc - 2, argv + 2);
}
