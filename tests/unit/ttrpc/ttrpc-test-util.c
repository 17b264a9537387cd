#include "ttrpc-test-util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "parse.h"
#include "xalloc.h"

#define TU_TIMEOUT_MS 10000

uint8_t *tu_hex(const char *hex, size_t *ret_len)
{
    uint8_t *out = xmalloc(strlen(hex) / 2 + 1);
    size_t n = 0;
    int hi = -1;
    for (const char *p = hex; *p; p++) {
        if (*p == ' ')
            continue;
        int v = caa_hex_digit_value(*p);
        if (v < 0)
            abort();
        if (hi < 0) {
            hi = v;
        } else {
            out[n++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    if (hi >= 0)
        abort();
    *ret_len = n;
    return out;
}

char *tu_path(const char *dir, const char *name)
{
    return xasprintf("%s/%s", dir, name);
}

bool tu_under_valgrind(void)
{
    const char *v = getenv("CAA_UNDER_VALGRIND");
    return v && *v && strcmp(v, "0") != 0;
}

typedef struct guard {
    uv_timer_t t;
    bool expired;
    bool closed;
} guard;

static void on_guard(uv_timer_t *t)
{
    ((guard *)t)->expired = true;
}

static void on_guard_closed(uv_handle_t *h)
{
    ((guard *)h)->closed = true;
}

bool tu_run_until(uv_loop_t *loop, bool (*cond)(void *arg), void *arg, unsigned timeout_ms)
{
    guard g = {.expired = false};
    uv_timer_init(loop, &g.t);
    uv_timer_start(&g.t, on_guard, timeout_ms, 0);
    while (!cond(arg) && !g.expired)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&g.t, on_guard_closed);
    /* The guard lives on this stack frame: finish closing it here. */
    while (!g.closed)
        uv_run(loop, UV_RUN_NOWAIT);
    return cond(arg);
}

static void print_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    fprintf(stderr, "# leftover handle %s active=%d closing=%d\n", uv_handle_type_name(h->type),
            uv_is_active(h), uv_is_closing(h));
}

void tu_loop_finish(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_DEFAULT);
    int r = uv_loop_close(loop);
    if (r != 0)
        uv_walk(loop, print_handle, NULL);
    assert_int_equal(r, 0);
}

/* ------------------------------------------------------------ raw peers */

static void raw_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    buf->base = xmalloc(65536);
    buf->len = 65536;
}

static void raw_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    tu_raw *r = (tu_raw *)s;
    if (nread < 0) {
        r->eof = true;
        uv_read_stop(s);
    } else if (nread > 0) {
        if (r->len + (size_t)nread > r->cap) {
            r->cap = (r->len + (size_t)nread) * 2;
            r->buf = xrealloc(r->buf, r->cap);
        }
        memcpy(r->buf + r->len, buf->base, (size_t)nread);
        r->len += (size_t)nread;
    }
    free(buf->base);
}

static void raw_on_connect(uv_connect_t *req, int status)
{
    tu_raw *r = req->data;
    r->connect_status = status;
    r->connected = true;
    if (status == 0)
        uv_read_start((uv_stream_t *)&r->pipe, raw_alloc, raw_read);
}

static bool raw_connected(void *arg)
{
    return ((tu_raw *)arg)->connected;
}

static void raw_free(uv_handle_t *h)
{
    tu_raw *r = (tu_raw *)h;
    free(r->buf);
    free(r);
}

tu_raw *tu_raw_connect(uv_loop_t *loop, const char *path)
{
    tu_raw *r = xnew0(tu_raw, 1);
    r->loop = loop;
    uv_pipe_init(loop, &r->pipe, 0);
    r->creq.data = r;
    uv_pipe_connect(&r->creq, &r->pipe, path, raw_on_connect);
    tu_run_until(loop, raw_connected, r, TU_TIMEOUT_MS);
    if (!r->connected || r->connect_status != 0) {
        tu_raw_close(r);
        return NULL;
    }
    return r;
}

static void raw_written(uv_write_t *w, int status)
{
    (void)status;
    free(w);
}

