/* Per-connection ttRPC framing shared by server and client (internal).
 *
 * Owns a transport and a frame reader; sends whole frames; pauses reading
 * while the owner holds it or while too many bytes wait to be written. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "ttrpc-codec.h"
#include "ttrpc-transport.h"

/* Reading pauses while more than this many bytes are queued for writing
 * (a peer that does not read our replies stops being read). */
#define TTRPC_CONN_WRITE_HIGH (1u << 20)

typedef struct ttrpc_conn ttrpc_conn;
typedef struct ttrpc_flusher ttrpc_flusher;

typedef struct ttrpc_conn_events {
    /* A complete frame; body is valid only during the call. */
    void (*frame)(ttrpc_conn *c, const ttrpc_frame_header *h, const uint8_t *body);
    /* Header of a frame over 4 MiB; its body is being discarded. */
    void (*oversize)(ttrpc_conn *c, const ttrpc_frame_header *h);
    /* The transport is closed; reason is 0 after ttrpc_conn_close(), else why
     * the connection broke (UV_EOF, a read or write error). The owner may free
     * the conn now. */
    void (*closed)(ttrpc_conn *c, int reason);
} ttrpc_conn_events;

struct ttrpc_conn {
    ttrpc_transport *t;
    const ttrpc_conn_events *ev;
    void *owner;
    ttrpc_frame_reader reader;
    size_t write_queued; /* bytes handed to the transport, not yet written */
    int reason;          /* first error that broke the connection */
    bool held;
    bool reading;
    bool closing;

    /* Write coalescing (ttrpc-flush.h); off while flusher is NULL. */
    ttrpc_flusher *flusher;
    bool tick;         /* a frame went out in this loop iteration */
    bool flush_listed; /* on the flusher's list */
    ttrpc_conn *flush_next;
    uint8_t *batch; /* frames gathered since, not yet handed to the transport */
    size_t batch_len, batch_cap;
};

/* Takes ownership of t. */
void ttrpc_conn_init(ttrpc_conn *c, ttrpc_transport *t, const ttrpc_conn_events *ev, void *owner);
int ttrpc_conn_start(ttrpc_conn *c);
/* Sends one frame; -ENOTCONN once closing, -EMSGSIZE over 4 MiB. */
int ttrpc_conn_send(ttrpc_conn *c, uint32_t stream_id, uint8_t type, uint8_t flags, const uint8_t *body,
                    size_t len);
int ttrpc_conn_send_message(ttrpc_conn *c, uint32_t stream_id, uint8_t type, uint8_t flags,
                            const ProtobufCMessage *m);
/* Inside ev->frame: the body as a malloc'd buffer the caller now owns when
 * the reader assembled it (no copy needed), else NULL. */
uint8_t *ttrpc_conn_take_body(ttrpc_conn *c, const uint8_t *body);
/* Turns write coalescing on (transports with write_now only); the
 * flusher must outlive the connection's close. */
void ttrpc_conn_set_flusher(ttrpc_conn *c, ttrpc_flusher *f);
/* Writes the gathered frames and ends the iteration (the flusher calls it). */
void ttrpc_conn_flush(ttrpc_conn *c);
/* Owner-side back-pressure: while held, nothing is read. */
void ttrpc_conn_hold(ttrpc_conn *c, bool hold);
/* Closes (idempotent); ev->closed follows asynchronously. */
void ttrpc_conn_close(ttrpc_conn *c);
bool ttrpc_conn_is_open(const ttrpc_conn *c);
