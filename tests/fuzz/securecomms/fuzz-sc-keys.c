/* Fuzz target securecomms-keys: the OpenSSH private key reader and the
 * public key line parser on untrusted bytes (apf.json sc-pp-prv/sc-wn-pub,
 * the kept worker key). A private key that is accepted must give a public
 * line the line parser accepts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sc-keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t blob[CAA_SC_ED25519_BLOB_LEN];
    caa_error *err = NULL;
    if (caa_sc_public_line_blob((const char *)data, size, blob, &err) < 0)
        caa_error_free(err);
    err = NULL;
    caa_sc_key k;
    if (caa_sc_key_from_private((const char *)data, size, &k, &err) < 0) {
        if (!err || k.private_pem)
            abort();
        caa_error_free(err);
        return 0;
    }
    if (caa_sc_public_line_blob(k.public_line, strlen(k.public_line), blob, NULL) < 0)
        abort();
    caa_sc_key_done(&k);
    return 0;
}
