/* A small pool of dedicated threads for blocking libvirt calls.
 *
 * Why not uv_queue_work: libvirt calls block for as long as the libvirt host
 * takes (volume uploads, a stuck qemu+ssh connection), and the 4 threads of
 * libuv's shared pool also serve file-system and DNS work of the whole
 * daemon. Our own threads keep a slow libvirt host from starving those.
 * Completions come back to the loop thread through one uv_async_t. */
#pragma once

#include <stdbool.h>

#include <uv.h>

#include "error.h"

typedef struct lv_job lv_job;
typedef void (*lv_job_fn)(lv_job *job);

/* Embed in a request. run() executes on a worker thread; done() later on
 * the loop thread. A job stopped before it ran gets done() with cancelled. */
struct lv_job {
    lv_job_fn run;
    lv_job_fn done;
    bool cancelled;
    lv_job *next; /* private */
};

typedef struct lv_worker lv_worker;

int lv_worker_new(uv_loop_t *loop, unsigned n_threads, lv_worker **ret, caa_error **err);
/* Loop thread only. */
void lv_worker_submit(lv_worker *w, lv_job *job);
/* Runs job->run on a worker thread and waits for it; done is not called.
 * For startup checks, where blocking the caller briefly is allowed. */
void lv_worker_run_sync(lv_worker *w, lv_job *job);
/* Stops the threads after their current job (queued jobs are cancelled),
 * joins them and closes the async handle. Outstanding done() callbacks run
 * from the close callback, then on_closed(opaque); the worker is freed after.
 * The loop must run once more for this to finish. Loop thread only. */
void lv_worker_stop(lv_worker *w, void (*on_closed)(void *opaque), void *opaque);
