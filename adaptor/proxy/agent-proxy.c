/* Worker-side agent proxy (see agent-proxy.h).
 *
 * The relay (agent-protocol/relay/) does the per-call work; this file owns
 * the connection to the forwarder: dial, health check, retry with backoff
 * within the proxy timeout, reconnect after a break, and shutdown. One
 * uv_timer serves as the per-attempt timeout while an attempt runs and as
 * the backoff delay between attempts. */
#define LOG_COMPONENT "adaptor/proxy"

#include "agent-proxy.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "agent-rewrite.h"
#include "cleanup.h"
#include "log.h"
#include "parse.h"
#include "relay.h"
#include "ttrpc.h"
#include "xalloc.h"
#include "refcount.h"
#include "timeutil.h"

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 1000
/* A refused SYN means the VM's network is up and the forwarder is about to
 * listen. Retrying fast then costs a SYN and a RST per attempt and notices
 * the forwarder within REFUSED_BACKOFF_MAX_MS instead of BACKOFF_MAX_MS. A
 * VM that refuses for long (a cloud VM is reachable from the moment its
 * address is known, tens of seconds before its forwarder runs) is probed
 * more slowly as the refusals go on: the wait is 1/REFUSED_LAG_DIVISOR of
 * the time refused so far, so the lag after the forwarder starts stays
 * below 0.5 % of that time (and of StartVM), the attempts grow with the
 * logarithm of the time, and the wait never exceeds BACKOFF_MAX_MS. */
#define REFUSED_BACKOFF_FIRST_MS 5
#define REFUSED_BACKOFF_MAX_MS 25
#define REFUSED_LAG_DIVISOR 200
/* One dial + TLS handshake + health check: a VM that does not answer a SYN
 * is retried rather than waited for. */
#define ATTEMPT_MAX_MS 10000
/* Before a VM's network is up, a cloud network usually drops its SYNs
 * instead of refusing them. The kernel then resends the SYN at 1, 3, 7 s:
 * a forwarder that starts listening in between is noticed up to 4 s late.
 * A connect still unanswered after REDIAL_MS has lost its SYN (an answer,
 * even a refusal, takes one round trip, well below a second inside a
 * cloud region), so a new socket sends a fresh SYN; the previous one stays
 * open for one more interval (a slow path can still complete it) and the
 * one before is closed. 1 s keeps the SYN rate of one connect's first
 * second (the kernel's first resend comes at 1 s) and bounds the lag by a
 * second, like the backoff of other failures (BACKOFF_MAX_MS). A path whose
 * round trip exceeds 2 × REDIAL_MS would never connect (the worker and its
 * pod VMs share a VPC/VNet, with round trips in milliseconds). */
#define REDIAL_MS 1000

struct caa_agent_proxy {
    uv_loop_t *loop;
    char *sandbox_id;
    char *host;
    char *server_name;
    char *where; /* "host:port" */
    uint16_t port;
    const caa_agent_dialer *dialer;
    int64_t timeout_ns;
    unsigned gpus;
    bool retry_forever;
    uint64_t redial_ms;

    caa_relay *relay;
    caa_relay_rewrite rewrites[1];

    uv_timer_t timer;
    caa_agent_dial *dial; /* attempt: connecting */
    ttrpc_client *probe;  /* attempt: connected, health check in flight */
    bool cycling;         /* a (re)connect cycle runs */
    uint64_t cycle_start_ms;
    uint64_t cycle_deadline_ms;
    uint64_t attempt_deadline_ms;
    uint64_t backoff_ms;
    uint64_t refused_backoff_ms;
    bool refusing;             /* the last attempt was refused */
    uint64_t refused_since_ms; /* first refusal of the current run of refusals */
    caa_error *last_error;

    caa_agent_proxy_ready_cb ready_cb;
    void *ready_opaque;
    bool ready_reported;

    bool shutting_down;
    caa_refcount pending; /* relay, timer, dial still to close */
    void (*done)(void *opaque);
    void *done_opaque;

    uint64_t connects;
    uint64_t dial_failures;
    uint64_t redials;
};

#define ID(p) ((p)->sandbox_id)

static void attempt(caa_agent_proxy *p);

/* ------------------------------------------------------------ rewrites */

static int rewrite_create_container(void *opaque, const uint8_t *payload, size_t len, uint8_t **ret,
                                    size_t *ret_len, caa_error **err)
{
    /* The trigger is the container's own default_gpus annotation, as
     * upstream's; the pod's GPU count is only logged. */
    (void)opaque;
    return caa_agent_rewrite_container_gpu(payload, len, ret, ret_len, err);
}

