/* Listening sockets in another network namespace (see sc-netns.h). */
#include "sc-netns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cleanup.h"
#include "xalloc.h"

typedef struct listen_job {
    const char *path;
    uint16_t port;
    int backlog;
    int fd;    /* result */
    int error; /* errno of the failed step */
    const char *step;
} listen_job;

static void *listen_in_netns(void *opaque)
{
    listen_job *j = opaque;
    int ns = open(j->path, O_RDONLY | O_CLOEXEC);
    if (ns < 0) {
        j->error = errno;
        j->step = "opening";
        return NULL;
    }
    int r = setns(ns, CLONE_NEWNET);
    j->error = errno;
    close(ns);
    if (r < 0) {
        j->step = "entering";
        return NULL;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        j->error = errno;
        j->step = "creating a socket in";
        return NULL;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(j->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, j->backlog) < 0) {
        j->error = errno;
        j->step = "listening on 127.0.0.1 in";
        close(fd);
        return NULL;
    }
    j->fd = fd;
    return NULL;
}

int caa_sc_netns_listen(const char *netns, uint16_t port, int backlog, caa_error **err)
{
    if (!netns || !*netns || strchr(netns, '/') || strcmp(netns, ".") == 0 || strcmp(netns, "..") == 0)
        return caa_error_set(err, -EINVAL, "'%s' is not a network namespace name", netns ? netns : "");
    _cleanup_free_ char *path = xasprintf("%s/%s", CAA_SC_NETNS_DIR, netns);
    listen_job j = {.path = path, .port = port, .backlog = backlog, .fd = -1};
    pthread_t t;
    int r = pthread_create(&t, NULL, listen_in_netns, &j);
    if (r != 0)
        return caa_error_set(err, -r, "thread for namespace %s: %s", path, strerror(r));
    pthread_join(t, NULL);
    if (j.fd < 0)
        return caa_error_set(err, -j.error, "%s network namespace %s (port %u): %s", j.step, path,
                             (unsigned)port, strerror(j.error));
    return j.fd;
}
