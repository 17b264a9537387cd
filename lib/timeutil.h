/* One time convention for the tree.
 *
 * - Durations (options, timeouts in APIs, config structs) are int64_t
 *   nanoseconds, as Go's time.Duration and caa_parse_duration(); names end in
 *   _ns or the option table says CAA_OPT_DURATION.
 * - Points on the loop's clock are uint64_t milliseconds, the unit of
 *   uv_now() and uv_timer_start(); names end in _ms.
 * Convert only at that boundary, with the helpers below: a timeout rounds up
 * (never fires early), a display value rounds down. */
#pragma once

#include <stdint.h>
#include <time.h>

#define CAA_NSEC_PER_MSEC INT64_C(1000000)
#define CAA_NSEC_PER_SEC INT64_C(1000000000)
#define CAA_MSEC_PER_SEC INT64_C(1000)

/* Nanoseconds to loop milliseconds, rounded up; negative gives 0. */
static inline uint64_t caa_ns_to_ms_ceil(int64_t ns)
{
    return ns <= 0 ? 0 : (uint64_t)(ns / CAA_NSEC_PER_MSEC) + (ns % CAA_NSEC_PER_MSEC != 0);
}

/* Nanoseconds to whole milliseconds, rounded down (for messages, limits). */
static inline int64_t caa_ns_to_ms(int64_t ns)
{
    return ns / CAA_NSEC_PER_MSEC;
}

static inline int64_t caa_ms_to_ns(int64_t ms)
{
    return ms * CAA_NSEC_PER_MSEC;
}

static inline int64_t caa_timespec_to_ms(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * CAA_MSEC_PER_SEC + ts->tv_nsec / CAA_NSEC_PER_MSEC;
}

static inline struct timespec caa_ms_to_timespec(int64_t ms)
{
    return (struct timespec){.tv_sec = ms / CAA_MSEC_PER_SEC,
                             .tv_nsec = (ms % CAA_MSEC_PER_SEC) * CAA_NSEC_PER_MSEC};
}

/* Milliseconds on CLOCK_MONOTONIC / CLOCK_REALTIME (outside a libuv loop). */
static inline int64_t caa_clock_ms(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return caa_timespec_to_ms(&ts);
}
