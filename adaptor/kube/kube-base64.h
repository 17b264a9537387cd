/* Strict standard base64 (RFC 4648, padded) for Kubernetes []byte fields:
 * Secret data and kubeconfig *-data. */
#pragma once

#include <stddef.h>

#include "error.h"

/* Decodes text (len bytes, no whitespace) into a new NUL-terminated buffer.
 * -EINVAL for anything but canonical padded base64. */
int caa_kube_base64_decode(const char *text, size_t len, char **ret, size_t *ret_len, caa_error **err);
/* Encodes len bytes; the result is NUL-terminated. */
char *caa_kube_base64_encode(const void *data, size_t len);
