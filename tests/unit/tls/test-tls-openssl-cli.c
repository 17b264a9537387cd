/* Our engines against an independent TLS peer: the openssl command line
 * (`s_server -Verify`, `s_client -cert`) over loopback TCP, with our
 * generated material in files as an operator would configure it. */
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
#include "tls-test-util.h"
#include "xalloc.h"

extern char **environ;

#define TIMEOUT_MS 20000

static char tmpdir[] = "/tmp/caa-test-tls-cli-XXXXXX";
static tls_material mat;
static bool have_openssl;

typedef struct child {
    pid_t pid;
    int in_fd;  /* its stdin */
    int out_fd; /* its stdout */
    char *err_path;
} child;

static char *tmp_path(const char *name)
{
    return xasprintf("%s/%s", tmpdir, name);
}

static void write_tmp(const char *name, const char *content)
{
    _cleanup_free_ char *path = tmp_path(name);
    assert_int_equal(caa_write_file_atomic(path, content, strlen(content), 0600, NULL), 0);
}

static bool find_in_path(const char *prog)
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

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(tmpdir))
        return -1;
    signal(SIGPIPE, SIG_IGN);
    have_openssl = find_in_path("openssl");
    tls_material_init(&mat, TEST_INSTANCE);
    _cleanup_free_ char *ca_pem = caa_tls_ca_cert_pem(mat.ca);
    _cleanup_secret_ char *client_key = caa_tls_identity_key_pem(mat.client);
    /* The file names an upstream pod VM image uses. */
    write_tmp("ca.crt", ca_pem);
    write_tmp("client.crt", mat.client_cert_pem);
    write_tmp("client.key", client_key);
    write_tmp("tls.crt", mat.server_cert_pem);
    write_tmp("tls.key", mat.server_key_pem);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tls_material_done(&mat);
    return caa_rm_rf(tmpdir, NULL);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void spawn(child *c, char *const argv[])
{
    int in[2], out[2];
    posix_spawn_file_actions_t fa;

    assert_int_equal(pipe2(in, O_CLOEXEC), 0);
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    c->err_path = tmp_path("openssl.stderr");
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
static char *read_child(child *c, const char *until)
{
    char *buf = xstrdup("");
    size_t len = 0;
    int64_t deadline = now_ms() + TIMEOUT_MS;
    for (;;) {
        const char *hit = until ? strstr(buf, until) : NULL;
        if (hit && strchr(hit, '\n'))
            return buf;
        struct pollfd pfd = {.fd = c->out_fd, .events = POLLIN};
        int left = (int)(deadline - now_ms());
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
static int reap(child *c)
{
    int status = 0;
    int64_t deadline = now_ms() + TIMEOUT_MS;
    if (c->in_fd >= 0)
        close(c->in_fd);
    while (waitpid(c->pid, &status, WNOHANG) == 0) {
        if (now_ms() > deadline) {
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

static void show_stderr(child *c)
{
    _cleanup_free_ char *text = NULL;
    if (caa_read_file(c->err_path, 1 << 20, 0, &text, NULL, NULL) == 0)
        fprintf(stderr, "openssl stderr:\n%s\n", text); /* stdout carries TAP */
}

static void send_all(int fd, const uint8_t *p, size_t len)
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

static void flush(int fd, tls_peer *p)
{
    uint8_t buf[16384];
    size_t n;
    while ((n = caa_tls_engine_take_output(p->e, buf, sizeof(buf))) > 0)
        send_all(fd, buf, n);
}

/* Moves bytes between the socket and the engine until `want` shows up in the
 * plaintext, the engine fails or the peer closes. */
static void drive(int fd, tls_peer *p, const char *want)
{
    int64_t deadline = now_ms() + TIMEOUT_MS;
    for (;;) {
        flush(fd, p);
        if (p->err)
            return;
        if (want && p->in && memmem(p->in, p->in_len, want, strlen(want)))
            return;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int left = (int)(deadline - now_ms());
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
            flush(fd, p);
            return;
        }
        caa_tls_engine_feed(p->e, buf, (size_t)n, p->err ? NULL : &p->err);
        tls_peer_drain(p);
    }
}

static int connect_loopback(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001)};
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

/* Starts `openssl s_server` (reversing each line it gets) and returns its port. */
static uint16_t start_s_server(child *c)
{
    _cleanup_free_ char *crt = tmp_path("tls.crt"), *key = tmp_path("tls.key"), *ca = tmp_path("client.crt");
    char *argv[] = {"openssl",  "s_server", "-accept", "127.0.0.1:0",
                    "-naccept", "1",        "-rev",    "-cert",
                    crt,        "-key",     key,       "-CAfile",
                    ca,         "-Verify",  "1",       "-verify_return_error",
                    NULL};
    spawn(c, argv);
    _cleanup_free_ char *out = read_child(c, "ACCEPT ");
    const char *accept = strstr(out, "ACCEPT ");
    const char *colon = accept ? strrchr(accept, ':') : NULL;
    if (!colon) {
        show_stderr(c);
        fail_msg("s_server did not report its port: '%s'", out);
    }
    return (uint16_t)strtoul(colon + 1, NULL, 10);
}

static void test_client_vs_s_server(void **state)
{
    (void)state;
    if (!have_openssl)
        skip();
    child c = {0};
    uint16_t port = start_s_server(&c);
    int fd = connect_loopback(port);

    tls_peer p;
    SSL_CTX *ctx = tls_client_ctx(&mat, NULL);
    tls_peer_init(&p, ctx, CAA_TLS_ROLE_CLIENT, TEST_INSTANCE);
    SSL_CTX_free(ctx);
    assert_int_equal(caa_tls_engine_handshake(p.e, NULL), 0);
    assert_int_equal(caa_tls_engine_write(p.e, "hello from caa\n", 15, NULL), 0);
    drive(fd, &p, "aac morf olleh");
    if (p.err) {
        show_stderr(&c);
        fail_msg("client: %s", p.err->msg);
    }
    assert_string_equal(caa_tls_engine_protocol(p.e), "TLSv1.3");
    _cleanup_free_ char *subject = caa_tls_engine_peer_subject(p.e);
    assert_string_equal(subject, "CN=" TEST_INSTANCE ",O=agent-protocol-forwarder");

    assert_int_equal(caa_tls_engine_shutdown(p.e, NULL), 0);
    flush(fd, &p);
    close(fd);
    tls_peer_done(&p);
    int rc = reap(&c);
    assert_int_equal(rc, 0);
}

static void test_client_without_cert_vs_s_server(void **state)
{
    (void)state;
    if (!have_openssl)
        skip();
    child c = {0};
    uint16_t port = start_s_server(&c);
    int fd = connect_loopback(port);

    caa_tls_client_config cfg = {.ca = mat.ca_trust};
    SSL_CTX *ctx = NULL;
    assert_int_equal(caa_tls_client_ctx_new(&cfg, &ctx, NULL), 0);
    tls_peer p;
    tls_peer_init(&p, ctx, CAA_TLS_ROLE_CLIENT, TEST_INSTANCE);
    SSL_CTX_free(ctx);
    assert_int_equal(caa_tls_engine_handshake(p.e, NULL), 0);
    assert_int_equal(caa_tls_engine_write(p.e, "hello\n", 6, NULL), 0);
    drive(fd, &p, "olleh");
    tls_expect_error(p.err, -EACCES, "the server requires a client certificate and none is configured");
    close(fd);
    tls_peer_done(&p);
    reap(&c);
}

static int listen_loopback(uint16_t *ret_port)
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

static int accept_with_timeout(int lfd)
{
    struct pollfd pfd = {.fd = lfd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, TIMEOUT_MS), 1);
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    assert_true(fd >= 0);
    return fd;
}

static void run_s_client(child *c, uint16_t port, bool with_cert)
{
    _cleanup_free_ char *ca = tmp_path("ca.crt"), *crt = tmp_path("client.crt"),
                        *key = tmp_path("client.key");
    _cleanup_free_ char *target = xasprintf("127.0.0.1:%u", port);
    char *argv[] = {"openssl",
                    "s_client",
                    "-connect",
                    target,
                    "-servername",
                    TEST_INSTANCE,
                    "-verify_hostname",
                    TEST_INSTANCE,
                    "-CAfile",
                    ca,
                    "-verify_return_error",
                    "-quiet",
                    with_cert ? "-cert" : NULL,
                    crt,
                    "-key",
                    key,
                    NULL};
    spawn(c, argv);
}

static void test_s_client_vs_server(void **state)
{
    (void)state;
    if (!have_openssl)
        skip();
    uint16_t port;
    int lfd = listen_loopback(&port);
    child c = {0};
    run_s_client(&c, port, true);
    int fd = accept_with_timeout(lfd);
    close(lfd);

    tls_peer p;
    SSL_CTX *ctx = tls_server_ctx(&mat, NULL);
    tls_peer_init(&p, ctx, CAA_TLS_ROLE_SERVER, NULL);
    SSL_CTX_free(ctx);
    /* s_client sends its stdin once connected. */
    assert_int_equal(write(c.in_fd, "ping from s_client\n", 19), 19);
    drive(fd, &p, "ping from s_client\n");
    if (p.err) {
        show_stderr(&c);
        fail_msg("server: %s", p.err->msg);
    }
    _cleanup_free_ char *subject = caa_tls_engine_peer_subject(p.e);
    assert_string_equal(subject, "O=cloud-api-adaptor");

    /* Answer and close cleanly: s_client prints the answer and exits. */
    assert_int_equal(caa_tls_engine_write(p.e, "pong from caa\n", 14, NULL), 0);
    assert_int_equal(caa_tls_engine_shutdown(p.e, NULL), 0);
    flush(fd, &p);
    _cleanup_free_ char *out = read_child(&c, "pong from caa\n");
    assert_non_null(strstr(out, "pong from caa\n"));
    shutdown(fd, SHUT_WR);
    close(fd);
    tls_peer_done(&p);
    reap(&c);
}

static void test_s_client_without_cert_vs_server(void **state)
{
    (void)state;
    if (!have_openssl)
        skip();
    uint16_t port;
    int lfd = listen_loopback(&port);
    child c = {0};
    run_s_client(&c, port, false);
    int fd = accept_with_timeout(lfd);
    close(lfd);

    tls_peer p;
    SSL_CTX *ctx = tls_server_ctx(&mat, NULL);
    tls_peer_init(&p, ctx, CAA_TLS_ROLE_SERVER, NULL);
    SSL_CTX_free(ctx);
    assert_int_equal(write(c.in_fd, "ping\n", 5), 5);
    drive(fd, &p, "ping\n");
    tls_expect_error(p.err, -EACCES, "the client presented no certificate");
    assert_int_equal(p.in_len, 0);
    close(fd);
    tls_peer_done(&p);
    int rc = reap(&c);
    assert_int_not_equal(rc, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_vs_s_server),
        cmocka_unit_test(test_client_without_cert_vs_s_server),
        cmocka_unit_test(test_s_client_vs_server),
        cmocka_unit_test(test_s_client_without_cert_vs_server),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
