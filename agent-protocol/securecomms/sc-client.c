/* Worker-side SSH client on the libuv loop (see sc-client.h).
 *
 * One function, drive(), advances everything: the connection state machine
 * and, once connected, every channel (reads, queued writes, EOF, close),
 * the pending channel open (libssh2 runs one at a time per session) and
 * the forward listeners. It runs whenever the socket is ready in a
 * direction libssh2 asked for, and after any API call that queued work
 * (through a zero timer, so that no callback runs inside the caller). It
 * repeats until a pass makes no progress, because reading for one channel
 * can buffer packets for another. */
#define LOG_COMPONENT "securecomms"
#include "sc-client.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <libssh2.h>
#include <openssl/crypto.h>

#include "cleanup.h"
#include "log.h"
#include "sc-kbs-rewrite.h"
#include "sc-splice.h"
#include "xalloc.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define READ_CHUNK (32 * 1024)

typedef enum {
    ST_IDLE, /* waiting for the backoff timer */
    ST_CONNECTING,
    ST_HANDSHAKE,
    ST_AUTH,
    ST_FORWARDS,
    ST_READY,
    ST_CLOSED, /* caa_sc_client_free() was called */
} client_state;

typedef struct sc_chan sc_chan;
typedef struct sc_write sc_write;

struct sc_write {
    sc_write *next;
    ttrpc_write_req *req;
    size_t done;
};

/* A channel as a ttRPC transport. The LIBSSH2_CHANNEL stays with the
 * session: when the owner closes the transport, the handle moves to the
 * client's zombie list and is closed and freed there. */
struct sc_chan {
    ttrpc_transport base;
    caa_sc_client *client;
    sc_chan *next;
    LIBSSH2_CHANNEL *ch;
    sc_write *wq_head, *wq_tail;
    void (*shutdown_cb)(ttrpc_transport *t, int status);
    bool reading;
    bool eof_seen;     /* on_read got its final call */
    bool eof_sent;     /* our half-close went out */
    bool closing;      /* owner called close */
    bool shutdown_req; /* owner asked for a half-close */
    int error;         /* session lost: reported once through on_read */
};

typedef struct zombie {
    struct zombie *next;
    LIBSSH2_CHANNEL *ch;
    bool close_sent;
} zombie;

struct caa_sc_open {
    caa_sc_open *next;
    caa_sc_client *client;
    char *host;
    uint16_t port;
    caa_sc_open_cb cb;
    void *opaque;
    bool cancelled;
};

typedef struct forward {
    caa_sc_remote_forward spec; /* strings owned */
    LIBSSH2_LISTENER *listener;
    bool refused; /* this connection: the VM said no, logged once */
} forward;

struct caa_sc_client {
    uv_loop_t *loop;
    char *id;
    char *host;
    uint16_t port;
    char *user;
    char *key_pem; /* secret */
    uint8_t host_key[CAA_SC_ED25519_BLOB_LEN];
    bool attestation_allowed; /* Trustee mode */
    bool attestation;         /* this connection: the VM has not got its keys yet */
    forward *forwards;
    size_t n_forwards;
    size_t next_forward; /* ST_FORWARDS: the one being requested */
    uint64_t handshake_timeout_ms, keepalive_ms;

    client_state state;
    int fd;
    uv_poll_t *poll; /* per connection; freed by its close callback */
    int poll_events;
    LIBSSH2_SESSION *session;
    uv_timer_t timer; /* backoff, handshake deadline, keepalive */
    uv_timer_t kick;  /* deferred drive() */
    int open_handles;
    uint64_t backoff_ms;
    unsigned connections;
    bool in_drive;
    bool freed;

    sc_chan *chans;
    zombie *zombies;
    caa_sc_open *opens_head, *opens_tail; /* FIFO; the head is in progress */
    bool open_in_progress;
};

static void drive(caa_sc_client *c);
static void schedule(caa_sc_client *c);

static int libssh2_ready;

static const char *ssh_error(caa_sc_client *c)
{
    char *msg = NULL;
    if (!c->session)
        return "no session";
    libssh2_session_last_error(c->session, &msg, NULL, 0);
    return msg && *msg ? msg : "unknown libssh2 error";
}

/* ------------------------------------------------------------ channels */

