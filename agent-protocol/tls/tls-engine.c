/* TLS engine over memory BIOs. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tls-engine.h"
#include "tls-error.h"
#include "tls-openssl.h"
#include "xalloc.h"

#define MAX_CODES 16
/* SSL alert reasons are SSL_AD_REASON_OFFSET + the alert number. */
#define ALERT_REASON(n) (SSL_AD_REASON_OFFSET + (n))

/* Bytes [off, off + len) of data are unread. */
typedef struct byte_buf {
    uint8_t *data;
    size_t off, len, cap;
} byte_buf;

struct caa_tls_engine {
    SSL *ssl;
    BIO *rbio, *wbio;      /* owned by ssl; see "ciphertext BIOs" */
    byte_buf in;           /* ciphertext fed, not yet read by OpenSSL */
    const uint8_t *window; /* borrowed input after in (feed_borrowed) */
    size_t window_len;
    bool in_eof;
    byte_buf out; /* ciphertext produced, not yet taken */
    caa_tls_role role;
    bool handshake_done;
    bool peer_closed;
    bool shutdown_sent;
    bool got_input;
    bool cert_requested;      /* client: the server asked for our certificate */
    unsigned char first_byte; /* first byte the peer sent: TLS records start with 20..23 */
    caa_error *failure;
    uint8_t *pending; /* plaintext waiting for the handshake */
    size_t pending_len, pending_cap;
};

static const char *peer_name(const caa_tls_engine *e)
{
    return e->role == CAA_TLS_ROLE_CLIENT ? "server" : "client";
}

static bool is_alert(unsigned long code, int alert)
{
    return ERR_GET_LIB(code) == ERR_LIB_SSL && ERR_GET_REASON(code) == ALERT_REASON(alert);
}

static bool has_reason(const unsigned long *codes, unsigned n, int reason)
{
    for (unsigned i = 0; i < n; i++)
        if (ERR_GET_LIB(codes[i]) == ERR_LIB_SSL && ERR_GET_REASON(codes[i]) == reason)
            return true;
    return false;
}

/* The peer refused our certificate (or the lack of one). */
static bool has_certificate_alert(const unsigned long *codes, unsigned n)
{
    static const int alerts[] = {
        SSL_AD_BAD_CERTIFICATE,     SSL_AD_UNSUPPORTED_CERTIFICATE, SSL_AD_CERTIFICATE_REVOKED,
        SSL_AD_CERTIFICATE_EXPIRED, SSL_AD_CERTIFICATE_UNKNOWN,     SSL_AD_UNKNOWN_CA,
        SSL_AD_ACCESS_DENIED,       SSL_AD_CERTIFICATE_REQUIRED,
    };
    for (unsigned i = 0; i < n; i++)
        for (size_t j = 0; j < CAA_ARRAY_SIZE(alerts); j++)
            if (is_alert(codes[i], alerts[j]))
                return true;
    return false;
}

static bool looks_like_tls(const caa_tls_engine *e)
{
    /* change_cipher_spec, alert, handshake, application_data */
    return !e->got_input || (e->first_byte >= 20 && e->first_byte <= 23);
}

/* Turns the current failure (SSL_get_error value ssl_err plus the error
 * queue) into a stored error with a class code and a readable summary. */
