/* HTTP/1.1 request framing; see http-request.h. */
#include "http-request.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

static int fail(int *ret_status, int status, caa_error **err, const char *why)
{
    *ret_status = status;
    return caa_error_set(err, -EINVAL, "%s", why);
}

static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool is_field_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* Finds the end of the head ("\r\n\r\n"); returns its length including the
 * blank line, 0 when not there yet. */
static size_t head_length(const char *buf, size_t len)
{
    for (size_t i = 0; i + 3 < len; i++)
        if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n')
            return i + 4;
    return 0;
}

static int parse_request_line(const char *line, size_t len, caa_http_request *req, bool *http10, int *st,
                              caa_error **err)
{
    const char *sp1 = memchr(line, ' ', len);
    if (!sp1 || sp1 == line)
        return fail(st, 400, err, "malformed request line");
    size_t mlen = (size_t)(sp1 - line);
    if (mlen >= sizeof(req->method))
        return fail(st, 501, err, "unknown method");
    for (size_t i = 0; i < mlen; i++)
        if (!is_tchar((unsigned char)line[i]))
            return fail(st, 400, err, "malformed method");
    const char *target = sp1 + 1;
    const char *sp2 = memchr(target, ' ', len - (size_t)(target - line));
    if (!sp2 || sp2 == target)
        return fail(st, 400, err, "malformed request line");
    size_t tlen = (size_t)(sp2 - target);
    const char *version = sp2 + 1;
    size_t vlen = len - (size_t)(version - line);
    if (vlen == 8 && memcmp(version, "HTTP/1.1", 8) == 0)
        *http10 = false;
    else if (vlen == 8 && memcmp(version, "HTTP/1.0", 8) == 0)
        *http10 = true;
    else if (vlen >= 5 && memcmp(version, "HTTP/", 5) == 0)
        return fail(st, 505, err, "HTTP version not supported");
    else
        return fail(st, 400, err, "malformed request line");
    if (target[0] != '/')
        return fail(st, 400, err, "request target must be a path");
    const char *query = memchr(target, '?', tlen);
    size_t plen = query ? (size_t)(query - target) : tlen;
    if (plen >= sizeof(req->path))
        return fail(st, 414, err, "request target too long");
    for (size_t i = 0; i < tlen; i++)
        if ((unsigned char)target[i] <= 0x20 || (unsigned char)target[i] >= 0x7f)
            return fail(st, 400, err, "malformed request target");
    memcpy(req->method, line, mlen);
    req->method[mlen] = '\0';
    memcpy(req->path, target, plen);
    req->path[plen] = '\0';
    return 0;
}

static bool token_in_list(const char *v, size_t len, const char *token)
{
    size_t tl = strlen(token);
    size_t i = 0;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < len && v[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (end - start == tl && strncasecmp(v + start, token, tl) == 0)
            return true;
    }
    return false;
}

long caa_http_request_parse(const char *buf, size_t len, size_t max_body, caa_http_request *req,
                            int *ret_status, caa_error **err)
{
    memset(req, 0, sizeof(*req));
    size_t head = head_length(buf, len < CAA_HTTP_MAX_HEAD ? len : CAA_HTTP_MAX_HEAD);
    if (head == 0)
        return len >= CAA_HTTP_MAX_HEAD ? fail(ret_status, 431, err, "request head larger than 16 KiB") : 0;

    const char *line_end = memchr(buf, '\r', head);
    bool http10 = false;
    if (parse_request_line(buf, (size_t)(line_end - buf), req, &http10, ret_status, err) < 0)
        return -EINVAL;

    bool have_length = false, close = http10, keep_alive_token = false;
    uint64_t content_length = 0;
    unsigned n_headers = 0;
    const char *p = line_end + 2;
    const char *end = buf + head - 2; /* start of the blank line */
    while (p < end) {
        const char *eol = memchr(p, '\r', (size_t)(end - p) + 1);
        if (!eol || eol[1] != '\n')
            return fail(ret_status, 400, err, "bare CR in header");
        if (++n_headers > CAA_HTTP_MAX_HEADERS)
            return fail(ret_status, 431, err, "too many header fields");
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon || colon == p)
            return fail(ret_status, 400, err, "malformed header field");
        for (const char *q = p; q < colon; q++)
            if (!is_tchar((unsigned char)*q))
                return fail(ret_status, 400, err, "malformed header name");
        const char *v = colon + 1;
        const char *vend = eol;
        while (v < vend && (*v == ' ' || *v == '\t'))
            v++;
        while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
            vend--;
        for (const char *q = v; q < vend; q++)
            if (!is_field_char((unsigned char)*q))
                return fail(ret_status, 400, err, "malformed header value");
        size_t nlen = (size_t)(colon - p), vlen = (size_t)(vend - v);

        if (nlen == 14 && strncasecmp(p, "content-length", 14) == 0) {
            if (vlen == 0 || vlen > 19)
                return fail(ret_status, 400, err, "malformed Content-Length");
            uint64_t n = 0;
            for (size_t i = 0; i < vlen; i++) {
                if (v[i] < '0' || v[i] > '9')
                    return fail(ret_status, 400, err, "malformed Content-Length");
                n = n * 10 + (uint64_t)(v[i] - '0');
            }
            if (have_length && n != content_length)
                return fail(ret_status, 400, err, "conflicting Content-Length headers");
            have_length = true;
            content_length = n;
        } else if (nlen == 17 && strncasecmp(p, "transfer-encoding", 17) == 0) {
            return fail(ret_status, 411, err, "Transfer-Encoding is not supported; send Content-Length");
        } else if (nlen == 10 && strncasecmp(p, "connection", 10) == 0) {
            if (token_in_list(v, vlen, "close"))
                close = true;
            if (token_in_list(v, vlen, "keep-alive"))
                keep_alive_token = true;
        } else if (nlen == 12 && strncasecmp(p, "content-type", 12) == 0) {
            if (vlen >= sizeof(req->content_type))
                return fail(ret_status, 400, err, "Content-Type too long");
            memcpy(req->content_type, v, vlen);
            req->content_type[vlen] = '\0';
        }
        p = eol + 2;
    }
    if (http10 && keep_alive_token)
        close = false;
    req->keep_alive = !close;

    if (content_length > max_body) {
        *ret_status = 400; /* the issue asks for a 400 on oversized reviews, 413 would also fit */
        return caa_error_set(err, -EMSGSIZE, "request body of %llu bytes is larger than the %zu byte limit",
                             (unsigned long long)content_length, max_body);
    }
    if (len - head < content_length)
        return 0;
    req->body = buf + head;
    req->body_len = (size_t)content_length;
    return (long)(head + content_length);
}
