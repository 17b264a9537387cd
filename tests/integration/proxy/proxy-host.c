/* proxy-host: runs worker-side agent proxies (adaptor/proxy/) on one libuv
 * loop, the way the daemon does at StartVM, for the integration tests and
 * the agent-path benchmark.
 *
 *   proxy-host run -socket PATH -host IP -port N [-pods K] [-gpus G] [-timeout D]
 *                  [-ca-cert-file F -cert-file F -cert-key F -server-name NAME | -tls-skip-verify ...]
 *       stdout: "READY <i>" per pod once its forwarder answered the health
 *       check, then "ALL-READY"; "FAILED <i> <message>" when one could not
 *       connect within the timeout (exit 1 after all settled).
 *       SIGUSR1: prints one "STATS ..." line (counters, RSS, heap in use).
 *       SIGTERM/SIGINT (or a failed start): prints STATS, shuts every proxy down, checks the socket files are
 *       gone, exit 0. With -pods K > 1 the sockets are PATH.0 .. PATH.K-1.
 *       TLS is used when -cert-file or -tls-skip-verify is given; SSH (secure
 *       comms, one SSH connection per pod to -host:-ssh-port) with -ssh-dir.
 *
 *   proxy-host gen-tls DIR SERVER_NAME
 *       writes what the daemon would hand out: DIR/ca.crt (verifies the
 *       forwarder), DIR/client.crt + client.key (the proxy's identity) and
 *       DIR/apf.json with tls-server-cert/-key (issued for SERVER_NAME) and
 *       tls-client-ca (the client certificate), for the forwarder.
 *
 *   proxy-host gen-ssh DIR
 *       writes what the daemon would hand out with secure comms: DIR/worker
 *       (the worker's key), DIR/host.pub (the VM's pinned host key) and
 *       DIR/apf.json with sc, sc-pp-prv and sc-wn-pub, for the forwarder. */
#define LOG_COMPONENT "proxy-host"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "agent-dialer.h"
#include "agent-proxy.h"
#include "apf-config.h"
#include "cleanup.h"
#include "error.h"
#include "fs.h"
#include "log.h"
#include "options.h"
#include "parse.h"
#include "sc-client.h"
#include "tls-cert.h"
#include "tls-context.h"
#include "xalloc.h"

typedef struct opts {
    char *socket;
    char *host;
    int64_t port;
    int64_t pods;
    int64_t gpus;
    int64_t timeout_ns;
    char *ca_cert_file;
    char *cert_file;
    char *cert_key;
    char *server_name;
    bool tls_skip_verify;
    char *ssh_dir;
    int64_t ssh_port;
    char *log_level;
} opts;

static const caa_option run_options[] = {
    CAA_OPTION(opts, "socket", NULL, CAA_OPT_STRING, socket, "", "agent socket (per pod: .<i> appended)"),
    CAA_OPTION(opts, "host", NULL, CAA_OPT_STRING, host, "127.0.0.1", "forwarder address"),
    CAA_OPTION_INT(opts, "port", NULL, port, "15150", 1, 65535, "forwarder port"),
    CAA_OPTION_INT(opts, "pods", NULL, pods, "1", 1, 100000, "number of proxies"),
    CAA_OPTION_INT(opts, "gpus", NULL, gpus, "0", 0, 1024, "GPUs of the pod"),
    CAA_OPTION(opts, "timeout", NULL, CAA_OPT_DURATION, timeout_ns, "30s", "proxy timeout"),
    CAA_OPTION(opts, "ca-cert-file", NULL, CAA_OPT_STRING, ca_cert_file, "", "CA verifying the forwarder"),
    CAA_OPTION(opts, "cert-file", NULL, CAA_OPT_STRING, cert_file, "", "client certificate"),
    CAA_OPTION(opts, "cert-key", NULL, CAA_OPT_STRING, cert_key, "", "client key"),
    CAA_OPTION(opts, "server-name", NULL, CAA_OPT_STRING, server_name, "podvm-server", "forwarder TLS name"),
    CAA_OPTION(opts, "tls-skip-verify", NULL, CAA_OPT_BOOL, tls_skip_verify, "false", "TLS without checks"),
    CAA_OPTION(opts, "log-level", NULL, CAA_OPT_STRING, log_level, "info", "log level"),
    CAA_OPTION(opts, "ssh-dir", NULL, CAA_OPT_STRING, ssh_dir, "", "secure comms keys (from gen-ssh)"),
    CAA_OPTION_INT(opts, "ssh-port", NULL, ssh_port, "2222", 1, 65535, "sshd port"),
};

