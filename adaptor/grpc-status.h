/* Error classes (negative errno) -> gRPC status codes for ttRPC replies. */
#pragma once

#include <stdint.h>

/* Errors of our own checks: -EINVAL INVALID_ARGUMENT, -ENOENT NOT_FOUND,
 * -EEXIST ALREADY_EXISTS, -ECANCELED CANCELLED, -ETIMEDOUT DEADLINE_EXCEEDED,
 * -EBUSY/-EALREADY FAILED_PRECONDITION, -ESHUTDOWN/-EAGAIN UNAVAILABLE,
 * anything else UNKNOWN. */
int caa_grpc_code_from_errno(int code);
/* Provider failures: UNAVAILABLE when retrying may help (-EAGAIN,
 * -ETIMEDOUT, connection errors), CANCELLED for -ECANCELED, else UNKNOWN. */
int caa_grpc_code_from_provider_errno(int code);

/* A call's ttRPC deadline (timeout_nano) as a uv_timer timeout in ms,
 * rounded up and clamped to 30 days; 0 when the call has none. */
struct ttrpc_call;
uint64_t caa_call_deadline_ms(const struct ttrpc_call *call);
