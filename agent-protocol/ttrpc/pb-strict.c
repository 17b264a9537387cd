#include "pb-strict.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "strcheck.h"

typedef struct walk {
    size_t string_bytes;
    char path[256]; /* "Message.field.field" of the field being walked */
} walk;

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

/* Appends ".name" (or the type's short name at the top) to w->path; returns
 * the previous length so the caller can cut it again. */
static size_t path_push(walk *w, const char *name)
{
    size_t old = strlen(w->path);
    snprintf(w->path + old, sizeof(w->path) - old, "%s%s", old ? "." : "", name);
    return old;
}

static int malformed(walk *w, caa_error **err)
{
    return caa_error_set(err, -EINVAL, "%s: malformed protobuf", w->path);
}

static int walk_message(walk *w, const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                        unsigned depth, caa_error **err)
{
    if (depth > CAA_PB_MAX_DEPTH)
        return caa_error_set(err, -EINVAL, "%s: messages nested deeper than %d levels", w->path,
                             CAA_PB_MAX_DEPTH);
    size_t pos = 0;
    while (pos < len) {
        uint64_t tag, n;
        if (read_varint(buf, len, &pos, &tag) < 0)
            return malformed(w, err);
        uint32_t wire_type = (uint32_t)(tag & 7);
        uint64_t number = tag >> 3;
        if (number == 0 || number > 0x1fffffff)
            return malformed(w, err);
        switch (wire_type) {
        case 0: /* varint */
            if (read_varint(buf, len, &pos, &n) < 0)
                return malformed(w, err);
            continue;
        case 1: /* fixed64 */
            if (len - pos < 8)
                return malformed(w, err);
            pos += 8;
            continue;
        case 5: /* fixed32 */
            if (len - pos < 4)
                return malformed(w, err);
            pos += 4;
            continue;
        case 2: /* length-delimited */
            break;
        default: /* groups (3, 4) are not used by any of our messages; 6, 7 do not exist */
            return malformed(w, err);
        }
        if (read_varint(buf, len, &pos, &n) < 0 || n > len - pos)
            return malformed(w, err);
        const uint8_t *value = buf + pos;
        pos += (size_t)n;
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(d, (unsigned)number);
        if (!f || (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE))
            continue; /* unknown field, bytes or a packed repeated number: no string inside */
        size_t old = path_push(w, f->name);
        int r;
        if (f->type == PROTOBUF_C_TYPE_STRING) {
            r = caa_str_check(w->path, value, (size_t)n, err);
            w->string_bytes += (size_t)n;
        } else {
            r = walk_message(w, f->descriptor, value, (size_t)n, depth + 1, err);
        }
        w->path[old] = '\0';
        if (r < 0)
            return r;
    }
    return 0;
}

int caa_pb_check_strings(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                         size_t *string_bytes, caa_error **err)
{
    walk w = {0};
    path_push(&w, d->short_name);
    int r = walk_message(&w, d, buf, len, 0, err);
    if (r == 0 && string_bytes)
        *string_bytes = w.string_bytes;
    return r;
}

ProtobufCMessage *caa_pb_unpack_strict(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                                       size_t max_string_bytes, caa_error **err)
{
    static const uint8_t empty[1];
    size_t string_bytes;
    if (caa_pb_check_strings(d, buf, len, &string_bytes, err) < 0)
        return NULL;
    if (max_string_bytes && string_bytes > max_string_bytes) {
        caa_error_set(err, -EINVAL, "%s: its strings total %zu bytes, more than the %zu allowed",
                      d->short_name, string_bytes, max_string_bytes);
        return NULL;
    }
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, len, buf ? buf : empty);
    if (!m)
        caa_error_set(err, -EINVAL, "%s: cannot decode", d->short_name);
    return m;
}
