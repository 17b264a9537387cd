/* KBS admin API client (see kbs-admin.h). */
#define LOG_COMPONENT "adaptor/kbs"
#include "kbs-admin.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cleanup.h"
#include "codec.h"
#include "fs.h"
#include "http.h"
#include "log.h"
#include "xalloc.h"

#define ADMIN_KEY_MAX 4096
#define KBS_TIMEOUT_MS 30000

struct caa_kbs_admin {
    caa_http_client *http;
    char *base;    /* scheme://host:port */
    char *key_pem; /* secret */
    size_t key_len;
};

struct caa_kbs_call {
    caa_http_request *req;
    char *what; /* "POST default/x/y", for messages */
    caa_kbs_done_cb cb;
    void *opaque;
};

/* base64url without padding (RFC 7515 2). */
static char *b64url(const void *data, size_t len)
{
    char *s = caa_bootdata_base64_encode(data, len);
    size_t n = 0;
    for (char *p = s; *p && *p != '='; p++, n++)
        *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
    s[n] = '\0';
    return s;
}

static EVP_PKEY *load_key(const char *pem, size_t len, caa_error **err)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *k = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"") : NULL;
    BIO_free(bio);
    if (!k) {
        caa_error_set(err, -EINVAL, "the KBS admin key is not a PEM private key");
        return NULL;
    }
    if (EVP_PKEY_id(k) != EVP_PKEY_ED25519) {
        EVP_PKEY_free(k);
        caa_error_set(err, -EINVAL, "the KBS admin key is not an Ed25519 key");
        return NULL;
    }
    return k;
}

char *caa_kbs_admin_jwt(const char *key_pem, size_t key_len, int64_t now, caa_error **err)
{
    EVP_PKEY *key = load_key(key_pem, key_len, err);
    if (!key)
        return NULL;
    json_t *header = json_pack("{s:s, s:s}", "alg", "EdDSA", "typ", "JWT");
    int64_t exp = now + CAA_KBS_JWT_LIFETIME_S;
    json_t *claims =
        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:s, s:s, s:s, s:s}", "iat", (json_int_t)now, "nbf",
                  (json_int_t)now, "exp", (json_int_t)exp, "issued_at", (json_int_t)now, "invalid_before",
                  (json_int_t)now, "expires_at", (json_int_t)exp, "audiences", "", "issuer", "", "jwt_id", "",
                  "subject", "", "nonce", "");
    _cleanup_free_ char *h = json_dumps(header, JSON_COMPACT | JSON_SORT_KEYS);
    _cleanup_free_ char *c = json_dumps(claims, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(header);
    json_decref(claims);
    _cleanup_free_ char *h64 = b64url(h, strlen(h));
    _cleanup_free_ char *c64 = b64url(c, strlen(c));
    _cleanup_free_ char *input = xasprintf("%s.%s", h64, c64);
    uint8_t sig[64];
    size_t sig_len = sizeof(sig);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestSignInit(md, NULL, NULL, NULL, key) == 1 &&
             EVP_DigestSign(md, sig, &sig_len, (const uint8_t *)input, strlen(input)) == 1;
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    if (!ok) {
        caa_error_set(err, -EIO, "signing the KBS admin token failed");
        return NULL;
    }
    _cleanup_free_ char *s64 = b64url(sig, sig_len);
    return xasprintf("%s.%s", input, s64);
}

static int admin_init(caa_kbs_admin *k, uv_loop_t *loop, const char *kbs_addr, const char *admin_key_path,
                      caa_error **err)
{
    int r = caa_read_file(admin_key_path, ADMIN_KEY_MAX, 0, &k->key_pem, &k->key_len, err);
    if (r < 0)
        return caa_error_prefix(err, "KBS admin key");
    /* Checked now, so that a bad key stops the daemon at start. */
    _cleanup_free_ char *probe = caa_kbs_admin_jwt(k->key_pem, k->key_len, (int64_t)time(NULL), err);
    if (!probe)
        return caa_error_prefix(err, "%s", admin_key_path);
    /* The host part of host:port decides the scheme: TLS unless loopback. */
    _cleanup_free_ char *host = xstrdup(kbs_addr);
    char *colon = strrchr(host, ':');
    if (colon)
        *colon = '\0';
    k->base = xasprintf("%s://%s", caa_http_host_is_loopback(host) ? "http" : "https", kbs_addr);
    caa_http_client_options ho = {.max_active = 8, .timeout_ms = KBS_TIMEOUT_MS};
    return caa_http_client_new(loop, &ho, &k->http, err);
}