static int engine_fail(caa_tls_engine *e, int ssl_err, caa_error **err)
{
    unsigned long codes[MAX_CODES];
    unsigned n = 0;
    _cleanup_free_ char *queue = caa_tls_error_queue_drain(codes, MAX_CODES, &n);
    _cleanup_free_ char *summary = NULL;
    const char *phase = e->handshake_done ? "TLS connection failed" : "TLS handshake failed";
    int code;

    if (!looks_like_tls(e)) {
        code = -EPROTO;
        summary = xasprintf("the %s is not speaking TLS (first byte 0x%02x; a plain TCP or ttRPC peer?)",
                            peer_name(e), e->first_byte);
    } else if (has_reason(codes, n, SSL_R_CERTIFICATE_VERIFY_FAILED)) {
        long v = SSL_get_verify_result(e->ssl);
        code = -EACCES;
        summary = xasprintf(
            "%s certificate rejected: %s%s", peer_name(e),
            v != X509_V_OK ? X509_verify_cert_error_string(v) : "verification failed",
            v == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ? " (not one of the trusted certificates)" : "");
    } else if (e->role == CAA_TLS_ROLE_CLIENT && e->cert_requested && !SSL_get_certificate(e->ssl) &&
               (has_certificate_alert(codes, n) ||
                has_reason(codes, n, ALERT_REASON(SSL_AD_HANDSHAKE_FAILURE)))) {
        /* TLS 1.2 servers answer a missing certificate with a bare handshake_failure. */
        code = -EACCES;
        summary = xasprintf("the server requires a client certificate and none is configured");
    } else if (has_reason(codes, n, SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)) {
        code = -EACCES;
        summary = xasprintf("the client presented no certificate");
    } else if (has_certificate_alert(codes, n)) {
        code = -EACCES;
        summary = xasprintf("the %s refused our certificate", peer_name(e));
    } else if (has_reason(codes, n, SSL_R_UNEXPECTED_EOF_WHILE_READING) || ssl_err == SSL_ERROR_SYSCALL) {
        code = -ECONNRESET;
        summary = e->handshake_done
                      ? xasprintf("the connection closed without a TLS close_notify")
                      : xasprintf("the %s closed the connection during the handshake", peer_name(e));
    } else if (has_reason(codes, n, SSL_R_UNSUPPORTED_PROTOCOL) ||
               has_reason(codes, n, ALERT_REASON(SSL_AD_PROTOCOL_VERSION)) ||
               has_reason(codes, n, SSL_R_NO_PROTOCOLS_AVAILABLE)) {
        code = -EPROTO;
        summary = xasprintf("no common TLS version with the %s", peer_name(e));
    } else if (has_reason(codes, n, SSL_R_NO_SHARED_CIPHER) ||
               has_reason(codes, n, ALERT_REASON(SSL_AD_HANDSHAKE_FAILURE)) ||
               has_reason(codes, n, SSL_R_NO_CIPHERS_AVAILABLE)) {
        code = -EPROTO;
        summary = xasprintf("no common TLS cipher suite with the %s", peer_name(e));
    } else {
        code = -EPROTO;
        summary = xasprintf("protocol error");
    }

    if (queue)
        e->failure = caa_error_new(code, "%s: %s [OpenSSL: %s]", phase, summary, queue);
    else
        e->failure = caa_error_new(code, "%s: %s", phase, summary);
    return caa_error_propagate(err, &(caa_error *){caa_error_copy(e->failure)});
}

/* Client side: runs when the server sends a CertificateRequest. */
static int note_cert_request(SSL *ssl, void *arg)
{
    (void)ssl;
    ((caa_tls_engine *)arg)->cert_requested = true;
    return 1;
}

static int stored_failure(caa_tls_engine *e, caa_error **err)
{
    caa_error *copy = caa_error_copy(e->failure);
    return caa_error_propagate(err, &copy);
}

/* ------------------------------------------------------------ ciphertext BIOs
 *
 * Two small BIOs over the engine's own buffers instead of memory BIOs: no
 * zeroing on every write, input read in place from the transport's buffer
 * (feed_borrowed), output handed out in place (output_peek), and buffers
 * freed as soon as they are empty, so an idle connection holds none. The
 * input BIO behaves like a memory BIO whose EOF return is -1 until
 * feed_eof: empty means "retry", then 0 (EOF). */

/* One spare buffer per thread. Ciphertext buffers are usually emptied in
 * the event that filled them (the transport sends the output and OpenSSL
 * reads the input at once), so handing the storage on spares a malloc, a
 * chain of reallocs and cold pages per message, while idle connections
 * still hold no buffer. */
#define SPARE_MAX (256 * 1024)
static _Thread_local uint8_t *spare_data;
static _Thread_local size_t spare_cap;

