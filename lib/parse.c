#include "parse.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int caa_parse_int64(const char *s, int64_t min, int64_t max, int64_t *ret)
{
    if (!s || !*s || isspace((unsigned char)s[0]))
        return -EINVAL;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0')
        return -EINVAL;
    if (errno == ERANGE || v < min || v > max)
        return -ERANGE;
    *ret = v;
    return 0;
}

int caa_parse_uint64(const char *s, uint64_t max, uint64_t *ret)
{
    if (!s || !*s || !isdigit((unsigned char)s[0]))
        return -EINVAL;
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0')
        return -EINVAL;
    if (errno == ERANGE || v > max)
        return -ERANGE;
    *ret = v;
    return 0;
}

int caa_parse_bool(const char *s, bool *ret)
{
    static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
    if (!s)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcmp(s, yes[i]) == 0) {
            *ret = true;
            return 0;
        }
        if (strcmp(s, no[i]) == 0) {
            *ret = false;
            return 0;
        }
    }
    return -EINVAL;
}

static int unit_ns(const char *u, size_t len, int64_t *ret)
{
    static const struct {
        const char *name;
        int64_t ns;
    } units[] = {
        {"ns", 1},       {"us", 1000},        {"\xc2\xb5s", 1000},  {"\xce\xbcs", 1000},
        {"ms", 1000000}, {"s", 1000000000LL}, {"m", 60000000000LL}, {"h", 3600000000000LL},
    };
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strlen(units[i].name) == len && memcmp(units[i].name, u, len) == 0) {
            *ret = units[i].ns;
            return 0;
        }
    }
    return -EINVAL;
}

int caa_parse_duration(const char *s, int64_t *ret_ns)
{
    if (!s || !*s)
        return -EINVAL;
    /* A bare non-negative integer is taken as seconds (convenience for env values). */
    int64_t secs;
    if (caa_parse_int64(s, 0, INT64_MAX / 1000000000LL, &secs) == 0) {
        *ret_ns = secs * 1000000000LL;
        return 0;
    }
    if (strcmp(s, "0") == 0) {
        *ret_ns = 0;
        return 0;
    }
    const char *p = s;
    if (*p == '+')
        p++;
    if (*p == '-')
        return -ERANGE;
    long double total = 0;
    bool any = false;
    while (*p) {
        if (!isdigit((unsigned char)*p) && *p != '.')
            return -EINVAL;
        char *end = NULL;
        errno = 0;
        long double v = strtold(p, &end);
        if (end == p || errno == ERANGE)
            return -EINVAL;
        p = end;
        const char *u = p;
        while (*p && !isdigit((unsigned char)*p) && *p != '.')
            p++;
        int64_t mult;
        if (unit_ns(u, (size_t)(p - u), &mult) < 0)
            return -EINVAL;
        total += v * (long double)mult;
        if (total > (long double)INT64_MAX)
            return -ERANGE;
        any = true;
    }
    if (!any)
        return -EINVAL;
    *ret_ns = (int64_t)total;
    return 0;
}

void caa_format_duration(int64_t ns, char *buf, unsigned len)
{
    if (ns == 0) {
        snprintf(buf, len, "0s");
        return;
    }
    if (ns < 1000000000LL) {
        if (ns % 1000000 == 0)
            snprintf(buf, len, "%lldms", (long long)(ns / 1000000));
        else if (ns % 1000 == 0)
            snprintf(buf, len, "%lldus", (long long)(ns / 1000));
        else
            snprintf(buf, len, "%lldns", (long long)ns);
        return;
    }
    int64_t h = ns / 3600000000000LL;
    int64_t m = (ns / 60000000000LL) % 60;
    int64_t sec_ns = ns % 60000000000LL;
    char secs[32];
    if (sec_ns % 1000000000LL == 0)
        snprintf(secs, sizeof(secs), "%llds", (long long)(sec_ns / 1000000000LL));
    else
        snprintf(secs, sizeof(secs), "%.9gs", (double)sec_ns / 1e9);
    if (h)
        snprintf(buf, len, "%lldh%lldm%s", (long long)h, (long long)m, secs);
    else if (m)
        snprintf(buf, len, "%lldm%s", (long long)m, secs);
    else
        snprintf(buf, len, "%s", secs);
}

int caa_hex_digit_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}
