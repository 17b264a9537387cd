/* Strict parser for the TOML subset of initdata documents (see initdata.h and
 * docs/bootdata.md). Debian 12 ships no C TOML library, and the subset is
 * small: comments, `key = "string"` pairs and one [data] table. */
#include "initdata.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "parse.h"
#include "xalloc.h"

#define MAX_ENTRIES 64

typedef struct tp {
    const char *s;
    size_t len, pos;
    unsigned line;
    caa_error **err;
} tp;

static int fail(tp *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(tp *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    return caa_error_set(p->err, -EINVAL, "initdata: line %u: %s", p->line, msg);
}

static int peek(const tp *p, size_t off)
{
    return p->pos + off < p->len ? (unsigned char)p->s[p->pos + off] : -1;
}

static bool forbidden_control(int c)
{
    return (c >= 0 && c < 0x20 && c != '\t') || c == 0x7f;
}

static size_t newline_len(const tp *p, size_t at)
{
    if (at < p->len && p->s[at] == '\n')
        return 1;
    if (at + 1 < p->len && p->s[at] == '\r' && p->s[at + 1] == '\n')
        return 2;
    return 0;
}

static void skip_ws(tp *p)
{
    while (peek(p, 0) == ' ' || peek(p, 0) == '\t')
        p->pos++;
}

/* Printable, bounded copy of a key for messages. */
static void safe_name(const char *s, size_t n, char *buf, size_t size)
{
    size_t j = 0;
    for (size_t i = 0; i < n && j + 4 < size; i++)
        buf[j++] = ((unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f) ? s[i] : '?';
    if (n > j && j + 4 >= size) {
        memcpy(buf + j, "...", 3);
        j += 3;
    }
    buf[j] = '\0';
}

/* Whitespace, an optional comment, then a newline or the end. */
static int end_of_line(tp *p)
{
    skip_ws(p);
    if (peek(p, 0) == '#') {
        while (p->pos < p->len && !newline_len(p, p->pos)) {
            if (forbidden_control(peek(p, 0)))
                return fail(p, "control character in comment");
            p->pos++;
        }
    }
    if (p->pos >= p->len)
        return 0;
    size_t nl = newline_len(p, p->pos);
    if (!nl)
        return fail(p, "unexpected text after value");
    p->pos += nl;
    p->line++;
    return 0;
}

static void add_utf8(caa_buf *b, uint32_t cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    caa_buf_append(b, u, n);
}

/* At a backslash inside a basic string. */
static int parse_escape(tp *p, caa_buf *b)
{
    int e = peek(p, 1);
    p->pos += 2;
    switch (e) {
    case 'b':
        caa_buf_putc(b, '\b');
        return 0;
    case 't':
        caa_buf_putc(b, '\t');
        return 0;
    case 'n':
        caa_buf_putc(b, '\n');
        return 0;
    case 'f':
        caa_buf_putc(b, '\f');
        return 0;
    case 'r':
        caa_buf_putc(b, '\r');
        return 0;
    case '"':
        caa_buf_putc(b, '"');
        return 0;
    case '\\':
        caa_buf_putc(b, '\\');
        return 0;
    case 'u':
    case 'U': {
        int digits = e == 'u' ? 4 : 8;
        uint32_t cp = 0;
        for (int i = 0; i < digits; i++) {
            int h = caa_hex_digit_value(peek(p, 0));
            if (h < 0)
                return fail(p, "invalid \\%c escape: expected %d hex digits", e, digits);
            cp = cp << 4 | (uint32_t)h;
            p->pos++;
        }
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return fail(p, "escape \\%c is not a Unicode scalar value", e);
        add_utf8(b, cp);
        return 0;
    }
    default:
        return fail(p, "invalid escape sequence in string");
    }
}

static int parse_basic(tp *p, caa_buf *b)
{
    p->pos++;
    for (;;) {
        int c = peek(p, 0);
        if (c < 0 || c == '\n')
            return fail(p, "unterminated string");
        if (c == '"') {
            p->pos++;
            return 0;
        }
        if (c == '\\') {
            int r = parse_escape(p, b);
            if (r < 0)
                return r;
            continue;
        }
        if (forbidden_control(c))
            return fail(p, "control character in string");
        caa_buf_putc(b, (char)c);
        p->pos++;
    }
}

static int parse_literal(tp *p, caa_buf *b)
{
    p->pos++;
    for (;;) {
        int c = peek(p, 0);
        if (c < 0 || c == '\n')
            return fail(p, "unterminated string");
        if (c == '\'') {
            p->pos++;
            return 0;
        }
        if (forbidden_control(c))
            return fail(p, "control character in string");
        caa_buf_putc(b, (char)c);
        p->pos++;
    }
}

/* Multi-line strings ("""...""" and '''...'''): a newline right after the
 * opening delimiter is dropped; one or two quotes may directly precede the
 * closing delimiter and belong to the content. */
static int parse_multiline(tp *p, caa_buf *b, char q)
{
    unsigned start_line = p->line;
    p->pos += 3;
    size_t nl = newline_len(p, p->pos);
    if (nl) {
        p->pos += nl;
        p->line++;
    }
    for (;;) {
        int c = peek(p, 0);
        if (c < 0) {
            p->line = start_line;
            return fail(p, "unterminated multi-line string");
        }
        if (c == q && peek(p, 1) == q && peek(p, 2) == q) {
            size_t n = 3;
            while (peek(p, n) == q)
                n++;
            if (n > 5)
                return fail(p, "too many quotes at the end of a multi-line string");
            for (size_t i = 3; i < n; i++)
                caa_buf_putc(b, q);
            p->pos += n;
            return 0;
        }
        nl = newline_len(p, p->pos);
        if (nl) {
            caa_buf_append(b, p->s + p->pos, nl);
            p->pos += nl;
            p->line++;
            continue;
        }
        if (c == '\\' && q == '"') {
            /* Line-ending backslash: drop it and all whitespace and newlines after it. */
            size_t k = p->pos + 1;
            while (k < p->len && (p->s[k] == ' ' || p->s[k] == '\t'))
                k++;
            if (newline_len(p, k)) {
                p->pos = k;
                for (;;) {
                    skip_ws(p);
                    size_t l = newline_len(p, p->pos);
                    if (!l)
                        break;
                    p->pos += l;
                    p->line++;
                }
                continue;
            }
            int r = parse_escape(p, b);
            if (r < 0)
                return r;
            continue;
        }
        if (forbidden_control(c))
            return fail(p, "control character in string");
        caa_buf_putc(b, (char)c);
        p->pos++;
    }
}

static bool is_bare(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static int parse_key(tp *p, caa_buf *b)
{
    int c = peek(p, 0);
    int r = 0;
    if (c == '"' && peek(p, 1) == '"' && peek(p, 2) == '"')
        return fail(p, "multi-line strings cannot be keys");
    if (c == '\'' && peek(p, 1) == '\'' && peek(p, 2) == '\'')
        return fail(p, "multi-line strings cannot be keys");
    if (c == '"') {
        r = parse_basic(p, b);
    } else if (c == '\'') {
        r = parse_literal(p, b);
    } else if (is_bare(c)) {
        while (is_bare(peek(p, 0)))
            caa_buf_putc(b, (char)p->s[p->pos++]);
    } else {
        return fail(p, "expected a key");
    }
    if (r < 0)
        return r;
    caa_buf_reserve(b, 0); /* an empty key or value is "" */
    if (b->len == 0)
        return fail(p, "empty keys are not supported");
    if (strlen(b->data) != b->len)
        return fail(p, "NUL character in key");
    skip_ws(p);
    if (peek(p, 0) == '.')
        return fail(p, "dotted keys are not supported");
    return 0;
}

static int parse_value(tp *p, caa_buf *b, const char *key)
{
    int c = peek(p, 0);
    int r;
    if (c == '"' && peek(p, 1) == '"' && peek(p, 2) == '"')
        r = parse_multiline(p, b, '"');
    else if (c == '\'' && peek(p, 1) == '\'' && peek(p, 2) == '\'')
        r = parse_multiline(p, b, '\'');
    else if (c == '"')
        r = parse_basic(p, b);
    else if (c == '\'')
        r = parse_literal(p, b);
    else {
        const char *what = "an invalid value";
        if (c < 0 || c == '#' || newline_len(p, p->pos))
            what = "no value";
        else if (c == '[')
            what = "an array";
        else if (c == '{')
            what = "an inline table";
        else if (c == 't' || c == 'f')
            what = "a boolean";
        else if ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == 'i' || c == 'n')
            what = "a number or date";
        char name[48];
        safe_name(key, strlen(key), name, sizeof(name));
        return fail(p, "value of '%s' must be a string, found %s", name, what);
    }
    if (r < 0)
        return r;
    caa_buf_reserve(b, 0); /* an empty key or value is "" */
    return 0;
}

typedef struct doc {
    char *algorithm;
    char *version;
    bool in_data, seen_data;
    caa_initdata_entry *data;
    size_t n_data;
} doc;

static void doc_done(doc *d)
{
    free(d->algorithm);
    free(d->version);
    for (size_t i = 0; i < d->n_data; i++) {
        free(d->data[i].name);
        free(d->data[i].value);
    }
    free(d->data);
}

static int parse_table(tp *p, doc *d)
{
    if (peek(p, 1) == '[')
        return fail(p, "arrays of tables are not supported");
    p->pos++;
    skip_ws(p);
    caa_buf key = {0};
    int r = parse_key(p, &key);
    _cleanup_free_ char *name = key.data;
    if (r < 0)
        return r;
    if (peek(p, 0) != ']')
        return fail(p, "expected ']' after the table name");
    p->pos++;
    if (strcmp(name, "data") != 0) {
        char safe[48];
        safe_name(name, key.len, safe, sizeof(safe));
        return fail(p, "unsupported table [%s] (only [data] is allowed)", safe);
    }
    if (d->seen_data)
        return fail(p, "duplicate table [data]");
    d->seen_data = d->in_data = true;
    return end_of_line(p);
}

static int parse_pair(tp *p, doc *d)
{
    caa_buf key = {0}, val = {0};
    _cleanup_free_ char *k = NULL;
    _cleanup_free_ char *v = NULL;
    int r = parse_key(p, &key);
    k = key.data;
    if (r < 0)
        return r;
    if (peek(p, 0) != '=')
        return fail(p, "expected '=' after a key");
    p->pos++;
    skip_ws(p);
    unsigned line = p->line;
    r = parse_value(p, &val, k);
    v = val.data;
    if (r < 0)
        return r;
    if ((r = end_of_line(p)) < 0)
        return r;

    char name[48];
    safe_name(k, key.len, name, sizeof(name));
    if (d->in_data) {
        for (size_t i = 0; i < d->n_data; i++)
            if (strcmp(d->data[i].name, k) == 0) {
                p->line = line;
                return fail(p, "duplicate key '%s' in [data]", name);
            }
        if (d->n_data >= MAX_ENTRIES)
            return fail(p, "more than %d entries in [data]", MAX_ENTRIES);
        d->data = xrealloc(d->data, (d->n_data + 1) * sizeof(*d->data));
        d->data[d->n_data++] = (caa_initdata_entry){TAKE_PTR(k), TAKE_PTR(v), val.len};
        return 0;
    }
    char **slot;
    if (strcmp(k, "algorithm") == 0) {
        slot = &d->algorithm;
    } else if (strcmp(k, "version") == 0) {
        slot = &d->version;
    } else {
        p->line = line;
        if (strcmp(k, "data") == 0)
            return fail(p, "'data' must be a table");
        return fail(p, "unknown key '%s' (allowed: algorithm, version, [data])", name);
    }
    if (*slot) {
        p->line = line;
        return fail(p, "duplicate key '%s'", name);
    }
    if (strlen(v) != val.len) {
        p->line = line;
        return fail(p, "NUL character in '%s'", name);
    }
    *slot = TAKE_PTR(v);
    return 0;
}

/* Returns the offset of the first invalid UTF-8 sequence, or len. */
static size_t utf8_check(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 3, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return i;
        }
        if (i + n > len)
            return i;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return i;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return i;
        i += n;
    }
    return len;
}

