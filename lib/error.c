#include "error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

static int negative(int code)
{
    if (code > 0)
        return -code;
    if (code == 0)
        return -EIO;
    return code;
}

caa_error *caa_error_new(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    caa_error *e = xmalloc(sizeof(*e));
    e->code = negative(code);
    e->msg = xvasprintf(fmt, ap);
    va_end(ap);
    return e;
}

int caa_error_setv(caa_error **err, int code, const char *fmt, va_list ap)
{
    code = negative(code);
    if (err && !*err) {
        caa_error *e = xmalloc(sizeof(*e));
        e->code = code;
        e->msg = xvasprintf(fmt, ap);
        *err = e;
    }
    return code;
}

int caa_error_set(caa_error **err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = caa_error_setv(err, code, fmt, ap);
    va_end(ap);
    return r;
}

int caa_error_set_errno(caa_error **err, int code, const char *fmt, ...)
{
    code = negative(code);
    if (err && !*err) {
        va_list ap;
        va_start(ap, fmt);
        char *head = xvasprintf(fmt, ap);
        va_end(ap);
        caa_error_set(err, code, "%s: %s", head, strerror(-code));
        free(head);
    }
    return code;
}

int caa_error_prefix(caa_error **err, const char *fmt, ...)
{
    if (!err || !*err)
        return -EIO;
    va_list ap;
    va_start(ap, fmt);
    char *head = xvasprintf(fmt, ap);
    va_end(ap);
    char *msg = xasprintf("%s: %s", head, (*err)->msg);
    free(head);
    free((*err)->msg);
    (*err)->msg = msg;
    return (*err)->code;
}

int caa_error_propagate(caa_error **dst, caa_error **src)
{
    if (!src || !*src)
        return -EIO;
    int code = (*src)->code;
    if (dst && !*dst)
        *dst = *src;
    else
        caa_error_free(*src);
    *src = NULL;
    return code;
}

caa_error *caa_error_copy(const caa_error *e)
{
    if (!e)
        return NULL;
    caa_error *c = xmalloc(sizeof(*c));
    c->code = e->code;
    c->msg = xstrdup(e->msg);
    return c;
}

void caa_error_free(caa_error *e)
{
    if (!e)
        return;
    free(e->msg);
    free(e);
}

const char *caa_error_msg(const caa_error *e)
{
    return e ? e->msg : "unknown error";
}