static void chan_fail_writes(sc_chan *ch, int status)
{
    while (ch->wq_head) {
        sc_write *w = ch->wq_head;
        ch->wq_head = w->next;
        ttrpc_write_req *req = w->req;
        free(w);
        req->cb(req, status);
    }
    ch->wq_tail = NULL;
}

static int chan_read_start(ttrpc_transport *t)
{
    sc_chan *ch = (sc_chan *)t;
    if (ch->closing)
        return -ENOTCONN;
    ch->reading = true;
    schedule(ch->client);
    return 0;
}

static void chan_read_stop(ttrpc_transport *t)
{
    ((sc_chan *)t)->reading = false;
}

static int chan_write(ttrpc_transport *t, ttrpc_write_req *req)
{
    sc_chan *ch = (sc_chan *)t;
    if (ch->closing || ch->shutdown_req || ch->error || !ch->ch)
        return -EPIPE;
    sc_write *w = xnew0(sc_write, 1);
    w->req = req;
    if (ch->wq_tail)
        ch->wq_tail->next = w;
    else
        ch->wq_head = w;
    ch->wq_tail = w;
    schedule(ch->client);
    return 0;
}

static int chan_shutdown(ttrpc_transport *t, void (*cb)(ttrpc_transport *t, int status))
{
    sc_chan *ch = (sc_chan *)t;
    if (ch->closing || ch->shutdown_req)
        return -EPIPE;
    ch->shutdown_req = true;
    ch->shutdown_cb = cb;
    schedule(ch->client);
    return 0;
}

static void chan_close(ttrpc_transport *t)
{
    sc_chan *ch = (sc_chan *)t;
    ch->closing = true;
    ch->reading = false;
    schedule(ch->client);
}

static const ttrpc_transport_ops chan_ops = {
    .name = "ssh-channel",
    .read_start = chan_read_start,
    .read_stop = chan_read_stop,
    .write = chan_write,
    .shutdown = chan_shutdown,
    .close = chan_close,
};

static sc_chan *chan_new(caa_sc_client *c, LIBSSH2_CHANNEL *handle)
{
    sc_chan *ch = xnew0(sc_chan, 1);
    ch->base.ops = &chan_ops;
    ch->client = c;
    ch->ch = handle;
    ch->next = c->chans;
    c->chans = ch;
    return ch;
}

static void zombie_add(caa_sc_client *c, LIBSSH2_CHANNEL *handle)
{
    if (!handle)
        return;
    zombie *z = xnew0(zombie, 1);
    z->ch = handle;
    z->next = c->zombies;
    c->zombies = z;
}

/* Finishes a closed channel: pending writes fail, its handle goes to the
 * zombies, on_close runs, the memory goes. */
static void chan_finish(caa_sc_client *c, sc_chan *ch)
{
    for (sc_chan **pp = &c->chans; *pp; pp = &(*pp)->next)
        if (*pp == ch) {
            *pp = ch->next;
            break;
        }
    chan_fail_writes(ch, -ECANCELED);
    if (ch->shutdown_cb) {
        void (*cb)(ttrpc_transport *, int) = ch->shutdown_cb;
        ch->shutdown_cb = NULL;
        cb(&ch->base, -ECANCELED);
    }
    zombie_add(c, TAKE_PTR(ch->ch));
    if (ch->base.on_close)
        ch->base.on_close(&ch->base);
    free(ch);
}

