/* Opening and entering network namespaces (see netns.h). */
#define LOG_COMPONENT "netns"
#include "netns.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "log.h"
#include "xalloc.h"

/* What a file that is not a namespace is, for the message. */
static const char *file_kind(mode_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFIFO:
        return "a FIFO";
    case S_IFDIR:
        return "a directory";
    case S_IFCHR:
        return "a character device";
    case S_IFBLK:
        return "a block device";
    case S_IFSOCK:
        return "a socket";
    case S_IFREG:
        return "a regular file";
    default:
        return "not a regular file";
    }
}

static const char *namespace_kind(int type)
{
    static const struct {
        int type;
        const char *name;
    } kinds[] = {
        {CLONE_NEWNS, "a mount namespace"},  {CLONE_NEWUTS, "a UTS namespace"},
        {CLONE_NEWIPC, "an IPC namespace"},  {CLONE_NEWUSER, "a user namespace"},
        {CLONE_NEWPID, "a PID namespace"},   {CLONE_NEWCGROUP, "a cgroup namespace"},
#ifdef CLONE_NEWTIME
        {CLONE_NEWTIME, "a time namespace"},
#endif
    };
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (kinds[i].type == type)
            return kinds[i].name;
    return "a namespace of another type";
}

static int not_a_netns(caa_error **err, const char *path, const char *what)
{
    return caa_error_set(err, -EINVAL, "\"%s\" is not a network namespace (%s)", path, what);
}

/* Opens path with flags and checks that it is a file on nsfs: file type and
 * file system only, nothing that could mean something else to a device.
 * Returns the descriptor or a negative errno with err set. */
static int open_nsfs_file(const char *path, int flags, caa_error **err)
{
    int fd = open(path, flags);
    if (fd < 0) {
        if (errno == ENOENT)
            return caa_error_set(err, -ENOENT, "network namespace \"%s\" does not exist", path);
        if (errno == ENXIO) /* a UNIX socket, opened without O_PATH */
            return not_a_netns(err, path, "a socket");
        return caa_error_set_errno(err, -errno, "opening network namespace \"%s\"", path);
    }
    struct stat st;
    struct statfs sfs;
    int r;
    if (fstat(fd, &st) < 0 || fstatfs(fd, &sfs) < 0)
        r = caa_error_set_errno(err, -errno, "checking network namespace \"%s\"", path);
    else if (!S_ISREG(st.st_mode))
        r = not_a_netns(err, path, file_kind(st.st_mode));
    else if (sfs.f_type != NSFS_MAGIC)
        r = not_a_netns(err, path, "a regular file");
    else
        return fd;
    close(fd);
    return r;
}

int caa_netns_open(const char *path, caa_error **err)
{
    /* First on an O_PATH descriptor, which opens nothing: a device path never
     * sees a real open() (opening some devices has side effects). */
    int fd = open_nsfs_file(path, O_PATH | O_CLOEXEC, err);
    if (fd < 0)
        return fd;
    close(fd);
    /* The path may have changed since, so the real open is checked again.
     * O_NONBLOCK: a FIFO without a writer would otherwise stall the open;
     * O_NOCTTY: a terminal must not become the controlling one. */
    fd = open_nsfs_file(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, err);
    if (fd < 0)
        return fd;
    /* The ioctl only on a file known to be on nsfs. */
    int type = ioctl(fd, NS_GET_NSTYPE);
    if (type == CLONE_NEWNET)
        return fd;
    int r = type < 0 ? caa_error_set_errno(err, -errno, "checking network namespace \"%s\"", path)
                     : not_a_netns(err, path, namespace_kind(type));
    close(fd);
    return r;
}

int caa_netns_enter(int nsfd, const char *what, int *ret_origin, caa_error **err)
{
    int origin = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (origin < 0)
        return caa_error_set_errno(err, -errno, "opening the current network namespace");
    if (setns(nsfd, CLONE_NEWNET) < 0) {
        int e = errno;
        close(origin);
        if (e == EPERM)
            return caa_error_set(err, -EPERM,
                                 "entering %s: operation not permitted (CAP_SYS_ADMIN is needed)", what);
        return caa_error_set_errno(err, -e, "entering %s", what);
    }
    *ret_origin = origin;
    return 0;
}

int caa_netns_enter_path(const char *path, int *ret_origin, caa_error **err)
{
    int nsfd = caa_netns_open(path, err);
    if (nsfd < 0)
        return nsfd;
    _cleanup_free_ char *what = xasprintf("network namespace \"%s\"", path);
    int r = caa_netns_enter(nsfd, what, ret_origin, err);
    close(nsfd);
    return r;
}

void caa_netns_return(int origin)
{
    if (setns(origin, CLONE_NEWNET) < 0) {
        log_error("cannot return to the original network namespace: %s", strerror(errno));
        abort();
    }
    close(origin);
}
