/* A real OpenSSH sshd for tests: its own config directory, loopback only,
 * an unprivileged free port, started and stopped by PID. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "sc-keys.h"

typedef struct sc_test_sshd {
    char dir[64];
    char *log_path;
    uint16_t port;
    pid_t pid;
    caa_sc_key host_key;
    char *config_path;
} sc_test_sshd;

/* A free loopback TCP port (bound then released). */
uint16_t sc_test_free_port(void);

/* Writes host key, authorized_keys (one line, given verbatim) and an
 * sshd_config (extra lines appended), then starts sshd -D and waits until
 * it accepts connections. Returns 0 or -1. */
int sc_test_sshd_start(sc_test_sshd *d, const char *authorized_keys, const char *extra_config);
/* SIGTERM by PID, wait, and remove the directory. */
void sc_test_sshd_stop(sc_test_sshd *d);
/* Stops the process only (the directory stays, for a restart). */
void sc_test_sshd_kill(sc_test_sshd *d);
/* Starts it again with the same files and port. */
int sc_test_sshd_restart(sc_test_sshd *d);
/* Whether sshd's log contains needle. */
int sc_test_sshd_log_has(const sc_test_sshd *d, const char *needle);
