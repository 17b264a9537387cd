/* Allocation helpers that abort on out-of-memory.
 *
 * The daemon runs as a DaemonSet pod: when malloc fails the right answer is to
 * die and be restarted, not to thread thousands of untestable NULL checks
 * through the code. Every allocation in the tree goes through these. */
#pragma once

#include <stddef.h>
#include <stdarg.h>

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
/* Overflow-checked array allocation, zeroed. */
#define xnew0(type, n) ((type *)xcalloc((n), sizeof(type)))
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
void *xmemdup(const void *p, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
_Noreturn void caa_oom(void);
