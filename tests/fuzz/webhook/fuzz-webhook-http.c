/* Fuzzes the webhook's HTTP/1.1 request framing with a small body limit:
 * requests are parsed one after the other as a pipelining client would send
 * them. Never crash; a parsed request stays inside the input; an error
 * carries a 4xx/5xx status. */
#include <stdint.h>
#include <stdlib.h>

#include "http-request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    size_t off = 0;
    while (off < size) {
        caa_http_request req;
        int status = 0;
        caa_error *err = NULL;
        long used = caa_http_request_parse(buf + off, size - off, 4096, &req, &status, &err);
        if (used < 0) {
            if (!err || status < 400 || status > 599)
                abort();
            caa_error_free(err);
            break;
        }
        if (used == 0)
            break;
        if ((size_t)used > size - off || req.body < buf + off || req.body + req.body_len > buf + off + used ||
            req.body_len > 4096)
            abort();
        off += (size_t)used;
    }
    return 0;
}
