/* Key fetch for secure comms' Trustee mode (see forwarder-sc-fetch.h). */
#define LOG_COMPONENT "forwarder/securecomms"
#include "forwarder-sc-fetch.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "buf.h"
#include "cleanup.h"
#include "log.h"
#include "netns.h"
#include "xalloc.h"

#define BACKOFF_MAX_MS 30000
#define ATTEMPT_TIMEOUT_S 15

static const char *const key_names[2] = {"sshclient/publicKey", "pp-sid/privateKey"};

struct fwd_sc_fetch {
    uv_loop_t *loop;
    char *source;
    char *netns;
    uint64_t backoff_ms;
    fwd_sc_fetch_cb cb;
    void *opaque;
    uv_thread_t thread;
    uv_mutex_t lock;
    uv_cond_t wake;
    bool stop; /* under lock */
    uv_async_t done;
    int status;
    caa_buf keys[2]; /* secret (the private key) */
};

static size_t on_body(char *data, size_t size, size_t n, void *opaque)
{
    caa_buf *b = opaque;
    if (b->len + size * n > FWD_SC_KEY_MAX)
        return 0; /* aborts the transfer */
    caa_buf_append(b, data, size * n);
    return size * n;
}

static int get_once(const char *url, caa_buf *out, char *why, size_t why_len)
{
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(why, why_len, "curl_easy_init failed");
        return -ENOMEM;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)ATTEMPT_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_PROXY, ""); /* never through a proxy from the environment */
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        snprintf(why, why_len, "%s", curl_easy_strerror(rc));
        return -EIO;
    }
    if (status != 200) {
        snprintf(why, why_len, "HTTP %ld", status);
        return -EPROTO;
    }
    if (out->len == 0) {
        snprintf(why, why_len, "empty answer");
        return -EPROTO;
    }
    return 0;
}

/* Sleeps ms unless stopped; true when stopped. */
static bool sleep_or_stop(fwd_sc_fetch *f, uint64_t ms)
{
    uv_mutex_lock(&f->lock);
    uint64_t end = uv_hrtime() + ms * 1000000ull;
    while (!f->stop) {
        uint64_t now = uv_hrtime();
        if (now >= end)
            break;
        (void)uv_cond_timedwait(&f->wake, &f->lock, end - now);
    }
    bool stopped = f->stop;
    uv_mutex_unlock(&f->lock);
    return stopped;
}

/* Waits the current backoff, then doubles it; true when stopped. */
static bool backoff_wait(fwd_sc_fetch *f, uint64_t *backoff)
{
    if (sleep_or_stop(f, *backoff))
        return true;
    *backoff = *backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : *backoff * 2;
    return false;
}

/* Moves this thread into the namespace the keys are fetched in. It may not
 * be there yet (or be a file `ip netns add` has not mounted over yet): wait
 * for it like for the keys. -ECANCELED when stopped. */
static int enter_key_netns(fwd_sc_fetch *f, uint64_t *backoff, int *ret_origin)
{
    for (;;) {
        _cleanup_error_ caa_error *e = NULL;
        if (caa_netns_enter_path(f->netns, ret_origin, &e) == 0)
            return 0;
        log_warn("secure comms: cannot fetch the keys in that namespace: %s; retrying in %llu ms",
                 caa_error_msg(e), (unsigned long long)*backoff);
        if (backoff_wait(f, backoff))
            return -ECANCELED;
    }
}

static int fetch_keys(fwd_sc_fetch *f, uint64_t *backoff)
{
    for (int i = 0; i < 2; i++) {
        _cleanup_free_ char *url = xasprintf("%s/%s", f->source, key_names[i]);
        for (;;) {
            char why[256];
            caa_buf_wipe_done(&f->keys[i]);
            if (get_once(url, &f->keys[i], why, sizeof(why)) == 0) {
                log_info("secure comms: got %s from the KBS", key_names[i]);
                break;
            }
            log_warn("secure comms: fetching %s: %s; retrying in %llu ms", url, why,
                     (unsigned long long)*backoff);
            if (backoff_wait(f, backoff))
                return -ECANCELED;
        }
    }
    return 0;
}

