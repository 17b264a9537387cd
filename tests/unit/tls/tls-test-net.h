/* Process and loopback-socket helpers for the tests that run an independent
 * TLS peer (the openssl command line, a Go crypto/tls program). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tls-test-util.h"

#define TLS_TEST_TIMEOUT_MS 20000

typedef struct tls_child {
    pid_t pid;
    int in_fd;  /* its stdin */
    int out_fd; /* its stdout */
    char *err_path;
} tls_child;

bool tls_find_in_path(const char *prog);
int64_t tls_now_ms(void);
/* Starts argv (PATH lookup) with pipes for stdin/stdout, stderr to a file. */
void tls_spawn(tls_child *c, char *const argv[], const char *stderr_path);
/* Reads the child's stdout until a complete line containing `until` arrived (or EOF). */
char *tls_read_child(tls_child *c, const char *until);
/* Waits for the child (killing it by pid after the timeout); returns its exit status. */
int tls_reap(tls_child *c);
void tls_show_stderr(tls_child *c);
void tls_send_all(int fd, const uint8_t *p, size_t len);
void tls_flush(int fd, tls_peer *p);
/* Moves bytes between the socket and the engine until `want` shows up in the
 * plaintext, the engine fails or the peer closes. */
void tls_drive(int fd, tls_peer *p, const char *want);
int tls_connect_loopback(uint16_t port);
int tls_listen_loopback(uint16_t *ret_port);
int tls_accept_with_timeout(int lfd);
