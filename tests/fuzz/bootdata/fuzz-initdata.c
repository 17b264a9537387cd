/* Fuzz target bootdata-initdata: base64 + gunzip + strict TOML parse of an
 * encoded initdata document, and the TOML parser on the raw input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "initdata.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const caa_initdata *d)
{
    for (size_t i = 0; i < d->n_data; i++) {
        if (d->data[i].value[d->data[i].value_len] != '\0')
            abort();
        if (caa_initdata_find(d, d->data[i].name) != &d->data[i])
            abort(); /* duplicates must have been rejected */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    caa_initdata *d = NULL;
    caa_error *err = NULL;
    if (caa_initdata_decode_parse((const char *)data, size, &d, &err) == 0) {
        check(d);
        caa_initdata_free(d);
        d = NULL;
    }
    caa_error_free(err);
    err = NULL;

    if (caa_initdata_parse((const char *)data, size, &d, &err) == 0) {
        check(d);
        /* A parsed document survives encode -> decode -> parse. */
        char *enc = caa_initdata_encode(data, size, NULL);
        caa_initdata *again = NULL;
        if (!enc || caa_initdata_decode_parse(enc, strlen(enc), &again, NULL) < 0)
            abort();
        if (again->n_data != d->n_data || again->alg != d->alg)
            abort();
        caa_initdata_free(again);
        free(enc);
        caa_initdata_free(d);
    }
    caa_error_free(err);
    return 0;
}
