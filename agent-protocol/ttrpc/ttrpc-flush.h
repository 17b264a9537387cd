/* Write coalescing across one loop iteration (internal).
 *
 * A connection with batching on writes the first frame of a loop iteration
 * at once (a lone call loses nothing) and gathers the frames that follow
 * in the same iteration; the flusher writes them together, with one
 * syscall (and, under TLS, in full records), in the check phase right
 * after the I/O callbacks, and in the prepare phase before the loop blocks
 * (frames sent by timers or close callbacks). Its handles are unreferenced:
 * they never keep the loop alive. */
#pragma once

#include <stdbool.h>

#include <uv.h>

typedef struct ttrpc_conn ttrpc_conn;

typedef struct ttrpc_flusher {
    uv_loop_t *loop;
    uv_check_t check;
    uv_prepare_t prepare;
    ttrpc_conn *list; /* connections to flush, linked through flush_next */
    bool handles;     /* check and prepare are initialised */
    bool active;
    bool closed;
    int closing;
    void (*done)(void *opaque);
    void *done_opaque;
} ttrpc_flusher;

void ttrpc_flusher_init(ttrpc_flusher *f, uv_loop_t *loop);
/* Queues c for the next flush; false (write at once instead) once closed. */
bool ttrpc_flusher_add(ttrpc_flusher *f, ttrpc_conn *c);
void ttrpc_flusher_remove(ttrpc_flusher *f, ttrpc_conn *c);
/* Closes the handles; returns how many close callbacks follow (each calls
 * done(opaque) once); 0 when there were none. */
int ttrpc_flusher_close(ttrpc_flusher *f, void (*done)(void *opaque), void *opaque);
