/* Fuzzes the parser of the daemon's TLS store (<pods-dir>/.tls/tls-material.json):
 * never crash, never leak, and an accepted document has whole pairs. */
#include <stdint.h>
#include <stdlib.h>

#include "tls-store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > CAA_TLS_STORE_MAX)
        return 0;
    caa_tls_material m = {0};
    caa_error *err = NULL;
    if (caa_tls_material_parse((const char *)data, size, &m, &err) < 0) {
        caa_error_free(err);
        return 0;
    }
    if (!m.client_cert != !m.client_key || !m.ca_cert != !m.ca_key)
        abort();
    caa_tls_material_done(&m);
    return 0;
}
