/* One line per event on stderr, as text or JSON.
 *
 * Each source file defines LOG_COMPONENT (e.g. "adaptor/cloud") before
 * including this header; the component, and the sandbox id for pod events,
 * appear on every line. Never pass secrets or user-data to these calls. */
#pragma once

#include <stdbool.h>
#include <stdarg.h>

typedef enum caa_log_level {
    CAA_LOG_ERROR = 0,
    CAA_LOG_WARN,
    CAA_LOG_INFO,
    CAA_LOG_DEBUG,
    CAA_LOG_TRACE,
} caa_log_level;

typedef enum caa_log_format {
    CAA_LOG_TEXT = 0,
    CAA_LOG_JSON,
} caa_log_format;

void caa_log_set_level(caa_log_level level);
caa_log_level caa_log_get_level(void);
void caa_log_set_format(caa_log_format format);
/* Write log lines to fd instead of stderr (tests). */
void caa_log_set_fd(int fd);
/* Parse "error|warn|warning|info|debug|trace" (case-insensitive). */
int caa_log_parse_level(const char *s, caa_log_level *ret);
/* Parse "text|json". */
int caa_log_parse_format(const char *s, caa_log_format *ret);
const char *caa_log_level_name(caa_log_level level);

static inline bool caa_log_enabled(caa_log_level level)
{
    return level <= caa_log_get_level();
}

void caa_log(caa_log_level level, const char *component, const char *sandbox, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void caa_logv(caa_log_level level, const char *component, const char *sandbox, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

#ifndef LOG_COMPONENT
#    define LOG_COMPONENT "caa"
#endif

#define CAA_LOG_(level, sandbox, ...)                                                                        \
    do {                                                                                                     \
        if (caa_log_enabled(level))                                                                          \
            caa_log((level), LOG_COMPONENT, (sandbox), __VA_ARGS__);                                         \
    } while (0)

#define log_error(...) CAA_LOG_(CAA_LOG_ERROR, NULL, __VA_ARGS__)
#define log_warn(...) CAA_LOG_(CAA_LOG_WARN, NULL, __VA_ARGS__)
#define log_info(...) CAA_LOG_(CAA_LOG_INFO, NULL, __VA_ARGS__)
#define log_debug(...) CAA_LOG_(CAA_LOG_DEBUG, NULL, __VA_ARGS__)
#define log_trace(...) CAA_LOG_(CAA_LOG_TRACE, NULL, __VA_ARGS__)

/* Pod events: the sandbox id is attached to the line. */
#define log_pod_error(id, ...) CAA_LOG_(CAA_LOG_ERROR, (id), __VA_ARGS__)
#define log_pod_warn(id, ...) CAA_LOG_(CAA_LOG_WARN, (id), __VA_ARGS__)
#define log_pod_info(id, ...) CAA_LOG_(CAA_LOG_INFO, (id), __VA_ARGS__)
#define log_pod_debug(id, ...) CAA_LOG_(CAA_LOG_DEBUG, (id), __VA_ARGS__)
