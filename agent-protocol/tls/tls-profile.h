/* TLS profile: minimum protocol version and cipher suites, shared by the
 * worker daemon and the in-VM forwarder.
 *
 * Inputs use upstream's spelling so the same configuration works for both
 * implementations: TLS_MIN_VERSION is "VersionTLS12" (the default when empty)
 * or "VersionTLS13"; TLS_CIPHER_SUITES is a list of IANA suite names. The
 * profile is validated once at start; a bad value is an error that names the
 * offending input, never a silent fallback. */
#pragma once

#include <stdbool.h>

#include "error.h"

typedef struct caa_tls_profile {
    int min_version;       /* TLS1_2_VERSION or TLS1_3_VERSION (OpenSSL constants) */
    char **cipher_suites;  /* IANA names as configured (strv), NULL: library defaults */
    char *openssl_ciphers; /* TLS 1.2 suites in OpenSSL's names joined by ':', NULL: defaults */
    bool no_tls12;         /* the list names only TLS 1.3 suites: TLS 1.2 cannot be negotiated */
    char **insecure;       /* configured names Go lists as insecure (strv): the caller warns */
} caa_tls_profile;

/* Parses and validates. min_version NULL or "" means TLS 1.2. cipher_suites
 * is a NULL-terminated list (NULL or empty: defaults), each entry an IANA name.
 * Accepted: every name upstream's parser accepts (Go's secure and insecure
 * suites, the older ChaCha20 aliases); insecure ones are listed in
 * ret->insecure for a warning. Rejected, with -EINVAL and a message naming
 * the value, as upstream: unknown versions, TLS 1.0/1.1, unknown or empty
 * suite names, any suite list together with TLS 1.3 (its suites are not
 * configurable). TLS 1.3 names in a TLS 1.2 list are accepted and do not
 * restrict TLS 1.3 (as in Go's crypto/tls); a list of only TLS 1.3 names
 * leaves TLS 1.2 without a suite (no_tls12), as in Go. *ret is written only
 * on success. */
int caa_tls_profile_parse(const char *min_version, char *const *cipher_suites, caa_tls_profile *ret,
                          caa_error **err);
/* Copies a parsed profile. */
void caa_tls_profile_copy(const caa_tls_profile *src, caa_tls_profile *dst);
/* Frees the contents; the struct is left zeroed (min_version 0 means TLS 1.2). */
void caa_tls_profile_done(caa_tls_profile *p);
/* "VersionTLS12" or "VersionTLS13" (the apf.json `tls-min-version` value). */
const char *caa_tls_profile_min_version_name(const caa_tls_profile *p);

/* OpenSSL name of a TLS 1.2 IANA suite name (secure or insecure), NULL otherwise. */
const char *caa_tls_cipher_openssl_name(const char *iana);

/* Start-up check of the certificate flags shared by the daemon and the
 * forwarder (-ca-cert-file, -cert-file, -cert-key, -tls-skip-verify); NULL and
 * "" mean unset. A CA together with skip-verify, and a certificate without its
 * key (or the reverse), are -EINVAL. */
int caa_tls_check_flags(const char *ca_cert_file, const char *cert_file, const char *cert_key,
                        bool skip_verify, caa_error **err);