/* ------------------------------------------------------------ shutdown */

static void finish_part(caa_agent_proxy *p)
{
    if (!caa_unref(&p->pending))
        return;
    if (!p->ready_reported) {
        p->ready_reported = true;
        p->ready_cb(-ECANCELED, caa_error_new(-ECANCELED, "agent proxy shut down before the VM answered"),
                    p->ready_opaque);
    }
    void (*done)(void *) = p->done;
    void *opaque = p->done_opaque;
    caa_error_free(p->last_error);
    free(p->sandbox_id);
    free(p->host);
    free(p->server_name);
    free(p->where);
    free(p);
    if (done)
        done(opaque);
}

static void on_relay_closed(void *opaque)
{
    finish_part(opaque);
}

static void on_timer_closed(uv_handle_t *h)
{
    finish_part(CAA_CONTAINER_OF((uv_timer_t *)h, caa_agent_proxy, timer));
}

void caa_agent_proxy_shutdown(caa_agent_proxy *p, void (*done)(void *opaque), void *opaque)
{
    if (!p || p->shutting_down)
        return;
    p->shutting_down = true;
    p->done = done;
    p->done_opaque = opaque;
    p->cycling = false;
    log_pod_debug(ID(p), "agent proxy: shutting down");

    caa_refcount_init(&p->pending, 2);
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, on_timer_closed);
    if (p->dial) {
        caa_ref(&p->pending);
        caa_agent_dial_cancel(p->dialer, p->dial); /* on_dialed finishes that part */
    }
    ttrpc_client *probe = TAKE_PTR(p->probe);
    if (probe)
        ttrpc_client_close(probe);
    caa_relay_close(p->relay, on_relay_closed, p);
}

/* ------------------------------------------------------------ connect cycle */

static void set_last_error(caa_agent_proxy *p, caa_error *e)
{
    caa_error_free(p->last_error);
    p->last_error = e;
}

static void start_cycle(caa_agent_proxy *p);

/* retry_forever: a cycle ran out; report the first one, then start over. */
static void keep_trying(caa_agent_proxy *p, double secs, const char *why)
{
    log_pod_warn(ID(p), "agent proxy: no connection to %s for %.1f s (%s); still reconnecting", p->where,
                 secs, why);
    caa_error *e = NULL;
    if (!p->ready_reported)
        e = caa_error_new(-ETIMEDOUT, "no connection to the agent-protocol-forwarder at %s within %.1f s: %s",
                          p->where, secs, why);
    p->cycling = false;
    start_cycle(p);
    if (e) {
        p->ready_reported = true;
        p->ready_cb(-ETIMEDOUT, e, p->ready_opaque); /* may shut the proxy down */
    }
}

static void give_up(caa_agent_proxy *p)
{
    uv_timer_stop(&p->timer);
    double secs = (double)(uv_now(p->loop) - p->cycle_start_ms) / 1000.0;
    const char *why = p->last_error ? caa_error_msg(p->last_error) : "no answer";
    if (p->retry_forever) {
        keep_trying(p, secs, why);
        return;
    }
    p->cycling = false;
    caa_relay_set_upstream_state(p->relay, CAA_RELAY_UPSTREAM_DOWN);
    if (!p->ready_reported) {
        p->ready_reported = true;
        p->ready_cb(-ETIMEDOUT,
                    caa_error_new(-ETIMEDOUT,
                                  "no connection to the agent-protocol-forwarder at %s within %.1f s: %s",
                                  p->where, secs, why),
                    p->ready_opaque);
        return;
    }
    log_pod_warn(ID(p),
                 "agent proxy: gave up reconnecting to %s after %.1f s (%s); calls fail until one succeeds",
                 p->where, secs, why);
}

static void on_retry_timer(uv_timer_t *t)
{
    attempt(CAA_CONTAINER_OF(t, caa_agent_proxy, timer));
}

static uint64_t next_backoff(uint64_t *backoff_ms, uint64_t max_ms)
{
    uint64_t delay = *backoff_ms;
    *backoff_ms = delay * 2 > max_ms ? max_ms : delay * 2;
    return delay;
}

