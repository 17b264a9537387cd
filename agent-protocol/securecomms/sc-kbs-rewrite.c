/* HTTP request filter of the KBS tunnel (see sc-kbs-rewrite.h). */
#include "sc-kbs-rewrite.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cleanup.h"
#include "parse.h"
#include "xalloc.h"

#define GENERIC_DIR "pp-sid/"
#define GENERIC_SUFFIX "pp-sid/privateKey"

void caa_sc_kbs_rewriter_init(caa_sc_kbs_rewriter *w, const char *sid)
{
    *w = (caa_sc_kbs_rewriter){.sid = xstrdup(sid)};
}

void caa_sc_kbs_rewriter_done(caa_sc_kbs_rewriter *w)
{
    free(w->sid);
    caa_buf_done(&w->head);
    *w = (caa_sc_kbs_rewriter){0};
}

static int fail(caa_sc_kbs_rewriter *w, caa_error **err, const char *what)
{
    w->failed = 1;
    return caa_error_set(err, -EPROTO, "KBS tunnel: %s", what);
}

static bool is_token_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* The request line: METHOD SP target SP HTTP/1.x; rewrites the target into out. */
static int put_request_line(caa_sc_kbs_rewriter *w, const char *line, size_t len, caa_buf *out,
                            caa_error **err)
{
    const char *sp1 = memchr(line, ' ', len);
    if (!sp1 || sp1 == line)
        return fail(w, err, "malformed request line");
    for (const char *p = line; p < sp1; p++)
        if (!is_token_char(*p))
            return fail(w, err, "malformed request method");
    const char *target = sp1 + 1;
    const char *sp2 = memchr(target, ' ', len - (size_t)(target - line));
    if (!sp2 || sp2 == target)
        return fail(w, err, "malformed request line");
    size_t vlen = len - (size_t)(sp2 + 1 - line);
    if (vlen != 8 || (memcmp(sp2 + 1, "HTTP/1.1", 8) != 0 && memcmp(sp2 + 1, "HTTP/1.0", 8) != 0))
        return fail(w, err, "not an HTTP/1.x request");
    size_t tlen = (size_t)(sp2 - target);
    for (size_t i = 0; i < tlen; i++)
        if ((unsigned char)target[i] <= ' ' || target[i] == 0x7f)
            return fail(w, err, "malformed request target");
    const char *q = memchr(target, '?', tlen);
    size_t plen = q ? (size_t)(q - target) : tlen;
    caa_buf_append(out, line, (size_t)(target - line));
    size_t slen = strlen(GENERIC_SUFFIX);
    const char *dir = plen >= slen && memcmp(target + plen - slen, GENERIC_SUFFIX, slen) == 0
                          ? memmem(target, plen, GENERIC_DIR, strlen(GENERIC_DIR))
                          : NULL;
    if (dir) {
        caa_buf_append(out, target, (size_t)(dir - target));
        caa_buf_printf(out, "pp-%s/", w->sid);
        const char *rest = dir + strlen(GENERIC_DIR);
        caa_buf_append(out, rest, tlen - (size_t)(rest - target));
        w->rewritten++;
    } else {
        caa_buf_append(out, target, tlen);
    }
    caa_buf_append(out, sp2, len - (size_t)(sp2 - line));
    caa_buf_puts(out, "\r\n");
    return 0;
}

/* Header lines: only the framing matters here. */
static int scan_headers(caa_sc_kbs_rewriter *w, const char *p, const char *end, uint64_t *ret_len,
                        caa_error **err)
{
    bool have_len = false;
    uint64_t clen = 0;
    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol)
            eol = end;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon || colon == p)
            return fail(w, err, "malformed header line");
        size_t nlen = (size_t)(colon - p);
        if (nlen == 17 && strncasecmp(p, "Transfer-Encoding", nlen) == 0)
            return fail(w, err, "Transfer-Encoding is not supported");
        if (nlen == 14 && strncasecmp(p, "Content-Length", nlen) == 0) {
            const char *v = colon + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            if (ve == v || ve - v > 19)
                return fail(w, err, "bad Content-Length");
            char num[20];
            memcpy(num, v, (size_t)(ve - v));
            num[ve - v] = '\0';
            uint64_t n;
            for (const char *d = num; *d; d++)
                if (*d < '0' || *d > '9')
                    return fail(w, err, "bad Content-Length");
            if (caa_parse_uint64(num, UINT64_MAX, &n) < 0)
                return fail(w, err, "bad Content-Length");
            if (have_len && n != clen)
                return fail(w, err, "conflicting Content-Length");
            have_len = true;
            clen = n;
        }
        p = eol + 2;
    }
    *ret_len = clen;
    return 0;
}

/* A complete head (without its final CRLF CRLF) is in w->head. */
static int finish_head(caa_sc_kbs_rewriter *w, size_t head_len, caa_buf *out, caa_error **err)
{
    const char *h = w->head.data;
    if (!h)
        return fail(w, err, "empty request head");
    const char *eol = memmem(h, head_len, "\r\n", 2);
    size_t line_len = eol ? (size_t)(eol - h) : head_len;
    int r = put_request_line(w, h, line_len, out, err);
    if (r < 0)
        return r;
    if (eol && (r = scan_headers(w, eol + 2, h + head_len, &w->body_left, err)) < 0)
        return r;
    if (eol)
        caa_buf_append(out, eol + 2, head_len - line_len - 2);
    if (eol && head_len > line_len + 2)
        caa_buf_puts(out, "\r\n");
    caa_buf_puts(out, "\r\n");
    return 0;
}

int caa_sc_kbs_rewrite_feed(caa_sc_kbs_rewriter *w, const uint8_t *data, size_t len, caa_buf *out,
                            caa_error **err)
{
    if (w->failed)
        return caa_error_set(err, -EPROTO, "KBS tunnel: the stream failed earlier");
    while (len > 0) {
        if (w->body_left > 0) {
            size_t n = len < w->body_left ? len : (size_t)w->body_left;
            caa_buf_append(out, data, n);
            w->body_left -= n;
            data += n;
            len -= n;
            continue;
        }
        /* In a head: take bytes one line terminator search at a time. */
        size_t old = w->head.len;
        size_t room = CAA_SC_KBS_HEAD_MAX - old;
        size_t take = len < room ? len : room;
        caa_buf_append(&w->head, data, take);
        size_t from = old >= 3 ? old - 3 : 0;
        const char *end = memmem(w->head.data + from, w->head.len - from, "\r\n\r\n", 4);
        if (!end) {
            if (w->head.len >= CAA_SC_KBS_HEAD_MAX)
                return fail(w, err, "request head over 16 KiB");
            return 0; /* all taken, wait for more */
        }
        size_t head_len = (size_t)(end - w->head.data);
        size_t used = head_len + 4 - old; /* bytes of data that belong to this head */
        if (head_len == 0)
            return fail(w, err, "empty request head");
        int r = finish_head(w, head_len, out, err);
        if (r < 0)
            return r;
        w->head.len = 0;
        w->head.data[0] = '\0';
        data += used;
        len -= used;
    }
    return 0;
}
