/* ttRPC framing and envelope codec: pure functions over buffers, no I/O.
 *
 * Frame = 10-byte big-endian header (length u32, stream id u32, type u8,
 * flags u8) + `length` bytes, length <= 4 MiB. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "error.h"
#include "status.pb-c.h"
#include "ttrpc.pb-c.h"

#define TTRPC_HEADER_SIZE 10
#define TTRPC_MESSAGE_LENGTH_MAX (4u << 20)

enum ttrpc_message_type {
    TTRPC_TYPE_REQUEST = 0x01,
    TTRPC_TYPE_RESPONSE = 0x02,
    TTRPC_TYPE_DATA = 0x03,
};

enum ttrpc_flags {
    TTRPC_FLAG_REMOTE_CLOSED = 0x01,
    TTRPC_FLAG_REMOTE_OPEN = 0x02,
    TTRPC_FLAG_NO_DATA = 0x04,
};

/* gRPC status codes. */
enum grpc_code {
    GRPC_OK = 0,
    GRPC_CANCELLED = 1,
    GRPC_UNKNOWN = 2,
    GRPC_INVALID_ARGUMENT = 3,
    GRPC_DEADLINE_EXCEEDED = 4,
    GRPC_NOT_FOUND = 5,
    GRPC_ALREADY_EXISTS = 6,
    GRPC_PERMISSION_DENIED = 7,
    GRPC_RESOURCE_EXHAUSTED = 8,
    GRPC_FAILED_PRECONDITION = 9,
    GRPC_ABORTED = 10,
    GRPC_OUT_OF_RANGE = 11,
    GRPC_UNIMPLEMENTED = 12,
    GRPC_INTERNAL = 13,
    GRPC_UNAVAILABLE = 14,
    GRPC_DATA_LOSS = 15,
    GRPC_UNAUTHENTICATED = 16,
};

const char *grpc_code_name(int code);

typedef struct ttrpc_frame_header {
    uint32_t length;
    uint32_t stream_id;
    uint8_t type;
    uint8_t flags;
} ttrpc_frame_header;

void ttrpc_header_encode(const ttrpc_frame_header *h, uint8_t out[TTRPC_HEADER_SIZE]);
void ttrpc_header_decode(const uint8_t in[TTRPC_HEADER_SIZE], ttrpc_frame_header *h);

/* One metadata entry of a Request (several entries may share a key). */
typedef struct ttrpc_kv {
    const char *key;
    const char *value;
} ttrpc_kv;

/* ------------------------------------------------------- frame reader */

/* Incremental frame reader: feed arbitrary chunks, get whole frames.
 * Memory held is at most one partial frame (<= 4 MiB), grown as bytes
 * arrive rather than reserved from the header, so a peer that announces a
 * large frame and stalls costs only what it actually sent. The body of an
 * oversize frame is counted off and never buffered. */
typedef struct ttrpc_frame_reader {
    uint8_t hdr[TTRPC_HEADER_SIZE];
    size_t hdr_have;
    ttrpc_frame_header cur; /* valid once hdr_have == TTRPC_HEADER_SIZE */
    bool in_body;           /* collecting cur's body */
    uint8_t *body;          /* buffered part of a body split across chunks */
    size_t body_have;
    size_t body_cap;
    uint32_t skip; /* bytes of an oversize body still to discard */
} ttrpc_frame_reader;

enum ttrpc_read_result {
    TTRPC_READ_MORE = 0,     /* all input consumed, no complete frame */
    TTRPC_READ_FRAME = 1,    /* a complete frame: *ret_h, *ret_body */
    TTRPC_READ_OVERSIZE = 2, /* header of a frame longer than 4 MiB: *ret_h; its body is skipped */
};

void ttrpc_frame_reader_init(ttrpc_frame_reader *r);
void ttrpc_frame_reader_done(ttrpc_frame_reader *r);
/* Consumes bytes from *data / *len (advancing both) up to the next event and
 * returns it. Call again with the remaining input until it returns
 * TTRPC_READ_MORE. *ret_body (NULL for a 0-length frame) points either into
 * the input or into the reader; it is valid until the next call. */
