/* Container and exec processes: uv_spawn with three socket-pair stdio
 * streams, exit through uv_process_t (libuv's SIGCHLD handling), output
 * buffered for ReadStdout/ReadStderr, parked calls answered on events.
 *
 * A process joins a network namespace by the loop thread switching into it
 * around uv_spawn: the forked child inherits the thread's namespace, and
 * the agent switches straight back.
 *
 * With a terminal the process gets a pty slave as stdin, stdout and stderr;
 * the agent reads the master through out.pipe and writes it through a
 * duplicate in the stdin handle (two libuv handles cannot share one fd). */
#define LOG_COMPONENT "test-agent"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <pty.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "agent.pb-c.h"
#include "cleanup.h"
#include "log.h"
#include "netns.h"
#include "test-agent.h"
#include "xalloc.h"

/* Unread output kept per stream before reading stops (the pipe then fills
 * and the process blocks, as with a real agent whose shim stops reading). */
#define TA_OUTPUT_CAP (1u << 20)
/* ReadStreamRequest.len 0 (no limit given). */
#define TA_READ_DEFAULT (64u << 10)
#define TA_READ_CHUNK (64u << 10)

/* ------------------------------------------------------------ parked calls */

static void pending_unlink(ta_pending *pd)
{
    for (ta_pending **pp = pd->list; *pp; pp = &(*pp)->next) {
        if (*pp == pd) {
            *pp = pd->next;
            return;
        }
    }
}

static void pending_cancelled(ttrpc_call *c, void *opaque)
{
    ta_pending *pd = opaque;
    pending_unlink(pd);
    free(pd);
    ttrpc_call_reply_error(c, GRPC_CANCELLED, "connection closed"); /* only frees the call */
}

void ta_park(ta_pending **list, ttrpc_call *c, uint32_t max_len)
{
    ta_pending *pd = xnew0(ta_pending, 1);
    pd->call = c;
    pd->list = list;
    pd->max_len = max_len;
    ta_pending **pp = list;
    while (*pp)
        pp = &(*pp)->next;
    *pp = pd; /* FIFO: readers are served in arrival order */
    ttrpc_call_set_cancel_cb(c, pending_cancelled, pd);
}

ttrpc_call *ta_unpark(ta_pending **list, uint32_t *ret_max_len)
{
    ta_pending *pd = *list;
    *list = pd->next;
    ttrpc_call *c = pd->call;
    if (ret_max_len)
        *ret_max_len = pd->max_len;
    ttrpc_call_set_cancel_cb(c, NULL, NULL);
    free(pd);
    return c;
}

/* ------------------------------------------------------------ lifetime */