/* Room for extra more bytes after the unread ones. */
static void buf_reserve(byte_buf *b, size_t extra)
{
    size_t need = b->len + extra;
    if (b->off + need <= b->cap)
        return;
    if (!b->data && spare_data) {
        b->data = spare_data;
        b->cap = spare_cap;
        b->off = 0;
        spare_data = NULL;
        spare_cap = 0;
        if (need <= b->cap)
            return;
    }
    if (b->off > 0) {
        memmove(b->data, b->data + b->off, b->len);
        b->off = 0;
        if (need <= b->cap)
            return;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

static void buf_append(byte_buf *b, const void *data, size_t len)
{
    if (len == 0)
        return;
    buf_reserve(b, len);
    memcpy(b->data + b->off + b->len, data, len);
    b->len += len;
}

static void buf_release(byte_buf *b)
{
    if (b->data && b->cap <= SPARE_MAX && b->cap > spare_cap) {
        free(spare_data);
        spare_data = b->data;
        spare_cap = b->cap;
    } else {
        free(b->data);
    }
    *b = (byte_buf){0};
}

static void buf_consume(byte_buf *b, size_t n)
{
    b->off += n;
    b->len -= n;
    if (b->len == 0)
        buf_release(b);
}

static size_t input_available(const caa_tls_engine *e)
{
    return e->in.len + e->window_len;
}

static int in_bio_read(BIO *b, char *out, int outl)
{
    caa_tls_engine *e = BIO_get_data(b);
    size_t cap = outl > 0 ? (size_t)outl : 0, n = 0;

    BIO_clear_retry_flags(b);
    if (e->in.len > 0 && cap > 0) {
        n = e->in.len < cap ? e->in.len : cap;
        memcpy(out, e->in.data + e->in.off, n);
        buf_consume(&e->in, n);
    }
    if (e->window_len > 0 && n < cap) {
        size_t m = e->window_len < cap - n ? e->window_len : cap - n;
        memcpy(out + n, e->window, m);
        e->window += m;
        e->window_len -= m;
        n += m;
    }
    if (n > 0)
        return (int)n;
    if (e->in_eof)
        return 0;
    BIO_set_retry_read(b);
    return -1;
}

static long in_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    caa_tls_engine *e = BIO_get_data(b);
    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_PENDING:
        return (long)input_available(e);
    case BIO_CTRL_EOF:
        return input_available(e) == 0;
    case BIO_CTRL_FLUSH:
        return 1;
    default:
        return 0;
    }
}

static int out_bio_write(BIO *b, const char *data, int len)
{
    caa_tls_engine *e = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (len <= 0)
        return 0;
    buf_append(&e->out, data, (size_t)len);
    return len;
}

static long out_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    caa_tls_engine *e = BIO_get_data(b);
    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_PENDING:
    case BIO_CTRL_WPENDING:
        return (long)e->out.len;
    case BIO_CTRL_FLUSH:
        return 1;
    default:
        return 0;
    }
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static BIO_METHOD *in_method, *out_method;

static void make_methods(void)
{
    in_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "caa-tls-input");
    out_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "caa-tls-output");
    if (!in_method || !out_method || !BIO_meth_set_read(in_method, in_bio_read) ||
        !BIO_meth_set_ctrl(in_method, in_bio_ctrl) || !BIO_meth_set_create(in_method, bio_create) ||
        !BIO_meth_set_write(out_method, out_bio_write) || !BIO_meth_set_ctrl(out_method, out_bio_ctrl) ||
        !BIO_meth_set_create(out_method, bio_create))
        caa_oom();
}

static BIO *engine_bio(caa_tls_engine *e, bool input)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, make_methods);
    BIO *b = BIO_new(input ? in_method : out_method);
    if (!b)
        caa_oom();
    BIO_set_data(b, e);
    return b;
}

