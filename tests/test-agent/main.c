/* caa-test-agent: stand-in kata-agent for local test pod VMs (see
 * test-agent.h and docs/test-agent.md).
 *
 * Exit 0 after SIGTERM/SIGINT, 1 when start-up fails, 2 on bad flags. */
#define LOG_COMPONENT "test-agent"

#include <errno.h>
#include <libgen.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "caa-version.h"
#include "cleanup.h"
#include "fs.h"
#include "log.h"
#include "options.h"
#include "test-agent.h"
#include "xalloc.h"

typedef struct ta_options {
    char *socket;
    char *record;
    char *pod_netns;
    char *scratch_dir;
    char *log_level;
    bool version;
} ta_options;

static const caa_option ta_options_table[] = {
    CAA_OPTION(ta_options, "socket", NULL, CAA_OPT_STRING, socket, TA_DEFAULT_SOCKET,
               "unix socket to serve the agent protocol on (mode 0600)"),
    CAA_OPTION(ta_options, "record", NULL, CAA_OPT_STRING, record, "",
               "append every request received to this file, one JSON object per line"),
    CAA_OPTION(
        ta_options, "pod-netns", NULL, CAA_OPT_STRING, pod_netns, "",
        "network namespace joined by containers whose OCI spec names none (the forwarder normally adds it)"),
    CAA_OPTION(ta_options, "scratch-dir", NULL, CAA_OPT_STRING, scratch_dir, TA_DEFAULT_SCRATCH,
               "directory CopyFile writes into (<scratch-dir>/run/...)"),
    CAA_OPTION(ta_options, "log-level", NULL, CAA_OPT_STRING, log_level, "info",
               "log level: error, warn, info, debug or trace"),
    CAA_OPTION(ta_options, "version", NULL, CAA_OPT_BOOL, version, "false", "print the version and exit"),
};

typedef struct app {
    uv_loop_t loop;
    uv_signal_t sigterm, sigint;
    ta_agent agent;
    bool stopping;
} app;

/* Requests for methods not offered: recorded, then UNIMPLEMENTED as the
 * server would answer them itself. */
static void on_unregistered(ttrpc_call *c, void *opaque)
{
    ta_begin(c, opaque);
    const char *service = ttrpc_call_service(c);
    if (strcmp(service, "grpc.AgentService") == 0 || strcmp(service, "grpc.Health") == 0)
        ttrpc_call_reply_error(c, GRPC_UNIMPLEMENTED, "method %s", ttrpc_call_method(c));
    else
        ttrpc_call_reply_error(c, GRPC_UNIMPLEMENTED, "service %s", service);
}

static void on_server_closed(void *opaque)
{
    app *a = opaque;
    a->agent.server = NULL;
    /* Every parked call was cancelled with its connection; now the processes. */
    ta_remove_all(&a->agent);
    uv_close((uv_handle_t *)&a->sigterm, NULL);
    uv_close((uv_handle_t *)&a->sigint, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    app *a = h->data;
    if (a->stopping)
        return;
    a->stopping = true;
    log_info("signal %d: shutting down", signum);
    ttrpc_server_close(a->agent.server, on_server_closed, a);
}

static int serve(app *a, const char *socket_path, caa_error **err)
{
    int r = uv_loop_init(&a->loop);
    if (r < 0)
        return caa_error_set(err, r, "event loop: %s", uv_strerror(r));
    a->agent.loop = &a->loop;
    uv_signal_init(&a->loop, &a->sigterm);
    uv_signal_init(&a->loop, &a->sigint);
    a->sigterm.data = a->sigint.data = a;
    uv_signal_start(&a->sigterm, on_signal, SIGTERM);
    uv_signal_start(&a->sigint, on_signal, SIGINT);

    if ((r = ttrpc_server_new(&a->loop, &a->agent.server, err)) < 0 ||
        (r = ta_register_health(&a->agent, err)) < 0 || (r = ta_register_agent_service(&a->agent, err)) < 0)
        goto fail;
    ttrpc_server_set_fallback(a->agent.server, on_unregistered, &a->agent);
    if ((r = ttrpc_server_listen_unix(a->agent.server, socket_path, 0600, err)) < 0)
        goto fail;
    log_info("%s %s listening on %s", TA_NAME, CAA_VERSION, socket_path);

    uv_run(&a->loop, UV_RUN_DEFAULT);
    if (a->agent.orphans)
        log_warn("processes still open at exit");
    r = uv_loop_close(&a->loop);
    if (r < 0)
        log_warn("event loop still busy at exit: %s", uv_strerror(r));
    return 0;

fail:
    /* Close what exists and let the loop finish the closes. */
    a->stopping = true;
    if (a->agent.server)
        ttrpc_server_close(a->agent.server, on_server_closed, a);
    else
        on_server_closed(a);
    uv_run(&a->loop, UV_RUN_DEFAULT);
    uv_loop_close(&a->loop);
    return r;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], TA_PAUSE_ARG) == 0)
        return ta_pause_main();
    if (argc >= 2 && strcmp(argv[1], TA_TTY_ARG) == 0)
        return ta_tty_exec_main(argc, argv);

    ta_options o = {0};
    caa_option_set set = {
        .title = TA_NAME,
        .opts = ta_options_table,
        .n_opts = CAA_ARRAY_SIZE(ta_options_table),
        .target = &o,
    };
    _cleanup_error_ caa_error *e = NULL;
    int exit_code = 1;

    int r = caa_options_parse_program(TA_NAME, &set, 1, argc, argv, &o.version, CAA_VERSION, CAA_GIT_COMMIT);
    if (r >= 0)
        return r;
    caa_log_level level;
    if (caa_log_parse_level(o.log_level, &level) < 0) {
        fprintf(stderr, TA_NAME ": bad -log-level '%s'\n", o.log_level);
        caa_options_free(&set, 1);
        return 2;
    }
    caa_log_set_level(level);
    signal(SIGPIPE, SIG_IGN);

    app a = {.agent = {.scratch_dir = o.scratch_dir, .pod_netns = o.pod_netns}};
    /* Resolved now: /proc/self/exe names valgrind's tool when run under it. */
    a.agent.self_path = realpath("/proc/self/exe", NULL);
    if (!a.agent.self_path)
        a.agent.self_path = xstrdup("/proc/self/exe");
    _cleanup_free_ char *socket_dir = xstrdup(o.socket);
    if (caa_mkdir_p(o.scratch_dir, 0700, &e) < 0 || caa_mkdir_p(dirname(socket_dir), 0755, &e) < 0)
        goto out;
    if (*o.record && ta_record_open(o.record, &a.agent.record, &e) < 0)
        goto out;
    if (serve(&a, o.socket, &e) < 0)
        goto out;
    exit_code = 0;

out:
    if (e)
        log_error("%s", caa_error_msg(e));
    if (a.agent.record)
        fclose(a.agent.record);
    free(a.agent.policy);
    free(a.agent.self_path);
    caa_options_free(&set, 1);
    return exit_code;
}
