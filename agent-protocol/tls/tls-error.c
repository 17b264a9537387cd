/* OpenSSL error queue -> caa_error. */
#include <stdarg.h>
#include <string.h>

#include <openssl/err.h>

#include "tls-error.h"
#include "xalloc.h"

/* Bound the text: a broken peer must not make us build megabytes of it. */
#define MAX_ENTRIES 8

static char *entry_text(unsigned long e, const char *data, int flags)
{
    const char *reason = ERR_reason_error_string(e);
    char code[32];

    if (!reason) {
        snprintf(code, sizeof(code), "error:%08lX", e);
        reason = code;
    }
    if (data && *data && (flags & ERR_TXT_STRING))
        return xasprintf("%s (%s)", reason, data);
    return xstrdup(reason);
}

char *caa_tls_error_queue_drain(unsigned long *codes, unsigned max_codes, unsigned *ret_n)
{
    char *out = NULL, *last = NULL;
    unsigned n = 0, n_codes = 0;
    unsigned long e;
    const char *data;
    int flags;

    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        if (codes && n_codes < max_codes)
            codes[n_codes++] = e;
        if (n >= MAX_ENTRIES)
            continue; /* keep draining */
        char *t = entry_text(e, data, flags);
        if (last && strcmp(last, t) == 0) {
            free(t);
            continue;
        }
        if (!out) {
            out = xstrdup(t);
        } else {
            char *joined = xasprintf("%s; %s", out, t);
            free(out);
            out = joined;
        }
        free(last);
        last = t;
        n++;
    }
    free(last);
    if (ret_n)
        *ret_n = n_codes;
    return out;
}

char *caa_tls_error_queue_text(void)
{
    return caa_tls_error_queue_drain(NULL, 0, NULL);
}

int caa_tls_error_set(caa_error **err, int code, const char *fmt, ...)
{
    va_list ap;
    char *what, *queue;

    va_start(ap, fmt);
    what = xvasprintf(fmt, ap);
    va_end(ap);
    queue = caa_tls_error_queue_text();
    if (queue)
        code = caa_error_set(err, code, "%s: %s", what, queue);
    else
        code = caa_error_set(err, code, "%s", what);
    free(queue);
    free(what);
    return code;
}

void caa_tls_error_clear(void)
{
    /* Clearing walks and frees every slot of the queue, which costs more
     * than a small record's encryption; an empty queue needs nothing. */
    if (ERR_peek_error() != 0)
        ERR_clear_error();
}
