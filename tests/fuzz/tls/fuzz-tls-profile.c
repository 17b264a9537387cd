/* Fuzz target: TLS profile parsing. Input: first line is TLS_MIN_VERSION,
 * every further line one cipher suite name. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "strv.h"
#include "tls-profile.h"
#include "xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = xstrndup((const char *)data, size);
    char *save = NULL, *min = NULL;
    char **suites = NULL;
    caa_tls_profile p;

    /* strtok_r drops empty lines; keep the first line even when empty. */
    char *nl = strchr(text, '\n');
    if (nl) {
        *nl = '\0';
        min = text;
        for (char *l = strtok_r(nl + 1, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
            caa_strv_push(&suites, l);
    } else {
        min = text;
    }
    caa_error *err = NULL;
    if (caa_tls_profile_parse(min, suites, &p, &err) == 0) {
        /* Whatever is accepted must be usable by OpenSSL. */
        SSL_CTX *ctx = SSL_CTX_new(TLS_method());
        if (!ctx || !SSL_CTX_set_min_proto_version(ctx, p.min_version))
            abort();
        if (p.openssl_ciphers && SSL_CTX_set_cipher_list(ctx, p.openssl_ciphers) != 1)
            abort();
        if (!!p.openssl_ciphers != (caa_strv_len(p.cipher_suites) > 0 && !p.no_tls12))
            abort();
        SSL_CTX_free(ctx);
        caa_tls_profile_done(&p);
    } else if (!err || err->code >= 0 || !err->msg[0]) {
        abort();
    }
    caa_error_free(err);
    caa_strv_free(suites);
    free(text);
    return 0;
}
