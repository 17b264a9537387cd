/* lib/netns.h: what caa_netns_open accepts and refuses (no namespace of our
 * own is needed for that), and entering a namespace and coming back (as
 * root: a namespace made with unshare on a helper thread, gone with its fds). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "fs.h"
#include "netns.h"
#include "xalloc.h"

/* A refusal must be immediate; a hang is reported, not waited for. */
#define HANG_LIMIT_S 30

static char *tmpdir;

static void on_hang(int sig)
{
    (void)sig;
    static const char msg[] = "# caa_netns_open hung (more than 30 s)\n";
    (void)!write(2, msg, sizeof(msg) - 1);
    _exit(1);
}

static int setup(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/caa-test-netns-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    tmpdir = xstrdup(tmpl);
    signal(SIGALRM, on_hang);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(caa_rm_rf(tmpdir, NULL), 0);
    free(tmpdir);
    return 0;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static ino_t inode_of_fd(int fd)
{
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    return st.st_ino;
}

static ino_t inode_of(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_ino;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* caa_netns_open(path) fails with code and a message naming path and
 * containing needle; no fd is left open. */
static void expect_refused(const char *path, int code, const char *needle)
{
    int before = count_fds();
    caa_error *err = NULL;
    alarm(HANG_LIMIT_S);
    int r = caa_netns_open(path, &err);
    alarm(0);
    assert_int_equal(r, code);
    assert_non_null(err);
    const char *msg = caa_error_msg(err);
    if (!strstr(msg, path) || !strstr(msg, needle))
        fail_msg("%s: message \"%s\" lacks the path or \"%s\"", path, msg, needle);
    caa_error_free(err);
    assert_int_equal(count_fds(), before);
}

static void test_refuses_fifo_promptly(void **state)
{
    (void)state;
    _cleanup_free_ char *path = xasprintf("%s/fifo", tmpdir);
    assert_int_equal(mkfifo(path, 0600), 0);
    double t0 = now_s();
    expect_refused(path, -EINVAL, "is not a network namespace (a FIFO)");
    /* Generous: the open does not wait at all; a blocking one never returns. */
    assert_true(now_s() - t0 < 10);
}

static void test_refuses_other_files(void **state)
{
    (void)state;
    _cleanup_free_ char *file = xasprintf("%s/plain", tmpdir);
    assert_int_equal(caa_write_file_atomic(file, "", 0, 0600, NULL), 0);
    expect_refused(file, -EINVAL, "is not a network namespace (a regular file)");
    expect_refused(tmpdir, -EINVAL, "is not a network namespace (a directory)");
    expect_refused("/dev/null", -EINVAL, "is not a network namespace (a character device)");

    _cleanup_free_ char *sock_path = xasprintf("%s/sock", tmpdir);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s >= 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock_path);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    expect_refused(sock_path, -EINVAL, "is not a network namespace (a socket)");
    close(s);
}

static void test_refuses_other_namespace_types(void **state)
{
    (void)state;
    expect_refused("/proc/self/ns/uts", -EINVAL, "is not a network namespace (a UTS namespace)");
    expect_refused("/proc/self/ns/mnt", -EINVAL, "is not a network namespace (a mount namespace)");
}

static void test_missing(void **state)
{
    (void)state;
    _cleanup_free_ char *path = xasprintf("%s/no-such-namespace", tmpdir);
    expect_refused(path, -ENOENT, "does not exist");
}

static void test_accepts_a_network_namespace(void **state)
{
    (void)state;
    int fd = caa_netns_open("/proc/self/ns/net", NULL);
    assert_true(fd >= 0);
    assert_int_equal(inode_of_fd(fd), inode_of("/proc/self/ns/net"));
    int flags = fcntl(fd, F_GETFD);
    assert_true(flags >= 0 && (flags & FD_CLOEXEC));
    close(fd);
}

static void test_enter_path_refusal_leaves_thread(void **state)
{
    (void)state;
    _cleanup_free_ char *path = xasprintf("%s/fifo-enter", tmpdir);
    assert_int_equal(mkfifo(path, 0600), 0);
    ino_t home = inode_of("/proc/thread-self/ns/net");
    int before = count_fds();
    int origin = -1;
    caa_error *err = NULL;
    alarm(HANG_LIMIT_S);
    assert_int_equal(caa_netns_enter_path(path, &origin, &err), -EINVAL);
    alarm(0);
    assert_non_null(strstr(caa_error_msg(err), "(a FIFO)"));
    caa_error_free(err);
    assert_int_equal(origin, -1);
    assert_int_equal(count_fds(), before);
    assert_int_equal(inode_of("/proc/thread-self/ns/net"), home);
}

/* A new network namespace held by a thread that unshared it; its fd
 * stays valid after the thread ends. */
typedef struct new_ns {
    int fd;
    int error;
} new_ns;

static void *unshare_thread(void *opaque)
{
    new_ns *n = opaque;
    if (unshare(CLONE_NEWNET) < 0) {
        n->error = errno;
        return NULL;
    }
    n->fd = caa_netns_open("/proc/thread-self/ns/net", NULL);
    if (n->fd < 0)
        n->error = EINVAL;
    return NULL;
}

static void test_enter_and_return(void **state)
{
    (void)state;
    new_ns n = {.fd = -1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, unshare_thread, &n), 0);
    pthread_join(t, NULL);
    if (n.error == EPERM) {
        /* Not root: entering is refused with a message that says why. */
        int origin = -1;
        caa_error *err = NULL;
        assert_int_equal(caa_netns_enter_path("/proc/self/ns/net", &origin, &err), -EPERM);
        assert_non_null(strstr(caa_error_msg(err), "CAP_SYS_ADMIN"));
        caa_error_free(err);
        skip();
    }
    assert_int_equal(n.error, 0);

    ino_t home = inode_of("/proc/thread-self/ns/net");
    ino_t target = inode_of_fd(n.fd);
    assert_true(home != target);
    int before = count_fds();
    int origin = -1;
    assert_int_equal(caa_netns_enter(n.fd, "the test namespace", &origin, NULL), 0);
    assert_true(origin >= 0);
    assert_int_equal(inode_of("/proc/thread-self/ns/net"), target);
    caa_netns_return(origin);
    assert_int_equal(inode_of("/proc/thread-self/ns/net"), home);
    assert_int_equal(count_fds(), before);
    close(n.fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refuses_fifo_promptly),
        cmocka_unit_test(test_refuses_other_files),
        cmocka_unit_test(test_refuses_other_namespace_types),
        cmocka_unit_test(test_missing),
        cmocka_unit_test(test_accepts_a_network_namespace),
        cmocka_unit_test(test_enter_path_refusal_leaves_thread),
        cmocka_unit_test(test_enter_and_return),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
