/* Strict protobuf decoding: every string field is checked with its wire
 * length before protobuf-c turns it into a C string (which would silently
 * stop at an embedded NUL). Used at every decode entry point that reads
 * strings from outside: the ttRPC envelope, the hypervisor and podvminfo
 * services, the agent requests the proxy rewrites. */
#pragma once

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* What a message holds, counted on the wire: the cost of unpacking it
 * (protobuf-c allocates each nested message and each string). */
typedef struct caa_pb_stats {
    size_t string_bytes; /* total length of all string fields */
    size_t strings;      /* string fields */
    size_t messages;     /* nested messages (map entries included) */
} caa_pb_stats;

/* Walks buf as a message of type d (nested messages included, unknown
 * fields skipped) and refuses, with -EINVAL and the field's path in the
 * message ("CreateVMRequest.annotations.key: NUL byte at offset 3 ..."), any
 * string field holding a NUL, malformed wire data and nesting deeper than
 * CAA_PB_MAX_DEPTH. ret_stats (may be NULL) receives the counts. Linear in
 * len, allocates nothing. */
#define CAA_PB_MAX_DEPTH 32
int caa_pb_check_strings(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                         caa_pb_stats *ret_stats, caa_error **err);

/* caa_pb_check_strings, then protobuf_c_message_unpack. A message over any
 * of the limits (a zero member: no limit; limits NULL: none) is refused
 * before it is unpacked, so a huge request costs one allocation-free walk.
 * NULL with -EINVAL in err on any failure. */
ProtobufCMessage *caa_pb_unpack_strict(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                                       const caa_pb_stats *limits, caa_error **err);