void tu_raw_send(tu_raw *r, const void *data, size_t len)
{
    uv_write_t *w = xmalloc(sizeof(*w) + len);
    memcpy(w + 1, data, len);
    uv_buf_t b = uv_buf_init((char *)(w + 1), (unsigned)len);
    if (uv_write(w, (uv_stream_t *)&r->pipe, &b, 1, raw_written) < 0)
        free(w);
}

void tu_raw_send_hex(tu_raw *r, const char *hex)
{
    size_t len;
    uint8_t *b = tu_hex(hex, &len);
    tu_raw_send(r, b, len);
    free(b);
}

typedef struct wait_arg {
    tu_raw *r;
    size_t n;
} wait_arg;

static bool raw_has(void *arg)
{
    wait_arg *w = arg;
    return w->r->len >= w->n || w->r->eof;
}

bool tu_raw_wait(tu_raw *r, size_t n)
{
    wait_arg w = {r, n};
    tu_run_until(r->loop, raw_has, &w, TU_TIMEOUT_MS);
    return r->len >= n;
}

static bool raw_is_eof(void *arg)
{
    return ((tu_raw *)arg)->eof;
}

bool tu_raw_wait_eof(tu_raw *r)
{
    return tu_run_until(r->loop, raw_is_eof, r, TU_TIMEOUT_MS);
}

void tu_raw_consume(tu_raw *r, size_t n)
{
    if (n > r->len)
        n = r->len;
    memmove(r->buf, r->buf + n, r->len - n);
    r->len -= n;
}

void tu_raw_close(tu_raw *r)
{
    if (r)
        uv_close((uv_handle_t *)&r->pipe, raw_free);
}

void tu_raw_expect_hex(tu_raw *r, const char *hex)
{
    size_t len;
    uint8_t *want = tu_hex(hex, &len);
    assert_true(tu_raw_wait(r, len));
    if (memcmp(r->buf, want, len) != 0) {
        fprintf(stderr, "# want ");
        for (size_t i = 0; i < len; i++)
            fprintf(stderr, "%02x", want[i]);
        fprintf(stderr, "\n# got  ");
        for (size_t i = 0; i < r->len; i++)
            fprintf(stderr, "%02x", r->buf[i]);
        fprintf(stderr, "\n");
    }
    assert_memory_equal(r->buf, want, len);
    tu_raw_consume(r, len);
    free(want);
}

static void raw_on_connection(uv_stream_t *l, int status)
{
    tu_raw_server *s = (tu_raw_server *)l;
    if (status < 0 || s->accepted)
        return;
    tu_raw *r = xnew0(tu_raw, 1);
    r->loop = s->loop;
    uv_pipe_init(s->loop, &r->pipe, 0);
    if (uv_accept(l, (uv_stream_t *)&r->pipe) < 0) {
        tu_raw_close(r);
        return;
    }
    r->connected = true;
    uv_read_start((uv_stream_t *)&r->pipe, raw_alloc, raw_read);
    s->accepted = r;
}

tu_raw_server *tu_raw_server_new(uv_loop_t *loop, const char *path)
{
    tu_raw_server *s = xnew0(tu_raw_server, 1);
    s->loop = loop;
    uv_pipe_init(loop, &s->pipe, 0);
    assert_int_equal(uv_pipe_bind(&s->pipe, path), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&s->pipe, 128, raw_on_connection), 0);
    return s;
}

static bool server_has(void *arg)
{
    return ((tu_raw_server *)arg)->accepted != NULL;
}

tu_raw *tu_raw_server_accept(tu_raw_server *s)
{
    tu_run_until(s->loop, server_has, s, TU_TIMEOUT_MS);
    tu_raw *r = s->accepted;
    s->accepted = NULL;
    return r;
}

static void raw_server_free(uv_handle_t *h)
{
    free(h);
}

void tu_raw_server_close(tu_raw_server *s)
{
    if (s->accepted)
        tu_raw_close(s->accepted);
    uv_close((uv_handle_t *)&s->pipe, raw_server_free);
}
