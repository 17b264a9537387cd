/* TLS profile and flag validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/ssl.h>

#include "strv.h"
#include "tls-profile.h"

static int parse(const char *min, const char *suites_csv, caa_tls_profile *p, caa_error **err)
{
    _cleanup_strv_ char **v = NULL;
    if (suites_csv)
        caa_strv_split_append(&v, suites_csv, ',');
    return caa_tls_profile_parse(min, v, p, err);
}

static void expect_error(const char *min, const char *suites, const char *fragment)
{
    caa_tls_profile p = {.min_version = 12345};
    _cleanup_error_ caa_error *err = NULL;

    assert_int_equal(parse(min, suites, &p, &err), -EINVAL);
    assert_non_null(err);
    if (!strstr(err->msg, fragment))
        fail_msg("error '%s' lacks '%s'", err->msg, fragment);
    assert_int_equal(p.min_version, 12345); /* untouched on failure */
}

static void test_defaults(void **state)
{
    (void)state;
    caa_tls_profile p;

    assert_int_equal(parse(NULL, NULL, &p, NULL), 0);
    assert_int_equal(p.min_version, TLS1_2_VERSION);
    assert_null(p.cipher_suites);
    assert_null(p.openssl_ciphers);
    assert_string_equal(caa_tls_profile_min_version_name(&p), "VersionTLS12");
    caa_tls_profile_done(&p);

    assert_int_equal(parse("", NULL, &p, NULL), 0);
    assert_int_equal(p.min_version, TLS1_2_VERSION);
    caa_tls_profile_done(&p);

    assert_int_equal(parse("VersionTLS13", NULL, &p, NULL), 0);
    assert_int_equal(p.min_version, TLS1_3_VERSION);
    assert_string_equal(caa_tls_profile_min_version_name(&p), "VersionTLS13");
    caa_tls_profile_done(&p);
    assert_int_equal(p.min_version, 0);
    caa_tls_profile_done(NULL);
}

static void test_cipher_mapping(void **state)
{
    (void)state;
    caa_tls_profile p, copy;

    assert_int_equal(
        parse("VersionTLS12",
              "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,"
              "TLS_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
              &p, NULL),
        0);
    assert_int_equal(caa_strv_len(p.cipher_suites), 4);
    assert_string_equal(p.cipher_suites[2], "TLS_AES_128_GCM_SHA256");
    /* TLS 1.3 names do not reach the TLS 1.2 list; duplicates collapse. */
    assert_string_equal(p.openssl_ciphers, "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305");

    caa_tls_profile_copy(&p, &copy);
    caa_tls_profile_done(&p);
    assert_string_equal(copy.openssl_ciphers, "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305");
    assert_int_equal(copy.min_version, TLS1_2_VERSION);
    caa_tls_profile_done(&copy);

    /* Every accepted TLS 1.2 name is known to this OpenSSL. */
    static const char *const names[] = {
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
        "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
    };
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    assert_non_null(ctx);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *o = caa_tls_cipher_openssl_name(names[i]);
        assert_non_null(o);
        if (SSL_CTX_set_cipher_list(ctx, o) != 1)
            fail_msg("OpenSSL does not know '%s' (for %s)", o, names[i]);
    }
    SSL_CTX_free(ctx);
    assert_null(caa_tls_cipher_openssl_name("TLS_AES_128_GCM_SHA256"));
    assert_string_equal(caa_tls_cipher_openssl_name("TLS_RSA_WITH_RC4_128_SHA"), "RC4-SHA");
    assert_null(caa_tls_cipher_openssl_name("nonsense"));
    assert_null(caa_tls_cipher_openssl_name(NULL));
}

static void test_bad_versions(void **state)
{
    (void)state;
    expect_error("VersionTLS10", NULL, "TLS 1.0 and 1.1 are insecure");
    expect_error("VersionTLS11", NULL, "TLS 1.0 and 1.1 are insecure");
    expect_error("VersionSSL30", NULL, "unknown TLS minimum version 'VersionSSL30'");
    expect_error("versiontls12", NULL, "unknown TLS minimum version");
    expect_error("1.2", NULL, "expected VersionTLS12 or VersionTLS13");
    expect_error("VersionTLS12 ", NULL, "unknown TLS minimum version");
}

