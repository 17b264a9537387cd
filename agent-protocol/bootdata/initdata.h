/* initdata: the TOML document (Trustee initdata spec) that configures the
 * guest components of a pod VM, and its transport encoding (gzip, then
 * base64).
 *
 *     algorithm = "sha384"
 *     version = "0.1.0"
 *
 *     [data]
 *     "aa.toml" = '''
 *     ...
 *     '''
 *
 * The parser understands the TOML subset such documents use and nothing else
 * (docs/bootdata.md lists it): comments, the keys `algorithm` and `version`,
 * one `[data]` table whose values are strings in any of TOML's four string
 * forms. Anything outside the subset is an error, not silently skipped. */
#pragma once

#include <stddef.h>

#include "error.h"

/* Bound on the decoded TOML document. */
#define CAA_INITDATA_MAX_SIZE (1024 * 1024)
#define CAA_INITDATA_VERSION "0.1.0"

typedef enum caa_initdata_alg {
    CAA_INITDATA_SHA256 = 0,
    CAA_INITDATA_SHA384,
    CAA_INITDATA_SHA512,
} caa_initdata_alg;

typedef struct caa_initdata_entry {
    char *name;  /* key in [data] */
    char *value; /* NUL-terminated; may contain NUL bytes (\u0000), value_len counts them */
    size_t value_len;
} caa_initdata_entry;

typedef struct caa_initdata {
    caa_initdata_alg alg;
    char *version;
    caa_initdata_entry *data; /* in document order */
    size_t n_data;
} caa_initdata;

void caa_initdata_free(caa_initdata *d);
CAA_DEFINE_CLEANUP(caa_initdata *, caa_initdata_free)
#define _cleanup_initdata_ _cleanup_(caa_initdata_freep)

/* Strict parse of the TOML text (-EINVAL with line number on any error,
 * -EFBIG over CAA_INITDATA_MAX_SIZE). Requires algorithm (sha256, sha384 or
 * sha512) and version "0.1.0"; [data] may be missing (no entries). */
int caa_initdata_parse(const char *toml, size_t len, caa_initdata **ret, caa_error **err);
/* The [data] entry with this name, or NULL. */
const caa_initdata_entry *caa_initdata_find(const caa_initdata *d, const char *name);

const char *caa_initdata_alg_name(caa_initdata_alg alg);
int caa_initdata_alg_from_name(const char *name, caa_initdata_alg *ret);
/* Lowercase hex of hash(alg, data): what the VM writes to initdata.digest. */
char *caa_initdata_digest(caa_initdata_alg alg, const void *data, size_t len);

/* gzip + base64 (one line) of the TOML bytes. */
char *caa_initdata_encode(const void *toml, size_t len, caa_error **err);
/* base64 (whitespace ignored) + gunzip, bounded by CAA_INITDATA_MAX_SIZE.
 * The result is NUL-terminated; *ret_len excludes the NUL. */
int caa_initdata_decode(const char *text, size_t len, char **ret_toml, size_t *ret_len, caa_error **err);
/* Decodes and parses an encoded document; *ret may be NULL (validation only). */
int caa_initdata_decode_parse(const char *text, size_t len, caa_initdata **ret, caa_error **err);

/* The document process-user-data measures when the VM got no initdata:
 * sha256, version 0.1.0 and an empty aa.toml (docs/bootdata.md). */
extern const char caa_initdata_default_toml[];
