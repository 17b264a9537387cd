#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "fs.h"
#include "tls-test-net.h"
#include "xalloc.h"

extern char **environ;

bool tls_find_in_path(const char *prog)
{
    const char *path = getenv("PATH");
    _cleanup_free_ char *copy = xstrdup(path ? path : "/usr/bin:/bin");
    char *save = NULL;
    for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        _cleanup_free_ char *p = xasprintf("%s/%s", dir, prog);
        if (access(p, X_OK) == 0)
            return true;
    }
    return false;
}

int64_t tls_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tls_spawn(tls_child *c, char *const argv[], const char *stderr_path)
{
    int in[2], out[2];
    posix_spawn_file_actions_t fa;

    assert_int_equal(pipe2(in, O_CLOEXEC), 0);
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    c->err_path = xstrdup(stderr_path);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, c->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_int_equal(posix_spawnp(&c->pid, argv[0], &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    c->in_fd = in[1];
    c->out_fd = out[0];
}

/* Reads the child's stdout until a complete line containing `until` arrived
 * (or EOF). */
char *tls_read_child(tls_child *c, const char *until)
{
    char *buf = xstrdup("");
    size_t len = 0;
    int64_t deadline = tls_now_ms() + TLS_TEST_TIMEOUT_MS;
    for (;;) {
        const char *hit = until ? strstr(buf, until) : NULL;
        if (hit && strchr(hit, '\n'))
            return buf;
        struct pollfd pfd = {.fd = c->out_fd, .events = POLLIN};
        int left = (int)(deadline - tls_now_ms());
        if (left <= 0 || poll(&pfd, 1, left) <= 0)
            return buf;
        char tmp[4096];
        ssize_t n = read(c->out_fd, tmp, sizeof(tmp));
        if (n <= 0)
            return buf;
        buf = xrealloc(buf, len + (size_t)n + 1);
        memcpy(buf + len, tmp, (size_t)n);
        len += (size_t)n;
        buf[len] = '\0';
    }
}

/* Waits for the child; kills it (by its pid) if it outlives the timeout. */
int tls_reap(tls_child *c)
{
    int status = 0;
    int64_t deadline = tls_now_ms() + TLS_TEST_TIMEOUT_MS;
    if (c->in_fd >= 0)
        close(c->in_fd);
    while (waitpid(c->pid, &status, WNOHANG) == 0) {
        if (tls_now_ms() > deadline) {
            kill(c->pid, SIGKILL);
            waitpid(c->pid, &status, 0);
            break;
        }
        poll(NULL, 0, 20);
    }
    close(c->out_fd);
    free(c->err_path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void tls_show_stderr(tls_child *c)
{
    _cleanup_free_ char *text = NULL;
    if (caa_read_file(c->err_path, 1 << 20, 0, &text, NULL, NULL) == 0)
        fprintf(stderr, "peer stderr:\n%s\n", text); /* stdout carries TAP */
}

void tls_send_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* the peer went away; the test looks at the engine */
        p += n;
        len -= (size_t)n;
    }
}

void tls_flush(int fd, tls_peer *p)
{
    uint8_t buf[16384];
    size_t n;
    while ((n = caa_tls_engine_take_output(p->e, buf, sizeof(buf))) > 0)
        tls_send_all(fd, buf, n);
}

/* Moves bytes between the socket and the engine until `want` shows up in the
 * plaintext, the engine fails or the peer closes. */
void tls_drive(int fd, tls_peer *p, const char *want)
{
    int64_t deadline = tls_now_ms() + TLS_TEST_TIMEOUT_MS;
    for (;;) {
        tls_flush(fd, p);
        if (p->err)
            return;
        if (want && p->in && memmem(p->in, p->in_len, want, strlen(want)))
            return;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int left = (int)(deadline - tls_now_ms());
        if (left <= 0)
            fail_msg("timed out waiting for '%s'", want ? want : "EOF");
        if (poll(&pfd, 1, left) <= 0)
            continue;
        uint8_t buf[16384];
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            caa_tls_engine_feed_eof(p->e, p->err ? NULL : &p->err);
            tls_peer_drain(p);
            tls_flush(fd, p);
            return;
        }
        caa_tls_engine_feed(p->e, buf, (size_t)n, p->err ? NULL : &p->err);
        tls_peer_drain(p);
    }
}

int tls_connect_loopback(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001)};
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

int tls_listen_loopback(uint16_t *ret_port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    socklen_t len = sizeof(a);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 1), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *ret_port = ntohs(a.sin_port);
    return fd;
}

int tls_accept_with_timeout(int lfd)
{
    struct pollfd pfd = {.fd = lfd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, TLS_TEST_TIMEOUT_MS), 1);
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    assert_true(fd >= 0);
    return fd;
}