int caa_tls_engine_new(SSL_CTX *ctx, caa_tls_role role, const char *server_name, caa_tls_engine **ret,
                       caa_error **err)
{
    unsigned char ipbuf[sizeof(struct in6_addr)];
    SSL *ssl;
    BIO *rbio, *wbio;

    if (!ctx)
        return caa_error_set(err, -EINVAL, "TLS engine: no context");
    caa_tls_error_clear();
    ssl = SSL_new(ctx);
    if (!ssl)
        return caa_tls_error_set(err, -EIO, "creating a TLS connection");
    caa_tls_engine *e = xnew0(caa_tls_engine, 1);
    rbio = engine_bio(e, true);
    wbio = engine_bio(e, false);
    SSL_set_bio(ssl, rbio, wbio);
    /* No SSL_MODE_RELEASE_BUFFERS: measured, it saved no memory per idle
     * connection (OpenSSL 3.0) and costs two large mallocs per record. */
    SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

    if (role == CAA_TLS_ROLE_CLIENT) {
        bool verifies = (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) != 0;
        bool is_ip = server_name && (inet_pton(AF_INET, server_name, ipbuf) == 1 ||
                                     inet_pton(AF_INET6, server_name, ipbuf) == 1);
        if (verifies && (!server_name || !*server_name)) {
            SSL_free(ssl);
            free(e);
            return caa_error_set(err, -EINVAL, "TLS client: a server name to verify is required");
        }
        SSL_set_connect_state(ssl);
        if (server_name && *server_name && !is_ip && !SSL_set_tlsext_host_name(ssl, server_name)) {
            SSL_free(ssl);
            free(e);
            return caa_tls_error_set(err, -EINVAL, "setting the TLS server name '%s'", server_name);
        }
        if (verifies) {
            X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
            int ok;
            /* Like Go: only SANs count, never the subject CN. */
            X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT |
                                                       X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, server_name)
                       : X509_VERIFY_PARAM_set1_host(param, server_name, 0);
            if (!ok) {
                SSL_free(ssl);
                free(e);
                return caa_tls_error_set(err, -EINVAL, "setting the TLS server name '%s'", server_name);
            }
        }
    } else {
        SSL_set_accept_state(ssl);
    }

    if (role == CAA_TLS_ROLE_CLIENT)
        SSL_set_cert_cb(ssl, note_cert_request, e);
    e->ssl = ssl;
    e->rbio = rbio;
    e->wbio = wbio;
    e->role = role;
    *ret = e;
    return 0;
}

void caa_tls_engine_free(caa_tls_engine *e)
{
    if (!e)
        return;
    SSL_free(e->ssl);
    free(e->in.data);
    free(e->out.data);
    caa_error_free(e->failure);
    if (e->pending)
        explicit_bzero(e->pending, e->pending_cap);
    free(e->pending);
    free(e);
}

static int flush_pending(caa_tls_engine *e, caa_error **err)
{
    while (e->pending_len > 0) {
        int chunk = e->pending_len > INT_MAX ? INT_MAX : (int)e->pending_len;
        caa_tls_error_clear();
        int n = SSL_write(e->ssl, e->pending, chunk);
        if (n <= 0) {
            int se = SSL_get_error(e->ssl, n);
            if (se == SSL_ERROR_WANT_READ || se == SSL_ERROR_WANT_WRITE)
                return 0;
            return engine_fail(e, se, err);
        }
        memmove(e->pending, e->pending + n, e->pending_len - (size_t)n);
        e->pending_len -= (size_t)n;
    }
    return 0;
}

int caa_tls_engine_handshake(caa_tls_engine *e, caa_error **err)
{
    if (e->failure)
        return stored_failure(e, err);
    if (e->handshake_done)
        return 1;
    if (e->shutdown_sent)
        return caa_error_set(err, -EPIPE, "TLS handshake: the connection is shut down");
    caa_tls_error_clear();
    int r = SSL_do_handshake(e->ssl);
    if (r != 1) {
        int se = SSL_get_error(e->ssl, r);
        if (se == SSL_ERROR_WANT_READ || se == SSL_ERROR_WANT_WRITE)
            return 0;
        return engine_fail(e, se, err);
    }
    e->handshake_done = true;
    r = flush_pending(e, err);
    return r < 0 ? r : 1;
}

bool caa_tls_engine_handshake_done(const caa_tls_engine *e)
{
    return e->handshake_done;
}

int caa_tls_engine_feed(caa_tls_engine *e, const void *data, size_t len, caa_error **err)
{
    const unsigned char *p = data;

    if (e->failure)
        return stored_failure(e, err);
    if (len == 0)
        return 0;
    if (!e->got_input) {
        e->got_input = true;
        e->first_byte = p[0];
    }
    if (e->window_len > 0)
        caa_tls_engine_feed_done(e); /* keeps the order of the bytes */
    buf_append(&e->in, p, len);
    if (!e->handshake_done && !e->shutdown_sent) {
        int r = caa_tls_engine_handshake(e, err);
        if (r < 0)
            return r;
    }
    return 0;
}