static void process_maybe_free(ta_process *p)
{
    if (!p->detached || p->open_handles > 0)
        return;
    for (ta_process **pp = &p->agent->orphans; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    free(p->out.buf);
    free(p->err.buf);
    free(p->exec_id);
    free(p);
}

static void process_handle_closed(uv_handle_t *h)
{
    ta_process *p = h->data;
    p->open_handles--;
    process_maybe_free(p);
}

static void stream_handle_closed(uv_handle_t *h)
{
    ta_stream *s = h->data;
    ta_process *p = s->proc;
    p->open_handles--;
    process_maybe_free(p);
}

/* ------------------------------------------------------------ output */

static void stream_serve(ta_stream *s);

static void stream_close(ta_stream *s)
{
    s->eof = true;
    s->reading = false;
    if (s == &s->proc->out)
        s->proc->tty_master = -1; /* out.pipe owns it */
    if (s->open) {
        s->open = false;
        uv_close((uv_handle_t *)&s->pipe, stream_handle_closed);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    buf->base = xmalloc(TA_READ_CHUNK);
    buf->len = TA_READ_CHUNK;
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    ta_stream *s = st->data;
    if (n > 0) {
        s->buf = xrealloc(s->buf, s->len + (size_t)n);
        memcpy(s->buf + s->len, buf->base, (size_t)n);
        s->len += (size_t)n;
        if (s->len >= TA_OUTPUT_CAP) {
            uv_read_stop(st);
            s->reading = false;
        }
    }
    free(buf->base);
    if (n < 0) {
        if (n != UV_EOF)
            log_debug("output of process %s: %s", s->proc->exec_id, uv_strerror((int)n));
        stream_close(s);
    }
    stream_serve(s);
}

static void process_maybe_forget(ta_process *p);

/* Answers parked readers while there is data, then at the end of the
 * stream with the kata-agent's error (INTERNAL "read meet eof"). */
static void stream_serve(ta_stream *s)
{
    while (s->readers && (s->len > 0 || s->eof)) {
        uint32_t max;
        ttrpc_call *c = ta_unpark(&s->readers, &max);
        if (s->len == 0) {
            ttrpc_call_reply_error(c, GRPC_INTERNAL, "%s", s->hung_up ? "eof" : "read meet eof");
            s->end_told = true;
            continue;
        }
        size_t n = s->len < max ? s->len : max;
        Grpc__ReadStreamResponse resp = GRPC__READ_STREAM_RESPONSE__INIT;
        resp.data.data = s->buf;
        resp.data.len = n;
        ta_reply(c, &resp.base);
        if (n < s->len)
            memmove(s->buf, s->buf + n, s->len - n);
        s->len -= n;
    }
    if (s->open && !s->reading && !s->eof && s->len < TA_OUTPUT_CAP) {
        int r = uv_read_start((uv_stream_t *)&s->pipe, on_alloc, on_read);
        if (r < 0) {
            log_debug("output of process %s: %s", s->proc->exec_id, uv_strerror(r));
            stream_close(s);
            stream_serve(s);
            return;
        }
        s->reading = true;
    }
    if (s->end_told)
        process_maybe_forget(s->proc);
}

void ta_process_read(ta_process *p, bool err_stream, uint32_t max_len, ttrpc_call *c)
{
    /* One terminal stream: stdout and stderr both read it. */
    ta_stream *s = err_stream && !p->terminal ? &p->err : &p->out;
    if (max_len == 0)
        max_len = TA_READ_DEFAULT;
    if (max_len > TA_OUTPUT_CAP)
        max_len = TA_OUTPUT_CAP;
    ta_park(&s->readers, c, max_len);
    stream_serve(s);
}

/* ------------------------------------------------------------ exit */

static void on_process_exit(uv_process_t *h, int64_t exit_status, int term_signal)
{
    ta_process *p = h->data;
    p->exited = true;
    /* As the kata-agent reports it: the exit code, or 128 + signal. */
    p->status = term_signal ? 128 + term_signal : (int)exit_status;
    log_info("process %s (pid %d) exited with status %d", p->exec_id, h->pid, p->status);
    uv_close((uv_handle_t *)h, process_handle_closed);
    while (p->waiters) {
        ttrpc_call *c = ta_unpark(&p->waiters, NULL);
        Grpc__WaitProcessResponse resp = GRPC__WAIT_PROCESS_RESPONSE__INIT;
        resp.status = p->status;
        ta_reply(c, &resp.base);
        p->reaped = true;
    }
    process_maybe_forget(p);
}

void ta_process_wait(ta_process *p, ttrpc_call *c)
{
    if (p->exited) {
        Grpc__WaitProcessResponse resp = GRPC__WAIT_PROCESS_RESPONSE__INIT;
        resp.status = p->status;
        ta_reply(c, &resp.base);
        p->reaped = true;
        process_maybe_forget(p);
        return;
    }
    ta_park(&p->waiters, c, 0);
}

static bool stream_drained(const ta_stream *s)
{
    return s->end_told && !s->readers;
}

/* The kata-agent drops an exec process from its container once WaitProcess
 * returned; later calls naming it fail. We wait until its output is read
 * to the end of both streams, so a reader that comes after WaitProcess
 * loses nothing (a stream never read keeps it until RemoveContainer). The
 * container's own process stays until RemoveContainer. */
static void process_maybe_forget(ta_process *p)
{
    if (!p->reaped || p->init || !p->owner || !stream_drained(&p->out) || !stream_drained(&p->err))
        return;
    for (ta_process **pp = p->owner; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    p->owner = NULL;
    log_debug("process %s forgotten after WaitProcess", p->exec_id);
    ta_process_detach(p);
}

/* ------------------------------------------------------------ stdin */

typedef struct ta_write {
    uv_write_t req;
    ttrpc_call *call;
    uint8_t *data;
    size_t len;
} ta_write;

static void on_written(uv_write_t *req, int status)
{
    ta_write *w = CAA_CONTAINER_OF(req, ta_write, req);
    if (status < 0) {
        ttrpc_call_reply_error(w->call, GRPC_INTERNAL, "writing stdin: %s", uv_strerror(status));
    } else {
        Grpc__WriteStreamResponse resp = GRPC__WRITE_STREAM_RESPONSE__INIT;
        resp.len = (uint32_t)w->len;
        ta_reply(w->call, &resp.base);
    }
    free(w->data);
    free(w);
}

void ta_process_write(ta_process *p, const uint8_t *data, size_t len, ttrpc_call *c)
{
    if (!p->in_open) {
        ttrpc_call_reply_error(c, GRPC_FAILED_PRECONDITION, "stdin of process %s is closed", p->exec_id);
        return;
    }
    if (len == 0) {
        Grpc__WriteStreamResponse resp = GRPC__WRITE_STREAM_RESPONSE__INIT;
        ta_reply(c, &resp.base);
        return;
    }
    ta_write *w = xnew0(ta_write, 1);
    w->call = c;
    w->data = xmemdup(data, len);
    w->len = len;
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)len);
    int r = uv_write(&w->req, (uv_stream_t *)&p->in, &b, 1, on_written);
    if (r < 0) {
        free(w->data);
        free(w);
        ttrpc_call_reply_error(c, GRPC_INTERNAL, "writing stdin: %s", uv_strerror(r));
    }
}

static void on_stdin_shutdown(uv_shutdown_t *req, int status)
{
    uv_handle_t *h = (uv_handle_t *)req->handle;
    (void)status;
    free(req);
    uv_close(h, process_handle_closed);
}

int ta_process_close_stdin(ta_process *p, caa_error **err)
{
    (void)err;
    if (p->terminal) {
        /* As the kata-agent: the pty master is closed, which hangs up the
         * terminal, and parked readers end. */
        p->out.hung_up = true;
        stream_close(&p->out);
        stream_serve(&p->out);
    }
    if (!p->in_open)
        return 0; /* closing twice is harmless */
    p->in_open = false;
    /* Shutdown lets queued writes finish before the child sees EOF. */
    uv_shutdown_t *req = xnew0(uv_shutdown_t, 1);
    if (uv_shutdown(req, (uv_stream_t *)&p->in, on_stdin_shutdown) < 0) {
        free(req);
        uv_close((uv_handle_t *)&p->in, process_handle_closed);
    }
    return 0;
}

int ta_process_resize(ta_process *p, uint16_t rows, uint16_t cols, caa_error **err)
{
    if (p->tty_master < 0)
        return caa_error_set(err, -ENODEV, "no tty");
    struct winsize ws = {.ws_row = rows, .ws_col = cols};
    if (ioctl(p->tty_master, TIOCSWINSZ, &ws) < 0)
        return caa_error_set_errno(err, -errno, "ioctl error");
    return 0;
}

/* ------------------------------------------------------------ signals */

int ta_process_signal(ta_process *p, int signum, caa_error **err)
{
    if (p->exited)
        return 0; /* as kill(2) on a zombie: nothing to do */
    int r = uv_process_kill(&p->handle, signum);
    if (r < 0)
        return caa_error_set(err, -EINVAL, "signal %d to process %s: %s", signum, p->exec_id, uv_strerror(r));
    return 0;
}

void ta_process_detach(ta_process *p)
{
    ta_agent *a = p->agent;
    p->detached = true;
    p->owner = NULL;
    if (!p->exited) {
        /* Not reaped yet (exit_cb has not run), so the pid is still ours.
         * The child may not have reached setsid(): kill it by pid too. */
        kill(-p->handle.pid, SIGKILL);
        kill(p->handle.pid, SIGKILL);
    }
    if (p->in_open) {
        p->in_open = false;
        uv_close((uv_handle_t *)&p->in, process_handle_closed);
    }
    stream_close(&p->out);
    stream_serve(&p->out);
    stream_close(&p->err);
    stream_serve(&p->err);
    p->next = a->orphans;
    a->orphans = p;
    process_maybe_free(p);
}

ta_process *ta_process_find(ta_process *list, const char *exec_id)
{
    for (ta_process *p = list; p; p = p->next)
        if (strcmp(p->exec_id, exec_id) == 0)
            return p;
    return NULL;
}

/* ------------------------------------------------------------ spawn */

/* The sandbox's pause container names /pause, which a test VM does not
 * have: this program stands in for it. */
static bool missing_pause(const char *file)
{
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    return strcmp(base, "pause") == 0 && access(file, X_OK) < 0;
}

/* A pty pair, both ends close-on-exec (uv_spawn's dup2 clears it on the
 * child's 0-2), with the OCI console size when one was given. */
static int tty_open(const ta_tty *tty, int *ret_master, int *ret_slave, caa_error **err)
{
    struct winsize ws = {.ws_row = tty->rows, .ws_col = tty->cols};
    int master, slave;
    if (openpty(&master, &slave, NULL, NULL, tty->rows || tty->cols ? &ws : NULL) < 0)
        return caa_error_set_errno(err, -errno, "opening a pty");
    if (fcntl(master, F_SETFD, FD_CLOEXEC) < 0 || fcntl(slave, F_SETFD, FD_CLOEXEC) < 0) {
        int e = -errno;
        close(master);
        close(slave);
        return caa_error_set_errno(err, e, "pty close-on-exec");
    }
    *ret_master = master;
    *ret_slave = slave;
    return 0;
}

/* Opens the process's stdio handles on the pty master. */
static int tty_attach(ta_process *p, int master, caa_error **err)
{
    int writer = fcntl(master, F_DUPFD_CLOEXEC, 3);
    if (writer < 0)
        return caa_error_set_errno(err, -errno, "duplicating the pty master");
    int r = uv_pipe_open(&p->in, writer);
    if (r < 0) {
        close(writer);
        return caa_error_set(err, r, "pty writer: %s", uv_strerror(r));
    }
    r = uv_pipe_open(&p->out.pipe, master);
    if (r < 0)
        return caa_error_set(err, r, "pty reader: %s", uv_strerror(r));
    p->tty_master = master;
    return 0;
}

int ta_process_spawn(ta_agent *a, ta_process **list, const char *exec_id, bool init, char *const *args,
                     char *const *env, const char *cwd, const char *netns, const ta_tty *tty,
                     ta_process **ret, caa_error **err)
{
    if (!args || !args[0] || !*args[0])
        return caa_error_set(err, -EINVAL, "process %s has no args", exec_id);
    if (ta_process_find(*list, exec_id))
        return caa_error_set(err, -EEXIST, "process %s already exists", exec_id);

    const char *file = args[0];
    char *pause_args[] = {(char *)TA_NAME, (char *)TA_PAUSE_ARG, NULL};
    char *const *argv = args;
    if (missing_pause(file)) {
        log_info("process %s: %s not present, using the built-in pause", exec_id, file);
        file = a->self_path;
        argv = pause_args;
    }
    char *no_env[] = {NULL};

    /* With a terminal the agent itself runs first (TA_TTY_ARG) to take the
     * pty as controlling terminal, then execs the real program. */
    _cleanup_free_ char **tty_argv = NULL;
    _cleanup_close_ int master = -1, slave = -1;
    if (tty) {
        if (tty_open(tty, &master, &slave, err) < 0)
            return caa_error_prefix(err, "starting process %s", exec_id);
        size_t n = 0;
        while (argv[n])
            n++;
        tty_argv = xnew0(char *, n + 4);
        tty_argv[0] = (char *)TA_NAME;
        tty_argv[1] = (char *)TA_TTY_ARG;
        tty_argv[2] = (char *)file;
        memcpy(tty_argv + 3, argv, n * sizeof(char *));
        file = a->self_path;
        argv = tty_argv;
    }

    int saved_ns = -1;
    if (netns && caa_netns_enter_path(netns, &saved_ns, err) < 0)
        return caa_error_prefix(err, "starting process %s", exec_id);

    ta_process *p = xnew0(ta_process, 1);
    p->agent = a;
    p->exec_id = xstrdup(exec_id);
    p->init = init;
    p->terminal = tty != NULL;
    p->tty_master = -1;
    uv_pipe_init(a->loop, &p->in, 0);
    uv_pipe_init(a->loop, &p->out.pipe, 0);
    uv_pipe_init(a->loop, &p->err.pipe, 0);
    p->handle.data = p; /* uv_spawn initialises the handle but keeps data */
    p->in.data = p;
    p->out.proc = p->err.proc = p;
    p->out.pipe.data = &p->out;
    p->err.pipe.data = &p->err;

    uv_stdio_container_t pipes[3] = {
        {.flags = UV_CREATE_PIPE | UV_READABLE_PIPE, .data.stream = (uv_stream_t *)&p->in},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&p->out.pipe},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&p->err.pipe},
    };
    uv_stdio_container_t terminal[3] = {
        {.flags = UV_INHERIT_FD, .data.fd = slave},
        {.flags = UV_INHERIT_FD, .data.fd = slave},
        {.flags = UV_INHERIT_FD, .data.fd = slave},
    };
    uv_process_options_t o = {
        .exit_cb = on_process_exit,
        .file = file,
        .args = (char **)argv,
        .env = env ? (char **)env : no_env,
        .cwd = cwd && *cwd ? cwd : "/",
        /* Own session and process group: removal kills the whole group. */
        .flags = UV_PROCESS_DETACHED,
        .stdio_count = 3,
        .stdio = tty ? terminal : pipes,
    };
    int r = uv_spawn(a->loop, &p->handle, &o);
    if (saved_ns >= 0)
        caa_netns_return(saved_ns); /* serving on in a pod's namespace would go unnoticed */
    bool started = r == 0;
    if (r < 0) {
        caa_error_set(err, r, "starting process %s (%s): %s", exec_id, file, uv_strerror(r));
    } else if (tty) {
        r = tty_attach(p, master, err);
        if (r == 0)
            master = -1; /* out.pipe owns it now */
        else
            caa_error_prefix(err, "starting process %s", exec_id);
    }

    p->open_handles = 4;
    if (r < 0) {
        /* The handles were initialised: close them, the close callbacks free
         * p. A child already started would lose its terminal: kill it. */
        if (started) {
            kill(-p->handle.pid, SIGKILL);
            kill(p->handle.pid, SIGKILL);
        }
        p->exited = true;
        p->detached = true;
        p->next = a->orphans;
        a->orphans = p;
        uv_close((uv_handle_t *)&p->handle, process_handle_closed);
        uv_close((uv_handle_t *)&p->in, process_handle_closed);
        uv_close((uv_handle_t *)&p->out.pipe, stream_handle_closed);
        uv_close((uv_handle_t *)&p->err.pipe, stream_handle_closed);
        return r;
    }
    p->in_open = p->out.open = true;
    if (tty) {
        /* No separate stderr: its handle is not used. */
        p->err.eof = p->err.end_told = true;
        uv_close((uv_handle_t *)&p->err.pipe, stream_handle_closed);
    } else {
        p->err.open = true;
    }
    stream_serve(&p->out); /* starts reading */
    stream_serve(&p->err);
    log_info("process %s started: pid %d%s%s%s", exec_id, p->handle.pid, tty ? " on a terminal" : "",
             netns ? " in " : "", netns ? netns : "");
    p->next = *list;
    p->owner = list;
    *list = p;
    if (ret)
        *ret = p;
    return 0;
}

int ta_pause_main(void)
{
    /* Like the Kubernetes pause container: exit 0 on SIGINT/SIGTERM. */
    struct sigaction sa = {.sa_handler = SIG_IGN};
    sigaction(SIGCHLD, &sa, NULL); /* reap anything re-parented to us */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int sig;
    sigwait(&set, &sig);
    return 0;
}

int ta_tty_exec_main(int argc, char **argv)
{
    if (argc < 4)
        return 127;
    /* uv_spawn made us a session leader; stdin is the pty slave. */
    if (ioctl(STDIN_FILENO, TIOCSCTTY, 0) < 0)
        fprintf(stderr, TA_NAME ": controlling terminal: %s\n", strerror(errno));
    execvp(argv[2], argv + 3);
    fprintf(stderr, TA_NAME ": %s: %s\n", argv[2], strerror(errno));
    return 127;
}
