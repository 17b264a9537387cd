/* ttRPC framing and envelope codec: pure functions over buffers, no I/O.
 *
 * Frame = 10-byte big-endian header (length u32, stream id u32, type u8,
 * flags u8) + `length` bytes, length <= 4 MiB. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

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
