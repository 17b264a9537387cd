/* ttRPC frame codec and envelope helpers (see ttrpc-codec.h). */
#include "ttrpc-codec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pb-strict.h"
#include "xalloc.h"

static const char *const grpc_code_names[] = {
    "OK",        "CANCELLED",       "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS",  "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",    "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED",
};

const char *grpc_code_name(int code)
{
    if (code < 0 || (unsigned)code >= sizeof(grpc_code_names) / sizeof(grpc_code_names[0]))
        return "UNKNOWN";
    return grpc_code_names[code];
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

void ttrpc_header_encode(const ttrpc_frame_header *h, uint8_t out[TTRPC_HEADER_SIZE])
{
    put_u32(out, h->length);
    put_u32(out + 4, h->stream_id);
    out[8] = h->type;
    out[9] = h->flags;
}

void ttrpc_header_decode(const uint8_t in[TTRPC_HEADER_SIZE], ttrpc_frame_header *h)
{
    h->length = get_u32(in);
    h->stream_id = get_u32(in + 4);
    h->type = in[8];
    h->flags = in[9];
}

/* ------------------------------------------------------- frame reader */

void ttrpc_frame_reader_init(ttrpc_frame_reader *r)
{
    memset(r, 0, sizeof(*r));
}

void ttrpc_frame_reader_done(ttrpc_frame_reader *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

bool ttrpc_frame_reader_idle(const ttrpc_frame_reader *r)
{
    return r->hdr_have == 0 && !r->in_body && r->skip == 0;
}

uint8_t *ttrpc_frame_reader_take_body(ttrpc_frame_reader *r, const uint8_t *body)
{
    if (!body || body != r->body || r->in_body)
        return NULL;
    uint8_t *b = r->body;
    r->body = NULL;
    r->body_cap = 0;
    r->body_have = 0;
    return b;
}

static void advance(const uint8_t **data, size_t *len, size_t n)
{
    *data += n;
    *len -= n;
}

int ttrpc_frame_reader_next(ttrpc_frame_reader *r, const uint8_t **data, size_t *len,
                            ttrpc_frame_header *ret_h, const uint8_t **ret_body)
{
    /* A body returned from the buffer by the previous call is released now. */
    if (!r->in_body && r->body) {
        free(r->body);
        r->body = NULL;
        r->body_cap = 0;
        r->body_have = 0;
    }
    *ret_body = NULL;

    for (;;) {
        if (r->skip > 0) {
            if (*len == 0)
                return TTRPC_READ_MORE;
            size_t n = *len < r->skip ? *len : r->skip;
            advance(data, len, n);
            r->skip -= (uint32_t)n;
            continue;
        }

        if (!r->in_body) {
            if (r->hdr_have == 0 && *len >= TTRPC_HEADER_SIZE) {
                ttrpc_header_decode(*data, &r->cur);
                advance(data, len, TTRPC_HEADER_SIZE);
            } else {
                if (*len == 0)
                    return TTRPC_READ_MORE;
                size_t n = TTRPC_HEADER_SIZE - r->hdr_have;
                if (n > *len)
                    n = *len;
                memcpy(r->hdr + r->hdr_have, *data, n);
                r->hdr_have += n;
                advance(data, len, n);
                if (r->hdr_have < TTRPC_HEADER_SIZE)
                    return TTRPC_READ_MORE;
                ttrpc_header_decode(r->hdr, &r->cur);
                r->hdr_have = 0;
            }
            if (r->cur.length > TTRPC_MESSAGE_LENGTH_MAX) {
                r->skip = r->cur.length;
                *ret_h = r->cur;
                return TTRPC_READ_OVERSIZE;
            }
            r->in_body = true;
            r->body_have = 0;
        }

        size_t need = r->cur.length - r->body_have;
        if (r->body_have == 0 && *len >= need) {
            /* Whole body in this chunk: hand it out without copying. */
            *ret_body = need ? *data : NULL;
            advance(data, len, need);
            r->in_body = false;
            *ret_h = r->cur;
            return TTRPC_READ_FRAME;
        }
        if (*len == 0)
            return TTRPC_READ_MORE;
        size_t n = *len < need ? *len : need;
        if (r->body_have + n > r->body_cap) {
            /* Room for twice what has arrived (at least 4 KiB, at most the
             * frame): a frame that arrives in two chunks is reallocated once
             * at most, and a peer that stalls costs at most twice what it
             * sent. */
            size_t cap = 2 * (r->body_have + n);
            if (cap < 4096)
                cap = 4096;
            if (cap > r->cur.length)
                cap = r->cur.length;
            r->body = xrealloc(r->body, cap);
            r->body_cap = cap;
        }
        memcpy(r->body + r->body_have, *data, n);
        r->body_have += n;
        advance(data, len, n);
        if (r->body_have < r->cur.length)
            return TTRPC_READ_MORE;
        r->in_body = false;
        *ret_h = r->cur;
        *ret_body = r->body;
        return TTRPC_READ_FRAME;
    }
}

/* ------------------------------------------------------- frame building */

uint8_t *ttrpc_frame_build(uint32_t stream_id, uint8_t type, uint8_t flags, const uint8_t *body, size_t len,
                           size_t *ret_len)
{
    ttrpc_frame_header h = {.length = (uint32_t)len, .stream_id = stream_id, .type = type, .flags = flags};
    uint8_t *buf = xmalloc(TTRPC_HEADER_SIZE + len);
    ttrpc_header_encode(&h, buf);
    if (len)
        memcpy(buf + TTRPC_HEADER_SIZE, body, len);
    *ret_len = TTRPC_HEADER_SIZE + len;
    return buf;
}

uint8_t *ttrpc_frame_build_message(uint32_t stream_id, uint8_t type, uint8_t flags, const ProtobufCMessage *m,
                                   size_t *ret_len)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    ttrpc_frame_header h = {.length = (uint32_t)len, .stream_id = stream_id, .type = type, .flags = flags};
    uint8_t *buf = xmalloc(TTRPC_HEADER_SIZE + len);
    ttrpc_header_encode(&h, buf);
    protobuf_c_message_pack(m, buf + TTRPC_HEADER_SIZE);
    *ret_len = TTRPC_HEADER_SIZE + len;
    return buf;
}

uint8_t *ttrpc_pack(const ProtobufCMessage *m, size_t *ret_len)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = xmalloc(len ? len : 1);
    protobuf_c_message_pack(m, buf);
    *ret_len = len;
    return buf;
}

