/* Byte splicing between two ttRPC transports (an SSH channel and a TCP
 * connection), both directions, with backpressure and half-close: EOF on
 * one side becomes a shutdown of the other; an error, or both sides done,
 * closes both. The splice owns both transports. */
#pragma once

#include <stdint.h>

#include <uv.h>

#include "buf.h"
#include "error.h"
#include "ttrpc-transport.h"

/* Splices a and b from now on. */
void caa_sc_splice(const char *id, const char *name, ttrpc_transport *a, ttrpc_transport *b);

/* A filter on the bytes read from the channel (a) before they go to b:
 * appends what to send to out; < 0 closes both sides. */
typedef struct caa_sc_splice_filter {
    int (*feed)(void *state, const uint8_t *data, size_t len, caa_buf *out, caa_error **err);
    void (*free)(void *state);
    void *state;
} caa_sc_splice_filter;

/* Connects to host:port (resolved off the loop) and splices chan to it; on
 * a failure the channel is closed and the failure logged with the tunnel
 * name. */
void caa_sc_splice_to_tcp(uv_loop_t *loop, const char *id, const char *name, ttrpc_transport *chan,
                          const char *host, uint16_t port);
/* The same with a filter on chan's bytes (owned from now on, also on failure). */
void caa_sc_splice_to_tcp_filtered(uv_loop_t *loop, const char *id, const char *name, ttrpc_transport *chan,
                                   const char *host, uint16_t port, const caa_sc_splice_filter *filter);