typedef struct pod {
    struct host *h;
    int index;
    char *socket;
    caa_agent_proxy *proxy;
    bool settled;
    bool down;
} pod;

typedef struct host {
    uv_loop_t loop;
    uv_signal_t sigterm, sigint, sigusr1;
    pod *pods;
    size_t n_pods;
    size_t n_settled;
    size_t n_failed;
    size_t n_down;
    bool stopping;
    caa_agent_dialer *tls_dialer;
    caa_agent_dialer *ssh_dialer;
    caa_sc_client **ssh; /* one per pod */
} host;

/* SSH dialer lookup: the pod index travels as the server name. */
static int ssh_lookup(void *opaque, const char *addr, const char *server_name, caa_sc_client **ret,
                      caa_error **err)
{
    host *h = opaque;
    (void)addr;
    int64_t i;
    if (caa_parse_int64(server_name, 0, (int64_t)h->n_pods - 1, &i) < 0)
        return caa_error_set(err, -EINVAL, "no pod %s", server_name);
    *ret = h->ssh[i];
    return 0;
}

static int ssh_start(host *h, const opts *o, caa_error **err)
{
    _cleanup_free_ char *key_path = xasprintf("%s/worker", o->ssh_dir);
    _cleanup_free_ char *pub_path = xasprintf("%s/host.pub", o->ssh_dir);
    _cleanup_free_ char *key = NULL, *pub = NULL;
    size_t key_len, pub_len;
    uint8_t blob[CAA_SC_ED25519_BLOB_LEN];
    int r;
    if ((r = caa_read_file(key_path, CAA_SC_KEY_MAX_TEXT, 1, &key, &key_len, err)) < 0 ||
        (r = caa_read_file(pub_path, CAA_SC_KEY_MAX_TEXT, 1, &pub, &pub_len, err)) < 0 ||
        (r = caa_sc_public_line_blob(pub, pub_len, blob, err)) < 0)
        return r;
    h->ssh = xnew0(caa_sc_client *, h->n_pods);
    for (size_t i = 0; i < h->n_pods; i++) {
        _cleanup_free_ char *id = xasprintf("pod-%zu", i);
        caa_sc_client_config cc = {.id = id,
                                   .host = o->host,
                                   .port = (uint16_t)o->ssh_port,
                                   .user = "root",
                                   .client_private_pem = key,
                                   .host_key_blob = blob};
        if ((r = caa_sc_client_new(&h->loop, &cc, &h->ssh[i], err)) < 0)
            return r;
    }
    h->ssh_dialer = caa_agent_dialer_ssh_new(ssh_lookup, h);
    return 0;
}

static void ssh_stop(host *h)
{
    for (size_t i = 0; h->ssh && i < h->n_pods; i++)
        caa_sc_client_free(h->ssh[i]);
    free(h->ssh);
    h->ssh = NULL;
    caa_agent_dialer_ssh_free(h->ssh_dialer);
    h->ssh_dialer = NULL;
}

static long rss_kb(void)
{
    _cleanup_fclose_ FILE *f = fopen("/proc/self/status", "re");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    return kb;
}