/* One channel's I/O; returns true when something happened. */
static bool chan_pump(caa_sc_client *c, sc_chan *ch)
{
    bool progress = false;
    /* Writes, in order. */
    while (ch->ch && ch->wq_head && !ch->error) {
        sc_write *w = ch->wq_head;
        ssize_t n =
            libssh2_channel_write(ch->ch, (const char *)w->req->data + w->done, w->req->len - w->done);
        if (n == LIBSSH2_ERROR_EAGAIN)
            break;
        progress = true;
        if (n < 0) {
            log_pod_debug(c->id, "channel write failed: %s", ssh_error(c));
            ch->error = -EPIPE;
            break;
        }
        w->done += (size_t)n;
        if (w->done < w->req->len)
            continue;
        ch->wq_head = w->next;
        if (!ch->wq_head)
            ch->wq_tail = NULL;
        ttrpc_write_req *req = w->req;
        free(w);
        req->cb(req, 0);
        if (ch->closing)
            return true;
    }
    if (ch->ch && ch->shutdown_req && !ch->eof_sent && !ch->wq_head && !ch->error) {
        int r = libssh2_channel_send_eof(ch->ch);
        if (r != LIBSSH2_ERROR_EAGAIN) {
            ch->eof_sent = true;
            progress = true;
            void (*cb)(ttrpc_transport *, int) = ch->shutdown_cb;
            ch->shutdown_cb = NULL;
            if (cb)
                cb(&ch->base, r < 0 ? -EPIPE : 0);
            if (ch->closing)
                return true;
        }
    }
    /* Reads, while the owner wants them. */
    while (ch->reading && !ch->eof_seen && !ch->closing) {
        if (ch->error) {
            ch->eof_seen = true;
            ch->base.on_read(&ch->base, ch->error, NULL);
            return true;
        }
        uint8_t buf[READ_CHUNK];
        ssize_t n = libssh2_channel_read(ch->ch, (char *)buf, sizeof(buf));
        if (n == LIBSSH2_ERROR_EAGAIN)
            break;
        progress = true;
        if (n > 0) {
            ch->base.on_read(&ch->base, n, buf);
            continue;
        }
        ch->eof_seen = true;
        if (n == 0 && libssh2_channel_eof(ch->ch)) {
            ch->base.on_read(&ch->base, UV_EOF, NULL);
        } else if (n < 0) {
            log_pod_debug(c->id, "channel read failed: %s", ssh_error(c));
            ch->base.on_read(&ch->base, -ECONNRESET, NULL);
        } else {
            ch->eof_seen = false; /* 0 bytes without EOF: nothing yet */
            break;
        }
    }
    return progress;
}

static bool zombies_pump(caa_sc_client *c)
{
    bool progress = false;
    for (zombie **pp = &c->zombies; *pp;) {
        zombie *z = *pp;
        int r = 0;
        if (!z->close_sent) {
            r = libssh2_channel_close(z->ch);
            if (r == LIBSSH2_ERROR_EAGAIN) {
                pp = &z->next;
                continue;
            }
            z->close_sent = true;
        }
        r = libssh2_channel_free(z->ch);
        if (r == LIBSSH2_ERROR_EAGAIN) {
            pp = &z->next;
            continue;
        }
        *pp = z->next;
        free(z);
        progress = true;
    }
    return progress;
}

/* ------------------------------------------------------------ opens */

static void open_unlink_head(caa_sc_client *c)
{
    caa_sc_open *o = c->opens_head;
    c->opens_head = o->next;
    if (!c->opens_head)
        c->opens_tail = NULL;
    c->open_in_progress = false;
}

static void open_finish(caa_sc_open *o, int status, ttrpc_transport *t, caa_error *err)
{
    caa_sc_open_cb cb = o->cb;
    void *opaque = o->opaque;
    free(o->host);
    free(o);
    cb(status, t, err, opaque);
}

/* Fails every open that is not in progress in libssh2 (all of them when
 * the session is gone). */
static void opens_fail_all(caa_sc_client *c, int status, const char *why)
{
    while (c->opens_head) {
        caa_sc_open *o = c->opens_head;
        open_unlink_head(c);
        int st = o->cancelled ? -ECANCELED : status;
        open_finish(
            o, st, NULL,
            caa_error_new(st, "SSH %s:%u: %s", c->host, (unsigned)c->port, o->cancelled ? "cancelled" : why));
    }
}

static bool opens_pump(caa_sc_client *c)
{
    bool progress = false;
    while (c->opens_head) {
        caa_sc_open *o = c->opens_head;
        if (o->cancelled && !c->open_in_progress) {
            open_unlink_head(c);
            open_finish(o, -ECANCELED, NULL, caa_error_new(-ECANCELED, "SSH channel open cancelled"));
            progress = true;
            continue;
        }
        c->open_in_progress = true;
        LIBSSH2_CHANNEL *h = libssh2_channel_direct_tcpip_ex(c->session, o->host, o->port, "127.0.0.1", 0);
        if (!h && libssh2_session_last_errno(c->session) == LIBSSH2_ERROR_EAGAIN)
            break;
        progress = true;
        open_unlink_head(c);
        if (!h) {
            caa_error *err = caa_error_new(-ECONNREFUSED, "SSH %s:%u: tunnel to %s:%u refused: %s", c->host,
                                           (unsigned)c->port, o->host, (unsigned)o->port, ssh_error(c));
            log_pod_warn(c->id, "%s", caa_error_msg(err));
            open_finish(o, o->cancelled ? -ECANCELED : -ECONNREFUSED, NULL, err);
            continue;
        }
        if (o->cancelled) {
            zombie_add(c, h);
            open_finish(o, -ECANCELED, NULL, caa_error_new(-ECANCELED, "SSH channel open cancelled"));
            continue;
        }
        sc_chan *ch = chan_new(c, h);
        log_pod_debug(c->id, "SSH channel open to %s:%u", o->host, (unsigned)o->port);
        open_finish(o, 0, &ch->base, NULL);
    }
    return progress;
}

