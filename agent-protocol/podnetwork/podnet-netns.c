/* Network namespace handles, netlink sockets inside them, and creation of a
 * named namespace (the bind mount `ip netns add` makes). */
#define LOG_COMPONENT "podnetwork/netns"
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <netlink/netlink.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "log.h"
#include "netns.h"
#include "podnet-netns.h"
#include "podnet-nl.h"
#include "xalloc.h"

int caa_podnet_nl_open_fd(int netns_fd, struct nl_sock **ret, caa_error **err)
{
    int origin = -1;
    int r;

    if (netns_fd >= 0 && (r = caa_netns_enter(netns_fd, "the pod network namespace", &origin, err)) < 0)
        return r;
    struct nl_sock *sk = nl_socket_alloc();
    if (!sk)
        caa_oom();
    r = nl_connect(sk, NETLINK_ROUTE);
    if (origin >= 0)
        caa_netns_return(origin);
    if (r < 0) {
        nl_socket_free(sk);
        return caa_podnet_nl_error(err, r, "opening a netlink socket");
    }
    caa_podnet_nl_track(sk);
    *ret = sk;
    return 0;
}

int caa_podnet_nl_open(const char *netns_path, struct nl_sock **ret, caa_error **err)
{
    _cleanup_close_ int fd = -1;
    if (netns_path) {
        fd = caa_netns_open(netns_path, err);
        if (fd < 0)
            return fd;
    }
    return caa_podnet_nl_open_fd(fd, ret, err);
}

void caa_podnet_nl_close(struct nl_sock *sk)
{
    nl_socket_free(sk); /* closes the socket too */
}

/* iproute2 makes its run directory a shared mount point so that namespaces
 * mounted later propagate to every mount namespace. */
static int make_shared_mount(const char *dir, caa_error **err)
{
    if (mount("", dir, "none", MS_SHARED | MS_REC, NULL) == 0)
        return 0;
    if (errno != EINVAL)
        return caa_error_set_errno(err, -errno, "making \"%s\" a shared mount", dir);
    /* Not a mount point yet: bind it onto itself first. */
    if (mount(dir, dir, "none", MS_BIND | MS_REC, NULL) < 0 ||
        mount("", dir, "none", MS_SHARED | MS_REC, NULL) < 0)
        return caa_error_set_errno(err, -errno, "making \"%s\" a shared mount", dir);
    return 0;
}

typedef struct create_job {
    const char *path;
    int error; /* positive errno */
    const char *step;
} create_job;

/* Runs on its own thread: the new namespace replaces only this thread's. */
static void *create_thread(void *arg)
{
    create_job *job = arg;
    if (unshare(CLONE_NEWNET) < 0) {
        job->error = errno;
        job->step = "unshare(CLONE_NEWNET)";
    } else if (mount("/proc/thread-self/ns/net", job->path, "none", MS_BIND, NULL) < 0) {
        job->error = errno;
        job->step = "bind-mounting the namespace";
    }
    return NULL;
}

int caa_podnet_netns_ensure(const char *path, bool *ret_created, caa_error **err)
{
    _cleanup_error_ caa_error *e = NULL;
    int fd = caa_netns_open(path, &e);
    if (fd >= 0) {
        close(fd);
        if (ret_created)
            *ret_created = false;
        return 0;
    }
    if (fd == -EINVAL)
        return caa_error_set(err, -EEXIST, "\"%s\" exists but is not a network namespace", path);
    if (fd != -ENOENT)
        return caa_error_propagate(err, &e);

    _cleanup_free_ char *copy = xstrdup(path);
    const char *dir = dirname(copy);
    int r = caa_mkdir_p(dir, 0755, err);
    if (r < 0)
        return r;
    if (!strcmp(dir, "/run/netns") || !strcmp(dir, "/var/run/netns"))
        if ((r = make_shared_mount(dir, err)) < 0)
            return r;

    fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
    if (fd < 0)
        return caa_error_set_errno(err, -errno, "creating \"%s\"", path);
    close(fd);

    create_job job = {.path = path};
    pthread_t t;
    int pr = pthread_create(&t, NULL, create_thread, &job);
    if (pr != 0) {
        job.error = pr;
        job.step = "starting a thread";
    } else {
        pthread_join(t, NULL);
    }
    if (job.error) {
        unlink(path);
        if (job.error == EPERM)
            return caa_error_set(err, -EPERM,
                                 "creating network namespace \"%s\": %s: operation not permitted "
                                 "(CAP_SYS_ADMIN is needed)",
                                 path, job.step);
        return caa_error_set_errno(err, -job.error, "creating network namespace \"%s\": %s", path, job.step);
    }
    log_debug("created network namespace %s", path);
    if (ret_created)
        *ret_created = true;
    return 0;
}

int caa_podnet_netns_remove(const char *path, caa_error **err)
{
    if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
        return caa_error_set_errno(err, -errno, "unmounting \"%s\"", path);
    if (unlink(path) < 0 && errno != ENOENT)
        return caa_error_set_errno(err, -errno, "removing \"%s\"", path);
    return 0;
}
