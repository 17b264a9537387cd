/* Growable byte buffer (buf.h). */
#include "buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

#define BUF_MIN_CAP 64

void caa_buf_reserve(caa_buf *b, size_t n)
{
    if (n > SIZE_MAX - b->len - 1)
        caa_oom();
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : BUF_MIN_CAP;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
    b->data[b->len] = '\0';
}

void caa_buf_append(caa_buf *b, const void *p, size_t n)
{
    caa_buf_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void caa_buf_puts(caa_buf *b, const char *s)
{
    caa_buf_append(b, s, strlen(s));
}

void caa_buf_putc(caa_buf *b, char c)
{
    caa_buf_append(b, &c, 1);
}

void caa_buf_printf(caa_buf *b, const char *fmt, ...)
{
    /* Formats straight into the spare room and grows once when it was too
     * small (a probe into a 1-byte buffer upsets gcc's format checks under
     * UBSan). */
    caa_buf_reserve(b, 0);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        caa_oom(); /* only an encoding error: our formats are plain */
    if ((size_t)n >= b->cap - b->len) {
        caa_buf_reserve(b, (size_t)n);
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

char *caa_buf_steal(caa_buf *b, size_t *ret_len)
{
    caa_buf_reserve(b, 0);
    char *data = b->data;
    if (ret_len)
        *ret_len = b->len;
    *b = (caa_buf){0};
    return data;
}

void caa_buf_done(caa_buf *b)
{
    free(b->data);
    *b = (caa_buf){0};
}

void caa_buf_wipe_done(caa_buf *b)
{
    if (b->data)
        explicit_bzero(b->data, b->cap);
    caa_buf_done(b);
}
