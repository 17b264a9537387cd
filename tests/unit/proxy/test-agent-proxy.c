/* Worker agent proxy (adaptor/proxy/agent-proxy.c) against a stand-in
 * forwarder (our ttRPC server on TCP): readiness through the health check,
 * socket file handling, GPU rewrite, reconnect, retries and timeouts,
 * shutdown before ready, argument errors; as root, dropped SYNs in a
 * network namespace of the test's own. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent-proxy.h"
#include "agent-rewrite.h"
#include "ttrpc-test-util.h"
#include "ttrpc.h"
#include "xalloc.h"

typedef struct fwd {
    ttrpc_server *s;
    uint16_t port;
    int check_code; /* answer to Health/Check */
    int checks;
    uint8_t *last_cc;
    size_t last_cc_len;
    bool closed;
} fwd;

typedef struct fx {
    uv_loop_t loop;
    char *dir, *sock;
    fwd f;
    caa_agent_proxy *p;
    bool ready_called;
    int ready_status;
    char ready_msg[256];
    bool in_start;
    bool done_called;
    ttrpc_client *shim;
    unsigned redial_ms; /* 0: the proxy's default */
    int home_netns;     /* >= 0: the test runs in a namespace of its own */
    char vm_ip[32];     /* there: the pod VM's address, SYNs to it dropped */
} fx;

/* ------------------------------------------------------------ stand-in forwarder */

static void h_check(ttrpc_call *c, void *opaque)
{
    fwd *f = opaque;
    f->checks++;
    if (f->check_code)
        ttrpc_call_reply_error(c, f->check_code, "agent not there");
    else
        ttrpc_call_reply(c, (const uint8_t *)"\x08\x01", 2);
}

static void h_create_container(ttrpc_call *c, void *opaque)
{
    fwd *f = opaque;
    size_t n;
    const uint8_t *p = ttrpc_call_payload(c, &n);
    free(f->last_cc);
    f->last_cc = xmemdup(p ? p : (const uint8_t *)"", n);
    f->last_cc_len = n;
    ttrpc_call_reply(c, NULL, 0);
}

static const ttrpc_method_entry health[] = {{"Check", h_check}};
static const ttrpc_method_entry agent[] = {{"CreateContainer", h_create_container}};

static void fwd_listen(fx *x, const char *host, uint16_t port)
{
    fwd *f = &x->f;
    f->closed = false;
    assert_int_equal(ttrpc_server_new(&x->loop, &f->s, NULL), 0);
    assert_int_equal(ttrpc_server_register(f->s, "grpc.Health", health, 1, f, NULL), 0);
    assert_int_equal(ttrpc_server_register(f->s, CAA_AGENT_SERVICE, agent, 1, f, NULL), 0);
    assert_int_equal(ttrpc_server_listen_tcp(f->s, host, port, NULL), 0);
    f->port = ttrpc_server_tcp_port(f->s);
}

static void fwd_start(fx *x, uint16_t port)
{
    fwd_listen(x, "127.0.0.1", port);
}

static void on_fwd_closed(void *opaque)
{
    ((fwd *)opaque)->closed = true;
}

static bool fwd_closed(void *arg)
{
    return ((fx *)arg)->f.closed;
}

static void fwd_stop(fx *x)
{
    ttrpc_server_close(TAKE_PTR(x->f.s), on_fwd_closed, &x->f);
    assert_true(tu_run_until(&x->loop, fwd_closed, x, 5000));
}

/* ------------------------------------------------------------ proxy */

static void on_ready(int status, caa_error *err, void *opaque)
{
    fx *x = opaque;
    assert_false(x->in_start);     /* never from inside start */
    assert_false(x->ready_called); /* exactly once */
    x->ready_called = true;
    x->ready_status = status;
    snprintf(x->ready_msg, sizeof(x->ready_msg), "%s", err ? caa_error_msg(err) : "");
    if (status == 0)
        assert_null(err);
    else
        assert_non_null(err);
    caa_error_free(err);
}

static bool ready(void *arg)
{
    return ((fx *)arg)->ready_called;
}