int ttrpc_frame_reader_next(ttrpc_frame_reader *r, const uint8_t **data, size_t *len,
                            ttrpc_frame_header *ret_h, const uint8_t **ret_body);
/* The malloc'd buffer holding the body that ttrpc_frame_reader_next just
 * returned, now the caller's to free(), when the reader assembled it from
 * several chunks; NULL when that body points into the input. */
uint8_t *ttrpc_frame_reader_take_body(ttrpc_frame_reader *r, const uint8_t *body);
/* True when no partial frame (header, body or skipped body) is pending. */
bool ttrpc_frame_reader_idle(const ttrpc_frame_reader *r);

/* ------------------------------------------------------- frame building */

/* Header + body in one malloc'd buffer of TTRPC_HEADER_SIZE + len bytes. */
uint8_t *ttrpc_frame_build(uint32_t stream_id, uint8_t type, uint8_t flags, const uint8_t *body, size_t len,
                           size_t *ret_len);
/* Header + packed message (no intermediate copy). */
uint8_t *ttrpc_frame_build_message(uint32_t stream_id, uint8_t type, uint8_t flags, const ProtobufCMessage *m,
                                   size_t *ret_len);
/* Packs a message into a malloc'd buffer (a 0-byte message still returns a buffer). */
uint8_t *ttrpc_pack(const ProtobufCMessage *m, size_t *ret_len);

/* ------------------------------------------------------- envelopes */

/* Points req's metadata at md: *ret_kvs and *ret_kvp are allocated here (NULL
 * without metadata) and must outlive req; free both. Strings are borrowed. */
void ttrpc_request_set_metadata(Ttrpc__Request *req, const ttrpc_kv *md, size_t n_md,
                                Ttrpc__KeyValue **ret_kvs, Ttrpc__KeyValue ***ret_kvp);
/* Request body. payload may be NULL when len is 0 (field omitted, as Go does);
 * timeout_ns 0 omits timeout_nano. */
uint8_t *ttrpc_request_encode(const char *service, const char *method, const uint8_t *payload, size_t len,
                              int64_t timeout_ns, const ttrpc_kv *md, size_t n_md, size_t *ret_len);
/* -EPROTO with a message on bytes that are not a Request. Free with ttrpc_request_free. */
Ttrpc__Request *ttrpc_request_decode(const uint8_t *buf, size_t len, caa_error **err);
void ttrpc_request_free(Ttrpc__Request *r);
/* The same decision as ttrpc_request_decode, without copying a large
 * payload: *ret_payload and *ret_payload_len give the payload (it may point
 * into buf, so it lives as long as buf), and the returned Request's own
 * payload field may be left empty. */
Ttrpc__Request *ttrpc_request_decode_view(const uint8_t *buf, size_t len, const uint8_t **ret_payload,
                                          size_t *ret_payload_len, caa_error **err);
/* Reads timeout_nano from a Request body without unpacking it (relays);
 * 0 when absent. -EPROTO when the bytes are not valid protobuf. */
int ttrpc_request_peek_timeout(const uint8_t *buf, size_t len, int64_t *ret_timeout_ns, caa_error **err);

/* Response body. grpc_code 0 with message NULL is the Go success form (no
 * status field: an empty payload gives a 0-byte body); anything else carries
 * status {code, message} (code 0 with "" is the Rust form, bytes 0a 00). */
uint8_t *ttrpc_response_encode(int grpc_code, const char *message, const uint8_t *payload, size_t len,
                               size_t *ret_len);
/* -EPROTO with a message on bytes that are not a Response. Free with ttrpc_response_free. */
Ttrpc__Response *ttrpc_response_decode(const uint8_t *buf, size_t len, caa_error **err);
void ttrpc_response_free(Ttrpc__Response *r);
/* As ttrpc_request_decode_view, for a Response. */
Ttrpc__Response *ttrpc_response_decode_view(const uint8_t *buf, size_t len, const uint8_t **ret_payload,
                                            size_t *ret_payload_len, caa_error **err);

/* Text the Go server uses for an oversize frame, into buf. */
void ttrpc_oversize_message(uint32_t length, char *buf, size_t size);
