/* Scope-bound cleanup helpers (GCC/clang cleanup attribute).
 *
 * Ownership leaves a cleanup-scoped variable only through TAKE_PTR/TAKE_FD,
 * so every early return frees what the function still owns. */
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <errno.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void caa_freep(void *p)
{
    free(*(void **)p);
}

static inline void caa_closep(int *fd)
{
    if (*fd >= 0) {
        int saved = errno;
        close(*fd);
        errno = saved;
    }
}

static inline void caa_fclosep(FILE **f)
{
    if (*f)
        fclose(*f);
}

#define _cleanup_free_ _cleanup_(caa_freep)
#define _cleanup_close_ _cleanup_(caa_closep)
#define _cleanup_fclose_ _cleanup_(caa_fclosep)

/* Defines `static inline void funcp(type *p)` calling func(*p) when non-NULL. */
#define CAA_DEFINE_CLEANUP(type, func)                                                                       \
    static inline void func##p(type *p)                                                                      \
    {                                                                                                        \
        if (*p)                                                                                              \
            func(*p);                                                                                        \
    }

#define TAKE_PTR(p)                                                                                          \
    ({                                                                                                       \
        __typeof__(p) take_ptr_tmp_ = (p);                                                                   \
        (p) = NULL;                                                                                          \
        take_ptr_tmp_;                                                                                       \
    })

#define TAKE_FD(fd)                                                                                          \
    ({                                                                                                       \
        int take_fd_tmp_ = (fd);                                                                             \
        (fd) = -1;                                                                                           \
        take_fd_tmp_;                                                                                        \
    })

#define CAA_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define CAA_UNUSED __attribute__((unused))
#define CAA_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
