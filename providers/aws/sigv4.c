/* AWS Signature Version 4 (see sigv4.h). */
#include "sigv4.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "cleanup.h"
#include "strv.h"
#include "xalloc.h"
#include "buf.h"

void aws_credentials_clear(aws_credentials *c)
{
    if (!c)
        return;
    /* Secrets do not linger in freed memory. */
    if (c->secret_access_key)
        OPENSSL_cleanse(c->secret_access_key, strlen(c->secret_access_key));
    if (c->session_token)
        OPENSSL_cleanse(c->session_token, strlen(c->session_token));
    free(c->access_key_id);
    free(c->secret_access_key);
    free(c->session_token);
    memset(c, 0, sizeof(*c));
}

void aws_credentials_copy(aws_credentials *dst, const aws_credentials *src)
{
    dst->access_key_id = src->access_key_id ? xstrdup(src->access_key_id) : NULL;
    dst->secret_access_key = src->secret_access_key ? xstrdup(src->secret_access_key) : NULL;
    dst->session_token = src->session_token ? xstrdup(src->session_token) : NULL;
    dst->expiration = src->expiration;
}

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

char *aws_uri_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = xmalloc(n * 3 + 1);
    char *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (unreserved(*p)) {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

static void to_hex(const unsigned char *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void aws_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (!EVP_Digest(data ? data : "", len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
        abort(); /* SHA-256 is always available in OpenSSL 3 */
    to_hex(md, 32, out);
}

static void hmac(const void *key, size_t keylen, const char *data, unsigned char out[32])
{
    unsigned int len = 0;
    if (!HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)data, strlen(data), out, &len) ||
        len != 32)
        abort();
}

/* The SDK's path normalisation: drop empty and "." segments, ".." pops. */
static char *canonical_path(const char *path)
{
    _cleanup_strv_ char **segs = NULL;
    size_t n = 0;
    const char *p = path;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 2 && strncmp(p, "..", 2) == 0) {
            if (n > 0) {
                free(segs[--n]);
                segs[n] = NULL;
            }
        } else if (len > 0 && !(len == 1 && *p == '.')) {
            char *seg = xstrndup(p, len);
            caa_strv_push(&segs, seg);
            free(seg);
            n++;
        }
        if (!e)
            break;
        p = e + 1;
    }
    caa_buf b = {0};
    if (path[0] == '/')
        caa_buf_puts(&b, "/");
    for (size_t i = 0; i < n; i++) {
        if (i)
            caa_buf_puts(&b, "/");
        caa_buf_puts(&b, segs[i]);
    }
    size_t plen = strlen(path);
    if (n > 0 && plen > 0 && path[plen - 1] == '/')
        caa_buf_puts(&b, "/");
    _cleanup_free_ char *joined = caa_buf_steal(&b, NULL);
    /* Escape once more, but keep the slashes. */
    _cleanup_free_ char *esc = aws_uri_escape(joined);
    caa_buf out = {0};
    for (const char *q = esc; *q; q++) {
        if (strncmp(q, "%2F", 3) == 0) {
            caa_buf_puts(&out, "/");
            q += 2;
        } else {
            caa_buf_append(&out, q, 1);
        }
    }
    return caa_buf_steal(&out, NULL);
}

typedef struct qitem {
    char *key; /* escaped */
    char *pair;
} qitem;

static int cmp_qitem(const void *pa, const void *pb)
{
    const qitem *a = pa, *b = pb;
    int c = strcmp(a->key, b->key);
    return c ? c : strcmp(a->pair, b->pair);
}

