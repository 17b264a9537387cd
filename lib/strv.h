/* NULL-terminated string vectors. */
#pragma once

#include <stddef.h>

#include "cleanup.h"

size_t caa_strv_len(char *const *v);
/* Appends a copy of s; *v may be NULL. */
void caa_strv_push(char ***v, const char *s);
/* Splits on sep, dropping empty items and trimming spaces; appends to *v. */
void caa_strv_split_append(char ***v, const char *s, char sep);
char **caa_strv_copy(char *const *v);
void caa_strv_free(char **v);
/* Joins with sep into a new string. */
char *caa_strv_join(char *const *v, const char *sep);
int caa_strv_contains(char *const *v, const char *s);

static inline void caa_strv_freep(char ***v)
{
    caa_strv_free(*v);
    *v = NULL;
}
#define _cleanup_strv_ _cleanup_(caa_strv_freep)