static void print_stats(host *h)
{
    caa_agent_proxy_stats sum = {0};
    for (size_t i = 0; i < h->n_pods; i++) {
        if (!h->pods[i].proxy)
            continue;
        caa_agent_proxy_stats s;
        caa_agent_proxy_get_stats(h->pods[i].proxy, &s);
        sum.shim_connections += s.shim_connections;
        sum.inflight += s.inflight;
        sum.queued += s.queued;
        sum.relayed += s.relayed;
        sum.rewritten += s.rewritten;
        sum.connects += s.connects;
        sum.dial_failures += s.dial_failures;
        sum.redials += s.redials;
        sum.connected += s.connected;
    }
    struct mallinfo2 mi = mallinfo2();
    printf("STATS pods=%zu shim=%zu inflight=%zu queued=%zu relayed=%llu rewritten=%llu connects=%llu "
           "dial_failures=%llu redials=%llu connected=%d rss_kb=%ld heap_bytes=%zu\n",
           h->n_pods, sum.shim_connections, sum.inflight, sum.queued, (unsigned long long)sum.relayed,
           (unsigned long long)sum.rewritten, (unsigned long long)sum.connects,
           (unsigned long long)sum.dial_failures, (unsigned long long)sum.redials, sum.connected, rss_kb(),
           mi.uordblks);
    fflush(stdout);
}

static void on_proxy_down(void *opaque)
{
    pod *p = opaque;
    host *h = p->h;
    p->down = true;
    if (++h->n_down < h->n_pods)
        return;
    ssh_stop(h); /* the connections keep the loop alive otherwise */
    uv_close((uv_handle_t *)&h->sigterm, NULL);
    uv_close((uv_handle_t *)&h->sigint, NULL);
    uv_close((uv_handle_t *)&h->sigusr1, NULL);
}

static void stop_all(host *h)
{
    if (h->stopping)
        return;
    h->stopping = true;
    print_stats(h); /* last counters, also after a failed start */
    for (size_t i = 0; i < h->n_pods; i++) {
        caa_agent_proxy *proxy = TAKE_PTR(h->pods[i].proxy);
        if (proxy)
            caa_agent_proxy_shutdown(proxy, on_proxy_down, &h->pods[i]);
        else
            on_proxy_down(&h->pods[i]);
    }
}

static void on_ready(int status, caa_error *err, void *opaque)
{
    pod *p = opaque;
    host *h = p->h;
    p->settled = true;
    h->n_settled++;
    if (status == 0) {
        printf("READY %d\n", p->index);
    } else {
        h->n_failed++;
        printf("FAILED %d %s\n", p->index, caa_error_msg(err));
    }
    caa_error_free(err);
    if (h->n_settled == h->n_pods && !h->stopping) {
        if (h->n_failed == 0)
            printf("ALL-READY\n");
        else
            stop_all(h);
    }
    fflush(stdout);
}

static void on_signal(uv_signal_t *s, int signum)
{
    host *h = s->data;
    if (signum == SIGUSR1)
        print_stats(h);
    else
        stop_all(h);
}

