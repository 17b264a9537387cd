#include "pb-strict.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "strcheck.h"

/* The names of the fields being walked, outermost first; the path string
 * ("CreateVMRequest.annotations.key") is only built for an error message,
 * so the walk costs no formatting per field. */
typedef struct walk {
    caa_pb_stats stats;
    const caa_pb_stats *limits; /* NULL: none */
    const char *names[CAA_PB_MAX_DEPTH + 2];
    unsigned n_names;
} walk;

static const char *path(const walk *w, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < w->n_names && used + 1 < size; i++) {
        int n = snprintf(buf + used, size - used, "%s%s", i ? "." : "", w->names[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    return buf;
}

static int fail(const walk *w, caa_error **err, const char *what)
{
    char buf[256];
    return caa_error_set(err, -EINVAL, "%s: %s", path(w, buf, sizeof(buf)), what);
}

static int over_limit(const walk *w, const char *what, size_t have, size_t limit, caa_error **err)
{
    if (!limit || have <= limit)
        return 0;
    return caa_error_set(err, -EINVAL, "%s: more than the %zu %s allowed", w->names[0], limit, what);
}

/* Stops the walk as soon as a limit is passed: a huge request costs no more than the limit. */
static int check_limits(const walk *w, caa_error **err)
{
    const caa_pb_stats *l = w->limits;
    if (!l)
        return 0;
    int r;
    if ((r = over_limit(w, "bytes of strings", w->stats.string_bytes, l->string_bytes, err)) < 0 ||
        (r = over_limit(w, "strings", w->stats.strings, l->strings, err)) < 0 ||
        (r = over_limit(w, "nested messages", w->stats.messages, l->messages, err)) < 0)
        return r;
    return 0;
}

static int read_varint(const uint8_t *buf, size_t len, size_t *pos, uint64_t *ret)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (*pos >= len)
            return -1;
        uint8_t b = buf[(*pos)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *ret = v;
            return 0;
        }
    }
    return -1;
}

/* Moves *pos past a field of the given wire type other than 2; -1 when the
 * data ends first or the type does not exist (groups, 3 and 4, are used by
 * none of our messages). */
static int skip_scalar(uint32_t wire_type, const uint8_t *buf, size_t len, size_t *pos)
{
    uint64_t v;
    switch (wire_type) {
    case 0:
        return read_varint(buf, len, pos, &v);
    case 1:
    case 5: {
        size_t n = wire_type == 1 ? 8 : 4;
        if (len - *pos < n)
            return -1;
        *pos += n;
        return 0;
    }
    default:
        return -1;
    }
}

static int walk_message(walk *w, const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                        caa_error **err)
{
    if (w->n_names > CAA_PB_MAX_DEPTH)
        return fail(w, err, "messages nested too deep");
    size_t pos = 0;
    while (pos < len) {
        uint64_t tag, n;
        if (read_varint(buf, len, &pos, &tag) < 0)
            return fail(w, err, "malformed protobuf");
        uint32_t wire_type = (uint32_t)(tag & 7);
        uint64_t number = tag >> 3;
        if (number == 0 || number > 0x1fffffff)
            return fail(w, err, "malformed protobuf");
        if (wire_type != 2) {
            if (skip_scalar(wire_type, buf, len, &pos) < 0)
                return fail(w, err, "malformed protobuf");
            continue;
        }
        if (read_varint(buf, len, &pos, &n) < 0 || n > len - pos)
            return fail(w, err, "malformed protobuf");
        const uint8_t *value = buf + pos;
        pos += (size_t)n;
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(d, (unsigned)number);
        if (!f || (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE))
            continue; /* unknown field, bytes or a packed repeated number: no string inside */
        w->names[w->n_names++] = f->name;
        int r;
        if (f->type == PROTOBUF_C_TYPE_STRING) {
            w->stats.string_bytes += (size_t)n;
            w->stats.strings++;
            char field[256];
            r = memchr(value, '\0', (size_t)n)
                    ? caa_str_check(path(w, field, sizeof(field)), value, (size_t)n, err)
                    : 0;
        } else {
            w->stats.messages++;
            r = walk_message(w, f->descriptor, value, (size_t)n, err);
        }
        w->n_names--;
        if (r == 0)
            r = check_limits(w, err);
        if (r < 0)
            return r;
    }
    return 0;
}

static int walk_top(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                    const caa_pb_stats *limits, caa_pb_stats *ret_stats, caa_error **err)
{
    walk w = {.limits = limits, .names = {d->short_name}, .n_names = 1};
    int r = walk_message(&w, d, buf, len, err);
    if (r == 0 && ret_stats)
        *ret_stats = w.stats;
    return r;
}

int caa_pb_check_strings(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                         caa_pb_stats *ret_stats, caa_error **err)
{
    return walk_top(d, buf, len, NULL, ret_stats, err);
}

ProtobufCMessage *caa_pb_unpack_strict(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                                       const caa_pb_stats *limits, caa_error **err)
{
    static const uint8_t empty[1];
    if (walk_top(d, buf, len, limits, NULL, err) < 0)
        return NULL;
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, len, buf ? buf : empty);
    if (!m)
        caa_error_set(err, -EINVAL, "%s: cannot decode", d->short_name);
    return m;
}