int caa_sc_client_open(caa_sc_client *c, const char *host, uint16_t port, caa_sc_open_cb cb, void *opaque,
                       caa_sc_open **ret, caa_error **err)
{
    if (c->state == ST_CLOSED)
        return caa_error_set(err, -ESHUTDOWN, "SSH client is closed");
    caa_sc_open *o = xnew0(caa_sc_open, 1);
    o->client = c;
    o->host = xstrdup(host);
    o->port = port;
    o->cb = cb;
    o->opaque = opaque;
    if (c->opens_tail)
        c->opens_tail->next = o;
    else
        c->opens_head = o;
    c->opens_tail = o;
    if (ret)
        *ret = o;
    schedule(c);
    return 0;
}

void caa_sc_open_cancel(caa_sc_open *o)
{
    o->cancelled = true;
    schedule(o->client);
}

/* ------------------------------------------------------------ forwards */

static int kbs_feed(void *state, const uint8_t *data, size_t len, caa_buf *out, caa_error **err)
{
    return caa_sc_kbs_rewrite_feed(state, data, len, out, err);
}

static void kbs_free(void *state)
{
    caa_sc_kbs_rewriter_done(state);
    free(state);
}

/* Trustee mode's KBS tunnel: the VM's requests pass the pp-sid rewrite. */
static void caa_sc_kbs_splice_to_tcp(uv_loop_t *loop, const char *id, const char *sid, ttrpc_transport *chan,
                                     const char *host, uint16_t port)
{
    caa_sc_kbs_rewriter *w = xnew0(caa_sc_kbs_rewriter, 1);
    caa_sc_kbs_rewriter_init(w, sid);
    caa_sc_splice_filter f = {kbs_feed, kbs_free, w};
    caa_sc_splice_to_tcp_filtered(loop, id, "KBS", chan, host, port, &f);
}

static bool forwards_accept(caa_sc_client *c)
{
    bool progress = false;
    for (size_t i = 0; i < c->n_forwards; i++) {
        forward *f = &c->forwards[i];
        while (f->listener) {
            LIBSSH2_CHANNEL *h = libssh2_channel_forward_accept(f->listener);
            if (!h)
                break; /* EAGAIN, or an error the session reports itself */
            progress = true;
            sc_chan *ch = chan_new(c, h);
            log_pod_debug(c->id, "tunnel %s: connection from the VM, to %s:%u", f->spec.name,
                          f->spec.target_host, (unsigned)f->spec.target_port);
            if (f->spec.kbs_sid)
                caa_sc_kbs_splice_to_tcp(c->loop, c->id, f->spec.kbs_sid, &ch->base, f->spec.target_host,
                                         f->spec.target_port);
            else
                caa_sc_splice_to_tcp(c->loop, c->id, f->spec.name, &ch->base, f->spec.target_host,
                                     f->spec.target_port);
        }
    }
    return progress;
}

/* ST_FORWARDS: one tcpip-forward at a time; a refusal is logged and skipped. */
static int forwards_request(caa_sc_client *c)
{
    while (c->next_forward < c->n_forwards) {
        forward *f = &c->forwards[c->next_forward];
        caa_sc_phase now = c->attestation ? CAA_SC_PHASE_ATTESTATION : CAA_SC_PHASE_KUBERNETES;
        if (f->spec.phase && !caa_sc_phase_matches(f->spec.phase, now)) {
            c->next_forward++; /* not live in this phase */
            continue;
        }
        int bound = 0;
        f->listener =
            libssh2_channel_forward_listen_ex(c->session, "127.0.0.1", f->spec.listen_port, &bound, 16);
        if (!f->listener && libssh2_session_last_errno(c->session) == LIBSSH2_ERROR_EAGAIN)
            return LIBSSH2_ERROR_EAGAIN;
        if (!f->listener)
            log_pod_error(c->id, "tunnel %s: the VM refused to listen on 127.0.0.1:%u (%s)", f->spec.name,
                          (unsigned)f->spec.listen_port, ssh_error(c));
        else
            log_pod_info(c->id, "tunnel %s: VM 127.0.0.1:%u -> worker %s:%u", f->spec.name,
                         (unsigned)f->spec.listen_port, f->spec.target_host, (unsigned)f->spec.target_port);
        c->next_forward++;
    }
    return 0;
}

