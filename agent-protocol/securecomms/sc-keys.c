/* Ed25519 key generation and the OpenSSH key formats (PROTOCOL.key in
 * OpenSSH's sources describes the private format). */
#include "sc-keys.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "cleanup.h"
#include "xalloc.h"

#define KEY_TYPE "ssh-ed25519"
#define PEM_BEGIN "-----BEGIN OPENSSH PRIVATE KEY-----\n"
#define PEM_END "-----END OPENSSH PRIVATE KEY-----\n"
#define AUTH_MAGIC "openssh-key-v1"

/* A growing byte buffer in SSH wire encoding; wiped when freed. */
typedef struct wbuf {
    uint8_t *p;
    size_t len, cap;
} wbuf;

static void wbuf_put(wbuf *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = (b->len + n) * 2;
        uint8_t *p = xmalloc(cap);
        if (b->len)
            memcpy(p, b->p, b->len);
        if (b->p) {
            OPENSSL_cleanse(b->p, b->cap);
            free(b->p);
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void wbuf_u32(wbuf *b, uint32_t v)
{
    uint8_t be[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    wbuf_put(b, be, 4);
}

static void wbuf_string(wbuf *b, const void *data, size_t n)
{
    wbuf_u32(b, (uint32_t)n);
    wbuf_put(b, data, n);
}

static void wbuf_free(wbuf *b)
{
    if (b->p) {
        OPENSSL_cleanse(b->p, b->cap);
        free(b->p);
    }
    memset(b, 0, sizeof(*b));
}

/* A cursor over untrusted bytes. */
typedef struct rbuf {
    const uint8_t *p;
    size_t left;
    bool bad;
} rbuf;

static uint32_t rbuf_u32(rbuf *r)
{
    if (r->bad || r->left < 4) {
        r->bad = true;
        return 0;
    }
    uint32_t v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 | r->p[3];
    r->p += 4;
    r->left -= 4;
    return v;
}

static const uint8_t *rbuf_string(rbuf *r, size_t *ret_len)
{
    uint32_t n = rbuf_u32(r);
    if (r->bad || n > r->left) {
        r->bad = true;
        *ret_len = 0;
        return NULL;
    }
    const uint8_t *s = r->p;
    r->p += n;
    r->left -= n;
    *ret_len = n;
    return s;
}

static bool rbuf_string_is(rbuf *r, const char *want)
{
    size_t n;
    const uint8_t *s = rbuf_string(r, &n);
    return s && n == strlen(want) && memcmp(s, want, n) == 0;
}

static char *b64_encode(const uint8_t *data, size_t len)
{
    char *out = xmalloc(4 * ((len + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

/* Strict base64 without whitespace; NULL when invalid. */
static uint8_t *b64_decode(const char *text, size_t len, size_t *ret_len)
{
    if (len == 0 || len % 4 != 0 || len > CAA_SC_KEY_MAX_TEXT)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
                  c == '/' || (c == '=' && i >= len - 2 && (i == len - 1 || text[len - 1] == '='));
        if (!ok)
            return NULL;
    }
    uint8_t *out = xmalloc(len / 4 * 3 + 1);
    int n = EVP_DecodeBlock(out, (const unsigned char *)text, (int)len);
    if (n < 0) {
        free(out);
        return NULL;
    }
    size_t pad = (text[len - 1] == '=') + (text[len - 2] == '=');
    *ret_len = (size_t)n - pad;
    return out;
}

static void public_blob(const uint8_t pub[32], wbuf *b)
{
    wbuf_string(b, KEY_TYPE, strlen(KEY_TYPE));
    wbuf_string(b, pub, 32);
}

static char *public_line(const uint8_t pub[32], const char *comment)
{
    wbuf b = {0};
    public_blob(pub, &b);
    _cleanup_free_ char *enc = b64_encode(b.p, b.len);
    wbuf_free(&b);
    return *comment ? xasprintf("%s %s %s\n", KEY_TYPE, enc, comment) : xasprintf("%s %s\n", KEY_TYPE, enc);
}

static char *private_pem(const uint8_t seed[32], const uint8_t pub[32], const char *comment)
{
    wbuf priv = {0};
    uint32_t check;
    if (RAND_bytes((unsigned char *)&check, sizeof(check)) != 1)
        caa_oom(); /* the RNG cannot fail on a running system */
    wbuf_u32(&priv, check);
    wbuf_u32(&priv, check);
    wbuf_string(&priv, KEY_TYPE, strlen(KEY_TYPE));
    wbuf_string(&priv, pub, 32);
    wbuf_u32(&priv, 64); /* "private key" = seed || public key */
    wbuf_put(&priv, seed, 32);
    wbuf_put(&priv, pub, 32);
    wbuf_string(&priv, comment, strlen(comment));
    for (uint8_t pad = 1; priv.len % 8 != 0; pad++)
        wbuf_put(&priv, &pad, 1);

    wbuf all = {0};
    wbuf_put(&all, AUTH_MAGIC, sizeof(AUTH_MAGIC)); /* with its NUL */
    wbuf_string(&all, "none", 4);
    wbuf_string(&all, "none", 4);
    wbuf_string(&all, "", 0);
    wbuf_u32(&all, 1);
    wbuf pubblob = {0};
    public_blob(pub, &pubblob);
    wbuf_string(&all, pubblob.p, pubblob.len);
    wbuf_free(&pubblob);
    wbuf_string(&all, priv.p, priv.len);
    wbuf_free(&priv);

    char *enc = b64_encode(all.p, all.len);
    wbuf_free(&all);
    /* 70 characters a line, as ssh-keygen writes it. */
    size_t enc_len = strlen(enc);
    wbuf out = {0};
    wbuf_put(&out, PEM_BEGIN, strlen(PEM_BEGIN));
    for (size_t off = 0; off < enc_len; off += 70) {
        size_t n = enc_len - off < 70 ? enc_len - off : 70;
        wbuf_put(&out, enc + off, n);
        wbuf_put(&out, "\n", 1);
    }
    wbuf_put(&out, PEM_END, strlen(PEM_END) + 1);
    OPENSSL_cleanse(enc, enc_len);
    free(enc);
    char *pem = xstrdup((char *)out.p);
    wbuf_free(&out);
    return pem;
}

static int check_comment(const char *comment, caa_error **err)
{
    for (const char *c = comment; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              strchr("-_.@", *c)))
            return caa_error_set(err, -EINVAL, "SSH key comment: invalid character");
    if (strlen(comment) > 128)
        return caa_error_set(err, -EINVAL, "SSH key comment: longer than 128 characters");
    return 0;
}

int caa_sc_key_generate(const char *comment, caa_sc_key *ret, caa_error **err)
{
    int r = check_comment(comment, err);
    if (r < 0)
        return r;
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
    if (!ctx || EVP_PKEY_keygen_init(ctx) <= 0 || EVP_PKEY_keygen(ctx, &pkey) <= 0) {
        EVP_PKEY_CTX_free(ctx);
        return caa_error_set(err, -EIO, "generating an ed25519 key failed (OpenSSL)");
    }
    EVP_PKEY_CTX_free(ctx);
    uint8_t seed[32], pub[32];
    size_t seed_len = sizeof(seed), pub_len = sizeof(pub);
    if (EVP_PKEY_get_raw_private_key(pkey, seed, &seed_len) != 1 ||
        EVP_PKEY_get_raw_public_key(pkey, pub, &pub_len) != 1 || seed_len != 32 || pub_len != 32) {
        EVP_PKEY_free(pkey);
        OPENSSL_cleanse(seed, sizeof(seed));
        return caa_error_set(err, -EIO, "reading the ed25519 key failed (OpenSSL)");
    }
    EVP_PKEY_free(pkey);
    ret->private_pem = private_pem(seed, pub, comment);
    ret->public_line = public_line(pub, comment);
    OPENSSL_cleanse(seed, sizeof(seed));
    return 0;
}

void caa_sc_key_done(caa_sc_key *k)
{
    if (!k)
        return;
    if (k->private_pem) {
        OPENSSL_cleanse(k->private_pem, strlen(k->private_pem));
        free(k->private_pem);
    }
    free(k->public_line);
    memset(k, 0, sizeof(*k));
}

/* Joins the base64 lines between the PEM markers; NULL when the frame is wrong. */
static char *pem_body(const char *pem, size_t len)
{
    if (len > CAA_SC_KEY_MAX_TEXT || memchr(pem, '\0', len))
        return NULL;
    size_t begin = strlen(PEM_BEGIN);
    if (len < begin || memcmp(pem, PEM_BEGIN, begin) != 0)
        return NULL;
    const char *end = memmem(pem + begin, len - begin, PEM_END, strlen(PEM_END) - 1);
    if (!end)
        return NULL;
    char *body = xmalloc((size_t)(end - pem) + 1);
    size_t n = 0;
    for (const char *p = pem + begin; p < end; p++) {
        if (*p == '\n' || *p == '\r')
            continue;
        body[n++] = *p;
    }
    body[n] = '\0';
    return body;
}

static void free_secret(uint8_t *p, size_t n)
{
    if (p) {
        OPENSSL_cleanse(p, n);
        free(p);
    }
}

int caa_sc_key_from_private(const char *pem, size_t len, caa_sc_key *ret, caa_error **err)
{
    memset(ret, 0, sizeof(*ret));
    char *body = pem_body(pem, len);
    if (!body)
        return caa_error_set(err, -EINVAL, "SSH private key: not an OPENSSH PRIVATE KEY block");
    size_t raw_len = 0;
    uint8_t *raw = b64_decode(body, strlen(body), &raw_len);
    OPENSSL_cleanse(body, strlen(body));
    free(body);
    if (!raw)
        return caa_error_set(err, -EINVAL, "SSH private key: invalid base64");

    int r = -EINVAL;
    const char *why = "malformed";
    rbuf rb = {raw, raw_len, false};
    if (raw_len < sizeof(AUTH_MAGIC) || memcmp(raw, AUTH_MAGIC, sizeof(AUTH_MAGIC)) != 0)
        goto out;
    rb.p += sizeof(AUTH_MAGIC);
    rb.left -= sizeof(AUTH_MAGIC);
    size_t n;
    if (!rbuf_string_is(&rb, "none") || !rbuf_string_is(&rb, "none")) {
        why = "encrypted keys are not supported";
        goto out;
    }
    rbuf_string(&rb, &n); /* kdf options */
    if (rbuf_u32(&rb) != 1) {
        why = "exactly one key expected";
        goto out;
    }
    size_t pubblob_len, priv_len;
    const uint8_t *pubblob = rbuf_string(&rb, &pubblob_len);
    const uint8_t *priv = rbuf_string(&rb, &priv_len);
    if (rb.bad || rb.left != 0 || priv_len % 8 != 0)
        goto out;
    rbuf pr = {priv, priv_len, false};
    uint32_t c1 = rbuf_u32(&pr), c2 = rbuf_u32(&pr);
    if (!rbuf_string_is(&pr, KEY_TYPE)) {
        why = pr.bad ? "malformed" : "not an ed25519 key";
        goto out;
    }
    size_t pub_len, sk_len, comment_len;
    const uint8_t *pub = rbuf_string(&pr, &pub_len);
    const uint8_t *sk = rbuf_string(&pr, &sk_len);
    const uint8_t *comment = rbuf_string(&pr, &comment_len);
    if (pr.bad || c1 != c2 || pub_len != 32 || sk_len != 64 || memcmp(sk + 32, pub, 32) != 0)
        goto out;
    /* Padding 1, 2, 3, ... up to the block size. */
    for (size_t i = 0; i < pr.left; i++)
        if (pr.p[i] != (uint8_t)(i + 1) || pr.left >= 8)
            goto out;
    wbuf expect = {0};
    public_blob(pub, &expect);
    bool same = expect.len == pubblob_len && memcmp(expect.p, pubblob, pubblob_len) == 0;
    wbuf_free(&expect);
    if (!same) {
        why = "public and private sections disagree";
        goto out;
    }
    /* The public key must be the one the seed gives. */
    EVP_PKEY *pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, sk, 32);
    uint8_t derived[32];
    size_t derived_len = sizeof(derived);
    bool match = pkey && EVP_PKEY_get_raw_public_key(pkey, derived, &derived_len) == 1 && derived_len == 32 &&
                 memcmp(derived, pub, 32) == 0;
    EVP_PKEY_free(pkey);
    if (!match) {
        why = "the public key does not belong to the private key";
        goto out;
    }
    char *comment_text = xstrndup((const char *)comment, comment_len);
    if (strlen(comment_text) != comment_len || check_comment(comment_text, NULL) < 0) {
        free(comment_text);
        comment_text = xstrdup("");
    }
    ret->private_pem = xstrndup(pem, len);
    ret->public_line = public_line(pub, comment_text);
    free(comment_text);
    r = 0;
out:
    free_secret(raw, raw_len);
    if (r < 0)
        return caa_error_set(err, r, "SSH private key: %s", why);
    return 0;
}

int caa_sc_public_line_blob(const char *line, size_t len, uint8_t blob[CAA_SC_ED25519_BLOB_LEN],
                            caa_error **err)
{
    if (len > CAA_SC_KEY_MAX_TEXT || memchr(line, '\0', len))
        return caa_error_set(err, -EINVAL, "SSH public key: too long or not text");
    size_t tl = strlen(KEY_TYPE);
    if (len < tl + 1 || memcmp(line, KEY_TYPE, tl) != 0 || line[tl] != ' ')
        return caa_error_set(err, -EINVAL, "SSH public key: not an ssh-ed25519 key");
    const char *b = line + tl + 1;
    const char *e = b;
    while (e < line + len && *e != ' ' && *e != '\n' && *e != '\r')
        e++;
    size_t raw_len = 0;
    _cleanup_free_ uint8_t *raw = b64_decode(b, (size_t)(e - b), &raw_len);
    if (!raw)
        return caa_error_set(err, -EINVAL, "SSH public key: invalid base64");
    rbuf rb = {raw, raw_len, false};
    size_t pub_len;
    bool type_ok = rbuf_string_is(&rb, KEY_TYPE);
    rbuf_string(&rb, &pub_len);
    if (!type_ok || rb.bad || rb.left != 0 || pub_len != 32 || raw_len != CAA_SC_ED25519_BLOB_LEN)
        return caa_error_set(err, -EINVAL, "SSH public key: malformed ssh-ed25519 blob");
    memcpy(blob, raw, CAA_SC_ED25519_BLOB_LEN);
    return 0;
}

char *caa_sc_blob_fingerprint(const uint8_t *blob, size_t len)
{
    uint8_t md[32];
    unsigned md_len = 0;
    EVP_Digest(blob, len, md, &md_len, EVP_sha256(), NULL);
    _cleanup_free_ char *enc = b64_encode(md, md_len);
    size_t n = strlen(enc);
    while (n && enc[n - 1] == '=')
        enc[--n] = '\0';
    return xasprintf("SHA256:%s", enc);
}
