/* Cleanup helpers for OpenSSL objects used inside caa_tls. */
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cleanup.h"

CAA_DEFINE_CLEANUP(BIO *, BIO_free_all)
CAA_DEFINE_CLEANUP(BIGNUM *, BN_free)
CAA_DEFINE_CLEANUP(EVP_PKEY *, EVP_PKEY_free)
CAA_DEFINE_CLEANUP(X509 *, X509_free)
CAA_DEFINE_CLEANUP(X509_EXTENSION *, X509_EXTENSION_free)
CAA_DEFINE_CLEANUP(GENERAL_NAMES *, GENERAL_NAMES_free)
CAA_DEFINE_CLEANUP(SSL_CTX *, SSL_CTX_free)

static inline void caa__x509_stack_freep(STACK_OF(X509) * *p)
{
    if (*p)
        sk_X509_pop_free(*p, X509_free);
}

#define _cleanup_bio_ _cleanup_(BIO_free_allp)
#define _cleanup_bn_ _cleanup_(BN_freep)
#define _cleanup_pkey_ _cleanup_(EVP_PKEY_freep)
#define _cleanup_x509_ _cleanup_(X509_freep)
#define _cleanup_x509_ext_ _cleanup_(X509_EXTENSION_freep)
#define _cleanup_general_names_ _cleanup_(GENERAL_NAMES_freep)
#define _cleanup_ssl_ctx_ _cleanup_(SSL_CTX_freep)
#define _cleanup_x509_stack_ _cleanup_(caa__x509_stack_freep)
