/* AWS Signature Version 4 (header-based), as a pure function.
 *
 * Produces what the official @smithy/signature-v4 signer produces for the
 * same request (uriEscapePath on): canonical path normalised and escaped
 * twice, canonical query sorted by escaped key, header values with CR/LF
 * turned into spaces, runs of spaces/tabs collapsed and the ends trimmed,
 * the always-unsignable headers (user-agent, expect, ...) left out. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "error.h"

typedef struct aws_kv {
    const char *key;
    const char *value;
} aws_kv;

typedef struct aws_credentials {
    char *access_key_id;
    char *secret_access_key;
    char *session_token; /* NULL when none */
    time_t expiration;   /* 0: does not expire */
} aws_credentials;

void aws_credentials_clear(aws_credentials *c);
void aws_credentials_copy(aws_credentials *dst, const aws_credentials *src);

typedef struct aws_sigv4_request {
    const char *method;
    const char *path; /* as sent on the wire, already percent-encoded ("/" for the Query APIs) */
    const aws_kv *query;
    size_t n_query; /* raw keys and values; a repeated key is a list */
    const aws_kv *headers;
    size_t n_headers; /* must include host; names are case-insensitive, no duplicates */
    const void *payload;
    size_t payload_len;
    const char *region;
    const char *service;
    time_t when;
    bool add_content_sha256; /* also send and sign x-amz-content-sha256 (SDK default) */
} aws_sigv4_request;

typedef struct aws_sigv4_result {
    char amz_date[17];       /* X-Amz-Date value, e.g. 20150830T123600Z */
    char payload_sha256[65]; /* hex; x-amz-content-sha256 value when added */
    char signature[65];      /* hex */
    char *signed_headers;    /* "host;x-amz-date" */
    char *authorization;     /* Authorization header value */
    char *canonical_request; /* for tests and debugging; holds no secret */
    char *string_to_sign;
} aws_sigv4_result;

/* Signs req. The caller then sends X-Amz-Date, X-Amz-Security-Token (when
 * creds has a session token), x-amz-content-sha256 (when asked) and
 * Authorization along with the request's own headers. */
int aws_sigv4_sign(const aws_sigv4_request *req, const aws_credentials *creds, aws_sigv4_result *ret,
                   caa_error **err);
void aws_sigv4_result_done(aws_sigv4_result *r);

/* RFC 3986 escaping as the SDK's escapeUri (encodeURIComponent plus
 * !'()*): everything but A-Z a-z 0-9 - _ . ~ becomes %XX (upper-case). */
char *aws_uri_escape(const char *s);
/* Lower-case hex SHA-256 of data into out[65]. */
void aws_sha256_hex(const void *data, size_t len, char out[65]);
