#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xalloc.h"

int caa_mkdir_p(const char *path, mode_t mode, caa_error **err)
{
    _cleanup_free_ char *copy = xstrdup(path);
    for (char *p = copy + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, mode) < 0 && errno != EEXIST)
            return caa_error_set_errno(err, -errno, "creating directory '%s'", copy);
        *p = '/';
    }
    if (mkdir(copy, mode) < 0 && errno != EEXIST)
        return caa_error_set_errno(err, -errno, "creating directory '%s'", copy);
    struct stat st;
    if (stat(copy, &st) < 0)
        return caa_error_set_errno(err, -errno, "checking directory '%s'", copy);
    if (!S_ISDIR(st.st_mode))
        return caa_error_set(err, -ENOTDIR, "'%s' exists and is not a directory", copy);
    return 0;
}

int caa_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int caa_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, caa_error **err)
{
    _cleanup_free_ char *tmp = xasprintf("%s.tmp.XXXXXX", path);
    _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return caa_error_set_errno(err, -errno, "creating temporary file for '%s'", path);
    int r = 0;
    if (fchmod(fd, mode) < 0)
        r = -errno;
    if (r == 0)
        r = caa_write_all(fd, data, len);
    if (r == 0 && fsync(fd) < 0)
        r = -errno;
    if (r == 0 && rename(tmp, path) < 0)
        r = -errno;
    if (r < 0) {
        unlink(tmp);
        return caa_error_set_errno(err, r, "writing '%s'", path);
    }
    _cleanup_free_ char *dircopy = xstrdup(path);
    _cleanup_close_ int dfd = open(dirname(dircopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0)
        (void)fsync(dfd);
    return 0;
}

int caa_read_file(const char *path, size_t max_size, int nofollow, char **ret, size_t *ret_len,
                  caa_error **err)
{
    /* O_NONBLOCK: opening a FIFO (or a device) must not wait for a writer;
     * the type is checked on the open file, so no race with a rename. */
    _cleanup_close_ int fd =
        open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (nofollow ? O_NOFOLLOW : 0));
    if (fd < 0)
        return caa_error_set_errno(err, -errno, "opening '%s'", path);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return caa_error_set_errno(err, -errno, "checking '%s'", path);
    if (!S_ISREG(st.st_mode))
        return caa_error_set(err, -EINVAL, "'%s' is not a regular file", path);
    if ((size_t)st.st_size > max_size)
        return caa_error_set(err, -EFBIG, "'%s' is larger than %zu bytes", path, max_size);
    size_t cap = (size_t)st.st_size + 1, len = 0;
    _cleanup_free_ char *buf = xmalloc(cap + 1);
    for (;;) {
        if (len == cap) {
            if (cap > max_size)
                return caa_error_set(err, -EFBIG, "'%s' is larger than %zu bytes", path, max_size);
            cap *= 2;
            buf = xrealloc(buf, cap + 1);
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return caa_error_set_errno(err, -errno, "reading '%s'", path);
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > max_size)
        return caa_error_set(err, -EFBIG, "'%s' is larger than %zu bytes", path, max_size);
    buf[len] = '\0';
    *ret = TAKE_PTR(buf);
    if (ret_len)
        *ret_len = len;
    return 0;
}

static int rm_rf_at(int dfd, const char *name, caa_error **err)
{
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : caa_error_set_errno(err, -errno, "checking '%s'", name);
    if (S_ISDIR(st.st_mode)) {
        int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return caa_error_set_errno(err, -errno, "opening '%s'", name);
        DIR *d = fdopendir(fd);
        if (!d) {
            close(fd);
            return caa_error_set_errno(err, -errno, "listing '%s'", name);
        }
        struct dirent *de;
        int r = 0;
        while ((de = readdir(d))) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            r = rm_rf_at(dirfd(d), de->d_name, err);
            if (r < 0)
                break;
        }
        closedir(d);
        if (r < 0)
            return r;
        if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
            return caa_error_set_errno(err, -errno, "removing '%s'", name);
        return 0;
    }
    if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
        return caa_error_set_errno(err, -errno, "removing '%s'", name);
    return 0;
}

int caa_rm_rf(const char *path, caa_error **err)
{
    return rm_rf_at(AT_FDCWD, path, err);
}
