#include "strcheck.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "xalloc.h"

int caa_str_check(const char *field, const void *data, size_t len, caa_error **err)
{
    const char *nul = len ? memchr(data, '\0', len) : NULL;
    if (!nul)
        return 0;
    return caa_error_set(err, -EINVAL, "%s: NUL byte at offset %zu (embedded NULs are not allowed)",
                         field ? field : "value", (size_t)(nul - (const char *)data));
}

int caa_str_from_bytes(const char *field, const void *data, size_t len, char **ret, caa_error **err)
{
    int r = caa_str_check(field, data, len, err);
    if (r < 0)
        return r;
    char *s = xmalloc(len + 1);
    if (len)
        memcpy(s, data, len);
    s[len] = '\0';
    *ret = s;
    return 0;
}

static bool is_cont(unsigned char c)
{
    return (c & 0xc0) == 0x80;
}

size_t caa_utf8_seq_len(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    /* Allowed range of the second byte for each lead byte (RFC 3629 table). */
    unsigned char lo = 0x80, hi = 0xbf;
    size_t n;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (len < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (!is_cont(s[i]))
            return 0;
    return n;
}

void caa_str_make_utf8(char *s)
{
    unsigned char *p = (unsigned char *)s;
    size_t len = strlen(s);
    while (len > 0) {
        size_t n = caa_utf8_seq_len(p, len);
        if (n == 0) {
            *p = '?';
            n = 1;
        }
        p += n;
        len -= n;
    }
}