static char *canonical_query(const aws_kv *q, size_t n)
{
    qitem *items = xnew0(qitem, n ? n : 1);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (!q[i].key || !q[i].value || strcasecmp(q[i].key, "x-amz-signature") == 0)
            continue;
        items[m].key = aws_uri_escape(q[i].key);
        _cleanup_free_ char *v = aws_uri_escape(q[i].value);
        items[m].pair = xasprintf("%s=%s", items[m].key, v);
        m++;
    }
    qsort(items, m, sizeof(*items), cmp_qitem);
    caa_buf b = {0};
    caa_buf_puts(&b, "");
    for (size_t i = 0; i < m; i++) {
        if (i)
            caa_buf_puts(&b, "&");
        caa_buf_puts(&b, items[i].pair);
        free(items[i].key);
        free(items[i].pair);
    }
    free(items);
    return b.data;
}

typedef struct hitem {
    char *name; /* lower-case */
    char *value;
} hitem;

static int cmp_hitem(const void *pa, const void *pb)
{
    return strcmp(((const hitem *)pa)->name, ((const hitem *)pb)->name);
}

static bool unsignable(const char *lname)
{
    static const char *const never[] = {
        "authorization", "cache-control",     "connection", "expect",     "from",
        "keep-alive",    "max-forwards",      "pragma",     "referer",    "te",
        "trailer",       "transfer-encoding", "upgrade",    "user-agent", "x-amzn-trace-id",
    };
    for (size_t i = 0; i < CAA_ARRAY_SIZE(never); i++)
        if (strcmp(lname, never[i]) == 0)
            return true;
    return strncmp(lname, "proxy-", 6) == 0 || strncmp(lname, "sec-", 4) == 0;
}

/* CR/LF -> space, runs of spaces and tabs -> one space, one space off each end. */
static char *canonical_value(const char *v)
{
    size_t n = strlen(v);
    char *out = xmalloc(n + 1);
    size_t o = 0;
    bool in_space = false;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (c == '\r' || c == '\n' || c == '\t')
            c = ' ';
        if (c == ' ') {
            if (in_space)
                continue;
            in_space = true;
        } else {
            in_space = false;
        }
        out[o++] = c;
    }
    out[o] = '\0';
    if (o > 0 && out[o - 1] == ' ')
        out[--o] = '\0';
    if (out[0] == ' ')
        memmove(out, out + 1, o);
    return out;
}

static char *lower(const char *s)
{
    char *o = xstrdup(s);
    for (char *p = o; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return o;
}

static void hitems_free(hitem *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(h[i].name);
        free(h[i].value);
    }
    free(h);
}

