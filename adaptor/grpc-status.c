#include "grpc-status.h"

#include <errno.h>

#include "timeutil.h"
#include "ttrpc-codec.h"
#include "ttrpc.h"

uint64_t caa_call_deadline_ms(const ttrpc_call *call)
{
    const uint64_t max_ms = 30ULL * 24 * 3600 * 1000; /* absurd deadlines, no overflow */
    uint64_t ms = caa_ns_to_ms_ceil(ttrpc_call_timeout_ns(call));
    return ms > max_ms ? max_ms : ms;
}

int caa_grpc_code_from_errno(int code)
{
    switch (code) {
    case 0:
        return GRPC_OK;
    case -EINVAL:
    case -ENAMETOOLONG:
        return GRPC_INVALID_ARGUMENT;
    case -ENOENT:
        return GRPC_NOT_FOUND;
    case -EEXIST:
        return GRPC_ALREADY_EXISTS;
    case -ECANCELED:
        return GRPC_CANCELLED;
    case -ETIMEDOUT:
        return GRPC_DEADLINE_EXCEEDED;
    case -EBUSY:
    case -EALREADY:
        return GRPC_FAILED_PRECONDITION;
    case -ESHUTDOWN:
    case -EAGAIN:
        return GRPC_UNAVAILABLE;
    case -EACCES:
    case -EPERM:
        return GRPC_PERMISSION_DENIED;
    default:
        return GRPC_UNKNOWN;
    }
}

int caa_grpc_code_from_provider_errno(int code)
{
    switch (code) {
    case 0:
        return GRPC_OK;
    case -ECANCELED:
        return GRPC_CANCELLED;
    case -ESHUTDOWN:
    case -EAGAIN:
    case -ETIMEDOUT:
    case -ECONNREFUSED:
    case -ECONNRESET:
    case -EHOSTUNREACH:
    case -ENETUNREACH:
        return GRPC_UNAVAILABLE;
    default:
        return GRPC_UNKNOWN;
    }
}
