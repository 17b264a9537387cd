/* Byte encodings used by boot data: base64 (OpenSSL EVP) and gzip (zlib). */
#pragma once

#include <stddef.h>

#include "error.h"

/* Standard base64 with padding, one line, NUL-terminated. */
char *caa_bootdata_base64_encode(const void *data, size_t len);
/* Strict standard base64: ASCII whitespace (line breaks of a YAML block) is
 * ignored, anything else outside the alphabet, bad padding or a length that
 * is not a multiple of 4 is -EINVAL. The result is NUL-terminated (not
 * counted in *ret_len). */
int caa_bootdata_base64_decode(const char *text, size_t len, size_t max_out, void **ret, size_t *ret_len,
                               caa_error **err);
/* One gzip member (RFC 1952). */
int caa_bootdata_gzip_compress(const void *data, size_t len, void **ret, size_t *ret_len, caa_error **err);
/* Exactly one gzip member, no trailing bytes, at most max_out bytes of output
 * (-EFBIG beyond). The result is NUL-terminated (not counted in *ret_len). */
int caa_bootdata_gzip_decompress(const void *data, size_t len, size_t max_out, void **ret, size_t *ret_len,
                                 caa_error **err);
