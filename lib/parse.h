/* Strict parsers for numbers, booleans and durations (no atoi). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* Whole string must be a base-10 integer within [min, max]; -EINVAL or -ERANGE otherwise. */
int caa_parse_int64(const char *s, int64_t min, int64_t max, int64_t *ret);
int caa_parse_uint64(const char *s, uint64_t max, uint64_t *ret);
/* Value of one hexadecimal digit (either case), or -1 when c is not one. */
int caa_hex_digit_value(int c);
/* Go strconv.ParseBool: 1 t T TRUE true True 0 f F FALSE false False. */
int caa_parse_bool(const char *s, bool *ret);
/* Go time.ParseDuration ("300ms", "1.5h", "2h45m", "0"); a bare integer means seconds.
 * Result in nanoseconds; negative durations are rejected. */
int caa_parse_duration(const char *s, int64_t *ret_ns);
/* Formats nanoseconds as a Go-style duration ("5m0s", "1.5s", "300ms"). */
void caa_format_duration(int64_t ns, char *buf, unsigned len);
