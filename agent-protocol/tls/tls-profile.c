/* TLS profile parsing: TLS_MIN_VERSION and TLS_CIPHER_SUITES. */
#include <errno.h>
#include <string.h>

#include <openssl/ssl.h>

#include "strv.h"
#include "tls-profile.h"
#include "xalloc.h"

typedef enum suite_kind {
    SUITE_TLS12,    /* configurable TLS 1.2 suite */
    SUITE_TLS13,    /* TLS 1.3 suite: accepted, always enabled */
    SUITE_INSECURE, /* TLS 1.2, accepted with a warning (Go lists them as insecure) */
} suite_kind;

typedef struct suite {
    const char *iana;
    const char *openssl;
    suite_kind kind;
} suite;

/* The suites Go's crypto/tls offers (tls.CipherSuites() and
 * tls.InsecureCipherSuites(), the names upstream's profile parser accepts
 * through k8s.io/component-base's TLSCipherSuites), with OpenSSL's names
 * for the TLS 1.2 ones. The insecure set (static RSA key exchange, RC4,
 * 3DES, CBC with SHA-256 MACs) is accepted as upstream does, and reported
 * in caa_tls_profile.insecure so the caller warns. OpenSSL may not offer
 * some of them at all (RC4). */
static const suite suites[] = {
    {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256", SUITE_TLS12},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384", SUITE_TLS12},
    {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256", SUITE_TLS12},
    {"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384", SUITE_TLS12},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305", SUITE_TLS12},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305", SUITE_TLS12},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA", SUITE_TLS12},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA", SUITE_TLS12},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA", SUITE_TLS12},
    {"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA", SUITE_TLS12},
    /* Go's older aliases of the ChaCha20 names. */
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "ECDHE-ECDSA-CHACHA20-POLY1305", SUITE_TLS12},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "ECDHE-RSA-CHACHA20-POLY1305", SUITE_TLS12},
    {"TLS_AES_128_GCM_SHA256", NULL, SUITE_TLS13},
    {"TLS_AES_256_GCM_SHA384", NULL, SUITE_TLS13},
    {"TLS_CHACHA20_POLY1305_SHA256", NULL, SUITE_TLS13},
    {"TLS_RSA_WITH_RC4_128_SHA", "RC4-SHA", SUITE_INSECURE},
    {"TLS_RSA_WITH_3DES_EDE_CBC_SHA", "DES-CBC3-SHA", SUITE_INSECURE},
    {"TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA", SUITE_INSECURE},
    {"TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA", SUITE_INSECURE},
    {"TLS_RSA_WITH_AES_128_CBC_SHA256", "AES128-SHA256", SUITE_INSECURE},
    {"TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256", SUITE_INSECURE},
    {"TLS_RSA_WITH_AES_256_GCM_SHA384", "AES256-GCM-SHA384", SUITE_INSECURE},
    {"TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", "ECDHE-ECDSA-RC4-SHA", SUITE_INSECURE},
    {"TLS_ECDHE_RSA_WITH_RC4_128_SHA", "ECDHE-RSA-RC4-SHA", SUITE_INSECURE},
    {"TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", "ECDHE-RSA-DES-CBC3-SHA", SUITE_INSECURE},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "ECDHE-ECDSA-AES128-SHA256", SUITE_INSECURE},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "ECDHE-RSA-AES128-SHA256", SUITE_INSECURE},
};

static const suite *find_suite(const char *iana)
{
    for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
        if (strcmp(suites[i].iana, iana) == 0)
            return &suites[i];
    return NULL;
}

const char *caa_tls_cipher_openssl_name(const char *iana)
{
    const suite *s = iana ? find_suite(iana) : NULL;
    return s && s->kind != SUITE_TLS13 ? s->openssl : NULL;
}

/* Whether this OpenSSL (and its security level) offers the TLS 1.2 suite;
 * Debian's OpenSSL 3 has no RC4 and no 3DES by default. */
static bool openssl_offers(SSL_CTX **ctx, const char *openssl_name)
{
    if (!*ctx && !(*ctx = SSL_CTX_new(TLS_method())))
        caa_oom();
    return SSL_CTX_set_cipher_list(*ctx, openssl_name) == 1;
}