uint64_t caa_agent_proxy_refused_delay_ms(uint64_t refusing_for_ms, uint64_t *backoff_ms)
{
    if (*backoff_ms == 0)
        *backoff_ms = REFUSED_BACKOFF_FIRST_MS;
    uint64_t delay = next_backoff(backoff_ms, REFUSED_BACKOFF_MAX_MS);
    uint64_t proportional = refusing_for_ms / REFUSED_LAG_DIVISOR;
    if (proportional > delay)
        delay = proportional;
    return delay > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay;
}

/* refused: the attempt ended with a refused connect (see REFUSED_*). */
static void schedule_retry_after(caa_agent_proxy *p, bool refused)
{
    if (p->shutting_down || !p->cycling)
        return;
    uint64_t now = uv_now(p->loop);
    if (now >= p->cycle_deadline_ms) {
        give_up(p);
        return;
    }
    uint64_t delay;
    if (refused && !p->refusing) {
        p->refused_since_ms = now;
        p->refused_backoff_ms = 0;
    }
    p->refusing = refused;
    if (refused)
        delay = caa_agent_proxy_refused_delay_ms(now - p->refused_since_ms, &p->refused_backoff_ms);
    else
        delay = next_backoff(&p->backoff_ms, BACKOFF_MAX_MS);
    if (delay > p->cycle_deadline_ms - now)
        delay = p->cycle_deadline_ms - now;
    uv_timer_start(&p->timer, on_retry_timer, delay, 0);
}

static void schedule_retry(caa_agent_proxy *p)
{
    schedule_retry_after(p, false);
}

static void on_checked(const ttrpc_result *res, void *opaque)
{
    caa_agent_proxy *p = opaque;
    ttrpc_client *c = p->probe;
    if (!c)
        return; /* closed by the attempt timeout or by shutdown */
    p->probe = NULL;
    uv_timer_stop(&p->timer);

    if (res->status == 0 && res->grpc_code == GRPC_OK) {
        bool first = !p->ready_reported;
        p->cycling = false;
        p->connects++;
        set_last_error(p, NULL);
        caa_relay_set_upstream(p->relay, c);
        if (first)
            log_pod_info(ID(p), "agent proxy: connected to %s", p->where);
        else
            log_pod_info(ID(p), "agent proxy: reconnected to %s", p->where);
        if (first) {
            p->ready_reported = true;
            p->ready_cb(0, NULL, p->ready_opaque); /* may shut the proxy down */
        }
        return;
    }

    if (res->status < 0)
        set_last_error(p, caa_error_new(res->status, "health check: %s", strerror(-res->status)));
    else
        set_last_error(
            p, caa_error_new(-EPROTO, "health check: %s: %s", grpc_code_name(res->grpc_code), res->message));
    log_pod_debug(ID(p), "agent proxy: %s", caa_error_msg(p->last_error));
    p->dial_failures++;
    ttrpc_client_close(c);
    schedule_retry(p);
}

static void on_dialed(int status, ttrpc_transport *t, caa_error *err, void *opaque)
{
    caa_agent_proxy *p = opaque;
    p->dial = NULL;
    if (p->shutting_down) {
        caa_error_free(err);
        if (t)
            ttrpc_transport_close(t);
        finish_part(p);
        return;
    }
    if (status < 0) {
        log_pod_debug(ID(p), "agent proxy: dial: %s", caa_error_msg(err));
        p->dial_failures++;
        /* A cancel here is the attempt timeout, which recorded its reason. */
        if (status != -ECANCELED)
            set_last_error(p, err);
        else
            caa_error_free(err);
        uv_timer_stop(&p->timer);
        schedule_retry_after(p, status == -ECONNREFUSED);
        return;
    }

    _cleanup_error_ caa_error *e = NULL;
    ttrpc_client *c;
    if (ttrpc_client_new_on_transport(p->loop, t, &c, &e) < 0) {
        set_last_error(p, TAKE_PTR(e));
        uv_timer_stop(&p->timer);
        schedule_retry(p);
        return;
    }
    uint64_t now = uv_now(p->loop);
    uint64_t left_ms = p->cycle_deadline_ms > now ? p->cycle_deadline_ms - now : 1;
    if (left_ms > ATTEMPT_MAX_MS)
        left_ms = ATTEMPT_MAX_MS;
    p->probe = c;
    if (ttrpc_client_call(c, CAA_HEALTH_SERVICE, "Check", NULL, 0, caa_ms_to_ns((int64_t)left_ms), NULL, 0,
                          on_checked, p, &e) < 0) {
        p->probe = NULL;
        ttrpc_client_close(c);
        set_last_error(p, TAKE_PTR(e));
        uv_timer_stop(&p->timer);
        schedule_retry(p);
    }
}