/* ------------------------------------------------------------ connection */

static void on_poll_closed(uv_handle_t *h)
{
    free(h);
}

static void on_handle_closed(uv_handle_t *h)
{
    caa_sc_client *c = h->data;
    if (--c->open_handles == 0) {
        OPENSSL_cleanse(c->key_pem, strlen(c->key_pem));
        free(c->key_pem);
        for (size_t i = 0; i < c->n_forwards; i++) {
            free((char *)c->forwards[i].spec.name);
            free((char *)c->forwards[i].spec.target_host);
            free((char *)c->forwards[i].spec.kbs_sid);
        }
        free(c->forwards);
        free(c->user);
        free(c->host);
        free(c->id);
        free(c);
    }
}

/* Drops the connection: channels fail, the session goes. */
static void teardown_connection(caa_sc_client *c, int status, const char *why)
{
    for (sc_chan *ch = c->chans; ch; ch = ch->next) {
        if (!ch->error)
            ch->error = status;
        zombie_add(c, TAKE_PTR(ch->ch));
    }
    /* From caa_sc_client_free() the opens fail later, in drive(): never
     * inside the caller's call. */
    if (c->state != ST_CLOSED)
        opens_fail_all(c, -ENOTCONN, why);
    if (c->poll) {
        uv_poll_stop(c->poll);
        uv_close((uv_handle_t *)c->poll, on_poll_closed);
        c->poll = NULL;
        c->poll_events = 0;
    }
    if (c->fd >= 0)
        shutdown(c->fd, SHUT_RDWR); /* so that libssh2's frees below cannot wait on the peer */
    if (c->session) {
        for (size_t i = 0; i < c->n_forwards; i++)
            c->forwards[i].listener = NULL; /* freed with the session */
        while (c->zombies) {
            zombie *z = c->zombies;
            c->zombies = z->next;
            free(z); /* handles freed with the session */
        }
        libssh2_session_set_blocking(c->session, 0);
        if (libssh2_session_free(c->session) == LIBSSH2_ERROR_EAGAIN)
            log_pod_debug(c->id, "SSH session freed with work pending");
        c->session = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}

static void on_timer(uv_timer_t *t);

static void connection_lost(caa_sc_client *c, int status, const char *why)
{
    bool was_ready = c->state == ST_READY;
    teardown_connection(c, status, why);
    if (c->state == ST_CLOSED)
        return;
    c->state = ST_IDLE;
    if (was_ready)
        c->backoff_ms = BACKOFF_MIN_MS;
    log_pod_warn(c->id, "SSH connection to %s:%u %s: %s; retrying in %llu ms", c->host, (unsigned)c->port,
                 was_ready ? "lost" : "failed", why, (unsigned long long)c->backoff_ms);
    uv_timer_start(&c->timer, on_timer, c->backoff_ms, 0);
    c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    caa_sc_client *c = p->data;
    if (status < 0) {
        /* libuv reports a socket error (POLLERR) as UV_EBADF; the socket knows the real one. */
        int soerr = 0;
        socklen_t l = sizeof(soerr);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &l) < 0 || soerr == 0)
            soerr = -status;
        connection_lost(c, -soerr, strerror(soerr));
        return;
    }
    if (events & UV_READABLE) {
        /* Acknowledge at once: sshd sets TCP_NODELAY only for interactive
         * sessions, so its next small segment waits for our ACK (Nagle),
         * and a delayed ACK costs up to 40 ms per call. Not sticky: set on
         * every wake-up. */
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
    }
    drive(c);
    /* libssh2 does not report a peer that closed without a disconnect
     * message (a killed sshd child: the end of an attestation-phase
     * connection): the socket stays readable at EOF. Nothing left to read
     * and readable means EOF. */
    char b;
    if ((events & UV_READABLE) && c->state == ST_READY && c->fd >= 0 &&
        recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
        connection_lost(c, -ECONNRESET, "the VM closed the connection");
}

