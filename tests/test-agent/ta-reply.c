/* Replies in the kata-agent's (ttrpc-rust) encoding and payload decoding. */
#define LOG_COMPONENT "test-agent"

#include <errno.h>
#include <string.h>

#include "cleanup.h"
#include "log.h"
#include "test-agent.h"
#include "xalloc.h"

void ta_reply(ttrpc_call *c, const ProtobufCMessage *msg)
{
    size_t plen = 0, rlen;
    _cleanup_free_ uint8_t *payload = msg ? ttrpc_pack(msg, &plen) : NULL;
    /* code 0 with "" keeps the status field: bytes 0a 00, as ttrpc-rust sends. */
    _cleanup_free_ uint8_t *resp = ttrpc_response_encode(0, "", payload, plen, &rlen);
    ttrpc_call_reply_response(c, resp, rlen);
}

void ta_reply_empty(ttrpc_call *c)
{
    ta_reply(c, NULL);
}

void ta_reply_error(ttrpc_call *c, const caa_error *e)
{
    int code;
    switch (e ? e->code : -EIO) {
    case -EINVAL:
        code = GRPC_INVALID_ARGUMENT;
        break;
    case -ENOENT:
        code = GRPC_NOT_FOUND;
        break;
    case -EEXIST:
        code = GRPC_ALREADY_EXISTS;
        break;
    case -EPERM:
    case -EACCES:
        code = GRPC_PERMISSION_DENIED;
        break;
    default:
        code = GRPC_INTERNAL;
        break;
    }
    ttrpc_call_reply_error(c, code, "%s", e ? caa_error_msg(e) : "internal error");
}

void *ta_unpack(ttrpc_call *c, const ProtobufCMessageDescriptor *desc)
{
    static const uint8_t none[1];
    size_t len;
    const uint8_t *p = ttrpc_call_payload(c, &len);
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, len, p ? p : none);
    if (!m) {
        log_debug("%s: undecodable %s (%zu bytes)", ttrpc_call_method(c), desc->name, len);
        /* ttrpc-rust reports a handler-side decoding failure as UNKNOWN. */
        ttrpc_call_reply_error(c, GRPC_UNKNOWN, "%s: cannot decode %s", ttrpc_call_method(c), desc->name);
    }
    return m;
}

char *ta_unknown_string(const ProtobufCMessage *m, uint32_t field)
{
    char *ret = NULL;
    for (unsigned i = 0; i < m->n_unknown_fields; i++) {
        const ProtobufCMessageUnknownField *u = &m->unknown_fields[i];
        if (u->tag != field || u->wire_type != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED)
            continue;
        /* protobuf-c keeps the length prefix (a varint) in data. */
        size_t n = 0, i_len = 0;
        unsigned shift = 0;
        while (i_len < u->len && shift < 64) {
            uint8_t b = u->data[i_len++];
            n |= (size_t)(b & 0x7f) << shift;
            shift += 7;
            if (!(b & 0x80))
                break;
        }
        if (n > u->len - i_len)
            continue;
        free(ret); /* last one wins, as in protobuf */
        ret = xstrndup((const char *)u->data + i_len, n);
    }
    return ret;
}

uint64_t ta_unknown_varint(const ProtobufCMessage *m, uint32_t field, uint64_t dflt)
{
    uint64_t ret = dflt;
    for (unsigned i = 0; i < m->n_unknown_fields; i++) {
        const ProtobufCMessageUnknownField *u = &m->unknown_fields[i];
        if (u->tag != field || u->wire_type != PROTOBUF_C_WIRE_TYPE_VARINT)
            continue;
        uint64_t v = 0;
        for (size_t k = 0; k < u->len && k < 10; k++)
            v |= (uint64_t)(u->data[k] & 0x7f) << (7 * k);
        ret = v; /* last one wins */
    }
    return ret;
}