int caa_initdata_parse(const char *toml, size_t len, caa_initdata **ret, caa_error **err)
{
    if (len > CAA_INITDATA_MAX_SIZE)
        return caa_error_set(err, -EFBIG, "initdata: document is %zu bytes, more than the %d allowed", len,
                             CAA_INITDATA_MAX_SIZE);
    tp p = {.s = toml, .len = len, .line = 1, .err = err};
    size_t bad = utf8_check((const unsigned char *)toml, len);
    if (bad != len) {
        for (size_t i = 0; i < bad; i++)
            p.line += toml[i] == '\n';
        return fail(&p, "invalid UTF-8");
    }

    doc d = {0};
    int r = 0;
    while (r == 0) {
        skip_ws(&p);
        int c = peek(&p, 0);
        if (c < 0)
            break;
        if (c == '#' || newline_len(&p, p.pos))
            r = end_of_line(&p);
        else if (c == '[')
            r = parse_table(&p, &d);
        else
            r = parse_pair(&p, &d);
    }
    if (r == 0 && !d.algorithm)
        r = caa_error_set(err, -EINVAL, "initdata: missing 'algorithm'");
    caa_initdata_alg alg = CAA_INITDATA_SHA256;
    if (r == 0 && caa_initdata_alg_from_name(d.algorithm, &alg) < 0) {
        char name[48];
        safe_name(d.algorithm, strlen(d.algorithm), name, sizeof(name));
        r = caa_error_set(err, -EINVAL, "initdata: unsupported algorithm '%s' (sha256, sha384 or sha512)",
                          name);
    }
    if (r == 0 && !d.version)
        r = caa_error_set(err, -EINVAL, "initdata: missing 'version'");
    if (r == 0 && strcmp(d.version, CAA_INITDATA_VERSION) != 0) {
        char name[48];
        safe_name(d.version, strlen(d.version), name, sizeof(name));
        r = caa_error_set(err, -EINVAL, "initdata: unsupported version '%s' (expected %s)", name,
                          CAA_INITDATA_VERSION);
    }
    if (r < 0) {
        doc_done(&d);
        return r;
    }
    caa_initdata *out = xnew0(caa_initdata, 1);
    out->alg = alg;
    out->version = TAKE_PTR(d.version);
    out->data = TAKE_PTR(d.data);
    out->n_data = d.n_data;
    d.n_data = 0;
    doc_done(&d);
    *ret = out;
    return 0;
}