static int start_connect(caa_sc_client *c)
{
    struct sockaddr_storage ss = {0};
    socklen_t len;
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, c->host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(c->port);
        len = sizeof(*in4);
    } else if (inet_pton(AF_INET6, c->host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(c->port);
        len = sizeof(*in6);
    } else {
        return -EINVAL;
    }
    c->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -errno;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS)
        return -errno; /* the fd is closed by connection_lost() */
    c->poll = xnew0(uv_poll_t, 1);
    int r = uv_poll_init_socket(c->loop, c->poll, c->fd);
    if (r < 0) {
        free(c->poll);
        c->poll = NULL;
        return r;
    }
    c->poll->data = c;
    c->poll_events = UV_WRITABLE;
    uv_poll_start(c->poll, UV_WRITABLE, on_poll);
    c->state = ST_CONNECTING;
    uv_timer_start(&c->timer, on_timer, c->handshake_timeout_ms, 0);
    return 0;
}

static void connect_now(caa_sc_client *c)
{
    int r = start_connect(c);
    if (r < 0)
        connection_lost(c, r, strerror(-r));
}

static void on_timer(uv_timer_t *t)
{
    caa_sc_client *c = t->data;
    switch (c->state) {
    case ST_IDLE:
        connect_now(c);
        break;
    case ST_CONNECTING:
    case ST_HANDSHAKE:
    case ST_AUTH:
    case ST_FORWARDS:
        connection_lost(c, -ETIMEDOUT, "no SSH session within the handshake timeout");
        break;
    case ST_READY: {
        int next = 0;
        int r = libssh2_keepalive_send(c->session, &next);
        if (r < 0 && r != LIBSSH2_ERROR_EAGAIN) {
            connection_lost(c, -ECONNRESET, "keepalive failed");
            return;
        }
        uv_timer_start(&c->timer, on_timer, c->keepalive_ms, 0);
        drive(c);
        break;
    }
    case ST_CLOSED:
        break;
    }
}

static int verify_host_key(caa_sc_client *c)
{
    size_t len = 0;
    int type = 0;
    const char *key = libssh2_session_hostkey(c->session, &len, &type);
    c->attestation = false;
    if (key && type == LIBSSH2_HOSTKEY_TYPE_ED25519 && len == sizeof(c->host_key) &&
        memcmp(key, c->host_key, len) == 0)
        return 0;
    _cleanup_free_ char *got = key ? caa_sc_blob_fingerprint((const uint8_t *)key, len) : xstrdup("none");
    if (key && c->attestation_allowed) {
        /* As upstream: the attestation phase's host key is not verified;
         * what that connection carries (the KBS tunnel) is. */
        c->attestation = true;
        log_pod_info(c->id, "SSH %s:%u: host key %s is not the pinned one yet: attestation phase", c->host,
                     (unsigned)c->port, got);
        return 0;
    }
    _cleanup_free_ char *want = caa_sc_blob_fingerprint(c->host_key, sizeof(c->host_key));
    log_pod_error(c->id, "SSH %s:%u: host key %s (type %d) is not the pinned %s; closing", c->host,
                  (unsigned)c->port, got, type, want);
    return -EACCES;
}

static LIBSSH2_SESSION *session_new(caa_sc_client *c)
{
    LIBSSH2_SESSION *s = libssh2_session_init_ex(NULL, NULL, NULL, c);
    if (!s)
        return NULL;
    libssh2_session_set_blocking(s, 0);
    /* Only the key type we pin; the server must show its ed25519 host key. */
    libssh2_session_method_pref(s, LIBSSH2_METHOD_HOSTKEY, "ssh-ed25519");
    libssh2_keepalive_config(s, 1, (unsigned)(c->keepalive_ms / 1000 ? c->keepalive_ms / 1000 : 1));
    return s;
}

