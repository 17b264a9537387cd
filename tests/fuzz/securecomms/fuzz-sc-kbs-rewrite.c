/* Fuzz target securecomms-kbs-rewrite: the KBS tunnel's HTTP request filter.
 * The first byte picks a read size; the result (output or failure) must not
 * depend on how the stream was cut into reads. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sc-kbs-rewrite.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int feed(const uint8_t *data, size_t size, size_t step, caa_buf *out)
{
    caa_sc_kbs_rewriter w;
    caa_sc_kbs_rewriter_init(&w, "fuzz-sid");
    int r = 0;
    for (size_t off = 0; off < size && r == 0;) {
        size_t n = size - off < step ? size - off : step;
        caa_error *err = NULL;
        r = caa_sc_kbs_rewrite_feed(&w, data + off, n, out, &err);
        if ((r < 0) != (err != NULL))
            abort();
        caa_error_free(err);
        off += n;
    }
    caa_sc_kbs_rewriter_done(&w);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)data[0] % 17 + 1;
    data++;
    size--;
    caa_buf whole = {0}, pieces = {0};
    int a = feed(data, size, size ? size : 1, &whole);
    int b = feed(data, size, step, &pieces);
    if (a != b)
        abort();
    /* On success the two outputs are the same bytes. */
    if (a == 0 && (whole.len != pieces.len || (whole.len && memcmp(whole.data, pieces.data, whole.len) != 0)))
        abort();
    caa_buf_done(&whole);
    caa_buf_done(&pieces);
    return 0;
}
