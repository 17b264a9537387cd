/* The KBS admin token: EdDSA JWT layout, claims, a signature that verifies
 * with the admin key's public half (and not with another key), and the
 * refusal of keys that are not Ed25519. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "codec.h"
#include "kbs-admin.h"
#include "xalloc.h"

static char *pem_of(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    char *s = xstrndup(p, (size_t)n);
    BIO_free(b);
    return s;
}

static EVP_PKEY *new_key(int type)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(type, NULL);
    EVP_PKEY *k = NULL;
    assert_int_equal(EVP_PKEY_keygen_init(c), 1);
    if (type == EVP_PKEY_RSA)
        EVP_PKEY_CTX_set_rsa_keygen_bits(c, 2048);
    assert_int_equal(EVP_PKEY_keygen(c, &k), 1);
    EVP_PKEY_CTX_free(c);
    return k;
}

/* base64url (no padding) back to bytes. */
static void *unb64url(const char *s, size_t len, size_t *ret_len)
{
    char *t = xmalloc(len + 4);
    for (size_t i = 0; i < len; i++)
        t[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
    size_t n = len;
    while (n % 4)
        t[n++] = '=';
    void *out = NULL;
    assert_int_equal(caa_bootdata_base64_decode(t, n, 4096, &out, ret_len, NULL), 0);
    free(t);
    return out;
}

static void test_token(void **state)
{
    (void)state;
    EVP_PKEY *k = new_key(EVP_PKEY_ED25519), *other = new_key(EVP_PKEY_ED25519);
    char *pem = pem_of(k);
    char *jwt = caa_kbs_admin_jwt(pem, strlen(pem), 1700000000, NULL);
    assert_non_null(jwt);
    char *dot1 = strchr(jwt, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    assert_non_null(dot2);
    assert_null(strchr(dot2 + 1, '.'));
    assert_null(strpbrk(jwt, "+/="));

    size_t hl, cl, sl;
    char *h = unb64url(jwt, (size_t)(dot1 - jwt), &hl);
    char *c = unb64url(dot1 + 1, (size_t)(dot2 - dot1 - 1), &cl);
    uint8_t *sig = unb64url(dot2 + 1, strlen(dot2 + 1), &sl);
    json_t *hj = json_loadb(h, hl, 0, NULL), *cj = json_loadb(c, cl, 0, NULL);
    assert_non_null(hj);
    assert_non_null(cj);
    assert_string_equal(json_string_value(json_object_get(hj, "alg")), "EdDSA");
    assert_string_equal(json_string_value(json_object_get(hj, "typ")), "JWT");
    assert_int_equal(json_integer_value(json_object_get(cj, "iat")), 1700000000);
    assert_int_equal(json_integer_value(json_object_get(cj, "nbf")), 1700000000);
    assert_int_equal(json_integer_value(json_object_get(cj, "exp")), 1700000000 + CAA_KBS_JWT_LIFETIME_S);
    assert_int_equal(json_integer_value(json_object_get(cj, "issued_at")), 1700000000);
    assert_int_equal(json_integer_value(json_object_get(cj, "expires_at")),
                     1700000000 + CAA_KBS_JWT_LIFETIME_S);
    assert_string_equal(json_string_value(json_object_get(cj, "issuer")), "");

    /* The signature covers "<header>.<claims>" and verifies with the key, not with another. */
    assert_int_equal(sl, 64);
    EVP_PKEY *keys[2] = {k, other};
    for (int i = 0; i < 2; i++) {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        assert_int_equal(EVP_DigestVerifyInit(md, NULL, NULL, NULL, keys[i]), 1);
        int ok = EVP_DigestVerify(md, sig, sl, (const uint8_t *)jwt, (size_t)(dot2 - jwt));
        assert_int_equal(ok, i == 0 ? 1 : 0);
        EVP_MD_CTX_free(md);
    }
    json_decref(hj);
    json_decref(cj);
    free(h);
    free(c);
    free(sig);
    free(jwt);
    free(pem);
    EVP_PKEY_free(k);
    EVP_PKEY_free(other);
}

static void test_refused_keys(void **state)
{
    (void)state;
    EVP_PKEY *rsa = new_key(EVP_PKEY_RSA);
    char *pem = pem_of(rsa);
    caa_error *err = NULL;
    assert_null(caa_kbs_admin_jwt(pem, strlen(pem), 1, &err));
    assert_non_null(strstr(caa_error_msg(err), "not an Ed25519 key"));
    caa_error_free(err);
    err = NULL;
    assert_null(caa_kbs_admin_jwt("garbage", 7, 1, &err));
    assert_non_null(strstr(caa_error_msg(err), "not a PEM private key"));
    caa_error_free(err);
    free(pem);
    EVP_PKEY_free(rsa);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token),
        cmocka_unit_test(test_refused_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