static int start(fx *x, const char *host, uint16_t port, int64_t timeout_ns, unsigned gpus, caa_error **err)
{
    caa_agent_proxy_config cfg = {
        .sandbox_id = "sb-test",
        .socket_path = x->sock,
        .host = host,
        .port = port,
        .timeout_ns = timeout_ns,
        .gpus = gpus,
        .redial_ms = x->redial_ms,
    };
    x->in_start = true;
    int r = caa_agent_proxy_start(&x->loop, &cfg, on_ready, x, &x->p, err);
    x->in_start = false;
    return r;
}

static void on_done(void *opaque)
{
    ((fx *)opaque)->done_called = true;
}

static bool done(void *arg)
{
    return ((fx *)arg)->done_called;
}

static void shutdown_proxy(fx *x)
{
    caa_agent_proxy_shutdown(TAKE_PTR(x->p), on_done, x);
    assert_false(x->done_called);
    assert_true(tu_run_until(&x->loop, done, x, 5000));
}

static int setup(void **state)
{
    fx *x = xnew0(fx, 1);
    uv_loop_init(&x->loop);
    x->dir = caa_test_tmpdir_new("ttrpc-test");
    x->sock = tu_path(x->dir, "agent.ttrpc");
    x->home_netns = -1;
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    fx *x = *state;
    if (x->shim)
        ttrpc_client_close(x->shim);
    if (x->p)
        shutdown_proxy(x);
    if (x->f.s)
        fwd_stop(x);
    tu_loop_finish(&x->loop);
    free(x->f.last_cc);
    free(x->sock);
    caa_test_tmpdir_remove(x->dir);
    if (x->home_netns >= 0) {
        /* The namespace has no other member or reference: it goes, with
         * its address and nftables rules. */
        assert_int_equal(setns(x->home_netns, CLONE_NEWNET), 0);
        close(x->home_netns);
    }
    free(x);
    return 0;
}

/* ------------------------------------------------------------ shim side */

static void on_shim(ttrpc_client *c, int status, const caa_error *err, void *opaque)
{
    (void)err;
    assert_int_equal(status, 0);
    ((fx *)opaque)->shim = c;
}

static bool have_shim(void *arg)
{
    return ((fx *)arg)->shim != NULL;
}

typedef struct res {
    bool done;
    int status, code;
} res;

static void on_res(const ttrpc_result *r, void *opaque)
{
    res *o = opaque;
    o->done = true;
    o->status = r->status;
    o->code = r->grpc_code;
}

static bool res_done(void *arg)
{
    return ((res *)arg)->done;
}

static res shim_call(fx *x, const char *service, const char *method, const uint8_t *p, size_t n)
{
    if (!x->shim) {
        assert_int_equal(ttrpc_client_connect_unix(&x->loop, x->sock, on_shim, x, NULL), 0);
        assert_true(tu_run_until(&x->loop, have_shim, x, 5000));
    }
    res r = {0};
    assert_int_equal(
        ttrpc_client_call(x->shim, service, method, p, n, 5000000000LL, NULL, 0, on_res, &r, NULL), 0);
    assert_true(tu_run_until(&x->loop, res_done, &r, 5000));
    return r;
}

/* CreateContainerRequest{container_id "c", OCI {Version "1"}} by hand. */
static const uint8_t cc_req[] = {0x0a, 0x01, 'c', 0x32, 0x03, 0x0a, 0x01, '1'};
/* The same with OCI annotation io.katacontainers.config.hypervisor.default_gpus
 * = "1" (field 7, a map entry {1 key, 2 value}): upstream's CDI trigger, as
 * the Kata shim passes the pod's annotations on to its containers. */
static const uint8_t cc_req_gpu[] = {
    0x0a, 0x01, 'c', 0x32, 0x3a, 0x0a, 0x01, '1', 0x3a, 0x35, 0x0a, 0x30, 'i',  'o',  '.', 'k',
    'a',  't',  'a', 'c',  'o',  'n',  't',  'a', 'i',  'n',  'e',  'r',  's',  '.',  'c', 'o',
    'n',  'f',  'i', 'g',  '.',  'h',  'y',  'p', 'e',  'r',  'v',  'i',  's',  'o',  'r', '.',
    'd',  'e',  'f', 'a',  'u',  'l',  't',  '_', 'g',  'p',  'u',  's',  0x12, 0x01, '1',
};

/* ------------------------------------------------------------ tests */