int caa_tls_engine_feed_borrowed(caa_tls_engine *e, const void *data, size_t len, caa_error **err)
{
    if (e->failure || len == 0 || e->window_len > 0)
        return caa_tls_engine_feed(e, data, len, err);
    if (!e->got_input) {
        e->got_input = true;
        e->first_byte = ((const unsigned char *)data)[0];
    }
    e->window = data;
    e->window_len = len;
    if (!e->handshake_done && !e->shutdown_sent) {
        int r = caa_tls_engine_handshake(e, err);
        if (r < 0)
            return r;
    }
    return 0;
}

void caa_tls_engine_feed_done(caa_tls_engine *e)
{
    buf_append(&e->in, e->window, e->window_len);
    e->window = NULL;
    e->window_len = 0;
}

int caa_tls_engine_feed_eof(caa_tls_engine *e, caa_error **err)
{
    if (e->failure)
        return stored_failure(e, err);
    e->in_eof = true;
    if (!e->handshake_done && !e->shutdown_sent) {
        int r = caa_tls_engine_handshake(e, err);
        if (r < 0)
            return r;
    }
    return 0;
}

size_t caa_tls_engine_input_pending(const caa_tls_engine *e)
{
    return input_available(e) + (size_t)SSL_pending(e->ssl);
}

ssize_t caa_tls_engine_read(caa_tls_engine *e, void *buf, size_t cap, caa_error **err)
{
    if (e->failure)
        return stored_failure(e, err);
    if (!e->handshake_done) {
        int r = caa_tls_engine_handshake(e, err);
        if (r <= 0)
            return r;
    }
    if (e->peer_closed || cap == 0)
        return 0;
    caa_tls_error_clear();
    int n = SSL_read(e->ssl, buf, cap > INT_MAX ? INT_MAX : (int)cap);
    if (n > 0)
        return n;
    int se = SSL_get_error(e->ssl, n);
    switch (se) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return 0;
    case SSL_ERROR_ZERO_RETURN:
        e->peer_closed = true;
        return 0;
    default:
        return engine_fail(e, se, err);
    }
}

bool caa_tls_engine_peer_closed(const caa_tls_engine *e)
{
    return e->peer_closed;
}

static int queue_pending(caa_tls_engine *e, const void *data, size_t len, caa_error **err)
{
    if (e->pending_len + len < len)
        return caa_error_set(err, -EINVAL, "TLS write too large");
    if (e->pending_len + len > e->pending_cap) {
        size_t cap = e->pending_cap ? e->pending_cap : 4096;
        while (cap < e->pending_len + len)
            cap = cap > SIZE_MAX / 2 ? e->pending_len + len : cap * 2;
        e->pending = xrealloc(e->pending, cap);
        e->pending_cap = cap;
    }
    memcpy(e->pending + e->pending_len, data, len);
    e->pending_len += len;
    return 0;
}

/* Largest TLS record payload, and more than a TLS 1.3 record adds to it
 * (header, content type, tag). */
#define RECORD_MAX 16384
#define RECORD_OVERHEAD 64

/* Room for the records of len plaintext bytes: one buffer, no realloc chain. */
static void reserve_output(caa_tls_engine *e, size_t len)
{
    buf_reserve(&e->out, len + (len / RECORD_MAX + 2) * RECORD_OVERHEAD);
}

/* Encrypts straight from the caller's memory once nothing waits before it;
 * what OpenSSL does not take is queued. */
static int write_direct(caa_tls_engine *e, const uint8_t *p, size_t len, caa_error **err)
{
    while (len > 0 && e->pending_len == 0) {
        int chunk = len > INT_MAX ? INT_MAX : (int)len;
        caa_tls_error_clear();
        int n = SSL_write(e->ssl, p, chunk);
        if (n <= 0) {
            int se = SSL_get_error(e->ssl, n);
            if (se != SSL_ERROR_WANT_READ && se != SSL_ERROR_WANT_WRITE)
                return engine_fail(e, se, err);
            break;
        }
        p += n;
        len -= (size_t)n;
    }
    if (len == 0)
        return 0;
    int r = queue_pending(e, p, len, err);
    return r < 0 ? r : flush_pending(e, err);
}

int caa_tls_engine_write(caa_tls_engine *e, const void *data, size_t len, caa_error **err)
{
    if (e->failure)
        return stored_failure(e, err);
    if (e->shutdown_sent)
        return caa_error_set(err, -EPIPE, "TLS write after shutdown");
    if (len == 0)
        return 0;
    if (e->handshake_done) {
        reserve_output(e, len);
        return write_direct(e, data, len, err);
    }
    return queue_pending(e, data, len, err);
}

