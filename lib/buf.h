/* Growable byte buffer, always NUL-terminated so text built in it is a C
 * string. Zero-initialise (caa_buf b = {0}) and free with caa_buf_done() or
 * hand the bytes on with caa_buf_steal(). Allocation aborts on OOM (xalloc.h). */
#pragma once

#include <stdarg.h>
#include <stddef.h>

typedef struct caa_buf {
    char *data; /* NULL until the first append; then data[len] == '\0' */
    size_t len;
    size_t cap;
} caa_buf;

/* Makes room for n more bytes plus the terminator; reserve(b, 0) turns an
 * empty buffer into a valid empty string. */
void caa_buf_reserve(caa_buf *b, size_t n);
void caa_buf_append(caa_buf *b, const void *p, size_t n);
void caa_buf_puts(caa_buf *b, const char *s);
void caa_buf_putc(caa_buf *b, char c);
void caa_buf_printf(caa_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Returns the bytes (never NULL: an empty buffer gives "") and empties b. */
char *caa_buf_steal(caa_buf *b, size_t *ret_len);
/* Frees the bytes, zeroing them first when they held a secret. */
void caa_buf_done(caa_buf *b);
void caa_buf_wipe_done(caa_buf *b);
