/* sshd supervision for secure comms (see forwarder-sc.h). */
#define LOG_COMPONENT "forwarder/securecomms"
#include "forwarder-sc.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "sc-sshd.h"
#include "xalloc.h"

#define RESTART_MIN_MS 500
#define RESTART_MAX_MS 30000
#define FWD_SC_USER "root" /* matches the daemon's CAA_SC_VM_USER */
#define SETPRIV "/usr/bin/setpriv"

struct fwd_sc {
    uv_loop_t *loop;
    char *sshd;
    char *config_path;
    uv_process_t proc;
    bool running;
    uv_timer_t restart;
    uint64_t backoff_ms;
    bool stopping;
    int open_handles;
    void (*done)(void *opaque);
    void *done_opaque;
};

static void spawn_sshd(fwd_sc *s);

static void maybe_done(fwd_sc *s)
{
    if (!s->stopping || s->running || s->open_handles)
        return;
    void (*done)(void *) = s->done;
    void *opaque = s->done_opaque;
    free(s->sshd);
    free(s->config_path);
    free(s);
    if (done)
        done(opaque);
}

static void on_handle_closed(uv_handle_t *h)
{
    fwd_sc *s = h->data;
    s->open_handles--;
    maybe_done(s);
}

static void on_restart(uv_timer_t *t)
{
    spawn_sshd(t->data);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int signum)
{
    fwd_sc *s = p->data;
    s->running = false;
    s->open_handles++;
    uv_close((uv_handle_t *)p, on_handle_closed);
    if (s->stopping)
        return;
    log_error("sshd exited (status %lld, signal %d); restarting in %llu ms", (long long)status, signum,
              (unsigned long long)s->backoff_ms);
    uv_timer_start(&s->restart, on_restart, s->backoff_ms, 0);
    s->backoff_ms = s->backoff_ms * 2 > RESTART_MAX_MS ? RESTART_MAX_MS : s->backoff_ms * 2;
}

static void spawn_sshd(fwd_sc *s)
{
    /* -D: stay in the foreground as our child; -e: log to stderr (the journal).
     * Through setpriv (util-linux) when the image has it: sshd then gets
     * SIGTERM if the forwarder dies without stopping it (SIGKILL). */
    char *direct[] = {s->sshd, "-D", "-e", "-f", s->config_path, NULL};
    char *wrapped[] = {SETPRIV, "--pdeathsig", "TERM", "--", s->sshd, "-D", "-e", "-f", s->config_path, NULL};
    char **args = access(SETPRIV, X_OK) == 0 ? wrapped : direct;
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_INHERIT_FD, .data.fd = 1},
        {.flags = UV_INHERIT_FD, .data.fd = 2},
    };
    uv_process_options_t po = {
        .exit_cb = on_exit_cb,
        .file = args[0],
        .args = args,
        .stdio_count = 3,
        .stdio = stdio,
    };
    memset(&s->proc, 0, sizeof(s->proc));
    s->proc.data = s;
    int r = uv_spawn(s->loop, &s->proc, &po);
    if (r < 0) {
        /* A failed uv_spawn still initialised the handle: close it. */
        s->open_handles++;
        uv_close((uv_handle_t *)&s->proc, on_handle_closed);
        log_error("cannot start %s: %s; retrying in %llu ms", s->sshd, uv_strerror(r),
                  (unsigned long long)s->backoff_ms);
        uv_timer_start(&s->restart, on_restart, s->backoff_ms, 0);
        s->backoff_ms = s->backoff_ms * 2 > RESTART_MAX_MS ? RESTART_MAX_MS : s->backoff_ms * 2;
        return;
    }
    s->running = true;
    log_info("sshd started (pid %d, %s)", s->proc.pid, s->config_path);
}

int fwd_sc_start(uv_loop_t *loop, const fwd_options *o, const caa_apf_config *apf, uint16_t agent_port,
                 fwd_sc **ret, caa_error **err)
{
    if (o->secure_comms)
        return caa_error_set(err, -ENOTSUP,
                             "-secure-comms: Trustee mode (keys from the KBS) is not implemented; the daemon "
                             "sends the keys in apf.json (SECURE_COMMS_NO_TRUSTEE=true)");
    caa_sc_sshd_params p = {
        .dir = o->secure_comms_dir,
        .listen_addr = o->secure_comms_listen,
        .port = (uint16_t)o->secure_comms_ssh_port,
        .user = FWD_SC_USER,
        .agent_port = agent_port,
        .sc = &apf->sc,
        .extra_inbounds = o->secure_comms_inbounds,
        .extra_outbounds = o->secure_comms_outbounds,
    };
    int r = caa_sc_sshd_write_config(&p, err);
    if (r < 0)
        return r;
    fwd_sc *s = xnew0(fwd_sc, 1);
    s->loop = loop;
    s->sshd = xstrdup(o->sshd);
    s->config_path = xasprintf("%s/sshd_config", o->secure_comms_dir);
    s->backoff_ms = RESTART_MIN_MS;
    uv_timer_init(loop, &s->restart);
    s->restart.data = s;
    log_info("secure comms: SSH on %s:%u (sshd), the agent listener on 127.0.0.1:%u only; TLS off",
             o->secure_comms_listen, (unsigned)o->secure_comms_ssh_port, (unsigned)agent_port);
    spawn_sshd(s);
    *ret = s;
    return 0;
}

void fwd_sc_stop(fwd_sc *s, void (*done)(void *opaque), void *opaque)
{
    s->stopping = true;
    s->done = done;
    s->done_opaque = opaque;
    uv_timer_stop(&s->restart);
    s->open_handles++;
    uv_close((uv_handle_t *)&s->restart, on_handle_closed);
    if (s->running)
        uv_process_kill(&s->proc, SIGTERM); /* on_exit_cb closes it, then done */
}