static void test_ready_socket_and_gpu_rewrite(void **state)
{
    fx *x = *state;
    fwd_start(x, 0);
    /* A stale socket from an earlier run is replaced. */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", x->sock);
    assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    close(fd);

    assert_int_equal(start(x, "127.0.0.1", x->f.port, 5000000000LL, 1, NULL), 0);
    struct stat st;
    assert_int_equal(stat(x->sock, &st), 0); /* listening before the VM answers */
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_true(tu_run_until(&x->loop, ready, x, 5000));
    assert_int_equal(x->ready_status, 0);
    assert_int_equal(x->f.checks, 1);

    res r = shim_call(x, CAA_AGENT_SERVICE, "CreateContainer", cc_req_gpu, sizeof(cc_req_gpu));
    assert_int_equal(r.status, 0);
    assert_int_equal(r.code, 0);
    assert_non_null(x->f.last_cc);
    assert_true(x->f.last_cc_len > sizeof(cc_req_gpu));
    assert_non_null(
        memmem(x->f.last_cc, x->f.last_cc_len, CAA_CDI_ALL_NVIDIA_GPUS, strlen(CAA_CDI_ALL_NVIDIA_GPUS)));
    /* A container without the annotation is not rewritten, whatever the
     * pod's GPU count (upstream's trigger is the container's annotation). */
    r = shim_call(x, CAA_AGENT_SERVICE, "CreateContainer", cc_req, sizeof(cc_req));
    assert_int_equal(r.code, 0);
    assert_int_equal(x->f.last_cc_len, sizeof(cc_req));
    assert_memory_equal(x->f.last_cc, cc_req, sizeof(cc_req));

    caa_agent_proxy_stats s;
    caa_agent_proxy_get_stats(x->p, &s);
    assert_int_equal(s.connects, 1);
    assert_int_equal(s.connected, 1);
    assert_int_equal(s.rewritten, 1);
    assert_int_equal(s.shim_connections, 1);

    ttrpc_client_close(TAKE_PTR(x->shim));
    shutdown_proxy(x);
    assert_int_not_equal(access(x->sock, F_OK), 0); /* socket file removed */
}

static void test_no_gpus_no_rewrite(void **state)
{
    fx *x = *state;
    fwd_start(x, 0);
    assert_int_equal(start(x, "127.0.0.1", x->f.port, 5000000000LL, 0, NULL), 0);
    assert_true(tu_run_until(&x->loop, ready, x, 5000));
    res r = shim_call(x, CAA_AGENT_SERVICE, "CreateContainer", cc_req, sizeof(cc_req));
    assert_int_equal(r.code, 0);
    assert_int_equal(x->f.last_cc_len, sizeof(cc_req));
    assert_memory_equal(x->f.last_cc, cc_req, sizeof(cc_req));
}

static void test_reconnect(void **state)
{
    fx *x = *state;
    fwd_start(x, 0);
    uint16_t port = x->f.port;
    assert_int_equal(start(x, "127.0.0.1", port, 10000000000LL, 0, NULL), 0);
    assert_true(tu_run_until(&x->loop, ready, x, 5000));
    fwd_stop(x);
    caa_agent_proxy_stats s;
    caa_agent_proxy_get_stats(x->p, &s);
    assert_int_equal(s.connected, 0);
    fwd_start(x, port);
    res r = shim_call(x, CAA_AGENT_SERVICE, "CreateContainer", cc_req, sizeof(cc_req));
    assert_int_equal(r.status, 0);
    assert_int_equal(r.code, 0);
    caa_agent_proxy_get_stats(x->p, &s);
    assert_int_equal(s.connects, 2);
    assert_int_equal(s.connected, 1);
}

static void test_health_error_times_out(void **state)
{
    fx *x = *state;
    fwd_start(x, 0);
    x->f.check_code = GRPC_UNAVAILABLE;
    uint64_t t0 = uv_now(&x->loop);
    assert_int_equal(start(x, "127.0.0.1", x->f.port, 500000000LL, 0, NULL), 0);
    assert_true(tu_run_until(&x->loop, ready, x, 5000));
    uint64_t dt = uv_now(&x->loop) - t0;
    assert_int_equal(x->ready_status, -ETIMEDOUT);
    assert_non_null(strstr(x->ready_msg, "health check"));
    assert_non_null(strstr(x->ready_msg, "agent not there"));
    assert_true(dt >= 450 && dt < 3000);
    /* 0, 100, 300 ms and then the deadline: several attempts, first retry fast. */
    assert_true(x->f.checks >= 3);
}