/* Advances the connection; returns true when it moved. */
static bool connection_step(caa_sc_client *c)
{
    int r;
    switch (c->state) {
    case ST_CONNECTING: {
        int soerr = 0;
        socklen_t l = sizeof(soerr);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &l) < 0)
            soerr = errno;
        if (soerr == EINPROGRESS || soerr == EALREADY)
            return false;
        if (soerr) {
            connection_lost(c, -soerr, strerror(soerr));
            return false;
        }
        struct sockaddr_storage peer;
        socklen_t pl = sizeof(peer);
        if (getpeername(c->fd, (struct sockaddr *)&peer, &pl) < 0)
            return false; /* not connected yet */
        c->session = session_new(c);
        if (!c->session) {
            connection_lost(c, -ENOMEM, "libssh2 session");
            return false;
        }
        c->state = ST_HANDSHAKE;
        return true;
    }
    case ST_HANDSHAKE:
        r = libssh2_session_handshake(c->session, c->fd);
        if (r == LIBSSH2_ERROR_EAGAIN)
            return false;
        if (r < 0) {
            _cleanup_free_ char *why = xasprintf("SSH handshake: %s", ssh_error(c));
            connection_lost(c, -EPROTO, why);
            return false;
        }
        if (verify_host_key(c) < 0) {
            connection_lost(c, -EACCES, "host key mismatch");
            return false;
        }
        c->state = ST_AUTH;
        return true;
    case ST_AUTH:
        r = libssh2_userauth_publickey_frommemory(c->session, c->user, strlen(c->user), NULL, 0, c->key_pem,
                                                  strlen(c->key_pem), NULL);
        if (r == LIBSSH2_ERROR_EAGAIN)
            return false;
        if (r < 0) {
            log_pod_error(c->id, "SSH %s:%u: the VM refused the worker's key: %s", c->host, (unsigned)c->port,
                          ssh_error(c));
            connection_lost(c, -EACCES, "public key authentication refused");
            return false;
        }
        c->state = ST_FORWARDS;
        c->next_forward = 0;
        return true;
    case ST_FORWARDS:
        if (forwards_request(c) == LIBSSH2_ERROR_EAGAIN)
            return false;
        c->state = ST_READY;
        c->backoff_ms = BACKOFF_MIN_MS;
        c->connections++;
        if (c->attestation)
            log_pod_info(c->id, "SSH connection to %s:%u up in the attestation phase (KBS tunnel only)",
                         c->host, (unsigned)c->port);
        else
            log_pod_info(c->id, "SSH connection to %s:%u up (host key pinned, %zu tunnel(s) from the VM)",
                         c->host, (unsigned)c->port, c->n_forwards);
        uv_timer_start(&c->timer, on_timer, c->keepalive_ms, 0);
        return true;
    default:
        return false;
    }
}

static void update_poll(caa_sc_client *c)
{
    if (!c->poll || c->state == ST_CONNECTING)
        return;
    int want = UV_READABLE;
    if (c->session && (libssh2_session_block_directions(c->session) & LIBSSH2_SESSION_BLOCK_OUTBOUND))
        want |= UV_WRITABLE;
    if (want != c->poll_events) {
        c->poll_events = want;
        uv_poll_start(c->poll, want, on_poll);
    }
}

static bool session_broken(caa_sc_client *c)
{
    int e = c->session ? libssh2_session_last_errno(c->session) : 0;
    return e == LIBSSH2_ERROR_SOCKET_DISCONNECT || e == LIBSSH2_ERROR_SOCKET_RECV ||
           e == LIBSSH2_ERROR_SOCKET_SEND || e == LIBSSH2_ERROR_TIMEOUT;
}

static void drive(caa_sc_client *c)
{
    if (c->in_drive || c->freed)
        return;
    c->in_drive = true;
    bool progress = true;
    while (progress) {
        progress = false;
        for (sc_chan *ch = c->chans, *next; ch; ch = next) {
            next = ch->next;
            if (ch->closing) {
                /* Channels the owner closed are finished whatever the state. */
                chan_finish(c, ch);
                progress = true;
            } else if (ch->error && c->state != ST_READY) {
                /* A lost connection is reported now, not after the reconnect. */
                if (ch->shutdown_cb) {
                    void (*cb)(ttrpc_transport *, int) = ch->shutdown_cb;
                    ch->shutdown_cb = NULL;
                    cb(&ch->base, ch->error);
                    progress = true;
                }
                if (ch->reading && !ch->eof_seen && !ch->closing) {
                    ch->eof_seen = true;
                    ch->base.on_read(&ch->base, ch->error, NULL);
                    progress = true;
                }
            }
        }
        if (c->state == ST_CLOSED) {
            opens_fail_all(c, -ECANCELED, "client closed");
            break;
        }
        if (c->state != ST_READY) {
            if (c->state >= ST_CONNECTING)
                progress |= connection_step(c);
            else
                opens_fail_all(c, -ENOTCONN, "not connected");
            continue;
        }
        for (sc_chan *ch = c->chans, *next; ch; ch = next) {
            next = ch->next;
            if (!ch->closing)
                progress |= chan_pump(c, ch);
        }
        progress |= zombies_pump(c);
        if (c->attestation)
            opens_fail_all(c, -ENOTCONN, "the VM is in its attestation phase");
        else
            progress |= opens_pump(c);
        progress |= forwards_accept(c);
        if (session_broken(c)) {
            _cleanup_free_ char *why = xstrdup(ssh_error(c));
            connection_lost(c, -ECONNRESET, why);
            progress = true;
        }
    }
    update_poll(c);
    c->in_drive = false;
    if (c->state == ST_CLOSED && !c->chans && !c->freed) {
        c->freed = true;
        uv_close((uv_handle_t *)&c->timer, on_handle_closed);
        uv_close((uv_handle_t *)&c->kick, on_handle_closed);
    }
}