static int cmd_run(int argc, char **argv)
{
    opts o = {0};
    caa_option_set set = {
        .title = "proxy-host run", .opts = run_options, .n_opts = CAA_ARRAY_SIZE(run_options), .target = &o};
    _cleanup_error_ caa_error *e = NULL;
    if (caa_options_parse(&set, 1, argc, argv, &e) != 0 || !*o.socket) {
        fprintf(stderr, "proxy-host run: %s\n", e ? caa_error_msg(e) : "-socket is required");
        caa_options_free(&set, 1);
        return 2;
    }
    caa_log_level level;
    if (caa_log_parse_level(o.log_level, &level) == 0)
        caa_log_set_level(level);
    signal(SIGPIPE, SIG_IGN);

    host h = {0};
    int exit_code = 1;
    uv_loop_init(&h.loop);
    SSL_CTX *ctx = NULL;
    if (*o.cert_file || o.tls_skip_verify) {
        _cleanup_tls_identity_ caa_tls_identity *id = NULL;
        _cleanup_tls_trust_ caa_tls_trust *ca = NULL;
        if ((*o.cert_file && caa_tls_identity_load_files(o.cert_file, o.cert_key, &id, &e) < 0) ||
            (*o.ca_cert_file && caa_tls_trust_load_file(o.ca_cert_file, &ca, &e) < 0)) {
            fprintf(stderr, "proxy-host: %s\n", caa_error_msg(e));
            goto out;
        }
        caa_tls_client_config cc = {.identity = id, .ca = ca, .skip_verify = o.tls_skip_verify};
        if (caa_tls_client_ctx_new(&cc, &ctx, &e) < 0) {
            fprintf(stderr, "proxy-host: %s\n", caa_error_msg(e));
            goto out;
        }
        h.tls_dialer = caa_agent_dialer_tls_new(ctx);
    }

    uv_signal_init(&h.loop, &h.sigterm);
    uv_signal_init(&h.loop, &h.sigint);
    uv_signal_init(&h.loop, &h.sigusr1);
    h.sigterm.data = h.sigint.data = h.sigusr1.data = &h;
    uv_signal_start(&h.sigterm, on_signal, SIGTERM);
    uv_signal_start(&h.sigint, on_signal, SIGINT);
    uv_signal_start(&h.sigusr1, on_signal, SIGUSR1);

    struct mallinfo2 mi = mallinfo2();
    printf("BASELINE rss_kb=%ld heap_bytes=%zu\n", rss_kb(), mi.uordblks);
    fflush(stdout);

    h.n_pods = (size_t)o.pods;
    h.pods = xnew0(pod, h.n_pods);
    if (*o.ssh_dir && ssh_start(&h, &o, &e) < 0) {
        fprintf(stderr, "proxy-host: %s\n", caa_error_msg(e));
        caa_error_freep(&e);
    }
    for (size_t i = 0; i < h.n_pods; i++) {
        pod *p = &h.pods[i];
        p->h = &h;
        p->index = (int)i;
        p->socket = h.n_pods == 1 ? xstrdup(o.socket) : xasprintf("%s.%zu", o.socket, i);
        _cleanup_free_ char *id = xasprintf("pod-%zu", i);
        _cleanup_free_ char *index = xasprintf("%zu", i);
        caa_agent_proxy_config cfg = {
            .sandbox_id = id,
            .socket_path = p->socket,
            .host = o.host,
            .port = (uint16_t)o.port,
            .dialer = h.ssh_dialer ? h.ssh_dialer : h.tls_dialer,
            .server_name = h.ssh_dialer ? index : o.server_name,
            .timeout_ns = o.timeout_ns,
            .gpus = (unsigned)o.gpus,
        };
        if (caa_agent_proxy_start(&h.loop, &cfg, on_ready, p, &p->proxy, &e) < 0) {
            printf("FAILED %zu %s\n", i, caa_error_msg(e));
            fflush(stdout);
            caa_error_freep(&e);
            p->proxy = NULL;
            p->settled = true;
            h.n_settled++;
            h.n_failed++;
        }
    }
    if (h.n_settled == h.n_pods)
        stop_all(&h);

    uv_run(&h.loop, UV_RUN_DEFAULT);
    ssh_stop(&h); /* when no proxy could start */
    uv_run(&h.loop, UV_RUN_DEFAULT);
    exit_code = h.n_failed ? 1 : 0;
    for (size_t i = 0; i < h.n_pods; i++) {
        if (access(h.pods[i].socket, F_OK) == 0) {
            fprintf(stderr, "proxy-host: socket %s left behind\n", h.pods[i].socket);
            exit_code = 1;
        }
        free(h.pods[i].socket);
    }
    free(h.pods);

out:
    if (uv_loop_close(&h.loop) < 0) {
        fprintf(stderr, "proxy-host: handles left open at exit\n");
        exit_code = 1;
    }
    caa_agent_dialer_tls_free(h.tls_dialer);
    SSL_CTX_free(ctx);
    caa_options_free(&set, 1);
    return exit_code;
}

