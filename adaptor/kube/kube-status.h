/* Kubernetes API answers that are not 2xx: the Status object (kind Status,
 * reason, message, code) turned into one clear error naming the verb and the
 * resource, and the HTTP code mapped to an errno-class value:
 *
 *   400/422 -EINVAL   401 -EACCES (credentials)   403 -EPERM (RBAC)
 *   404 -ENOENT       409 AlreadyExists -EEXIST, other 409 -EBUSY
 *   410 -ESTALE       429 -EAGAIN    5xx and anything else -EIO
 *
 * The server's message is cut to a bounded length and stripped of control
 * characters before it reaches a log line. Names of resources are checked
 * here too (what may be put into a request path). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

#define CAA_KUBE_STATUS_MESSAGE_MAX 300

int caa_kube_errno_from_http(long http_status, const char *reason);
/* A new error for a non-2xx answer; body may be NULL or anything (hostile). */
caa_error *caa_kube_status_error(long http_status, const char *body, size_t len, const char *verb,
                                 const char *path);
/* RFC 1123 subdomain (object names, namespaces): [a-z0-9.-], at most 253,
 * starting and ending alphanumeric. */
bool caa_kube_name_valid(const char *name);
