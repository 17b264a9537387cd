/* Sandbox ids name a directory under the pods dir, so they must be safe as a
 * single path component. Kata uses 64 hex characters. */
#pragma once

#include "error.h"

#define CAA_SANDBOX_ID_MAX 128

/* 0 when id is 1..128 characters of [A-Za-z0-9._-] and not "." or "..";
 * -EINVAL with a message otherwise ("empty sandbox id" for ""/NULL, as upstream). */
int caa_sandbox_id_check(const char *id, caa_error **err);
