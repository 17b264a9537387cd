/* Watch stream decoding; see watch-stream.h. */
#include "watch-stream.h"

#include <errno.h>
#include <string.h>

#include "xalloc.h"

static void drop_handed_out(caa_watch_decoder *d)
{
    if (d->handed_out == 0)
        return;
    memmove(d->buf, d->buf + d->handed_out, d->len - d->handed_out);
    d->len -= d->handed_out;
    d->handed_out = 0;
}

int caa_watch_decoder_feed(caa_watch_decoder *d, const char *data, size_t len, caa_error **err)
{
    drop_handed_out(d);
    if (len == 0)
        return 0;
    /* Only an unfinished line is kept between calls once all lines are read;
     * refuse to let it grow past the limit. */
    const char *nl = d->len ? memchr(d->buf, '\n', d->len) : NULL;
    size_t partial = nl ? 0 : d->len;
    const char *data_nl = memchr(data, '\n', len);
    size_t tail = data_nl ? 0 : len;
    if (!nl && !data_nl && partial + tail > CAA_WATCH_MAX_LINE)
        return caa_error_set(err, -EMSGSIZE, "watch event larger than %u bytes", CAA_WATCH_MAX_LINE);
    if (d->len + len > d->cap) {
        size_t cap = d->cap ? d->cap : 4096;
        while (cap < d->len + len)
            cap *= 2;
        d->buf = xrealloc(d->buf, cap);
        d->cap = cap;
    }
    memcpy(d->buf + d->len, data, len);
    d->len += len;
    return 0;
}

bool caa_watch_decoder_next(caa_watch_decoder *d, const char **line, size_t *len)
{
    drop_handed_out(d);
    for (;;) {
        char *nl = d->len ? memchr(d->buf, '\n', d->len) : NULL;
        if (!nl)
            return false;
        size_t n = (size_t)(nl - d->buf);
        size_t content = n > 0 && d->buf[n - 1] == '\r' ? n - 1 : n;
        d->handed_out = n + 1;
        if (content == 0) {
            drop_handed_out(d);
            continue;
        }
        *line = d->buf;
        *len = content;
        return true;
    }
}

void caa_watch_decoder_done(caa_watch_decoder *d)
{
    free(d->buf);
    memset(d, 0, sizeof(*d));
}

static const struct {
    const char *name;
    caa_watch_type type;
} types[] = {
    {"ADDED", CAA_WATCH_ADDED},
    {"MODIFIED", CAA_WATCH_MODIFIED},
    {"DELETED", CAA_WATCH_DELETED},
    {"BOOKMARK", CAA_WATCH_BOOKMARK},
};

int caa_watch_event_parse(const char *line, size_t len, caa_watch_event *ev, caa_error **err)
{
    json_error_t jerr;
    json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return caa_error_set(err, -EINVAL, "watch event is not JSON (column %d)", jerr.column);
    const char *type = json_string_value(json_object_get(root, "type"));
    json_t *obj = json_object_get(root, "object");
    if (!type || !json_is_object(obj)) {
        json_decref(root);
        return caa_error_set(err, -EINVAL, "watch event without type or object");
    }
    if (strcmp(type, "ERROR") == 0) {
        json_int_t code = json_integer_value(json_object_get(obj, "code"));
        const char *msg = json_string_value(json_object_get(obj, "message"));
        /* The message is the API server's text; cut and strip it to one printable line. */
        char clean[256];
        size_t o = 0;
        for (const char *p = msg ? msg : ""; *p && o + 1 < sizeof(clean); p++)
            clean[o++] = (unsigned char)*p < 0x20 || *p == 0x7f ? ' ' : *p;
        clean[o] = '\0';
        int r = code == 410 ? 0 : caa_error_set(err, -EPROTO, "watch error %lld: %s", (long long)code, clean);
        if (r == 0) {
            ev->type = CAA_WATCH_GONE;
            ev->object = json_incref(obj);
            ev->resource_version = NULL;
        }
        json_decref(root);
        return r;
    }
    size_t i;
    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(type, types[i].name) == 0)
            break;
    const char *rv = json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
    if (i == sizeof(types) / sizeof(types[0]) || !rv || !rv[0]) {
        json_decref(root);
        return caa_error_set(err, -EINVAL, "watch event of unknown type or without metadata.resourceVersion");
    }
    ev->type = types[i].type;
    ev->object = json_incref(obj);
    ev->resource_version = xstrdup(rv);
    json_decref(root);
    return 0;
}

void caa_watch_event_done(caa_watch_event *ev)
{
    json_decref(ev->object);
    free(ev->resource_version);
    memset(ev, 0, sizeof(*ev));
}