static int write_text(const char *dir, const char *name, const char *text, mode_t mode, caa_error **err)
{
    _cleanup_free_ char *path = xasprintf("%s/%s", dir, name);
    return caa_write_file_atomic(path, text, strlen(text), mode, err);
}

static int cmd_gen_ssh(const char *dir)
{
    caa_sc_key worker = {0}, podvm = {0};
    _cleanup_error_ caa_error *e = NULL;
    _cleanup_free_ char *apf_text = NULL;
    int r = -1;
    if (caa_sc_key_generate("worker", &worker, &e) < 0 || caa_sc_key_generate("podvm", &podvm, &e) < 0)
        goto out;
    caa_apf_config apf = {.pod_name = xstrdup("bench")};
    apf.sc.enabled = true;
    apf.sc.pp_private_key = (uint8_t *)xstrdup(podvm.private_pem);
    apf.sc.pp_private_key_len = strlen(podvm.private_pem);
    apf.sc.wn_public_key = (uint8_t *)xstrdup(worker.public_line);
    apf.sc.wn_public_key_len = strlen(worker.public_line);
    apf_text = caa_apf_config_to_string(&apf, &e);
    caa_apf_config_done(&apf);
    if (!apf_text || write_text(dir, "worker", worker.private_pem, 0600, &e) < 0 ||
        write_text(dir, "host.pub", podvm.public_line, 0600, &e) < 0 ||
        write_text(dir, "apf.json", apf_text, 0600, &e) < 0)
        goto out;
    r = 0;
out:
    if (r < 0)
        fprintf(stderr, "proxy-host gen-ssh: %s\n", e ? caa_error_msg(e) : "failed");
    caa_sc_key_done(&worker);
    caa_sc_key_done(&podvm);
    return r < 0 ? 1 : 0;
}

static int cmd_gen_tls(const char *dir, const char *server_name)
{
    _cleanup_error_ caa_error *e = NULL;
    _cleanup_tls_ca_ caa_tls_ca *ca = NULL;
    _cleanup_tls_identity_ caa_tls_identity *client = NULL;
    _cleanup_free_ char *ca_pem = NULL, *client_pem = NULL, *server_pem = NULL, *json = NULL;
    _cleanup_secret_ char *client_key = NULL;
    _cleanup_secret_ char *server_key = NULL;

    if (caa_tls_ca_new(&ca, &e) < 0 || caa_tls_identity_generate_client(&client, &e) < 0 ||
        caa_tls_ca_issue_server(ca, server_name, &server_pem, &server_key, &e) < 0)
        goto fail;
    ca_pem = caa_tls_ca_cert_pem(ca);
    client_pem = caa_tls_identity_cert_pem(client);
    client_key = caa_tls_identity_key_pem(client);
    caa_apf_config apf = {
        .tls_server_cert = server_pem,
        .tls_server_key = server_key,
        .tls_client_ca = client_pem,
    };
    json = caa_apf_config_to_string(&apf, &e);
    if (!json || write_text(dir, "ca.crt", ca_pem, 0644, &e) < 0 ||
        write_text(dir, "client.crt", client_pem, 0644, &e) < 0 ||
        write_text(dir, "client.key", client_key, 0600, &e) < 0 ||
        write_text(dir, "apf.json", json, 0600, &e) < 0)
        goto fail;
    return 0;
fail:
    fprintf(stderr, "proxy-host gen-tls: %s\n", caa_error_msg(e));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "run") == 0)
        return cmd_run(argc - 2, argv + 2);
    if (argc == 3 && strcmp(argv[1], "gen-ssh") == 0)
        return cmd_gen_ssh(argv[2]);
    if (argc == 4 && strcmp(argv[1], "gen-tls") == 0)
        return cmd_gen_tls(argv[2], argv[3]);
    fprintf(stderr, "usage: proxy-host run [flags] | proxy-host gen-tls DIR SERVER_NAME\n");
    return 2;
}
