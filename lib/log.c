#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "xalloc.h"

static caa_log_level current_level = CAA_LOG_INFO;
static caa_log_format current_format = CAA_LOG_TEXT;
static int log_fd = STDERR_FILENO;

static const char *const level_names[] = {"error", "warn", "info", "debug", "trace"};

void caa_log_set_level(caa_log_level level)
{
    current_level = level;
}

caa_log_level caa_log_get_level(void)
{
    return current_level;
}

void caa_log_set_format(caa_log_format format)
{
    current_format = format;
}

void caa_log_set_fd(int fd)
{
    log_fd = fd;
}

const char *caa_log_level_name(caa_log_level level)
{
    if ((unsigned)level >= sizeof(level_names) / sizeof(level_names[0]))
        return "unknown";
    return level_names[level];
}

int caa_log_parse_level(const char *s, caa_log_level *ret)
{
    if (!s)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *ret = (caa_log_level)i;
            return 0;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *ret = CAA_LOG_WARN;
        return 0;
    }
    return -EINVAL;
}

int caa_log_parse_format(const char *s, caa_log_format *ret)
{
    if (s && strcasecmp(s, "text") == 0) {
        *ret = CAA_LOG_TEXT;
        return 0;
    }
    if (s && strcasecmp(s, "json") == 0) {
        *ret = CAA_LOG_JSON;
        return 0;
    }
    return -EINVAL;
}

static void format_time(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* Escape control characters so that one event is always one line. */
static char *escape_line(const char *msg)
{
    size_t len = strlen(msg);
    char *out = xmalloc(len * 4 + 1);
    char *o = out;
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
        if (*p == '\n') {
            *o++ = '\\';
            *o++ = 'n';
        } else if (*p < 0x20 || *p == 0x7f) {
            o += sprintf(o, "\\x%02x", *p);
        } else {
            *o++ = (char)*p;
        }
    }
    *o = '\0';
    return out;
}

static void write_all(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(log_fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        buf += n;
        len -= (size_t)n;
    }
}

void caa_logv(caa_log_level level, const char *component, const char *sandbox, const char *fmt, va_list ap)
{
    int saved_errno = errno;
    char ts[40];
    format_time(ts, sizeof(ts));
    char *msg = xvasprintf(fmt, ap);
    char *line;

    if (current_format == CAA_LOG_JSON) {
        json_t *o = json_object();
        json_object_set_new(o, "time", json_string(ts));
        json_object_set_new(o, "level", json_string(caa_log_level_name(level)));
        json_object_set_new(o, "component", json_string(component ? component : ""));
        if (sandbox)
            json_object_set_new(o, "sandbox_id", json_string(sandbox));
        /* json_string rejects invalid UTF-8; keep the event anyway. */
        json_t *m = json_string(msg);
        if (!m) {
            char *esc = escape_line(msg);
            m = json_stringn_nocheck(esc, strlen(esc));
            free(esc);
        }
        json_object_set_new(o, "msg", m);
        char *body = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(o);
        if (!body)
            caa_oom();
        line = xasprintf("%s\n", body);
        free(body);
    } else {
        char *esc = escape_line(msg);
        if (sandbox)
            line = xasprintf("%s %-5s [%s] sandbox=%s %s\n", ts, caa_log_level_name(level), component,
                             sandbox, esc);
        else
            line = xasprintf("%s %-5s [%s] %s\n", ts, caa_log_level_name(level), component, esc);
        free(esc);
    }
    write_all(line, strlen(line));
    free(line);
    free(msg);
    errno = saved_errno;
}

void caa_log(caa_log_level level, const char *component, const char *sandbox, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    caa_logv(level, component, sandbox, fmt, ap);
    va_end(ap);
}
