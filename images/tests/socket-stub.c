/* Stand-in for kata-agent in the pod VM image boot test: listens on a Unix socket and accepts
 * connections. It is a dynamically linked program on purpose, so the test also checks that the
 * image builder copies the shared libraries a binary needs. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "/run/kata-containers/agent.sock";
    struct sockaddr_un addr = {.sun_family = AF_UNIX};

    if (strlen(path) >= sizeof(addr.sun_path)) {
        fprintf(stderr, "socket-stub: path too long: %s\n", path);
        return 2;
    }
    memcpy(addr.sun_path, path, strlen(path) + 1);

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "socket-stub: socket: %s\n", strerror(errno));
        return 1;
    }
    unlink(path);
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 16) < 0) {
        fprintf(stderr, "socket-stub: bind/listen %s: %s\n", path, strerror(errno));
        return 1;
    }
    printf("socket-stub: listening on %s\n", path);
    fflush(stdout);

    for (;;) {
        int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        if (c >= 0) {
            close(c);
        } else if (errno != EINTR && errno != ECONNABORTED) {
            fprintf(stderr, "socket-stub: accept: %s\n", strerror(errno));
            return 1;
        }
    }
}
