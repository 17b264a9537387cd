/* Kubernetes quantity arithmetic; see quantity.h. */
#include "quantity.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define NANO_PER_UNIT ((caa_quantity)1000000000)
#define MAX_UNITS ((caa_quantity)INT64_MAX)
#define MAX_NANO (MAX_UNITS * NANO_PER_UNIT)

typedef struct suffix {
    const char *text;
    int decimal_exponent; /* value * 10^decimal_exponent */
    int binary_exponent;  /* then * 2^binary_exponent */
} suffix;

static const suffix suffixes[] = {
    {"", 0, 0},    {"n", -9, 0},  {"u", -6, 0},  {"m", -3, 0},  {"k", 3, 0},   {"M", 6, 0},
    {"G", 9, 0},   {"T", 12, 0},  {"P", 15, 0},  {"E", 18, 0},  {"Ki", 0, 10}, {"Mi", 0, 20},
    {"Gi", 0, 30}, {"Ti", 0, 40}, {"Pi", 0, 50}, {"Ei", 0, 60},
};

static int invalid(caa_error **err, const char *text, size_t len, const char *why)
{
    if (len > CAA_QUANTITY_MAX_TEXT)
        return caa_error_set(err, -EINVAL, "quantity of %zu characters: %s", len, why);
    /* The text is printed with %.*s after checking it is printable below. */
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] < 0x20 || (unsigned char)text[i] > 0x7e)
            return caa_error_set(err, -EINVAL, "quantity with non-printable characters: %s", why);
    return caa_error_set(err, -EINVAL, "quantity \"%.*s\": %s", (int)len, text, why);
}

/* Parses the e-notation exponent after 'e'/'E'. */
static bool parse_exponent(const char *s, size_t len, int *ret)
{
    size_t i = 0;
    bool negative = false;
    if (i < len && (s[i] == '+' || s[i] == '-'))
        negative = s[i++] == '-';
    if (i == len || len - i > 3)
        return false;
    int v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *ret = negative ? -v : v;
    return true;
}

int caa_quantity_parse(const char *text, size_t len, caa_quantity *ret, caa_error **err)
{
    if (len == 0)
        return caa_error_set(err, -EINVAL, "empty quantity");
    if (len > CAA_QUANTITY_MAX_TEXT)
        return invalid(err, text, len, "too long");

    size_t i = 0;
    if (text[i] == '+')
        i++;
    else if (text[i] == '-')
        return invalid(err, text, len, "negative quantities are not allowed");

    caa_quantity mantissa = 0;
    int fraction_digits = 0, digits = 0;
    bool seen_point = false;
    for (; i < len; i++) {
        char c = text[i];
        if (c == '.' && !seen_point) {
            seen_point = true;
            continue;
        }
        if (c < '0' || c > '9')
            break;
        if (mantissa > MAX_NANO / 10)
            return invalid(err, text, len, "too large");
        mantissa = mantissa * 10 + (c - '0');
        digits++;
        if (seen_point)
            fraction_digits++;
    }
    if (digits == 0)
        return invalid(err, text, len, "no digits");

    const char *rest = text + i;
    size_t rest_len = len - i;
    int dec = 0, bin = 0;
    bool known = false;
    for (size_t k = 0; k < CAA_ARRAY_SIZE(suffixes); k++) {
        if (strlen(suffixes[k].text) == rest_len && memcmp(suffixes[k].text, rest, rest_len) == 0) {
            dec = suffixes[k].decimal_exponent;
            bin = suffixes[k].binary_exponent;
            known = true;
            break;
        }
    }
    if (!known && rest_len > 1 && (rest[0] == 'e' || rest[0] == 'E'))
        known = parse_exponent(rest + 1, rest_len - 1, &dec);
    if (!known)
        return invalid(err, text, len,
                       "unknown suffix (expected n, u, m, k, M, G, T, P, E, Ki..Ei or e<exp>)");

    /* value in nano-units = mantissa * 10^(9 + dec - fraction_digits) * 2^bin */
    int scale = 9 + dec - fraction_digits;
    caa_quantity v = mantissa;
    for (int b = 0; b < bin; b++) {
        if (v > MAX_NANO / 2)
            return invalid(err, text, len, "too large");
        v *= 2;
    }
    for (; scale > 0; scale--) {
        if (v > MAX_NANO / 10)
            return invalid(err, text, len, "too large");
        v *= 10;
    }
    for (; scale < 0 && v != 0; scale++)
        v = v / 10 + (v % 10 != 0); /* finer than nano: round up */
    if (v > MAX_NANO)
        return invalid(err, text, len, "too large");
    *ret = v;
    return 0;
}

int caa_quantity_add(caa_quantity a, caa_quantity b, caa_quantity *sum, caa_error **err)
{
    if (a > MAX_NANO - b)
        return caa_error_set(err, -ERANGE, "sum of quantities too large");
    *sum = a + b;
    return 0;
}

int64_t caa_quantity_ceil_units(caa_quantity q)
{
    return (int64_t)((q + NANO_PER_UNIT - 1) / NANO_PER_UNIT);
}

int64_t caa_quantity_ceil_mib(caa_quantity q)
{
    int64_t bytes = caa_quantity_ceil_units(q);
    const int64_t mib = 1024 * 1024;
    return bytes / mib + (bytes % mib != 0);
}

void caa_quantity_format(caa_quantity q, char *buf, size_t size)
{
    static const char *const names[] = {"n", "u", "m", "", "k", "M", "G", "T", "P", "E"};
    if (q == 0) {
        snprintf(buf, size, "0");
        return;
    }
    /* Largest decimal-SI suffix that keeps the number whole. */
    size_t pick = 0;
    caa_quantity number = q;
    for (size_t k = 1; k < CAA_ARRAY_SIZE(names); k++) {
        if (number % 1000 != 0)
            break;
        number /= 1000;
        pick = k;
    }
    /* number <= 9.2e27 / 1000^pick; print the 128-bit value digit by digit. */
    char digits[48];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + (int)(number % 10));
        number /= 10;
    } while (number != 0 && n < sizeof(digits));
    size_t o = 0;
    while (n > 0 && o + 1 < size)
        buf[o++] = digits[--n];
    snprintf(buf + o, size - o, "%s", names[pick]);
}
