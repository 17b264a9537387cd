/* Listening sockets in another network namespace (see sc-netns.h). */
#include "sc-netns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cleanup.h"
#include "netns.h"
#include "xalloc.h"

typedef struct listen_job {
    const char *path;
    uint16_t port;
    int backlog;
    int fd;         /* result */
    caa_error *err; /* why there is none */
} listen_job;

static int listen_loopback(uint16_t port, int backlog, caa_error **err)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return caa_error_set_errno(err, -errno, "creating a socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, backlog) < 0) {
        int r = -errno;
        close(fd);
        return caa_error_set_errno(err, r, "listening on 127.0.0.1:%u", (unsigned)port);
    }
    return fd;
}

static void *listen_in_netns(void *opaque)
{
    listen_job *j = opaque;
    int origin;
    if (caa_netns_enter_path(j->path, &origin, &j->err) < 0)
        return NULL;
    j->fd = listen_loopback(j->port, j->backlog, &j->err);
    if (j->fd < 0)
        caa_error_prefix(&j->err, "in network namespace \"%s\"", j->path);
    caa_netns_return(origin);
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
        return caa_error_propagate(err, &j.err);
    return j.fd;
}
