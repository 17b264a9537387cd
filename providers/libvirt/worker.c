/* Dedicated worker threads with a FIFO job queue and an async completion
 * queue drained on the loop thread. */
#include "worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "xalloc.h"

#define LV_MAX_THREADS 8

struct lv_worker {
    uv_loop_t *loop;
    uv_async_t async;
    pthread_mutex_t lock;
    pthread_cond_t cond;      /* queue not empty, or stopping */
    pthread_cond_t sync_cond; /* a synchronous job finished */
    lv_job *queue_head, *queue_tail;
    lv_job *done_head, *done_tail;
    bool stopping;
    unsigned n_threads;
    pthread_t threads[LV_MAX_THREADS];
    void (*on_closed)(void *opaque);
    void *closed_opaque;
};

/* Marks a job as run synchronously (it is not queued for done()). */
typedef struct sync_job {
    lv_job job;
    lv_job *inner;
    bool finished;
} sync_job;

static void push(lv_job **head, lv_job **tail, lv_job *job)
{
    job->next = NULL;
    if (*tail)
        (*tail)->next = job;
    else
        *head = job;
    *tail = job;
}

static lv_job *pop(lv_job **head, lv_job **tail)
{
    lv_job *job = *head;
    if (job) {
        *head = job->next;
        if (!*head)
            *tail = NULL;
        job->next = NULL;
    }
    return job;
}

static void sync_run(lv_job *job)
{
    sync_job *s = (sync_job *)job;
    s->inner->run(s->inner);
}

static void *thread_main(void *arg)
{
    lv_worker *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->queue_head && !w->stopping)
            pthread_cond_wait(&w->cond, &w->lock);
        if (w->stopping)
            break;
        lv_job *job = pop(&w->queue_head, &w->queue_tail);
        pthread_mutex_unlock(&w->lock);
        job->run(job);
        pthread_mutex_lock(&w->lock);
        if (job->run == sync_run) {
            ((sync_job *)job)->finished = true;
            pthread_cond_broadcast(&w->sync_cond);
        } else {
            push(&w->done_head, &w->done_tail, job);
            uv_async_send(&w->async);
        }
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* Runs done() of every finished job, including jobs a done() submits while
 * the worker is stopping (those come back cancelled). */
static void deliver(lv_worker *w)
{
    for (;;) {
        pthread_mutex_lock(&w->lock);
        lv_job *list = w->done_head;
        w->done_head = w->done_tail = NULL;
        pthread_mutex_unlock(&w->lock);
        if (!list)
            return;
        while (list) {
            lv_job *job = list;
            list = list->next;
            job->next = NULL;
            job->done(job);
        }
    }
}

static void on_async(uv_async_t *a)
{
    deliver(CAA_CONTAINER_OF(a, lv_worker, async));
}

int lv_worker_new(uv_loop_t *loop, unsigned n_threads, lv_worker **ret, caa_error **err)
{
    if (n_threads == 0 || n_threads > LV_MAX_THREADS)
        return caa_error_set(err, -EINVAL, "libvirt worker: bad thread count %u", n_threads);
    lv_worker *w = xcalloc(1, sizeof(*w));
    w->loop = loop;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    pthread_cond_init(&w->sync_cond, NULL);
    int r = uv_async_init(loop, &w->async, on_async);
    if (r < 0) {
        free(w);
        return caa_error_set(err, r, "libvirt worker: uv_async_init: %s", uv_strerror(r));
    }
    for (unsigned i = 0; i < n_threads; i++) {
        r = pthread_create(&w->threads[i], NULL, thread_main, w);
        if (r != 0) {
            /* Stop what started; the handle is closed by lv_worker_stop. */
            lv_worker_stop(w, NULL, NULL);
            return caa_error_set(err, -r, "libvirt worker: pthread_create: %s", strerror(r));
        }
        w->n_threads++;
    }
    *ret = w;
    return 0;
}

void lv_worker_submit(lv_worker *w, lv_job *job)
{
    job->cancelled = false;
    pthread_mutex_lock(&w->lock);
    if (w->stopping) {
        /* Delivered by the close callback, as cancelled. */
        job->cancelled = true;
        push(&w->done_head, &w->done_tail, job);
    } else {
        push(&w->queue_head, &w->queue_tail, job);
        pthread_cond_signal(&w->cond);
    }
    pthread_mutex_unlock(&w->lock);
}

void lv_worker_run_sync(lv_worker *w, lv_job *job)
{
    sync_job s = {.job = {.run = sync_run}, .inner = job};
    pthread_mutex_lock(&w->lock);
    if (w->stopping) {
        pthread_mutex_unlock(&w->lock);
        job->cancelled = true;
        return;
    }
    push(&w->queue_head, &w->queue_tail, &s.job);
    pthread_cond_signal(&w->cond);
    while (!s.finished)
        pthread_cond_wait(&w->sync_cond, &w->lock);
    pthread_mutex_unlock(&w->lock);
}

static void on_close(uv_handle_t *h)
{
    lv_worker *w = CAA_CONTAINER_OF((uv_async_t *)h, lv_worker, async);
    deliver(w);
    if (w->on_closed)
        w->on_closed(w->closed_opaque);
    pthread_cond_destroy(&w->cond);
    pthread_cond_destroy(&w->sync_cond);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

void lv_worker_stop(lv_worker *w, void (*on_closed)(void *opaque), void *opaque)
{
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    /* Jobs that never ran are handed back as cancelled. */
    for (lv_job *job; (job = pop(&w->queue_head, &w->queue_tail));) {
        job->cancelled = true;
        push(&w->done_head, &w->done_tail, job);
    }
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    for (unsigned i = 0; i < w->n_threads; i++)
        pthread_join(w->threads[i], NULL);
    w->n_threads = 0;
    w->on_closed = on_closed;
    w->closed_opaque = opaque;
    uv_close((uv_handle_t *)&w->async, on_close);
}
