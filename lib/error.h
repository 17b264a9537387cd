/* Error objects: a negative errno-class code plus a human-readable message.
 *
 * Contract (see docs/error-handling.md):
 *  - a fallible function returns a negative code (or NULL) and, when its
 *    `caa_error **err` argument is non-NULL, stores a new error there;
 *  - on success it returns >= 0 and leaves *err untouched;
 *  - caa_error_set() returns the code, so call sites are one line:
 *        return caa_error_set(err, -ENOENT, "pod '%s' not found", id);
 *  - foreign errors (curl, libvirt, OpenSSL, cloud codes) are translated
 *    where they enter the tree. */
#pragma once

#include <stdarg.h>

#include "cleanup.h"

typedef struct caa_error {
    int code;  /* negative errno-class value */
    char *msg; /* never NULL */
} caa_error;

/* Sets *err (if err != NULL and *err == NULL) and returns code, forced negative. */
int caa_error_set(caa_error **err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int caa_error_setv(caa_error **err, int code, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
/* Like caa_error_set, appending ": strerror(-code)". */
int caa_error_set_errno(caa_error **err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prepends "prefix: " to an existing error; returns its code (or -EIO when none). */
int caa_error_prefix(caa_error **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Moves *src into *dst (when dst is non-NULL and empty), returns the code. */
int caa_error_propagate(caa_error **dst, caa_error **src);
caa_error *caa_error_new(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
caa_error *caa_error_copy(const caa_error *e);
void caa_error_free(caa_error *e);
const char *caa_error_msg(const caa_error *e);

static inline void caa_error_freep(caa_error **e)
{
    if (*e) {
        caa_error_free(*e);
        *e = NULL;
    }
}
#define _cleanup_error_ _cleanup_(caa_error_freep)
