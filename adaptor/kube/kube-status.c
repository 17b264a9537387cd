/* Status objects and HTTP codes of the Kubernetes API into caa_error. */
#include "kube-status.h"

#include <errno.h>
#include <string.h>

#include <jansson.h>

#include "xalloc.h"

int caa_kube_errno_from_http(long http_status, const char *reason)
{
    switch (http_status) {
    case 400:
    case 422:
        return -EINVAL;
    case 401:
        return -EACCES;
    case 403:
        return -EPERM;
    case 404:
        return -ENOENT;
    case 409:
        return reason && strcmp(reason, "AlreadyExists") == 0 ? -EEXIST : -EBUSY;
    case 410:
        return -ESTALE;
    case 429:
        return -EAGAIN;
    default:
        return -EIO;
    }
}

static const char *default_text(long http_status)
{
    switch (http_status) {
    case 401:
        return "unauthorized (the token or client certificate was refused)";
    case 403:
        return "forbidden (RBAC: the service account lacks this permission)";
    case 404:
        return "not found";
    case 409:
        return "conflict";
    case 429:
        return "too many requests";
    default:
        return http_status >= 500 ? "server error" : "request refused";
    }
}

/* Printable ASCII only, bounded: server text goes into log lines. */
static void copy_clean(char *dst, size_t cap, const char *src)
{
    size_t n = 0;
    for (; src && *src && n + 1 < cap; src++)
        dst[n++] = (*src >= 0x20 && *src < 0x7f) ? *src : '?';
    dst[n] = '\0';
}

caa_error *caa_kube_status_error(long http_status, const char *body, size_t len, const char *verb,
                                 const char *path)
{
    char message[CAA_KUBE_STATUS_MESSAGE_MAX + 1] = "";
    char reason[64] = "";
    json_t *root = body && len ? json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
    if (json_is_object(root) && json_is_string(json_object_get(root, "kind")) &&
        strcmp(json_string_value(json_object_get(root, "kind")), "Status") == 0) {
        copy_clean(message, sizeof(message), json_string_value(json_object_get(root, "message")));
        copy_clean(reason, sizeof(reason), json_string_value(json_object_get(root, "reason")));
    }
    json_decref(root);
    int code = caa_kube_errno_from_http(http_status, reason);
    _cleanup_free_ char *safe_path = xstrndup(path ? path : "", strcspn(path ? path : "", "?"));
    return caa_error_new(code, "%s %s: HTTP %ld%s%s: %s", verb, safe_path, http_status, *reason ? " " : "",
                         reason, *message ? message : default_text(http_status));
}

bool caa_kube_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && c != '-' && c != '.')
            return false;
        if ((i == 0 || i == n - 1) && !alnum)
            return false;
    }
    return true;
}
