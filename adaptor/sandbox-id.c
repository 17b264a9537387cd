#include "sandbox-id.h"

#include <errno.h>
#include <string.h>

int caa_sandbox_id_check(const char *id, caa_error **err)
{
    if (!id || !*id)
        return caa_error_set(err, -EINVAL, "empty sandbox id");
    size_t len = strlen(id);
    if (len > CAA_SANDBOX_ID_MAX)
        return caa_error_set(err, -EINVAL, "sandbox id is longer than %d characters", CAA_SANDBOX_ID_MAX);
    if (strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
        return caa_error_set(err, -EINVAL, "invalid sandbox id \"%s\"", id);
    if (strcmp(id, CAA_PODS_DIR_TLS_NAME) == 0)
        return caa_error_set(err, -EINVAL, "sandbox id \"%s\" is reserved", id);
    for (const char *p = id; *p; p++) {
        char c = *p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
            c == '_' || c == '-')
            continue;
        /* Do not echo the id: it may hold control characters or path separators. */
        return caa_error_set(err, -EINVAL,
                             "invalid sandbox id: character 0x%02x at offset %zu is not allowed "
                             "(allowed: A-Z a-z 0-9 . _ -)",
                             (unsigned char)c, (size_t)(p - id));
    }
    return 0;
}
