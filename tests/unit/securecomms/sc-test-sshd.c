/* Test helper: a real sshd on loopback (see sc-test-sshd.h). */
#include "sc-test-sshd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "fs.h"
#include "xalloc.h"

extern char **environ;

/* Every sshd started here, stopped at exit even when a test fails half-way. */
static pid_t started[64];
static size_t n_started;

static void stop_leftovers(void)
{
    for (size_t i = 0; i < n_started; i++)
        if (started[i] > 0 && kill(started[i], SIGTERM) == 0)
            waitpid(started[i], NULL, 0);
}

uint16_t sc_test_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &l) < 0)
        abort();
    close(fd);
    return ntohs(a.sin_port);
}

static int port_open(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

static int spawn(sc_test_sshd *d)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, d->log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    char *argv[] = {"/usr/sbin/sshd", "-D", "-e", "-f", d->config_path, NULL};
    int r = posix_spawn(&d->pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (r != 0)
        return -1;
    if (n_started == 0)
        atexit(stop_leftovers);
    if (n_started < CAA_ARRAY_SIZE(started))
        started[n_started++] = d->pid;
    for (int i = 0; i < 200; i++) {
        if (port_open(d->port))
            return 0;
        int status;
        if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
            d->pid = 0;
            fprintf(stderr, "sshd exited early, see %s\n", d->log_path);
            return -1;
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

int sc_test_sshd_start(sc_test_sshd *d, const char *authorized_keys, const char *extra_config)
{
    memset(d, 0, sizeof(*d));
    strcpy(d->dir, "/tmp/caa-sc-sshd-XXXXXX");
    if (!mkdtemp(d->dir))
        return -1;
    /* sshd insists on its privilege separation directory (made by the
     * package's service unit, which does not run here). */
    mkdir("/run/sshd", 0755);
    d->port = sc_test_free_port();
    d->log_path = xasprintf("%s/sshd.log", d->dir);
    if (caa_sc_key_generate("test-vm", &d->host_key, NULL) < 0)
        return -1;
    _cleanup_free_ char *hk = xasprintf("%s/host_key", d->dir);
    _cleanup_free_ char *ak = xasprintf("%s/authorized_keys", d->dir);
    if (caa_write_file_atomic(hk, d->host_key.private_pem, strlen(d->host_key.private_pem), 0600, NULL) < 0 ||
        caa_write_file_atomic(ak, authorized_keys, strlen(authorized_keys), 0600, NULL) < 0)
        return -1;
    _cleanup_free_ char *cfg = xasprintf("Port %u\nListenAddress 127.0.0.1\nHostKey %s\nPidFile none\n"
                                         "AuthorizedKeysFile %s\nStrictModes no\nUsePAM no\n"
                                         "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                                         "PubkeyAuthentication yes\nAuthenticationMethods publickey\n"
                                         "PermitRootLogin prohibit-password\nLogLevel VERBOSE\n"
                                         "MaxStartups 100\n%s",
                                         (unsigned)d->port, hk, ak, extra_config ? extra_config : "");
    d->config_path = xasprintf("%s/sshd_config", d->dir);
    if (caa_write_file_atomic(d->config_path, cfg, strlen(cfg), 0600, NULL) < 0)
        return -1;
    return spawn(d);
}

/* Kills the children of pid (sshd's per-connection processes), deepest first. */
static void kill_descendants(pid_t pid)
{
    DIR *proc = opendir("/proc");
    if (!proc)
        return;
    struct dirent *e;
    while ((e = readdir(proc))) {
        char path[300];
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "re");
        if (!f)
            continue;
        int child = 0, parent = 0;
        /* pid (comm) state ppid: sshd's comm has no spaces or parentheses. */
        int n = fscanf(f, "%d %*s %*c %d", &child, &parent);
        fclose(f);
        if (n == 2 && parent == pid) {
            kill_descendants(child);
            kill(child, SIGKILL);
        }
    }
    closedir(proc);
}

void sc_test_sshd_kill(sc_test_sshd *d)
{
    if (d->pid > 0) {
        kill_descendants(d->pid);
        kill(d->pid, SIGTERM);
        waitpid(d->pid, NULL, 0);
        for (size_t i = 0; i < n_started; i++)
            if (started[i] == d->pid)
                started[i] = 0;
        d->pid = 0;
    }
}

int sc_test_sshd_restart(sc_test_sshd *d)
{
    sc_test_sshd_kill(d);
    return spawn(d);
}

void sc_test_sshd_stop(sc_test_sshd *d)
{
    sc_test_sshd_kill(d);
    if (d->dir[0])
        caa_rm_rf(d->dir, NULL);
    caa_sc_key_done(&d->host_key);
    free(d->log_path);
    free(d->config_path);
    memset(d, 0, sizeof(*d));
}

int sc_test_sshd_log_has(const sc_test_sshd *d, const char *needle)
{
    char *text = NULL;
    size_t len;
    if (caa_read_file(d->log_path, 1 << 20, 1, &text, &len, NULL) < 0)
        return 0;
    int found = strstr(text, needle) != NULL;
    free(text);
    return found;
}