/* ------------------------------------------------------- envelopes */

void ttrpc_request_set_metadata(Ttrpc__Request *req, const ttrpc_kv *md, size_t n_md,
                                Ttrpc__KeyValue **ret_kvs, Ttrpc__KeyValue ***ret_kvp)
{
    Ttrpc__KeyValue *kvs = n_md ? xnew0(Ttrpc__KeyValue, n_md) : NULL;
    Ttrpc__KeyValue **kvp = n_md ? xnew0(Ttrpc__KeyValue *, n_md) : NULL;
    for (size_t i = 0; i < n_md; i++) {
        ttrpc__key_value__init(&kvs[i]);
        kvs[i].key = (char *)(md[i].key ? md[i].key : "");
        kvs[i].value = (char *)(md[i].value ? md[i].value : "");
        kvp[i] = &kvs[i];
    }
    req->n_metadata = n_md;
    req->metadata = kvp;
    *ret_kvs = kvs;
    *ret_kvp = kvp;
}

uint8_t *ttrpc_request_encode(const char *service, const char *method, const uint8_t *payload, size_t len,
                              int64_t timeout_ns, const ttrpc_kv *md, size_t n_md, size_t *ret_len)
{
    Ttrpc__Request req = TTRPC__REQUEST__INIT;
    req.service = (char *)(service ? service : "");
    req.method = (char *)(method ? method : "");
    req.payload.data = (uint8_t *)payload;
    req.payload.len = payload ? len : 0;
    req.timeout_nano = timeout_ns;

    _cleanup_free_ Ttrpc__KeyValue *kvs = NULL;
    _cleanup_free_ Ttrpc__KeyValue **kvp = NULL;
    ttrpc_request_set_metadata(&req, md, n_md, &kvs, &kvp);
    return ttrpc_pack(&req.base, ret_len);
}

/* protobuf-c accepts field number 0 when its tag is over-long and keeps it
 * as an unknown field that it later packs as bytes nobody can parse; Go
 * rejects field 0. Walk the decoded tree and refuse it too. */
static bool has_field_zero(const ProtobufCMessage *m)
{
    for (unsigned i = 0; i < m->n_unknown_fields; i++)
        if (m->unknown_fields[i].tag == 0)
            return true;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        const char *base = (const char *)m;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            ProtobufCMessage *const *arr = *(ProtobufCMessage *const *const *)(base + f->offset);
            for (size_t j = 0; j < n; j++)
                if (arr[j] && has_field_zero(arr[j]))
                    return true;
        } else {
            const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)(base + f->offset);
            if (sub && has_field_zero(sub))
                return true;
        }
    }
    return false;
}

