#include "codec.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>
#include <zlib.h>

#include "xalloc.h"

char *caa_bootdata_base64_encode(const void *data, size_t len)
{
    /* EVP_EncodeBlock takes an int length; boot data is far below that. */
    if (len > INT_MAX / 4 * 3)
        caa_oom();
    size_t out_len = 4 * ((len + 2) / 3);
    char *out = xmalloc(out_len + 1);
    int n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    out[n] = '\0';
    return out;
}

static bool is_b64_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_b64_alpha(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

int caa_bootdata_base64_decode(const char *text, size_t len, size_t max_out, void **ret, size_t *ret_len,
                               caa_error **err)
{
    /* Collect the significant characters first so the checks below see one
     * contiguous string (EVP_DecodeBlock rejects inner whitespace). */
    _cleanup_free_ char *clean = xmalloc(len + 1);
    size_t n = 0, pad = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (is_b64_space(c))
            continue;
        if (c == '=') {
            pad++;
        } else if (!is_b64_alpha(c) || pad > 0) {
            return caa_error_set(err, -EINVAL, "invalid base64: unexpected character at offset %zu", i);
        }
        clean[n++] = c;
    }
    if (n % 4 != 0)
        return caa_error_set(err, -EINVAL, "invalid base64: length %zu is not a multiple of 4", n);
    if (pad > 2)
        return caa_error_set(err, -EINVAL, "invalid base64: too much padding");
    size_t out_len = n / 4 * 3 - pad;
    if (out_len > max_out)
        return caa_error_set(err, -EFBIG, "decoded data is %zu bytes, more than the %zu allowed", out_len,
                             max_out);
    if (n > INT_MAX)
        return caa_error_set(err, -EFBIG, "base64 text too long");
    _cleanup_free_ unsigned char *out = xmalloc(n / 4 * 3 + 1);
    if (n > 0 && EVP_DecodeBlock(out, (const unsigned char *)clean, (int)n) < 0)
        return caa_error_set(err, -EINVAL, "invalid base64");
    out[out_len] = '\0';
    *ret = TAKE_PTR(out);
    *ret_len = out_len;
    return 0;
}

int caa_bootdata_gzip_compress(const void *data, size_t len, void **ret, size_t *ret_len, caa_error **err)
{
    z_stream zs = {0};
    /* windowBits 15 + 16: write a gzip header and trailer, not zlib. */
    if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return caa_error_set(err, -ENOMEM, "gzip: cannot initialise deflate");
    if (len > UINT_MAX) {
        deflateEnd(&zs);
        return caa_error_set(err, -EFBIG, "gzip: input too large");
    }
    size_t cap = deflateBound(&zs, (uLong)len);
    _cleanup_free_ unsigned char *out = xmalloc(cap + 1);
    zs.next_in = (Bytef *)data;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    int zr = deflate(&zs, Z_FINISH);
    size_t produced = zs.total_out;
    deflateEnd(&zs);
    if (zr != Z_STREAM_END)
        return caa_error_set(err, -EIO, "gzip: compression failed (%d)", zr);
    *ret = TAKE_PTR(out);
    *ret_len = produced;
    return 0;
}

int caa_bootdata_gzip_decompress(const void *data, size_t len, size_t max_out, void **ret, size_t *ret_len,
                                 caa_error **err)
{
    if (len > UINT_MAX)
        return caa_error_set(err, -EFBIG, "gzip: input too large");
    z_stream zs = {0};
    /* 15 + 16: accept gzip only (no zlib or raw deflate). */
    if (inflateInit2(&zs, 15 + 16) != Z_OK)
        return caa_error_set(err, -ENOMEM, "gzip: cannot initialise inflate");
    size_t cap = len * 4 < 4096 ? 4096 : len * 4;
    if (cap > max_out + 1)
        cap = max_out + 1;
    _cleanup_free_ unsigned char *out = xmalloc(cap + 1);
    zs.next_in = (Bytef *)data;
    zs.avail_in = (uInt)len;
    int zr;
    int r = 0;
    for (;;) {
        if (zs.total_out == cap) {
            if (cap > max_out) {
                r = caa_error_set(err, -EFBIG, "gzip: decompressed data is more than %zu bytes", max_out);
                break;
            }
            cap = cap * 2 > max_out + 1 ? max_out + 1 : cap * 2;
            out = xrealloc(out, cap + 1);
        }
        zs.next_out = out + zs.total_out;
        zs.avail_out = (uInt)(cap - zs.total_out);
        zr = inflate(&zs, Z_NO_FLUSH);
        if (zr == Z_STREAM_END)
            break;
        if (zr == Z_BUF_ERROR && zs.avail_out > 0) {
            r = caa_error_set(err, -EINVAL, "gzip: truncated data");
            break;
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            r = caa_error_set(err, -EINVAL, "gzip: corrupt data (%s)", zs.msg ? zs.msg : "unknown");
            break;
        }
    }
    size_t produced = zs.total_out;
    size_t left = zs.avail_in;
    inflateEnd(&zs);
    if (r < 0)
        return r;
    if (produced > max_out)
        return caa_error_set(err, -EFBIG, "gzip: decompressed data is more than %zu bytes", max_out);
    if (left != 0)
        return caa_error_set(err, -EINVAL, "gzip: %zu unexpected bytes after the compressed data", left);
    out[produced] = '\0';
    *ret = TAKE_PTR(out);
    *ret_len = produced;
    return 0;
}
