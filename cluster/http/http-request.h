/* HTTP/1.1 request framing for the webhook server: request line, headers
 * and a Content-Length body, parsed from a buffer that grows as bytes
 * arrive. Only what an admission webhook needs: no chunked bodies (the API
 * server always sends Content-Length), no continuation lines, no upgrade.
 * Everything else is an error that names the problem and carries the HTTP
 * status to answer with before closing. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* Request line plus headers. */
#define CAA_HTTP_MAX_HEAD (16u * 1024)
#define CAA_HTTP_MAX_HEADERS 64

typedef struct caa_http_request {
    char method[16];
    char path[1024];        /* target without the query */
    char content_type[128]; /* "" when absent */
    bool keep_alive;        /* HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with keep-alive */
    const char *body;       /* points into the parsed buffer */
    size_t body_len;
} caa_http_request;

/* Parses one request at the start of buf[0..len).
 *  > 0: a whole request; the value is the number of bytes it used (the next
 *       request, pipelined, starts there); *req is filled;
 *    0: incomplete, read more;
 *  < 0: malformed; *ret_status is the HTTP status to answer (400, also for a
 *       body over max_body, 411, 414, 431, 501, 505) and err says why.
 * max_body bounds Content-Length. */
long caa_http_request_parse(const char *buf, size_t len, size_t max_body, caa_http_request *req,
                            int *ret_status, caa_error **err);
