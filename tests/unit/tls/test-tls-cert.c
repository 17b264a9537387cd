/* Certificate material: generated client identity, CA, per-VM server
 * certificates, loading user files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "fs.h"
#include "tls-cert-internal.h"
#include "tls-test-util.h"
#include "xalloc.h"

static char tmpdir[] = "/tmp/caa-test-tls-cert-XXXXXX";

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return caa_rm_rf(tmpdir, NULL);
}

static char *write_tmp(const char *name, const char *content)
{
    char *path = xasprintf("%s/%s", tmpdir, name);
    assert_int_equal(caa_write_file_atomic(path, content, strlen(content), 0600, NULL), 0);
    return path;
}

static X509 *pem_to_x509(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(x);
    return x;
}

static char *name_entry(X509_NAME *name, int nid)
{
    char buf[256];
    if (X509_NAME_get_text_by_NID(name, nid, buf, sizeof(buf)) < 0)
        return NULL;
    return xstrdup(buf);
}

static void assert_org(X509 *x, const char *org)
{
    char *o = name_entry(X509_get_subject_name(x), NID_organizationName);
    assert_non_null(o);
    assert_string_equal(o, org);
    free(o);
}

/* Seconds between now and t (positive: t in the future). */
static long seconds_from_now(const ASN1_TIME *t)
{
    int days = 0, secs = 0;
    assert_int_equal(ASN1_TIME_diff(&days, &secs, NULL, t), 1);
    return (long)days * 86400 + secs;
}

static void assert_p256(X509 *x)
{
    EVP_PKEY *k = X509_get0_pubkey(x);
    char group[64];
    size_t len = 0;
    assert_int_equal(EVP_PKEY_get_base_id(k), EVP_PKEY_EC);
    assert_int_equal(EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof(group), &len), 1);
    assert_string_equal(group, "prime256v1");
}

static void test_generated_client(void **state)
{
    (void)state;
    _cleanup_tls_identity_ caa_tls_identity *id = NULL, *id2 = NULL;
    _cleanup_free_ char *pem = NULL, *pem2 = NULL;
    _cleanup_secret_ char *key = NULL;

    assert_int_equal(caa_tls_identity_generate_client(&id, NULL), 0);
    pem = caa_tls_identity_cert_pem(id);
    key = caa_tls_identity_key_pem(id);
    assert_non_null(strstr(pem, "-----BEGIN CERTIFICATE-----"));
    /* PKCS#8, as upstream ships it. */
    assert_true(strncmp(key, "-----BEGIN PRIVATE KEY-----", 27) == 0);

    X509 *x = pem_to_x509(pem);
    assert_org(x, "cloud-api-adaptor");
    /* Encoded as Go would (PrintableString), see name_string_type(). */
    X509_NAME_ENTRY *org = X509_NAME_get_entry(X509_get_subject_name(x), 0);
    assert_int_equal(ASN1_STRING_type(X509_NAME_ENTRY_get_data(org)), V_ASN1_PRINTABLESTRING);
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)), 0); /* self-signed */
    assert_int_equal(X509_verify(x, X509_get0_pubkey(x)), 1);
    assert_p256(x);
    assert_int_equal(X509_check_ca(x), 0); /* not a CA */
    assert_true(X509_get_extension_flags(x) & EXFLAG_XKUSAGE);
    assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_CLIENT);
    assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE | KU_KEY_CERT_SIGN);
    long nb = seconds_from_now(X509_get0_notBefore(x));
    long na = seconds_from_now(X509_get0_notAfter(x));
    assert_true(nb <= -290 && nb >= -330); /* now - 5 min */
    assert_true(na >= 729L * 86400 && na <= 731L * 86400);
    assert_int_equal(X509_check_purpose(x, X509_PURPOSE_SSL_CLIENT, 0), 1);

    /* Random serials: two identities differ. */
    assert_int_equal(caa_tls_identity_generate_client(&id2, NULL), 0);
    pem2 = caa_tls_identity_cert_pem(id2);
    X509 *y = pem_to_x509(pem2);
    assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(x), X509_get0_serialNumber(y)), 0);
    assert_true(ASN1_INTEGER_get_int64(&(int64_t){0}, X509_get0_serialNumber(x)) >= 0);
    X509_free(x);
    X509_free(y);

    /* The PEM round-trips into an identity. */
    _cleanup_tls_identity_ caa_tls_identity *back = NULL;
    assert_int_equal(caa_tls_identity_from_pem(pem, key, &back, NULL), 0);
    _cleanup_free_ char *pem3 = caa_tls_identity_cert_pem(back);
    assert_string_equal(pem, pem3);
}