/* service, method and metadata must not hold a NUL ("svc\0x" would be
 * dispatched as "svc"). */
static bool request_strings_ok(const uint8_t *buf, size_t len, caa_error **err)
{
    _cleanup_error_ caa_error *e = NULL;
    if (caa_pb_check_strings(&ttrpc__request__descriptor, buf, len, NULL, &e) == 0)
        return true;
    caa_error_set(err, -EPROTO, "invalid ttrpc Request: %s", caa_error_msg(e));
    return false;
}

Ttrpc__Request *ttrpc_request_decode(const uint8_t *buf, size_t len, caa_error **err)
{
    static const uint8_t empty[1];
    if (!request_strings_ok(buf, len, err))
        return NULL;
    Ttrpc__Request *r = ttrpc__request__unpack(NULL, len, buf ? buf : empty);
    if (r && has_field_zero(&r->base)) {
        ttrpc__request__free_unpacked(r, NULL);
        r = NULL;
    }
    if (!r)
        caa_error_set(err, -EPROTO, "invalid ttrpc Request: cannot parse %zu bytes of protobuf wire format",
                      len);
    return r;
}

/* Payloads at least this long are not copied by the _view decoders. */
#define VIEW_MIN_PAYLOAD 256

static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *ret);

/* Finds the one top-level occurrence of bytes field `field` that protobuf-c
 * would take as that field (tag and length each at most 5 bytes), walking
 * the whole message. False (decode normally) when the walk meets anything
 * odd, when the field occurs more than once or when it is short. */
static bool find_bytes_field(const uint8_t *buf, size_t len, uint32_t field, size_t *ret_start,
                             size_t *ret_data, size_t *ret_end)
{
    const uint8_t *p = buf, *end = buf + len;
    bool found = false;

    while (p < end) {
        const uint8_t *start = p;
        uint64_t key, v;
        if (!read_varint(&p, end, &key))
            return false;
        switch (key & 7) {
        case 0:
            if (!read_varint(&p, end, &v))
                return false;
            break;
        case 1:
            if (end - p < 8)
                return false;
            p += 8;
            break;
        case 2: {
            const uint8_t *lstart = p;
            if (!read_varint(&p, end, &v) || v > (uint64_t)(end - p))
                return false;
            if (key >> 3 == field) {
                if (found || key != ((uint64_t)field << 3 | 2) || lstart - start > 5 || p - lstart > 5)
                    return false;
                found = true;
                *ret_start = (size_t)(start - buf);
                *ret_data = (size_t)(p - buf);
                *ret_end = (size_t)(p - buf) + v;
            }
            p += v;
            break;
        }
        case 5:
            if (end - p < 4)
                return false;
            p += 4;
            break;
        default:
            return false;
        }
    }
    return found && *ret_end - *ret_data >= VIEW_MIN_PAYLOAD;
}

/* Unpacks buf without copying its large bytes field `field`: the message
 * is unpacked from a copy of buf without that field (the rest decides
 * whether protobuf-c accepts it, exactly as for the whole message), and the
 * field's bytes are returned as a pointer into buf. */
static ProtobufCMessage *unpack_view(const ProtobufCMessageDescriptor *d, uint32_t field, const uint8_t *buf,
                                     size_t len, const uint8_t **ret_data, size_t *ret_len)
{
    static const uint8_t empty[1];
    size_t start, data, end;

    *ret_data = NULL;
    *ret_len = 0;
    if (!buf || !find_bytes_field(buf, len, field, &start, &data, &end))
        return protobuf_c_message_unpack(d, NULL, len, buf ? buf : empty);
    size_t rest = len - (end - start);
    uint8_t stack[512];
    uint8_t *trimmed = rest <= sizeof(stack) ? stack : xmalloc(rest);
    memcpy(trimmed, buf, start);
    memcpy(trimmed + start, buf + end, len - end);
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, rest, rest ? trimmed : empty);
    if (trimmed != stack)
        free(trimmed);
    if (m) {
        *ret_data = buf + data;
        *ret_len = end - data;
    }
    return m;
}

