/* SSL_CTX builders for the two ends of the agent connection.
 *
 * Client (worker daemon): presents its client certificate, verifies the
 * server against the CA and the server name (caa_tls_server_name()) unless
 * skip_verify. Server (forwarder in the VM): presents its server certificate
 * and REQUIRES a client certificate that verifies against client_ca. Both
 * accept a trust anchor that is not a CA and not self-issued by a root
 * (X509_V_FLAG_PARTIAL_CHAIN): upstream's generated client certificate is a
 * self-signed non-CA leaf that the VM trusts directly, as Go does.
 *
 * Both apply the profile's minimum version and TLS 1.2 suite list, refuse
 * renegotiation and keep no session cache. The returned SSL_CTX is owned by
 * the caller (SSL_CTX_free); engines created from it hold their own
 * reference. */
#pragma once

#include <stdbool.h>

#include <openssl/ssl.h>

#include "error.h"
#include "tls-cert.h"
#include "tls-profile.h"

typedef struct caa_tls_client_config {
    const caa_tls_profile *profile;   /* NULL: defaults (TLS 1.2+) */
    const caa_tls_identity *identity; /* client certificate; NULL: none presented */
    const caa_tls_trust *ca;          /* verifies the server; NULL only with skip_verify */
    bool skip_verify;                 /* testing only; exclusive with ca */
} caa_tls_client_config;

typedef struct caa_tls_server_config {
    const caa_tls_profile *profile;   /* NULL: defaults (TLS 1.2+) */
    const caa_tls_identity *identity; /* server certificate, required */
    const caa_tls_trust *client_ca;   /* verifies client certificates; NULL only with skip_verify */
    bool skip_verify;                 /* no client certificate asked for; exclusive with client_ca */
} caa_tls_server_config;

int caa_tls_client_ctx_new(const caa_tls_client_config *cfg, SSL_CTX **ret, caa_error **err);
int caa_tls_server_ctx_new(const caa_tls_server_config *cfg, SSL_CTX **ret, caa_error **err);