static bool never(void *arg)
{
    (void)arg;
    return false;
}

/* A VM whose forwarder starts late refuses the SYNs until then. The proxy
 * notices the forwarder within a few retry intervals of it listening, not
 * after the 1 s backoff cap it would have reached by then. */
static void test_refused_retries_fast(void **state)
{
    fx *x = *state;
    fwd_start(x, 0);
    uint16_t port = x->f.port;
    fwd_stop(x); /* the port now refuses */
    assert_int_equal(start(x, "127.0.0.1", port, 30000000000LL, 0, NULL), 0);
    tu_run_until(&x->loop, never, x, 1600);
    assert_false(x->ready_called);
    caa_agent_proxy_stats s;
    caa_agent_proxy_get_stats(x->p, &s);
    /* The 100 ms-to-1 s backoff makes 5 attempts in 1.6 s; fast retries
     * make about 60 (fewer on a loaded machine). */
    assert_true(s.dial_failures >= 10);
    uint64_t t0 = uv_now(&x->loop);
    fwd_start(x, port);
    assert_true(tu_run_until(&x->loop, ready, x, 5000));
    uint64_t dt = uv_now(&x->loop) - t0;
    assert_int_equal(x->ready_status, 0);
    /* 25 ms retry interval plus the dial and the check; far below the
     * 1 s cap even on a loaded machine. */
    assert_true(dt < 500);
}

/* The wait between dials while the port refuses: the fast ramp first, then
 * a share of the time refused so far, so a forwarder that starts after a long
 * cloud boot is still noticed within 0.5 % of the boot, with attempts growing
 * with the logarithm of the time and never more than one a second apart. */
static void test_refused_delay_schedule(void **state)
{
    (void)state;
    uint64_t b = 0;
    assert_int_equal(caa_agent_proxy_refused_delay_ms(0, &b), 5);
    assert_int_equal(caa_agent_proxy_refused_delay_ms(5, &b), 10);
    assert_int_equal(caa_agent_proxy_refused_delay_ms(15, &b), 20);
    assert_int_equal(caa_agent_proxy_refused_delay_ms(35, &b), 25);
    assert_int_equal(caa_agent_proxy_refused_delay_ms(60, &b), 25);
    assert_int_equal(caa_agent_proxy_refused_delay_ms(15000, &b), 75);
    assert_int_equal(caa_agent_proxy_refused_delay_ms(60000, &b), 300);
    assert_int_equal(caa_agent_proxy_refused_delay_ms(600000, &b), 1000);

    /* One simulated minute of refusals: every wait within max(25 ms, 0.5 % of
     * the time refused) and the attempts far fewer than 40 a second. */
    b = 0;
    uint64_t t = 0, attempts = 0;
    while (t < 60000) {
        uint64_t d = caa_agent_proxy_refused_delay_ms(t, &b);
        assert_true(d >= 5);
        assert_true(d <= 25 || d <= t / 200);
        t += d;
        attempts++;
    }
    assert_true(attempts > 400 && attempts < 800);
}

static void test_shutdown_before_ready(void **state)
{
    fx *x = *state;
    /* Port 1 on loopback: refused, so the proxy keeps retrying. */
    assert_int_equal(start(x, "127.0.0.1", 1, 60000000000LL, 0, NULL), 0);
    tu_run_until(&x->loop, ready, x, 250);
    assert_false(x->ready_called);
    caa_agent_proxy_stats s;
    caa_agent_proxy_get_stats(x->p, &s);
    assert_true(s.dial_failures >= 2);
    shutdown_proxy(x);
    assert_true(x->ready_called); /* before done */
    assert_int_equal(x->ready_status, -ECANCELED);
    assert_int_not_equal(access(x->sock, F_OK), 0);
}

/* ------------------------------------------------------------ dropped SYNs (root) */

static int run_quietly(const char *const argv[])
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, STDOUT_FILENO);
            dup2(null, STDERR_FILENO);
        }
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define SYN_DROP_PORT 15150

