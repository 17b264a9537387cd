/* File-system helpers: directories, atomic replacement, bounded reads. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include "error.h"

/* mkdir -p with the given mode for created components. */
int caa_mkdir_p(const char *path, mode_t mode, caa_error **err);
/* Writes all of data to fd, retrying short writes and EINTR; 0 or -errno. */
int caa_write_all(int fd, const void *data, size_t len);
/* Writes data to path atomically: temp file in the same directory, fsync,
 * rename, fsync of the directory. The file gets `mode`. */
int caa_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, caa_error **err);
/* Reads a whole regular file of at most max_size bytes (refuses symlinks when
 * nofollow is set). Anything else (FIFO, socket, device, directory) is refused
 * with -EINVAL without blocking: the open is non-blocking and the type is
 * checked with fstat before the first read. The result is NUL-terminated;
 * *ret_len excludes the NUL. */
int caa_read_file(const char *path, size_t max_size, int nofollow, char **ret, size_t *ret_len,
                  caa_error **err);
/* Removes a directory tree (no symlink following). Missing is success. */
int caa_rm_rf(const char *path, caa_error **err);