static void attempt_timed_out(caa_agent_proxy *p)
{
    set_last_error(p, caa_error_new(-ETIMEDOUT, "%s did not answer in time", p->where));
    if (p->dial) {
        caa_agent_dial_cancel(p->dialer, p->dial); /* on_dialed schedules the retry */
        return;
    }
    ttrpc_client *c = TAKE_PTR(p->probe);
    if (c) {
        p->dial_failures++;
        ttrpc_client_close(c);
        schedule_retry(p);
    }
}

/* The attempt timer: every redial_ms while the TCP connect waits, a fresh
 * SYN (REDIAL_MS); then (TLS handshake, health check) only the attempt's
 * deadline, which times the attempt out. */
static void arm_attempt_timer(caa_agent_proxy *p, bool connecting);

static void on_attempt_timer(uv_timer_t *t)
{
    caa_agent_proxy *p = CAA_CONTAINER_OF(t, caa_agent_proxy, timer);
    if (uv_now(p->loop) >= p->attempt_deadline_ms) {
        attempt_timed_out(p);
        return;
    }
    if (!p->dial) { /* connected, health check in flight */
        arm_attempt_timer(p, false);
        return;
    }
    _cleanup_error_ caa_error *e = NULL;
    int r = caa_agent_dial_redial(p->dialer, p->dial, &e);
    if (r > 0) {
        p->redials++;
        log_pod_debug(ID(p), "agent proxy: no answer from %s within %" PRIu64 " ms, sending a fresh SYN",
                      p->where, p->redial_ms);
    } else if (r < 0) {
        log_pod_debug(ID(p), "agent proxy: redial: %s (the pending connect goes on)", caa_error_msg(e));
    }
    arm_attempt_timer(p, r != 0);
}

static void arm_attempt_timer(caa_agent_proxy *p, bool connecting)
{
    uint64_t left = p->attempt_deadline_ms - uv_now(p->loop);
    if (connecting && p->redial_ms < left)
        left = p->redial_ms;
    uv_timer_start(&p->timer, on_attempt_timer, left, 0);
}

static void attempt(caa_agent_proxy *p)
{
    if (p->shutting_down || !p->cycling)
        return;
    uint64_t now = uv_now(p->loop);
    if (now >= p->cycle_deadline_ms) {
        give_up(p);
        return;
    }
    _cleanup_error_ caa_error *e = NULL;
    if (p->dialer->dial(p->dialer, p->loop, p->host, p->port, p->server_name, on_dialed, p, &p->dial, &e) <
        0) {
        p->dial = NULL;
        p->dial_failures++;
        set_last_error(p, TAKE_PTR(e));
        schedule_retry(p);
        return;
    }
    uint64_t limit = p->cycle_deadline_ms - now;
    p->attempt_deadline_ms = now + (limit < ATTEMPT_MAX_MS ? limit : ATTEMPT_MAX_MS);
    arm_attempt_timer(p, true);
}

static void start_cycle(caa_agent_proxy *p)
{
    if (p->shutting_down || p->cycling)
        return;
    p->cycling = true;
    p->cycle_start_ms = uv_now(p->loop);
    p->cycle_deadline_ms = p->cycle_start_ms + caa_ns_to_ms_ceil(p->timeout_ns);
    p->backoff_ms = BACKOFF_FIRST_MS;
    p->refusing = false;
    caa_relay_set_upstream_state(p->relay, CAA_RELAY_UPSTREAM_CONNECTING);
    attempt(p);
}

static void on_upstream_lost(caa_relay *r, void *opaque)
{
    caa_agent_proxy *p = opaque;
    (void)r;
    log_pod_info(ID(p), "agent proxy: connection to %s lost, reconnecting", p->where);
    start_cycle(p);
}

static void on_upstream_wanted(caa_relay *r, void *opaque)
{
    caa_agent_proxy *p = opaque;
    (void)r;
    if (!p->ready_reported)
        return; /* the first cycle failed: the daemon is tearing the pod down */
    log_pod_info(ID(p), "agent proxy: a call arrived while %s is unreachable, reconnecting", p->where);
    start_cycle(p);
}

/* ------------------------------------------------------------ start */