Ttrpc__Request *ttrpc_request_decode_view(const uint8_t *buf, size_t len, const uint8_t **ret_payload,
                                          size_t *ret_payload_len, caa_error **err)
{
    const uint8_t *view;
    size_t view_len;
    if (!request_strings_ok(buf, len, err))
        return NULL;
    Ttrpc__Request *r =
        (Ttrpc__Request *)unpack_view(&ttrpc__request__descriptor, 3, buf, len, &view, &view_len);
    if (r && has_field_zero(&r->base)) {
        ttrpc__request__free_unpacked(r, NULL);
        r = NULL;
    }
    if (!r)
        return caa_error_set(err, -EPROTO,
                             "invalid ttrpc Request: cannot parse %zu bytes of protobuf wire format", len),
               NULL;
    *ret_payload = view ? view : r->payload.data;
    *ret_payload_len = view ? view_len : r->payload.len;
    return r;
}

void ttrpc_request_free(Ttrpc__Request *r)
{
    if (r)
        ttrpc__request__free_unpacked(r, NULL);
}

static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *ret)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (*p >= end)
            return false;
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *ret = v;
            return true;
        }
    }
    return false;
}

int ttrpc_request_peek_timeout(const uint8_t *buf, size_t len, int64_t *ret_timeout_ns, caa_error **err)
{
    int64_t timeout = 0;
    if (len == 0) {
        *ret_timeout_ns = 0;
        return 0;
    }
    const uint8_t *p = buf, *end = buf + len;

    while (p < end) {
        uint64_t key, v;
        if (!read_varint(&p, end, &key) || key >> 3 == 0)
            goto bad;
        switch (key & 7) {
        case 0:
            if (!read_varint(&p, end, &v))
                goto bad;
            if (key >> 3 == 4)
                timeout = (int64_t)v; /* last occurrence wins, as in protobuf */
            break;
        case 1:
            if (end - p < 8)
                goto bad;
            p += 8;
            break;
        case 2:
            if (!read_varint(&p, end, &v) || v > (uint64_t)(end - p))
                goto bad;
            p += v;
            break;
        case 5:
            if (end - p < 4)
                goto bad;
            p += 4;
            break;
        default:
            goto bad;
        }
    }
    *ret_timeout_ns = timeout;
    return 0;
bad:
    return caa_error_set(err, -EPROTO, "invalid ttrpc Request: bad protobuf wire format at offset %td",
                         p - buf);
}

uint8_t *ttrpc_response_encode(int grpc_code, const char *message, const uint8_t *payload, size_t len,
                               size_t *ret_len)
{
    Ttrpc__Response resp = TTRPC__RESPONSE__INIT;
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    if (grpc_code != 0 || message) {
        st.code = grpc_code;
        st.message = (char *)(message ? message : "");
        resp.status = &st;
    }
    resp.payload.data = (uint8_t *)payload;
    resp.payload.len = payload ? len : 0;
    return ttrpc_pack(&resp.base, ret_len);
}

Ttrpc__Response *ttrpc_response_decode(const uint8_t *buf, size_t len, caa_error **err)
{
    static const uint8_t empty[1];
    Ttrpc__Response *r = ttrpc__response__unpack(NULL, len, buf ? buf : empty);
    if (r && has_field_zero(&r->base)) {
        ttrpc__response__free_unpacked(r, NULL);
        r = NULL;
    }
    if (!r)
        caa_error_set(err, -EPROTO, "invalid ttrpc Response: cannot parse %zu bytes of protobuf wire format",
                      len);
    return r;
}

Ttrpc__Response *ttrpc_response_decode_view(const uint8_t *buf, size_t len, const uint8_t **ret_payload,
                                            size_t *ret_payload_len, caa_error **err)
{
    const uint8_t *view;
    size_t view_len;
    Ttrpc__Response *r =
        (Ttrpc__Response *)unpack_view(&ttrpc__response__descriptor, 2, buf, len, &view, &view_len);
    if (r && has_field_zero(&r->base)) {
        ttrpc__response__free_unpacked(r, NULL);
        r = NULL;
    }
    if (!r)
        return caa_error_set(err, -EPROTO,
                             "invalid ttrpc Response: cannot parse %zu bytes of protobuf wire format", len),
               NULL;
    *ret_payload = view ? view : r->payload.data;
    *ret_payload_len = view ? view_len : r->payload.len;
    return r;
}

void ttrpc_response_free(Ttrpc__Response *r)
{
    if (r)
        ttrpc__response__free_unpacked(r, NULL);
}

void ttrpc_oversize_message(uint32_t length, char *buf, size_t size)
{
    snprintf(buf, size, "message length %u exceed maximum message size of %u", length,
             TTRPC_MESSAGE_LENGTH_MAX);
}
