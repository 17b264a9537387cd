/* Internals of the certificate code shared with the context builders and
 * the tests (which build unusual certificates: expired, foreign). Not for
 * other users of caa_tls. */
#pragma once

#include <stdbool.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "tls-cert.h"

struct caa_tls_identity {
    X509 *cert;
    STACK_OF(X509) * chain; /* may be NULL */
    EVP_PKEY *key;
};

struct caa_tls_trust {
    STACK_OF(X509) * certs;
};

struct caa_tls_ca {
    X509 *cert;
    EVP_PKEY *key;
};

typedef struct caa__tls_cert_params {
    const char *org;          /* subject O, required */
    const char *common_name;  /* subject CN, or NULL */
    const char *dns_name;     /* single DNS SAN, or NULL */
    bool is_ca;               /* basicConstraints CA:TRUE, keyCertSign|cRLSign */
    bool self_cert_sign;      /* keyCertSign on a non-CA (upstream's self-signed client cert) */
    int ext_key_usage;        /* NID_client_auth, NID_server_auth or 0 */
    long not_before_offset_s; /* relative to now, usually -300 */
    long validity_s;          /* not_after = not_before + validity_s */
} caa__tls_cert_params;

/* Fresh P-256 key plus a certificate for it, signed by issuer_cert/issuer_key
 * or self-signed when they are NULL. */
int caa__tls_cert_build(const caa__tls_cert_params *p, X509 *issuer_cert, EVP_PKEY *issuer_key,
                        X509 **ret_cert, EVP_PKEY **ret_key, caa_error **err);
/* Wraps a certificate and its key (both taken over). */
caa_tls_identity *caa__tls_identity_new(X509 *cert, EVP_PKEY *key);
/* PEM of one certificate / of a PKCS#8 key (secret, see caa_tls_secret_free). */
char *caa__tls_x509_pem(X509 *cert);
char *caa__tls_key_pem(EVP_PKEY *key);