int caa_agent_proxy_start(uv_loop_t *loop, const caa_agent_proxy_config *cfg,
                          caa_agent_proxy_ready_cb ready_cb, void *opaque, caa_agent_proxy **ret,
                          caa_error **err)
{
    if (!loop || !cfg || !ready_cb || !ret || !cfg->socket_path || !cfg->host || cfg->timeout_ns < 0)
        return caa_error_set(err, -EINVAL, "agent proxy: missing argument");
    if (strlen(cfg->socket_path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return caa_error_set(err, -ENAMETOOLONG, "agent proxy: socket path %s is too long", cfg->socket_path);
    struct sockaddr_storage ss;
    if (uv_ip4_addr(cfg->host, 0, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(cfg->host, 0, (struct sockaddr_in6 *)&ss) != 0)
        return caa_error_set(err, -EINVAL, "agent proxy: forwarder address '%s' is not a numeric IP address",
                             cfg->host);
    const caa_agent_dialer *dialer = cfg->dialer ? cfg->dialer : caa_agent_dialer_tcp();

    caa_agent_proxy *p = xnew0(caa_agent_proxy, 1);
    p->loop = loop;
    p->sandbox_id = cfg->sandbox_id ? xstrdup(cfg->sandbox_id) : NULL;
    p->host = xstrdup(cfg->host);
    p->server_name = cfg->server_name ? xstrdup(cfg->server_name) : NULL;
    p->port = cfg->port ? cfg->port : CAA_AGENT_PROXY_DEFAULT_PORT;
    p->where =
        strchr(p->host, ':') ? xasprintf("[%s]:%u", p->host, p->port) : xasprintf("%s:%u", p->host, p->port);
    p->dialer = dialer;
    p->timeout_ns = cfg->timeout_ns ? cfg->timeout_ns : CAA_AGENT_PROXY_DEFAULT_TIMEOUT_NS;
    p->gpus = cfg->gpus;
    p->retry_forever = cfg->retry_forever;
    p->redial_ms = cfg->redial_ms ? cfg->redial_ms : REDIAL_MS;
    p->ready_cb = ready_cb;
    p->ready_opaque = opaque;
    p->rewrites[0] = (caa_relay_rewrite){CAA_AGENT_SERVICE, "CreateContainer", rewrite_create_container};

    _cleanup_free_ char *name = xasprintf("agent-protocol-forwarder %s", p->where);
    caa_relay_config rc = {
        .name = name,
        .rewrites = p->rewrites,
        .n_rewrites = CAA_ARRAY_SIZE(p->rewrites),
        .rewrite_opaque = p,
        .max_wait_ns = p->timeout_ns,
        .upstream_lost = on_upstream_lost,
        .upstream_wanted = on_upstream_wanted,
        .opaque = p,
    };
    int r = caa_relay_new(loop, &rc, &p->relay, err);
    if (r < 0) {
        free(p->sandbox_id);
        free(p->host);
        free(p->server_name);
        free(p->where);
        free(p);
        return r;
    }
    uv_timer_init(loop, &p->timer);

    r = ttrpc_server_listen_unix(caa_relay_server(p->relay), cfg->socket_path, 0600, err);
    if (r < 0) {
        caa_error_prefix(err, "agent proxy");
        /* Nothing was reported yet and nothing must be: release quietly. */
        p->ready_reported = true;
        caa_agent_proxy_shutdown(p, NULL, NULL);
        return r;
    }

    char t[32];
    caa_format_duration(p->timeout_ns, t, sizeof(t));
    log_pod_debug(ID(p), "agent proxy: listening on %s, connecting to %s (%s, timeout %s, %u GPUs)",
                  cfg->socket_path, p->where, dialer->name, t, p->gpus);
    start_cycle(p);
    *ret = p;
    return 0;
}

void caa_agent_proxy_get_stats(const caa_agent_proxy *p, caa_agent_proxy_stats *ret)
{
    caa_relay_stats rs;
    caa_relay_get_stats(p->relay, &rs);
    *ret = (caa_agent_proxy_stats){
        .shim_connections = rs.connections,
        .inflight = rs.inflight,
        .queued = rs.queued,
        .relayed = rs.relayed,
        .rewritten = rs.rewritten,
        .connects = p->connects,
        .dial_failures = p->dial_failures,
        .redials = p->redials,
        .connected = caa_relay_upstream_state_get(p->relay) == CAA_RELAY_UPSTREAM_UP,
        .reconnecting = p->cycling,
    };
}