static void fetch_thread(void *opaque)
{
    fwd_sc_fetch *f = opaque;
    uint64_t backoff = f->backoff_ms;
    int origin = -1;
    /* This thread only: the loop thread stays in the forwarder's namespace. */
    int r = *f->netns ? enter_key_netns(f, &backoff, &origin) : 0;
    if (r == 0)
        r = fetch_keys(f, &backoff);
    if (origin >= 0)
        caa_netns_return(origin);
    f->status = r;
    uv_async_send(&f->done);
}

static void on_async_closed(uv_handle_t *h)
{
    fwd_sc_fetch *f = h->data;
    caa_buf_wipe_done(&f->keys[0]);
    caa_buf_wipe_done(&f->keys[1]);
    uv_mutex_destroy(&f->lock);
    uv_cond_destroy(&f->wake);
    free(f->source);
    free(f->netns);
    free(f);
}

static void on_done(uv_async_t *a)
{
    fwd_sc_fetch *f = a->data;
    if (!f->cb)
        return; /* stopped */
    uv_thread_join(&f->thread);
    fwd_sc_fetch_cb cb = f->cb;
    f->cb = NULL;
    cb(f->status, f->keys[0].data, f->keys[0].len, f->keys[1].data, f->keys[1].len, f->opaque);
    uv_close((uv_handle_t *)&f->done, on_async_closed); /* finished: the keys are wiped there */
}

static bool source_allowed(const char *source)
{
    if (strncmp(source, "https://", 8) == 0)
        return true;
    const char *const loopback[] = {"http://127.", "http://localhost:", "http://localhost/", "http://[::1]"};
    for (size_t i = 0; i < CAA_ARRAY_SIZE(loopback); i++)
        if (strncmp(source, loopback[i], strlen(loopback[i])) == 0)
            return true;
    return false;
}

int fwd_sc_fetch_start(uv_loop_t *loop, const char *source, const char *netns, uint64_t first_backoff_ms,
                       fwd_sc_fetch_cb cb, void *opaque, fwd_sc_fetch **ret, caa_error **err)
{
    if (!source_allowed(source))
        return caa_error_set(
            err, -EINVAL, "-secure-comms-key-source %s: https://, or plain http:// to a loopback host only",
            source);
    fwd_sc_fetch *f = xnew0(fwd_sc_fetch, 1);
    f->loop = loop;
    f->source = xstrdup(source);
    size_t n = strlen(f->source);
    while (n > 0 && f->source[n - 1] == '/')
        f->source[--n] = '\0';
    f->netns = xstrdup(netns ? netns : "");
    f->backoff_ms = first_backoff_ms ? first_backoff_ms : 1000;
    f->cb = cb;
    f->opaque = opaque;
    uv_mutex_init(&f->lock);
    uv_cond_init(&f->wake);
    uv_async_init(loop, &f->done, on_done);
    f->done.data = f;
    int r = uv_thread_create(&f->thread, fetch_thread, f);
    if (r < 0) {
        f->cb = NULL;
        uv_close((uv_handle_t *)&f->done, on_async_closed);
        return caa_error_set(err, r, "secure comms: key fetch thread: %s", uv_strerror(r));
    }
    log_info("secure comms (Trustee): fetching the SSH keys from %s%s%s", f->source, *f->netns ? " in " : "",
             f->netns);
    *ret = f;
    return 0;
}

void fwd_sc_fetch_stop(fwd_sc_fetch *f)
{
    if (!f || !f->cb)
        return;
    /* Still running, or its result not delivered yet: stop and join. */
    uv_mutex_lock(&f->lock);
    f->stop = true;
    uv_cond_signal(&f->wake);
    uv_mutex_unlock(&f->lock);
    uv_thread_join(&f->thread);
    f->cb = NULL;
    uv_close((uv_handle_t *)&f->done, on_async_closed);
}
