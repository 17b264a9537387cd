/* How much user-data each cloud accepts. */
#include "userdata.h"

#include <errno.h>
#include <string.h>

#define AWS_MAX_RAW (16 * 1024)
#define AZURE_MAX_BASE64 (64 * 1024)

static size_t base64_len(size_t n)
{
    return 4 * ((n + 2) / 3);
}

size_t caa_userdata_max_size(const char *provider)
{
    if (!provider)
        return 0;
    if (strcmp(provider, "aws") == 0)
        return AWS_MAX_RAW;
    if (strcmp(provider, "azure") == 0)
        return AZURE_MAX_BASE64 / 4 * 3; /* largest raw size whose base64 fits */
    return 0;
}

int caa_userdata_check_size(const char *provider, size_t len, caa_error **err)
{
    size_t max = caa_userdata_max_size(provider);
    if (max == 0 || len <= max)
        return 0;
    if (strcmp(provider, "azure") == 0)
        return caa_error_set(
            err, -EINVAL,
            "user-data is %zu bytes (%zu after base64), over the azure limit of %d bytes after "
            "base64",
            len, base64_len(len), AZURE_MAX_BASE64);
    return caa_error_set(err, -EINVAL, "user-data is %zu bytes, over the %s limit of %zu bytes", len,
                         provider, max);
}
