/* sshd supervision for secure comms (see forwarder-sc.h). */
#define LOG_COMPONENT "forwarder/securecomms"
#include "forwarder-sc.h"

#include <dirent.h>
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "forwarder-sc-fetch.h"
#include "forwarder-sc-netns.h"
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
    caa_sc_sshd_params params; /* Trustee mode: the Kubernetes-phase config, written once the keys came */
    char *dir, *listen, *inbounds, *outbounds;
    fwd_sc_fetch *fetch;
    fwd_sc_relays *relays;
    bool switching; /* sshd is being restarted with the Kubernetes-phase config */
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
    free(s->dir);
    free(s->listen);
    free(s->inbounds);
    free(s->outbounds);
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

static void on_relays_closed(void *opaque)
{
    fwd_sc *s = opaque;
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
    if (s->switching) {
        s->switching = false;
        s->backoff_ms = RESTART_MIN_MS;
        log_info("secure comms: attestation phase over; sshd restarts with the keys from the KBS");
        uv_timer_start(&s->restart, on_restart, 0, 0); /* once the process handle is closed */
        return;
    }
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

/* The processes under pid (sshd's per-connection children), found through
 * /proc: they outlive a SIGTERM to the listener, and the attestation
 * connection they serve must end for the worker to reconnect. */
static size_t descendants(pid_t root, pid_t *out, size_t max)
{
    size_t n = 0;
    bool grew = true;
    while (grew && n < max) {
        grew = false;
        DIR *d = opendir("/proc");
        if (!d)
            return n;
        struct dirent *e;
        while ((e = readdir(d)) && n < max) {
            char *end;
            long pid = strtol(e->d_name, &end, 10);
            if (*end || pid <= 0)
                continue;
            _cleanup_free_ char *path = xasprintf("/proc/%ld/stat", pid);
            FILE *f = fopen(path, "re");
            if (!f)
                continue;
            char buf[512];
            size_t len = fread(buf, 1, sizeof(buf) - 1, f);
            fclose(f);
            buf[len] = '\0';
            const char *rp = strrchr(buf, ')'); /* the command name may hold anything */
            int ppid = 0;
            char state;
            if (!rp || sscanf(rp + 1, " %c %d", &state, &ppid) != 2)
                continue;
            bool known = false, parent_known = ppid == root;
            for (size_t i = 0; i < n; i++) {
                known |= out[i] == (pid_t)pid;
                parent_known |= out[i] == (pid_t)ppid;
            }
            if (!known && parent_known) {
                out[n++] = (pid_t)pid;
                grew = true;
            }
        }
        closedir(d);
    }
    return n;
}

static void on_keys(int status, const char *wn_pub, size_t wn_len, const char *pp_prv, size_t pp_len,
                    void *opaque)
{
    fwd_sc *s = opaque;
    s->fetch = NULL;
    if (status < 0)
        return; /* logged by the fetcher */
    caa_apf_securecomms keys = {
        .enabled = true,
        .pp_private_key = (uint8_t *)pp_prv,
        .pp_private_key_len = pp_len,
        .wn_public_key = (uint8_t *)wn_pub,
        .wn_public_key_len = wn_len,
    };
    s->params.sc = &keys;
    _cleanup_error_ caa_error *e = NULL;
    int r = caa_sc_sshd_write_config(&s->params, &e);
    s->params.sc = NULL;
    if (r < 0) {
        /* Keys the KBS should never have held: the VM stays in its
         * attestation phase; the worker fails the pod after its timeout. */
        log_error("secure comms: the keys from the KBS are not usable: %s", caa_error_msg(e));
        return;
    }
    /* End the attestation connection and its listener; on_exit_cb starts
     * sshd again with the Kubernetes-phase files. */
    if (s->running) {
        pid_t kids[256];
        size_t n = descendants(s->proc.pid, kids, CAA_ARRAY_SIZE(kids));
        for (size_t i = 0; i < n; i++)
            kill(kids[i], SIGTERM);
        s->switching = true;
        uv_process_kill(&s->proc, SIGTERM);
    } else {
        uv_timer_start(&s->restart, on_restart, 0, 0); /* was waiting for a restart anyway */
    }
}

static const char *keys_command_user(void)
{
    if (geteuid() == 0)
        return "nobody";
    struct passwd *pw = getpwuid(geteuid()); /* an unprivileged sshd (tests) can only run as itself */
    return pw ? pw->pw_name : "nobody";
}

int fwd_sc_start(uv_loop_t *loop, const fwd_options *o, const caa_apf_config *apf, uint16_t agent_port,
                 fwd_sc **ret, caa_error **err)
{
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
    /* Trustee mode wins over apf.json keys (as upstream); apf.json's tags
     * are NoTrustee's. */
    if (o->secure_comms) {
        p.sc = NULL;
        p.extra_outbounds = o->secure_comms_outbounds;
    }
    int r = o->secure_comms ? caa_sc_sshd_write_attestation_config(&p, keys_command_user(), err)
                            : caa_sc_sshd_write_config(&p, err);
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
    if (o->secure_comms) {
        s->dir = xstrdup(p.dir);
        s->listen = xstrdup(p.listen_addr);
        s->inbounds = xstrdup(o->secure_comms_inbounds ? o->secure_comms_inbounds : "");
        s->outbounds = xstrdup(o->secure_comms_outbounds ? o->secure_comms_outbounds : "");
        s->params = p;
        s->params.dir = s->dir;
        s->params.listen_addr = s->listen;
        s->params.user = FWD_SC_USER;
        s->params.extra_inbounds = s->inbounds;
        s->params.extra_outbounds = s->outbounds;
        if ((r = fwd_sc_fetch_start(loop, o->secure_comms_key_source, o->secure_comms_key_netns, 0, on_keys,
                                    s, &s->fetch, err)) < 0) {
            s->stopping = true;
            s->open_handles++;
            uv_close((uv_handle_t *)&s->restart, on_handle_closed); /* frees s: sshd not started yet */
            return r;
        }
        log_info("secure comms (Trustee): attestation phase, only the KBS tunnel until the keys come");
    }
    /* The namespace inbounds: the same tags sshd_config was written from. */
    caa_sc_tags in;
    caa_sc_tags_init(&in, CAA_SC_INBOUND);
    if (caa_sc_tags_parse_append(&in, o->secure_comms_inbounds, NULL) == 0 &&
        (o->secure_comms || caa_sc_tags_parse_append(&in, apf->sc.inbounds, NULL) == 0))
        s->relays = fwd_sc_relays_start(loop, &in);
    caa_sc_tags_done(&in);
    spawn_sshd(s);
    *ret = s;
    return 0;
}

void fwd_sc_stop(fwd_sc *s, void (*done)(void *opaque), void *opaque)
{
    s->stopping = true;
    s->done = done;
    s->done_opaque = opaque;
    fwd_sc_fetch_stop(TAKE_PTR(s->fetch));
    uv_timer_stop(&s->restart);
    s->open_handles++;
    uv_close((uv_handle_t *)&s->restart, on_handle_closed);
    if (s->relays) {
        s->open_handles++;
        fwd_sc_relays_close(TAKE_PTR(s->relays), on_relays_closed, s);
    }
    if (s->running)
        uv_process_kill(&s->proc, SIGTERM); /* on_exit_cb closes it, then done */
}