/* Moves the test into a new network namespace (left in teardown, which
 * also makes it go away) where 198.18.N.1 is a local address whose SYNs to
 * SYN_DROP_PORT an nftables rule drops, as a VPC does before the VM's
 * network is up. Lifting the rule lets the very next SYN through, the
 * kernel's resend of a pending connect too (a route that changes would
 * not: a pending socket keeps its route). False (skip) when not root or
 * without iproute2/nftables. */
static bool enter_dropping_netns(fx *x)
{
    if (geteuid() != 0)
        return false;
    int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    assert_true(home >= 0);
    if (unshare(CLONE_NEWNET) < 0) {
        close(home);
        return false;
    }
    x->home_netns = home;
    char addr[40], dport[16];
    snprintf(x->vm_ip, sizeof(x->vm_ip), "198.18.%d.1", 1 + (int)(getpid() % 250));
    snprintf(addr, sizeof(addr), "%s/32", x->vm_ip);
    snprintf(dport, sizeof(dport), "%d", SYN_DROP_PORT);
    const char *lo_up[] = {"ip", "link", "set", "lo", "up", NULL};
    const char *lo_addr[] = {"ip", "addr", "add", addr, "dev", "lo", NULL};
    const char *table[] = {"nft", "add", "table", "ip", "caa_syn", NULL};
    const char *chain[] = {
        "nft", "add", "chain", "ip", "caa_syn", "in", "{ type filter hook input priority 0 ; }", NULL};
    const char *rule[] = {"nft", "add", "rule", "ip", "caa_syn", "in", "tcp", "dport", dport, "drop", NULL};
    if (run_quietly(lo_up) == 127 || run_quietly(table) == 127)
        return false; /* no ip(8) or nft(8) */
    assert_int_equal(run_quietly(lo_addr), 0);
    assert_int_equal(run_quietly(chain), 0);
    assert_int_equal(run_quietly(rule), 0);
    /* Linux >= 6.7 resends the first 4 SYNs a second apart
     * (tcp_syn_linear_timeouts, per namespace); the node kernels of the
     * clouds (5.x, 6.1) double the wait from the start: 1, 3, 7 s. */
    FILE *f = fopen("/proc/sys/net/ipv4/tcp_syn_linear_timeouts", "w");
    if (f) {
        fputs("0\n", f);
        assert_int_equal(fclose(f), 0);
    }
    return true;
}

/* The VM's network comes up: its SYNs are answered from now on. */
static void vm_network_up(void)
{
    const char *del[] = {"nft", "delete", "table", "ip", "caa_syn", NULL};
    assert_int_equal(run_quietly(del), 0);
}

/* Open descriptors among the first 4096 (the test uses a few dozen; a
 * valgrind's own lie above the limit it sets). */
static int count_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 4096; fd++)
        n += fcntl(fd, F_GETFD) >= 0;
    return n;
}

/* The forwarder starts listening while the proxy's SYNs are being dropped,
 * just after the kernel's second SYN resend (3 s after the first SYN). The
 * kernel alone would resend next at 7 s, ~3.5 s later; the proxy's fresh
 * SYN every second notices the forwarder within about a second. */
static void test_dropped_syns_noticed_within_a_second(void **state)
{
    fx *x = *state;
    if (!enter_dropping_netns(x))
        skip();
    assert_int_equal(start(x, x->vm_ip, SYN_DROP_PORT, 30000000000LL, 0, NULL), 0);
    tu_run_until(&x->loop, never, x, 3200);
    assert_false(x->ready_called);

    vm_network_up();
    fwd_listen(x, x->vm_ip, SYN_DROP_PORT);
    uv_update_time(&x->loop);
    uint64_t t0 = uv_now(&x->loop);
    assert_true(tu_run_until(&x->loop, ready, x, 10000));
    uint64_t lag = uv_now(&x->loop) - t0;
    assert_int_equal(x->ready_status, 0);
    assert_int_equal(x->f.checks, 1);
    caa_agent_proxy_stats s;
    caa_agent_proxy_get_stats(x->p, &s);
    print_message("forwarder noticed %" PRIu64 " ms after it listened, %" PRIu64 " fresh SYNs\n", lag,
                  s.redials);
    assert_true(s.redials >= 2); /* at 1, 2, 3 s (fewer only if very late) */
    assert_int_equal(s.dial_failures, 0);
    /* Expected <= 1 s plus the dial and the check; the kernel's 7 s
     * resend would make it ~3.5 s. Generous for a loaded machine. */
    assert_true(lag < 2900);
}

