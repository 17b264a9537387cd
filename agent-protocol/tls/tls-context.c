/* SSL_CTX builders: profile, identity, trust, verification mode. */
#include <errno.h>

#include <openssl/err.h>

#include "tls-cert-internal.h"
#include "tls-context.h"
#include "tls-error.h"
#include "tls-openssl.h"
#include "xalloc.h"

static const unsigned char session_id_context[] = "caa-agent";

static int apply_profile(SSL_CTX *ctx, const caa_tls_profile *p, caa_error **err)
{
    int min = p && p->min_version ? p->min_version : TLS1_2_VERSION;
    if (p && p->no_tls12)
        min = TLS1_3_VERSION;

    if (!SSL_CTX_set_min_proto_version(ctx, min))
        return caa_tls_error_set(err, -EINVAL, "setting the TLS minimum version");
    if (p && p->openssl_ciphers && !p->no_tls12 && !SSL_CTX_set_cipher_list(ctx, p->openssl_ciphers))
        return caa_tls_error_set(err, -EINVAL, "setting the TLS 1.2 cipher suites '%s'", p->openssl_ciphers);
    /* TLS 1.3 suites in Go's order (the upstream proxy and forwarder are Go):
     * AES-128-GCM first, about a third cheaper per byte than OpenSSL's
     * default first choice AES-256-GCM. All three stay enabled. */
    if (!SSL_CTX_set_ciphersuites(
            ctx, "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384"))
        return caa_tls_error_set(err, -EINVAL, "setting the TLS 1.3 cipher suites");
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    return 0;
}

static int apply_identity(SSL_CTX *ctx, const caa_tls_identity *id, caa_error **err)
{
    if (!SSL_CTX_use_cert_and_key(ctx, id->cert, id->key, id->chain, 1))
        return caa_tls_error_set(err, -EINVAL, "using the TLS certificate and key");
    return 0;
}

static int apply_trust(SSL_CTX *ctx, const caa_tls_trust *t, bool send_ca_names, caa_error **err)
{
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    STACK_OF(X509_NAME) *names = send_ca_names ? sk_X509_NAME_new_null() : NULL;

    for (int i = 0; i < sk_X509_num(t->certs); i++) {
        X509 *x = sk_X509_value(t->certs, i);
        if (!X509_STORE_add_cert(store, x)) {
            unsigned long e = ERR_peek_last_error();
            /* The same certificate twice in a bundle is harmless. */
            if (ERR_GET_REASON(e) != X509_R_CERT_ALREADY_IN_HASH_TABLE) {
                sk_X509_NAME_pop_free(names, X509_NAME_free);
                return caa_tls_error_set(err, -EINVAL, "adding a trusted certificate");
            }
            caa_tls_error_clear();
        }
        if (names) {
            X509_NAME *n = X509_NAME_dup(X509_get_subject_name(x));
            if (!n || !sk_X509_NAME_push(names, n))
                caa_oom();
        }
    }
    X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
    /* The server names acceptable issuers like Go does: a Go client only
     * sends a certificate whose issuer is in that list (or when it is empty). */
    if (names)
        SSL_CTX_set_client_CA_list(ctx, names);
    return 0;
}

int caa_tls_client_ctx_new(const caa_tls_client_config *cfg, SSL_CTX **ret, caa_error **err)
{
    _cleanup_ssl_ctx_ SSL_CTX *ctx = NULL;
    int r;

    if (cfg->ca && cfg->skip_verify)
        return caa_error_set(err, -EINVAL, "TLS client: a CA and skip-verify cannot be used together");
    if (!cfg->ca && !cfg->skip_verify)
        return caa_error_set(err, -EINVAL,
                             "TLS client: a CA to verify the server is required "
                             "(or skip-verify, for testing)");
    caa_tls_error_clear();
    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return caa_tls_error_set(err, -EIO, "creating the TLS client context");
    r = apply_profile(ctx, cfg->profile, err);
    if (r < 0)
        return r;
    if (cfg->identity) {
        r = apply_identity(ctx, cfg->identity, err);
        if (r < 0)
            return r;
    }
    if (cfg->ca) {
        r = apply_trust(ctx, cfg->ca, false, err);
        if (r < 0)
            return r;
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    *ret = TAKE_PTR(ctx);
    return 0;
}

int caa_tls_server_ctx_new(const caa_tls_server_config *cfg, SSL_CTX **ret, caa_error **err)
{
    _cleanup_ssl_ctx_ SSL_CTX *ctx = NULL;
    int r;

    if (!cfg->identity)
        return caa_error_set(err, -EINVAL, "TLS server: a certificate and key are required");
    if (cfg->client_ca && cfg->skip_verify)
        return caa_error_set(err, -EINVAL, "TLS server: a client CA and skip-verify cannot be used together");
    if (!cfg->client_ca && !cfg->skip_verify)
        return caa_error_set(err, -EINVAL,
                             "TLS server: a CA to verify client certificates is required "
                             "(or skip-verify, for testing)");
    caa_tls_error_clear();
    ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return caa_tls_error_set(err, -EIO, "creating the TLS server context");
    r = apply_profile(ctx, cfg->profile, err);
    if (r < 0)
        return r;
    /* No resumption: every connection is verified in full. */
    SSL_CTX_set_num_tickets(ctx, 0);
    if (!SSL_CTX_set_session_id_context(ctx, session_id_context, sizeof(session_id_context) - 1))
        return caa_tls_error_set(err, -EIO, "setting the TLS session id context");
    r = apply_identity(ctx, cfg->identity, err);
    if (r < 0)
        return r;
    if (cfg->client_ca) {
        r = apply_trust(ctx, cfg->client_ca, true, err);
        if (r < 0)
            return r;
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    *ret = TAKE_PTR(ctx);
    return 0;
}
