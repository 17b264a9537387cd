#include "strcheck.h"

#include <errno.h>
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