static void test_ca_issue_server(void **state)
{
    (void)state;
    _cleanup_tls_ca_ caa_tls_ca *ca = NULL;
    _cleanup_free_ char *ca_pem = NULL, *cert_pem = NULL;
    _cleanup_secret_ char *key_pem = NULL;

    assert_int_equal(caa_tls_ca_new(&ca, NULL), 0);
    ca_pem = caa_tls_ca_cert_pem(ca);
    X509 *cax = pem_to_x509(ca_pem);
    assert_org(cax, "agent-protocol-forwarder");
    assert_int_equal(X509_check_ca(cax), 1);
    assert_p256(cax);

    assert_int_equal(caa_tls_ca_issue_server(ca, TEST_INSTANCE, &cert_pem, &key_pem, NULL), 0);
    assert_true(strncmp(key_pem, "-----BEGIN PRIVATE KEY-----", 27) == 0);
    X509 *x = pem_to_x509(cert_pem);
    _cleanup_free_ char *cn = name_entry(X509_get_subject_name(x), NID_commonName);
    assert_string_equal(cn, TEST_INSTANCE);
    assert_int_equal(X509_check_host(x, TEST_INSTANCE, 0, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, NULL), 1);
    assert_int_equal(X509_check_host(x, "podvm-other", 0, 0, NULL), 0);
    assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_SERVER);
    assert_int_equal(X509_check_ca(x), 0);
    assert_int_equal(X509_check_issued(cax, x), X509_V_OK);
    assert_int_equal(X509_verify(x, X509_get0_pubkey(cax)), 1);
    assert_p256(x);
    long na = seconds_from_now(X509_get0_notAfter(x));
    assert_true(na >= 729L * 86400 && na <= 731L * 86400);

    /* A full verification as OpenSSL's client would do it. */
    X509_STORE *store = X509_STORE_new();
    X509_STORE_add_cert(store, cax);
    X509_STORE_CTX *vctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(vctx, store, x, NULL);
    X509_STORE_CTX_set_purpose(vctx, X509_PURPOSE_SSL_SERVER);
    assert_int_equal(X509_verify_cert(vctx), 1);
    X509_STORE_CTX_free(vctx);
    X509_STORE_free(store);

    /* The key matches the certificate. */
    _cleanup_tls_identity_ caa_tls_identity *id = NULL;
    assert_int_equal(caa_tls_identity_from_pem(cert_pem, key_pem, &id, NULL), 0);

    /* A CA survives a round trip through PEM and keeps issuing. */
    _cleanup_secret_ char *ca_key = caa_tls_ca_key_pem(ca);
    _cleanup_tls_ca_ caa_tls_ca *ca2 = NULL;
    _cleanup_free_ char *cert2 = NULL;
    _cleanup_secret_ char *key2 = NULL;
    assert_int_equal(caa_tls_ca_from_pem(ca_pem, ca_key, &ca2, NULL), 0);
    assert_int_equal(caa_tls_ca_issue_server(ca2, "podvm-b", &cert2, &key2, NULL), 0);
    X509 *x2 = pem_to_x509(cert2);
    assert_int_equal(X509_verify(x2, X509_get0_pubkey(cax)), 1);
    X509_free(x2);

    /* A leaf is not accepted as a CA. */
    _cleanup_error_ caa_error *err = NULL;
    _cleanup_tls_ca_ caa_tls_ca *bad = NULL;
    assert_int_equal(caa_tls_ca_from_pem(cert_pem, key_pem, &bad, &err), -EINVAL);
    tls_expect_error(err, -EINVAL, "not a CA certificate");

    X509_free(x);
    X509_free(cax);
}