static void test_bad_ciphers(void **state)
{
    (void)state;
    expect_error("VersionTLS13", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                 "cannot be set with TLS minimum version");
    expect_error("VersionTLS13", "TLS_AES_128_GCM_SHA256", "cannot be set with TLS minimum version");
    expect_error(NULL, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_BOGUS",
                 "unknown TLS cipher suite 'TLS_BOGUS'");
    /* OpenSSL spellings are not IANA names. */
    expect_error(NULL, "ECDHE-ECDSA-AES128-GCM-SHA256", "unknown TLS cipher suite");

    /* An empty name (possible in an apf.json array) is refused. */
    caa_tls_profile p;
    _cleanup_error_ caa_error *err = NULL;
    char *v[] = {"", NULL};
    assert_int_equal(caa_tls_profile_parse(NULL, v, &p, &err), -EINVAL);
    assert_string_equal(err->msg, "empty TLS cipher suite name");
}

/* Upstream (pkg/util/tlsconfig: k8s.io/component-base TLSCipherSuites)
 * accepts every name of Go's tls.CipherSuites() and
 * tls.InsecureCipherSuites(); a Helm tlsProfile with them must start. This
 * list is Go's InsecureCipherSuites(), rendered by hand. */
static void test_upstream_insecure_names(void **state)
{
    (void)state;
    static const char *const insecure[] = {
        "TLS_RSA_WITH_RC4_128_SHA",
        "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
        "TLS_RSA_WITH_AES_128_CBC_SHA",
        "TLS_RSA_WITH_AES_256_CBC_SHA",
        "TLS_RSA_WITH_AES_128_CBC_SHA256",
        "TLS_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_RSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
        "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
        "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    };
    for (size_t i = 0; i < sizeof(insecure) / sizeof(insecure[0]); i++) {
        caa_tls_profile p;
        char *v[] = {(char *)"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", (char *)insecure[i], NULL};
        assert_int_equal(caa_tls_profile_parse("VersionTLS12", v, &p, NULL), 0);
        assert_int_equal(caa_strv_len(p.insecure), 1);
        assert_string_equal(p.insecure[0], insecure[i]);
        /* in the OpenSSL list exactly when this OpenSSL offers it (RC4 and
         * 3DES are gone from Debian's OpenSSL 3); the list stays usable */
        const char *o = caa_tls_cipher_openssl_name(insecure[i]);
        SSL_CTX *ctx = SSL_CTX_new(TLS_method());
        bool offered = SSL_CTX_set_cipher_list(ctx, o) == 1;
        assert_int_equal(strstr(p.openssl_ciphers, o) != NULL, offered);
        assert_int_equal(SSL_CTX_set_cipher_list(ctx, p.openssl_ciphers), 1);
        SSL_CTX_free(ctx);
        caa_tls_profile_done(&p);
    }
    /* Only TLS 1.3 names: accepted, TLS 1.2 left without a suite (as Go). */
    caa_tls_profile p;
    assert_int_equal(parse(NULL, "TLS_AES_128_GCM_SHA256,TLS_AES_256_GCM_SHA384", &p, NULL), 0);
    assert_true(p.no_tls12);
    assert_null(p.openssl_ciphers);
    assert_null(p.insecure);
    caa_tls_profile_done(&p);
}

static void test_flags(void **state)
{
    (void)state;
    _cleanup_error_ caa_error *err = NULL;

    assert_int_equal(caa_tls_check_flags(NULL, NULL, NULL, false, NULL), 0);
    assert_int_equal(caa_tls_check_flags("", "", "", true, NULL), 0);
    assert_int_equal(caa_tls_check_flags("/ca.crt", "/c.crt", "/c.key", false, NULL), 0);
    assert_int_equal(caa_tls_check_flags(NULL, "/c.crt", "/c.key", true, NULL), 0);

    assert_int_equal(caa_tls_check_flags("/ca.crt", NULL, NULL, true, &err), -EINVAL);
    assert_non_null(strstr(err->msg, "-ca-cert-file and -tls-skip-verify cannot be used together"));
    caa_error_freep(&err);
    assert_int_equal(caa_tls_check_flags(NULL, "/c.crt", "", false, &err), -EINVAL);
    assert_non_null(strstr(err->msg, "-cert-key is not"));
    caa_error_freep(&err);
    assert_int_equal(caa_tls_check_flags(NULL, NULL, "/c.key", false, &err), -EINVAL);
    assert_non_null(strstr(err->msg, "-cert-file is not"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_cipher_mapping),
        cmocka_unit_test(test_bad_versions),
        cmocka_unit_test(test_bad_ciphers),
        cmocka_unit_test(test_upstream_insecure_names),
        cmocka_unit_test(test_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