static int parse_min_version(const char *s, int *ret, caa_error **err)
{
    if (!s || !*s || strcmp(s, "VersionTLS12") == 0) {
        *ret = TLS1_2_VERSION;
        return 0;
    }
    if (strcmp(s, "VersionTLS13") == 0) {
        *ret = TLS1_3_VERSION;
        return 0;
    }
    if (strcmp(s, "VersionTLS10") == 0 || strcmp(s, "VersionTLS11") == 0)
        return caa_error_set(err, -EINVAL,
                             "TLS minimum version '%s' is not allowed: TLS 1.0 and 1.1 are insecure; "
                             "use VersionTLS12 or VersionTLS13",
                             s);
    return caa_error_set(err, -EINVAL,
                         "unknown TLS minimum version '%s': expected VersionTLS12 or VersionTLS13", s);
}

int caa_tls_profile_parse(const char *min_version, char *const *cipher_suites, caa_tls_profile *ret,
                          caa_error **err)
{
    _cleanup_strv_ char **names = NULL, **openssl_names = NULL, **insecure = NULL;
    int min = 0, r;

    r = parse_min_version(min_version, &min, err);
    if (r < 0)
        return r;

    if (caa_strv_len(cipher_suites) > 0) {
        if (min == TLS1_3_VERSION)
            return caa_error_set(err, -EINVAL,
                                 "TLS cipher suites cannot be set with TLS minimum version VersionTLS13: "
                                 "TLS 1.3 suites are not configurable");
        for (size_t i = 0; cipher_suites[i]; i++) {
            const char *name = cipher_suites[i];
            const suite *s = find_suite(name);

            if (!*name)
                return caa_error_set(err, -EINVAL, "empty TLS cipher suite name");
            if (!s)
                return caa_error_set(err, -EINVAL,
                                     "unknown TLS cipher suite '%s' (expected IANA names such as "
                                     "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)",
                                     name);
            if (s->kind == SUITE_INSECURE && !caa_strv_contains(insecure, name))
                caa_strv_push(&insecure, name);
            caa_strv_push(&names, name);
        }
    }
    /* OpenSSL's names of the TLS 1.2 suites. An insecure suite this OpenSSL
     * does not offer is left out: it could not be negotiated anyway. */
    SSL_CTX *probe = NULL;
    for (size_t i = 0; names && names[i]; i++) {
        const suite *s = find_suite(names[i]);
        if (s->kind != SUITE_TLS13 && !caa_strv_contains(openssl_names, s->openssl) &&
            (s->kind == SUITE_TLS12 || openssl_offers(&probe, s->openssl)))
            caa_strv_push(&openssl_names, s->openssl);
    }
    SSL_CTX_free(probe);

    *ret = (caa_tls_profile){
        .min_version = min,
        .cipher_suites = TAKE_PTR(names),
        .openssl_ciphers = openssl_names ? caa_strv_join(openssl_names, ":") : NULL,
        /* Only TLS 1.3 names (or insecure ones OpenSSL lacks): as with Go,
         * no TLS 1.2 suite is left, so only TLS 1.3 can be negotiated. */
        .no_tls12 = caa_strv_len(cipher_suites) > 0 && !openssl_names,
        .insecure = TAKE_PTR(insecure),
    };
    return 0;
}

void caa_tls_profile_copy(const caa_tls_profile *src, caa_tls_profile *dst)
{
    *dst = (caa_tls_profile){
        .min_version = src->min_version,
        .cipher_suites = caa_strv_copy(src->cipher_suites),
        .openssl_ciphers = src->openssl_ciphers ? xstrdup(src->openssl_ciphers) : NULL,
        .no_tls12 = src->no_tls12,
        .insecure = caa_strv_copy(src->insecure),
    };
}

void caa_tls_profile_done(caa_tls_profile *p)
{
    if (!p)
        return;
    caa_strv_free(p->cipher_suites);
    free(p->openssl_ciphers);
    caa_strv_free(p->insecure);
    *p = (caa_tls_profile){0};
}

const char *caa_tls_profile_min_version_name(const caa_tls_profile *p)
{
    return p && p->min_version == TLS1_3_VERSION ? "VersionTLS13" : "VersionTLS12";
}

static bool is_set(const char *s)
{
    return s && *s;
}

int caa_tls_check_flags(const char *ca_cert_file, const char *cert_file, const char *cert_key,
                        bool skip_verify, caa_error **err)
{
    if (is_set(ca_cert_file) && skip_verify)
        return caa_error_set(err, -EINVAL,
                             "-ca-cert-file and -tls-skip-verify cannot be used together: "
                             "a CA is only used to verify the peer");
    if (is_set(cert_file) && !is_set(cert_key))
        return caa_error_set(err, -EINVAL, "-cert-file is set but -cert-key is not: both are needed");
    if (!is_set(cert_file) && is_set(cert_key))
        return caa_error_set(err, -EINVAL, "-cert-key is set but -cert-file is not: both are needed");
    return 0;
}