static void test_instance_names(void **state)
{
    (void)state;
    _cleanup_tls_ca_ caa_tls_ca *ca = NULL;
    assert_int_equal(caa_tls_ca_new(&ca, NULL), 0);

    static const char *const bad[] = {
        "",
        "bad,name",
        "name with space",
        "-leading",
        "trailing-",
        "a..b",
        ".a",
        "under_score",
        "x\n",
        "podvm-0123456789012345678901234567890123456789012345678901234567890123", /* label over 63 */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *c = NULL, *k = NULL;
        _cleanup_error_ caa_error *err = NULL;
        assert_false(caa_tls_valid_dns_name(bad[i]));
        assert_int_equal(caa_tls_ca_issue_server(ca, bad[i], &c, &k, &err), -EINVAL);
        tls_expect_error(err, -EINVAL, "not a DNS name");
        assert_null(c);
        assert_null(k);
    }
    assert_false(caa_tls_valid_dns_name(NULL));
    assert_true(caa_tls_valid_dns_name("podvm-server"));
    assert_true(caa_tls_valid_dns_name("a.b-c.d"));
    assert_true(caa_tls_valid_dns_name("podvm-012345678901234567890123456789012345678901234567890123456"));

    assert_string_equal(caa_tls_server_name(false, TEST_INSTANCE), TEST_INSTANCE);
    assert_string_equal(caa_tls_server_name(true, TEST_INSTANCE), "podvm-server");
}