int aws_sigv4_sign(const aws_sigv4_request *req, const aws_credentials *creds, aws_sigv4_result *ret,
                   caa_error **err)
{
    memset(ret, 0, sizeof(*ret));
    if (!req->method || !req->path || !req->region || !req->service || !*req->region || !*req->service)
        return caa_error_set(err, -EINVAL, "SigV4: request without method, path, region or service");
    if (!creds || !creds->access_key_id || !creds->secret_access_key || !*creds->access_key_id)
        return caa_error_set(err, -EACCES, "SigV4: no credentials");

    struct tm tm;
    if (!gmtime_r(&req->when, &tm) ||
        strftime(ret->amz_date, sizeof(ret->amz_date), "%Y%m%dT%H%M%SZ", &tm) != 16)
        return caa_error_set(err, -EINVAL, "SigV4: bad signing time");
    char short_date[9];
    memcpy(short_date, ret->amz_date, 8);
    short_date[8] = '\0';

    /* Headers: the caller's (minus the ones the signer generates), then ours. */
    size_t cap = req->n_headers + 3;
    hitem *h = xnew0(hitem, cap);
    size_t nh = 0;
    const char *given_sha = NULL;
    for (size_t i = 0; i < req->n_headers; i++) {
        if (!req->headers[i].key || !req->headers[i].value)
            continue;
        char *name = lower(req->headers[i].key);
        if (!strcmp(name, "authorization") || !strcmp(name, "x-amz-date") || !strcmp(name, "date") ||
            (creds->session_token && !strcmp(name, "x-amz-security-token"))) {
            free(name);
            continue;
        }
        for (size_t j = 0; j < nh; j++)
            if (strcmp(h[j].name, name) == 0) {
                free(name);
                hitems_free(h, nh);
                return caa_error_set(err, -EINVAL, "SigV4: header %s given twice", req->headers[i].key);
            }
        if (!strcmp(name, "x-amz-content-sha256"))
            given_sha = req->headers[i].value;
        h[nh].name = name;
        h[nh].value = xstrdup(req->headers[i].value);
        nh++;
    }
    if (given_sha) {
        snprintf(ret->payload_sha256, sizeof(ret->payload_sha256), "%s", given_sha);
    } else {
        aws_sha256_hex(req->payload, req->payload_len, ret->payload_sha256);
        if (req->add_content_sha256) {
            h[nh].name = xstrdup("x-amz-content-sha256");
            h[nh].value = xstrdup(ret->payload_sha256);
            nh++;
        }
    }
    h[nh].name = xstrdup("x-amz-date");
    h[nh].value = xstrdup(ret->amz_date);
    nh++;
    if (creds->session_token && *creds->session_token) {
        h[nh].name = xstrdup("x-amz-security-token");
        h[nh].value = xstrdup(creds->session_token);
        nh++;
    }
    qsort(h, nh, sizeof(*h), cmp_hitem);

    caa_buf canon_headers = {0}, signed_headers = {0};
    caa_buf_puts(&canon_headers, "");
    caa_buf_puts(&signed_headers, "");
    bool first = true;
    for (size_t i = 0; i < nh; i++) {
        if (unsignable(h[i].name))
            continue;
        _cleanup_free_ char *v = canonical_value(h[i].value);
        caa_buf_puts(&canon_headers, h[i].name);
        caa_buf_puts(&canon_headers, ":");
        caa_buf_puts(&canon_headers, v);
        caa_buf_puts(&canon_headers, "\n");
        if (!first)
            caa_buf_puts(&signed_headers, ";");
        caa_buf_puts(&signed_headers, h[i].name);
        first = false;
    }
    hitems_free(h, nh);

    _cleanup_free_ char *cpath = canonical_path(req->path);
    _cleanup_free_ char *cquery = canonical_query(req->query, req->n_query);
    ret->canonical_request = xasprintf("%s\n%s\n%s\n%s\n%s\n%s", req->method, cpath, cquery,
                                       canon_headers.data, signed_headers.data, ret->payload_sha256);
    free(canon_headers.data);
    ret->signed_headers = signed_headers.data;

    char creq_hash[65];
    aws_sha256_hex(ret->canonical_request, strlen(ret->canonical_request), creq_hash);
    _cleanup_free_ char *scope = xasprintf("%s/%s/%s/aws4_request", short_date, req->region, req->service);
    ret->string_to_sign = xasprintf("AWS4-HMAC-SHA256\n%s\n%s\n%s", ret->amz_date, scope, creq_hash);

    unsigned char k1[32], k2[32];
    _cleanup_free_ char *k0 = xasprintf("AWS4%s", creds->secret_access_key);
    hmac(k0, strlen(k0), short_date, k1);
    OPENSSL_cleanse(k0, strlen(k0));
    hmac(k1, 32, req->region, k2);
    hmac(k2, 32, req->service, k1);
    hmac(k1, 32, "aws4_request", k2);
    unsigned char sig[32];
    hmac(k2, 32, ret->string_to_sign, sig);
    OPENSSL_cleanse(k1, sizeof(k1));
    OPENSSL_cleanse(k2, sizeof(k2));
    to_hex(sig, 32, ret->signature);

    ret->authorization = xasprintf("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
                                   creds->access_key_id, scope, ret->signed_headers, ret->signature);
    return 0;
}

void aws_sigv4_result_done(aws_sigv4_result *r)
{
    if (!r)
        return;
    free(r->signed_headers);
    free(r->authorization);
    free(r->canonical_request);
    free(r->string_to_sign);
    memset(r, 0, sizeof(*r));
}
