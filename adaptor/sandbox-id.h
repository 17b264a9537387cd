/* Sandbox ids name a directory under the pods dir, so they must be safe as a
 * single path component. Kata uses 64 hex characters. */
#pragma once

#include "error.h"

#define CAA_SANDBOX_ID_MAX 128
/* The one entry of the pods dir that is not a pod: the daemon's TLS material
 * (<pods-dir>/.tls). It is refused as a sandbox id and skipped by the scan. */
#define CAA_PODS_DIR_TLS_NAME ".tls"

/* 0 when id is 1..128 characters of [A-Za-z0-9._-] and not ".", ".." or ".tls";
 * -EINVAL with a message otherwise ("empty sandbox id" for ""/NULL, as upstream). */
int caa_sandbox_id_check(const char *id, caa_error **err);
