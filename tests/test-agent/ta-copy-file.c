/* CopyFile: the shim copies files for containers because remote pods have
 * no shared file system. The test agent keeps them under a scratch
 * directory: <scratch>/run/... for a request path /run/... . Every
 * component is opened with O_NOFOLLOW, so a symlink an earlier request
 * created cannot lead a write out of the scratch directory. */
#define LOG_COMPONENT "test-agent"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "test-agent.h"
#include "xalloc.h"

int ta_copy_path_check(const char *path, caa_error **err)
{
    if (!path || path[0] != '/')
        return caa_error_set(err, -EINVAL, "CopyFile: path '%s' is not absolute", path ? path : "");
    if (strncmp(path, "/run/", 5) != 0)
        return caa_error_set(err, -EINVAL, "CopyFile: path %s is not under /run", path);
    bool named = false;
    for (const char *p = path + 5; *p;) {
        size_t n = strcspn(p, "/");
        if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return caa_error_set(err, -EINVAL, "CopyFile: path %s has a '.' or '..' component", path);
        named = named || n > 0;
        p += n;
        p += *p == '/';
    }
    if (!named)
        return caa_error_set(err, -EINVAL, "CopyFile: path %s names nothing under /run", path);
    return 0;
}

/* Opens (creating) the directory `name` inside dir, refusing symlinks. */
static int open_subdir(int dir, const char *name, mode_t mode, caa_error **err)
{
    if (mkdirat(dir, name, mode) < 0 && errno != EEXIST)
        return caa_error_set_errno(err, -errno, "CopyFile: mkdir %s", name);
    int fd = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return caa_error_set_errno(err, -errno, "CopyFile: open directory %s", name);
    return fd;
}

static int write_all(int fd, const uint8_t *data, size_t len, off_t offset)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, data, len, offset);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        data += n;
        len -= (size_t)n;
        offset += n;
    }
    return 0;
}

int ta_copy_file(const char *scratch_dir, const char *path, int64_t offset, uint32_t file_mode,
                 uint32_t dir_mode, const uint8_t *data, size_t len, caa_error **err)
{
    int r = ta_copy_path_check(path, err);
    if (r < 0)
        return r;
    if (offset < 0)
        return caa_error_set(err, -EINVAL, "CopyFile: negative offset %lld", (long long)offset);
    mode_t perm = file_mode & 07777 ? file_mode & 07777 : 0644;
    mode_t dperm = dir_mode & 07777 ? dir_mode & 07777 : 0755;

    _cleanup_close_ int dir = open(scratch_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return caa_error_set_errno(err, -errno, "CopyFile: scratch directory %s", scratch_dir);

    /* Walk "run/a/b" down to the parent of the last component. */
    _cleanup_free_ char *copy = xstrdup(path + 1);
    char *save = NULL;
    char *name = strtok_r(copy, "/", &save);
    for (char *next = strtok_r(NULL, "/", &save); next; next = strtok_r(NULL, "/", &save)) {
        int sub = open_subdir(dir, name, dperm, err);
        if (sub < 0)
            return caa_error_prefix(err, "%s", path);
        close(dir);
        dir = sub;
        name = next;
    }

    switch (file_mode & S_IFMT) {
    case S_IFDIR: {
        int fd = open_subdir(dir, name, perm, err);
        if (fd < 0)
            return caa_error_prefix(err, "%s", path);
        close(fd);
        return 0;
    }
    case S_IFLNK: {
        _cleanup_free_ char *target = xstrndup((const char *)data, len);
        if (unlinkat(dir, name, 0) < 0 && errno != ENOENT)
            return caa_error_set_errno(err, -errno, "CopyFile: replace %s", path);
        if (symlinkat(target, dir, name) < 0)
            return caa_error_set_errno(err, -errno, "CopyFile: symlink %s", path);
        return 0;
    }
    case 0:
    case S_IFREG: {
        int flags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (offset == 0 ? O_TRUNC : 0);
        _cleanup_close_ int fd = openat(dir, name, flags, perm);
        if (fd < 0)
            return caa_error_set_errno(err, -errno, "CopyFile: open %s", path);
        if ((r = write_all(fd, data, len, (off_t)offset)) < 0)
            return caa_error_set_errno(err, r, "CopyFile: write %s", path);
        if (fchmod(fd, perm) < 0)
            return caa_error_set_errno(err, -errno, "CopyFile: chmod %s", path);
        return 0;
    }
    default:
        return caa_error_set(err, -EINVAL, "CopyFile: %s: file type 0%o not supported", path,
                             (unsigned)(file_mode & S_IFMT));
    }
}