static void test_load_files(void **state)
{
    (void)state;
    tls_material m;
    tls_material_init(&m, TEST_INSTANCE);
    _cleanup_secret_ char *client_key = caa_tls_identity_key_pem(m.client);
    _cleanup_free_ char *ca_pem = caa_tls_ca_cert_pem(m.ca);
    _cleanup_free_ char *cert_path = write_tmp("client.crt", m.client_cert_pem);
    _cleanup_free_ char *key_path = write_tmp("client.key", client_key);
    _cleanup_free_ char *other_key_path = write_tmp("server.key", m.server_key_pem);
    _cleanup_free_ char *ca_path = write_tmp("ca.crt", ca_pem);
    _cleanup_free_ char *junk_path = write_tmp("junk.pem", "hello, not PEM\n");
    _cleanup_free_ char *missing = xasprintf("%s/missing.crt", tmpdir);
    /* A chain file: leaf then CA. */
    _cleanup_free_ char *chain = xasprintf("%s%s", m.server_cert_pem, ca_pem);
    _cleanup_free_ char *chain_path = write_tmp("chain.crt", chain);
    caa_tls_identity *id = NULL;
    caa_tls_trust *t = NULL;
    caa_error *err = NULL;

    assert_int_equal(caa_tls_identity_load_files(cert_path, key_path, &id, NULL), 0);
    caa_tls_identity_freep(&id);
    assert_int_equal(caa_tls_identity_load_files(chain_path, other_key_path, &id, NULL), 0);
    _cleanup_free_ char *chain_out = caa_tls_identity_cert_pem(id);
    assert_string_equal(chain_out, chain);
    caa_tls_identity_freep(&id);

    assert_int_equal(caa_tls_identity_load_files(missing, key_path, &id, &err), -ENOENT);
    tls_expect_error(err, -ENOENT, "missing.crt");
    caa_error_freep(&err);
    assert_int_equal(caa_tls_identity_load_files(cert_path, missing, &id, &err), -ENOENT);
    tls_expect_error(err, -ENOENT, "loading the TLS private key");
    caa_error_freep(&err);

    /* Wrong PEM: junk, the key where the certificate goes, the reverse. */
    assert_int_equal(caa_tls_identity_load_files(junk_path, key_path, &id, &err), -EINVAL);
    tls_expect_error(err, -EINVAL, "junk.pem' holds no PEM certificate");
    caa_error_freep(&err);
    assert_int_equal(caa_tls_identity_load_files(key_path, key_path, &id, &err), -EINVAL);
    tls_expect_error(err, -EINVAL, "client.key' holds no PEM certificate");
    caa_error_freep(&err);
    assert_int_equal(caa_tls_identity_load_files(cert_path, cert_path, &id, &err), -EINVAL);
    tls_expect_error(err, -EINVAL, "client.crt' holds no PEM private key");
    caa_error_freep(&err);
    assert_int_equal(caa_tls_identity_load_files(cert_path, junk_path, &id, &err), -EINVAL);
    tls_expect_error(err, -EINVAL, "junk.pem' holds no PEM private key");
    caa_error_freep(&err);

    /* Key of another certificate. */
    assert_int_equal(caa_tls_identity_load_files(cert_path, other_key_path, &id, &err), -EINVAL);
    tls_expect_error(err, -EINVAL, "the private key in key file");
    tls_expect_error(err, -EINVAL, "does not match the certificate in certificate file");
    /* No key material in messages. */
    assert_null(strstr(err->msg, "PRIVATE KEY"));
    caa_error_freep(&err);
    assert_null(id);

    /* A truncated certificate. */
    _cleanup_free_ char *cut = xstrndup(m.client_cert_pem, strlen(m.client_cert_pem) - 40);
    _cleanup_free_ char *cut_path = write_tmp("cut.crt", cut);
    assert_int_equal(caa_tls_identity_load_files(cut_path, key_path, &id, &err), -EINVAL);
    tls_expect_error(err, -EINVAL, "cut.crt' holds a malformed PEM certificate");
    caa_error_freep(&err);

    /* An encrypted key is refused without prompting. */
    EVP_PKEY *k = NULL;
    BIO *kb = BIO_new_mem_buf(client_key, -1);
    k = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
    BIO_free(kb);
    BIO *eb = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PKCS8PrivateKey(eb, k, EVP_aes_256_cbc(), "pw", 2, NULL, NULL), 1);
    char *enc = NULL;
    long enc_len = BIO_get_mem_data(eb, &enc);
    _cleanup_free_ char *enc_s = xstrndup(enc, (size_t)enc_len);
    BIO_free(eb);
    EVP_PKEY_free(k);
    _cleanup_free_ char *enc_path = write_tmp("enc.key", enc_s);
    assert_int_equal(caa_tls_identity_load_files(cert_path, enc_path, &id, &err), -EINVAL);
    tls_expect_error(err, -EINVAL, "encrypted private key");
    caa_error_freep(&err);

    /* Trust files. */
    assert_int_equal(caa_tls_trust_load_file(ca_path, &t, NULL), 0);
    assert_int_equal(caa_tls_trust_count(t), 1);
    caa_tls_trust_freep(&t);
    assert_int_equal(caa_tls_trust_load_file(chain_path, &t, NULL), 0);
    assert_int_equal(caa_tls_trust_count(t), 2);
    caa_tls_trust_freep(&t);
    assert_int_equal(caa_tls_trust_load_file(missing, &t, &err), -ENOENT);
    tls_expect_error(err, -ENOENT, "loading the CA certificate");
    caa_error_freep(&err);
    assert_int_equal(caa_tls_trust_load_file(junk_path, &t, &err), -EINVAL);
    tls_expect_error(err, -EINVAL, "CA certificate file");
    caa_error_freep(&err);
    assert_int_equal(caa_tls_trust_load_file(tmpdir, &t, &err), -EINVAL);
    caa_error_freep(&err);
    assert_int_equal(caa_tls_trust_from_pem("", &t, &err), -EINVAL);
    tls_expect_error(err, -EINVAL, "holds no PEM certificate");
    caa_error_freep(&err);
    assert_int_equal(caa_tls_trust_from_pem(NULL, &t, &err), -EINVAL);
    caa_error_freep(&err);
    assert_int_equal(caa_tls_identity_from_pem(NULL, "x", &id, &err), -EINVAL);
    caa_error_freep(&err);
    assert_null(t);
    assert_int_equal(caa_tls_trust_count(NULL), 0);

    tls_material_done(&m);
}

static void test_secret_free(void **state)
{
    (void)state;
    caa_tls_secret_free(NULL);
    caa_tls_secret_free(xstrdup("secret"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generated_client), cmocka_unit_test(test_ca_issue_server),
        cmocka_unit_test(test_instance_names),   cmocka_unit_test(test_load_files),
        cmocka_unit_test(test_secret_free),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
