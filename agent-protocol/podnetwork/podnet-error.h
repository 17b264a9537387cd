/* Error helper shared by the pod network code. */
#pragma once

#include "error.h"

/* Adds context to *err (when the caller asked for an error object) and
 * evaluates to r, so the code survives even when err is NULL:
 *     return PODNET_PREFIXED(r, err, "adding route %s", dst); */
#define PODNET_PREFIXED(r, err, ...) ((void)caa_error_prefix((err), __VA_ARGS__), (r))
