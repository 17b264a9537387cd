/* Length-checked strings: the one place where (bytes, length) from outside
 * (protobuf, JSON, YAML, annotations, paths) becomes a C string.
 *
 * A C string ends at its first NUL, so a value holding one would be read as
 * a shorter, different value ("abc\0def" acting on "abc"). Such a value is
 * refused with -EINVAL and a message naming the field, never shortened. */
#pragma once

#include <stddef.h>

#include "error.h"

/* 0 when data[0..len) holds no NUL byte; -EINVAL naming `field` (and the
 * offset of the first NUL) otherwise. data may be NULL when len is 0. */
int caa_str_check(const char *field, const void *data, size_t len, caa_error **err);

/* caa_str_check, then a new NUL-terminated copy of exactly len bytes in *ret
 * (strlen(*ret) == len). *ret is untouched on failure. */
int caa_str_from_bytes(const char *field, const void *data, size_t len, char **ret, caa_error **err);

/* Length of the valid UTF-8 sequence at s[0..len) (1-4), 0 when it is not
 * one (overlong forms, surrogates and values above U+10FFFF included). */
size_t caa_utf8_seq_len(const unsigned char *s, size_t len);

/* Replaces, in place, every byte of s that does not belong to a valid UTF-8
 * sequence with '?': for text that echoes outside input into a protobuf
 * string (a gRPC status message), which peers decode as UTF-8. */
void caa_str_make_utf8(char *s);
