/* Base64 through OpenSSL's block coder, after a strict check of the text:
 * EVP_DecodeBlock alone accepts whitespace and miscounts padding. */
#include "kube-base64.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <openssl/evp.h>

#include "xalloc.h"

static bool is_b64_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

int caa_kube_base64_decode(const char *text, size_t len, char **ret, size_t *ret_len, caa_error **err)
{
    if (len % 4 != 0 || len > (size_t)INT32_MAX)
        return caa_error_set(err, -EINVAL, "invalid base64: length %zu is not a multiple of 4", len);
    size_t pad = 0;
    if (len >= 1 && text[len - 1] == '=')
        pad++;
    if (len >= 2 && text[len - 2] == '=')
        pad++;
    for (size_t i = 0; i < len - pad; i++)
        if (!is_b64_char((unsigned char)text[i]))
            return caa_error_set(err, -EINVAL, "invalid base64: unexpected character at offset %zu", i);
    char *out = xmalloc(len / 4 * 3 + 1);
    int n = len ? EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)text, (int)len) : 0;
    if (n < 0) {
        free(out);
        return caa_error_set(err, -EINVAL, "invalid base64");
    }
    size_t out_len = (size_t)n - pad;
    out[out_len] = '\0';
    *ret = out;
    *ret_len = out_len;
    return 0;
}

char *caa_kube_base64_encode(const void *data, size_t len)
{
    char *out = xmalloc((len + 2) / 3 * 4 + 1);
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}
