/* Fuzz target: loading certificates and keys from PEM text (apf.json
 * tls-server-cert / tls-server-key / tls-client-ca, -ca-cert-file...). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tls-cert.h"
#include "xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = xstrndup((const char *)data, size);
    caa_tls_trust *t = NULL;
    caa_tls_identity *id = NULL;
    caa_error *err = NULL;

    if (caa_tls_trust_from_pem(text, &t, &err) == 0) {
        if (caa_tls_trust_count(t) == 0)
            abort();
        caa_tls_trust_free(t);
    } else if (!err || err->code >= 0) {
        abort();
    }
    caa_error_freep(&err);

    /* The same text as certificate and key (a combined PEM file). */
    if (caa_tls_identity_from_pem(text, text, &id, &err) == 0) {
        char *pem = caa_tls_identity_cert_pem(id);
        char *key = caa_tls_identity_key_pem(id);
        free(pem);
        caa_tls_secret_free(key);
        caa_tls_identity_free(id);
    } else if (!err || err->code >= 0) {
        abort();
    }
    caa_error_freep(&err);
    free(text);
    return 0;
}