static void on_kick(uv_timer_t *t)
{
    drive(t->data);
}

static void schedule(caa_sc_client *c)
{
    if (!c->freed && !uv_is_active((uv_handle_t *)&c->kick))
        uv_timer_start(&c->kick, on_kick, 0, 0);
}

int caa_sc_client_new(uv_loop_t *loop, const caa_sc_client_config *cfg, caa_sc_client **ret, caa_error **err)
{
    if (!libssh2_ready) {
        if (libssh2_init(0) != 0)
            return caa_error_set(err, -EIO, "libssh2_init failed");
        libssh2_ready = 1;
    }
    struct in6_addr probe;
    if (inet_pton(AF_INET, cfg->host, &probe) != 1 && inet_pton(AF_INET6, cfg->host, &probe) != 1)
        return caa_error_set(err, -EINVAL, "SSH: '%s' is not a numeric IP address", cfg->host);
    caa_sc_client *c = xnew0(caa_sc_client, 1);
    c->loop = loop;
    c->id = xstrdup(cfg->id ? cfg->id : "");
    c->host = xstrdup(cfg->host);
    c->port = cfg->port;
    c->user = xstrdup(cfg->user);
    c->key_pem = xstrdup(cfg->client_private_pem);
    memcpy(c->host_key, cfg->host_key_blob, sizeof(c->host_key));
    c->attestation_allowed = cfg->attestation_phase;
    c->handshake_timeout_ms = cfg->handshake_timeout_ms ? cfg->handshake_timeout_ms : 20000;
    c->keepalive_ms = cfg->keepalive_ms ? cfg->keepalive_ms : 10000;
    c->forwards = xnew0(forward, cfg->n_forwards + 1);
    c->n_forwards = cfg->n_forwards;
    for (size_t i = 0; i < cfg->n_forwards; i++) {
        c->forwards[i].spec = cfg->forwards[i];
        c->forwards[i].spec.name = xstrdup(cfg->forwards[i].name);
        c->forwards[i].spec.target_host = xstrdup(cfg->forwards[i].target_host);
        c->forwards[i].spec.kbs_sid = cfg->forwards[i].kbs_sid ? xstrdup(cfg->forwards[i].kbs_sid) : NULL;
    }
    c->fd = -1;
    c->backoff_ms = BACKOFF_MIN_MS;
    uv_timer_init(loop, &c->timer);
    uv_timer_init(loop, &c->kick);
    c->timer.data = c->kick.data = c;
    c->open_handles = 2;
    c->state = ST_IDLE;
    uv_timer_start(&c->timer, on_timer, 0, 0); /* connect from the loop, not from here */
    *ret = c;
    return 0;
}

void caa_sc_client_free(caa_sc_client *c)
{
    if (!c || c->state == ST_CLOSED)
        return;
    if (c->session && c->state == ST_READY)
        libssh2_session_disconnect(c->session, "pod stopped"); /* best effort, never waits */
    c->state = ST_CLOSED;
    teardown_connection(c, -ECONNABORTED, "client closed");
    uv_timer_stop(&c->timer);
    /* Channels still owned by someone read the error and are finished when
     * their owners close them; drive() then closes the handles. */
    schedule(c);
}

int caa_sc_client_is_ready(const caa_sc_client *c)
{
    return c->state == ST_READY && !c->attestation;
}

unsigned caa_sc_client_connections(const caa_sc_client *c)
{
    return c->connections;
}