int caa_tls_engine_writev(caa_tls_engine *e, const struct iovec *iov, size_t n, caa_error **err)
{
    if (e->failure)
        return stored_failure(e, err);
    if (e->shutdown_sent)
        return caa_error_set(err, -EPIPE, "TLS write after shutdown");
    if (!e->handshake_done) {
        for (size_t i = 0; i < n; i++) {
            int r = queue_pending(e, iov[i].iov_base, iov[i].iov_len, err);
            if (r < 0)
                return r;
        }
        return 0;
    }
    /* Small pieces share records: gather them into one record's worth
     * before encrypting; whole records of a large piece go directly. */
    uint8_t rec[RECORD_MAX];
    size_t have = 0, total = 0;
    for (size_t i = 0; i < n; i++)
        total += iov[i].iov_len;
    reserve_output(e, total);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = iov[i].iov_base;
        size_t len = iov[i].iov_len;
        while (len > 0) {
            int r = 0;
            if (have > 0 || len < RECORD_MAX) {
                size_t take = len < RECORD_MAX - have ? len : RECORD_MAX - have;
                memcpy(rec + have, p, take);
                have += take;
                p += take;
                len -= take;
                if (have == RECORD_MAX) {
                    r = write_direct(e, rec, have, err);
                    have = 0;
                }
            } else {
                size_t whole = len - len % RECORD_MAX;
                r = write_direct(e, p, whole, err);
                p += whole;
                len -= whole;
            }
            if (r < 0)
                return r;
        }
    }
    return have > 0 ? write_direct(e, rec, have, err) : 0;
}

size_t caa_tls_engine_write_pending(const caa_tls_engine *e)
{
    return e->pending_len;
}

size_t caa_tls_engine_output_pending(const caa_tls_engine *e)
{
    return e->out.len;
}

size_t caa_tls_engine_take_output(caa_tls_engine *e, void *buf, size_t cap)
{
    size_t n = e->out.len < cap ? e->out.len : cap;
    if (n > 0) {
        memcpy(buf, e->out.data + e->out.off, n);
        buf_consume(&e->out, n);
    }
    return n;
}

const uint8_t *caa_tls_engine_output_peek(const caa_tls_engine *e, size_t *ret_len)
{
    *ret_len = e->out.len;
    return e->out.len ? e->out.data + e->out.off : NULL;
}

void caa_tls_engine_output_consume(caa_tls_engine *e, size_t n)
{
    buf_consume(&e->out, n < e->out.len ? n : e->out.len);
}

int caa_tls_engine_shutdown(caa_tls_engine *e, caa_error **err)
{
    if (e->failure || e->shutdown_sent)
        return 0;
    if (!e->handshake_done) {
        e->shutdown_sent = true;
        e->pending_len = 0;
        return 0;
    }
    int r = flush_pending(e, err);
    if (r < 0)
        return r;
    e->shutdown_sent = true;
    caa_tls_error_clear();
    r = SSL_shutdown(e->ssl);
    if (r < 0) {
        int se = SSL_get_error(e->ssl, r);
        if (se != SSL_ERROR_WANT_READ && se != SSL_ERROR_WANT_WRITE)
            return engine_fail(e, se, err);
    }
    return 0;
}

const char *caa_tls_engine_protocol(const caa_tls_engine *e)
{
    return SSL_get_version(e->ssl);
}

const char *caa_tls_engine_cipher(const caa_tls_engine *e)
{
    return SSL_get_cipher_name(e->ssl);
}

char *caa_tls_engine_peer_subject(const caa_tls_engine *e)
{
    _cleanup_x509_ X509 *peer = SSL_get1_peer_certificate(e->ssl);
    _cleanup_bio_ BIO *bio = NULL;
    char *data = NULL;
    long len;

    if (!peer)
        return NULL;
    bio = BIO_new(BIO_s_mem());
    if (!bio || X509_NAME_print_ex(bio, X509_get_subject_name(peer), 0, XN_FLAG_RFC2253) < 0)
        caa_oom();
    len = BIO_get_mem_data(bio, &data);
    return xstrndup(data ? data : "", len > 0 ? (size_t)len : 0);
}