/* Many fresh SYNs (every 10 ms here), then StopVM while a connect is
 * pending: the ready callback reports the cancel, every abandoned socket
 * is closed (no fd left), and ASan/valgrind see no leak. */
static void test_redials_leak_nothing_and_cancel(void **state)
{
    fx *x = *state;
    if (!enter_dropping_netns(x))
        skip();
    x->redial_ms = 10;
    /* The loop's own fds first: its first listener opens a spare one. */
    assert_int_equal(start(x, x->vm_ip, SYN_DROP_PORT, 30000000000LL, 0, NULL), 0);
    shutdown_proxy(x);
    x->ready_called = x->done_called = false;
    int before = count_fds();
    assert_int_equal(start(x, x->vm_ip, SYN_DROP_PORT, 30000000000LL, 0, NULL), 0);
    tu_run_until(&x->loop, never, x, 1000);
    assert_false(x->ready_called);
    caa_agent_proxy_stats s;
    caa_agent_proxy_get_stats(x->p, &s);
    assert_true(s.redials >= 20);
    assert_int_equal(s.dial_failures, 0);
    shutdown_proxy(x);
    assert_true(x->ready_called);
    assert_int_equal(x->ready_status, -ECANCELED);
    assert_int_equal(count_fds(), before);
}

/* The attempt and cycle deadlines still hold while SYNs are dropped: the
 * proxy gives up at its timeout, saying the VM did not answer. */
static void test_dropped_syns_time_out(void **state)
{
    fx *x = *state;
    if (!enter_dropping_netns(x))
        skip();
    x->redial_ms = 100;
    uv_update_time(&x->loop);
    uint64_t t0 = uv_now(&x->loop);
    assert_int_equal(start(x, x->vm_ip, SYN_DROP_PORT, 1500000000LL, 0, NULL), 0);
    assert_true(tu_run_until(&x->loop, ready, x, 10000));
    uint64_t dt = uv_now(&x->loop) - t0;
    assert_int_equal(x->ready_status, -ETIMEDOUT);
    assert_non_null(strstr(x->ready_msg, "did not answer in time"));
    assert_true(dt >= 1500 && dt < 5000);
    caa_agent_proxy_stats s;
    caa_agent_proxy_get_stats(x->p, &s);
    assert_true(s.redials >= 3);
}

static void test_bad_arguments(void **state)
{
    fx *x = *state;
    caa_error *e = NULL;
    /* A regular file where the socket goes is not replaced. */
    FILE *fp = fopen(x->sock, "w");
    fclose(fp);
    assert_int_equal(start(x, "127.0.0.1", 1, 1000000000LL, 0, &e), -EEXIST);
    assert_non_null(strstr(caa_error_msg(e), "not a socket"));
    caa_error_freep(&e);
    assert_int_equal(access(x->sock, F_OK), 0);
    unlink(x->sock);

    assert_int_equal(start(x, "podvm.example", 1, 1000000000LL, 0, &e), -EINVAL);
    assert_non_null(strstr(caa_error_msg(e), "numeric IP"));
    caa_error_freep(&e);

    char *saved = x->sock;
    char longpath[200];
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = '\0';
    x->sock = longpath;
    assert_int_equal(start(x, "127.0.0.1", 1, 1000000000LL, 0, &e), -ENAMETOOLONG);
    caa_error_freep(&e);
    x->sock = saved;
    x->p = NULL;

    /* The failed starts left nothing running and call no callback. */
    tu_run_until(&x->loop, ready, x, 100);
    assert_false(x->ready_called);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ready_socket_and_gpu_rewrite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_gpus_no_rewrite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_health_error_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_retries_fast, setup, teardown),
        cmocka_unit_test(test_refused_delay_schedule),
        cmocka_unit_test_setup_teardown(test_shutdown_before_ready, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dropped_syns_noticed_within_a_second, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redials_leak_nothing_and_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dropped_syns_time_out, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
