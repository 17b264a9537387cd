/* Error classes (negative errno) -> gRPC status codes for ttRPC replies. */
#pragma once

/* Errors of our own checks: -EINVAL INVALID_ARGUMENT, -ENOENT NOT_FOUND,
 * -EEXIST ALREADY_EXISTS, -ECANCELED CANCELLED, -ETIMEDOUT DEADLINE_EXCEEDED,
 * -EBUSY/-EALREADY FAILED_PRECONDITION, -ESHUTDOWN/-EAGAIN UNAVAILABLE,
 * anything else UNKNOWN. */
int caa_grpc_code_from_errno(int code);
/* Provider failures: UNAVAILABLE when retrying may help (-EAGAIN,
 * -ETIMEDOUT, connection errors), CANCELLED for -ECANCELED, else UNKNOWN. */
int caa_grpc_code_from_provider_errno(int code);
