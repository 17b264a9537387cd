#include "strv.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

size_t caa_strv_len(char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

void caa_strv_push(char ***v, const char *s)
{
    size_t n = caa_strv_len(*v);
    *v = xrealloc(*v, (n + 2) * sizeof(char *));
    (*v)[n] = xstrdup(s);
    (*v)[n + 1] = NULL;
}

void caa_strv_split_append(char ***v, const char *s, char sep)
{
    const char *p = s;
    while (p && *p) {
        const char *e = strchr(p, sep);
        size_t len = e ? (size_t)(e - p) : strlen(p);
        const char *b = p;
        while (len && isspace((unsigned char)*b)) {
            b++;
            len--;
        }
        while (len && isspace((unsigned char)b[len - 1]))
            len--;
        if (len) {
            char *item = xstrndup(b, len);
            caa_strv_push(v, item);
            free(item);
        }
        p = e ? e + 1 : NULL;
    }
}

char **caa_strv_copy(char *const *v)
{
    char **out = NULL;
    for (size_t i = 0; v && v[i]; i++)
        caa_strv_push(&out, v[i]);
    return out;
}

void caa_strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

char *caa_strv_join(char *const *v, const char *sep)
{
    size_t total = 1, seplen = strlen(sep);
    for (size_t i = 0; v && v[i]; i++)
        total += strlen(v[i]) + seplen;
    char *out = xmalloc(total);
    char *o = out;
    for (size_t i = 0; v && v[i]; i++) {
        if (i) {
            memcpy(o, sep, seplen);
            o += seplen;
        }
        size_t l = strlen(v[i]);
        memcpy(o, v[i], l);
        o += l;
    }
    *o = '\0';
    return out;
}

int caa_strv_contains(char *const *v, const char *s)
{
    for (size_t i = 0; v && v[i]; i++)
        if (strcmp(v[i], s) == 0)
            return 1;
    return 0;
}
