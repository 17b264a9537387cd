/* Helpers shared by the ttRPC unit tests: hex, temp dirs, running a uv loop
 * until a condition holds, and raw byte peers (both ends) over unix sockets. */
#pragma once

#include "test-tmpdir.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* Decodes hex (spaces ignored) into a malloc'd buffer; aborts on bad input. */
uint8_t *tu_hex(const char *hex, size_t *ret_len);
/* A path inside a test temp dir (tests/support/test-tmpdir.h). */
char *tu_path(const char *dir, const char *name);
/* True when the env asks for a reduced workload (valgrind). */
bool tu_under_valgrind(void);

/* Runs the loop until cond(arg) or timeout_ms; returns cond's final value. */
bool tu_run_until(uv_loop_t *loop, bool (*cond)(void *arg), void *arg, unsigned timeout_ms);
/* Runs the loop to completion and asserts uv_loop_close() == 0. */
void tu_loop_finish(uv_loop_t *loop);

/* A raw byte connection; freed asynchronously by tu_raw_close. */
typedef struct tu_raw {
    uv_pipe_t pipe;
    uv_connect_t creq;
    uv_loop_t *loop;
    int connect_status;
    bool connected;
    bool eof;
    uint8_t *buf;
    size_t len;
    size_t cap;
} tu_raw;

tu_raw *tu_raw_connect(uv_loop_t *loop, const char *path); /* NULL on failure */
void tu_raw_send(tu_raw *r, const void *data, size_t len);
void tu_raw_send_hex(tu_raw *r, const char *hex);
/* Waits for at least n buffered bytes (or EOF/timeout); true when present. */
bool tu_raw_wait(tu_raw *r, size_t n);
bool tu_raw_wait_eof(tu_raw *r);
void tu_raw_consume(tu_raw *r, size_t n);
void tu_raw_close(tu_raw *r);

/* A listener handing out the raw end of one accepted connection at a time. */
typedef struct tu_raw_server {
    uv_pipe_t pipe;
    uv_loop_t *loop;
    tu_raw *accepted;
} tu_raw_server;

tu_raw_server *tu_raw_server_new(uv_loop_t *loop, const char *path);
/* Waits for the next connection and takes it. */
tu_raw *tu_raw_server_accept(tu_raw_server *s);
void tu_raw_server_close(tu_raw_server *s);

/* Asserts (cmocka) that the buffered bytes start with the frame in hex. */
void tu_raw_expect_hex(tu_raw *r, const char *hex);