int caa_kbs_admin_new(uv_loop_t *loop, const char *kbs_addr, const char *admin_key_path, caa_kbs_admin **ret,
                      caa_error **err)
{
    if (!admin_key_path || !*admin_key_path)
        return caa_error_set(
            err, -EINVAL,
            "Trustee mode needs the KBS admin key: mount Secret kbs-client (data key privateKey) "
            "and set -secure-comms-kbs-admin-key (SECURE_COMMS_KBS_ADMIN_KEY) to its path");
    caa_kbs_admin *k = xnew0(caa_kbs_admin, 1);
    int r = admin_init(k, loop, kbs_addr, admin_key_path, err);
    if (r < 0) {
        caa_kbs_admin_free(k);
        return r;
    }
    *ret = k;
    return 0;
}

void caa_kbs_admin_free(caa_kbs_admin *k)
{
    if (!k)
        return;
    caa_http_client_close(k->http);
    if (k->key_pem)
        OPENSSL_cleanse(k->key_pem, k->key_len);
    free(k->key_pem);
    free(k->base);
    free(k);
}

static void on_answer(int status, caa_http_response *resp, caa_error *err, void *opaque)
{
    caa_kbs_call *call = opaque;
    if (status == 0 && (resp->status < 200 || resp->status > 299)) {
        /* The body is the KBS's error text; it never holds our key. */
        size_t n = resp->body_len > 200 ? 200 : resp->body_len;
        status = resp->status == 401 || resp->status == 403 ? -EACCES : -EPROTO;
        err = caa_error_new(status, "KBS %s: HTTP %ld %.*s", call->what, resp->status, (int)n,
                            resp->body ? resp->body : "");
    } else if (status < 0) {
        caa_error_prefix(&err, "KBS %s", call->what);
    }
    caa_http_response_free(resp);
    call->cb(status, err, call->opaque);
    free(call->what);
    free(call);
}

static int call_start(caa_kbs_admin *k, const char *method, const char *resource, const void *body,
                      size_t len, caa_kbs_done_cb cb, void *opaque, caa_kbs_call **ret, caa_error **err)
{
    _cleanup_free_ char *jwt = caa_kbs_admin_jwt(k->key_pem, k->key_len, (int64_t)time(NULL), err);
    if (!jwt)
        return -EINVAL;
    _cleanup_free_ char *url = xasprintf("%s/kbs/v0/resource/%s", k->base, resource);
    _cleanup_free_ char *auth = xasprintf("Authorization: Bearer %s", jwt);
    char *headers[] = {auth, "Accept: application/octet-stream", "Content-Type: application/octet-stream",
                       NULL};
    caa_http_request_info info = {
        .method = method,
        .url = url,
        .headers = headers,
        .body = body,
        .body_len = len,
    };
    caa_kbs_call *call = xnew0(caa_kbs_call, 1);
    call->what = xasprintf("%s %s", method, resource);
    call->cb = cb;
    call->opaque = opaque;
    int r = caa_http_request_start(k->http, &info, on_answer, call, &call->req, err);
    if (r < 0) {
        caa_error_prefix(err, "KBS %s", call->what);
        free(call->what);
        free(call);
        return r;
    }
    if (ret)
        *ret = call;
    return 0;
}

int caa_kbs_admin_post(caa_kbs_admin *k, const char *resource, const void *body, size_t len,
                       caa_kbs_done_cb cb, void *opaque, caa_kbs_call **ret, caa_error **err)
{
    return call_start(k, "POST", resource, body, len, cb, opaque, ret, err);
}

int caa_kbs_admin_delete(caa_kbs_admin *k, const char *resource, caa_kbs_done_cb cb, void *opaque,
                         caa_kbs_call **ret, caa_error **err)
{
    return call_start(k, "DELETE", resource, NULL, 0, cb, opaque, ret, err);
}

void caa_kbs_call_cancel(caa_kbs_call *call)
{
    caa_http_request_cancel(call->req);
}
