/* The three WireServer requests (libcurl easy API: a one-shot VM program). */
#define LOG_COMPONENT "azure-ready"
#include <errno.h>
#include <string.h>

#include <curl/curl.h>

#include "cleanup.h"
#include "log.h"
#include "wireserver.h"
#include "xalloc.h"

typedef struct answer {
    char *data;
    size_t len;
    bool too_big;
} answer;

static size_t collect(char *ptr, size_t size, size_t nmemb, void *opaque)
{
    answer *a = opaque;
    size_t n = size * nmemb;
    if (a->len + n > CAA_WIRE_MAX_BODY) {
        a->too_big = true;
        return 0; /* curl stops with CURLE_WRITE_ERROR */
    }
    a->data = xrealloc(a->data, a->len + n + 1);
    memcpy(a->data + a->len, ptr, n);
    a->len += n;
    a->data[a->len] = '\0';
    return n;
}

static void easy_freep(CURL **c)
{
    if (*c)
        curl_easy_cleanup(*c);
}

static void headers_freep(struct curl_slist **l)
{
    curl_slist_free_all(*l);
}

static struct curl_slist *header(struct curl_slist *l, const char *h)
{
    struct curl_slist *n = curl_slist_append(l, h);
    if (!n)
        caa_oom();
    return n;
}

/* One request; a 2xx answer fills *ret (NUL-terminated). version NULL: no
 * x-ms-version header; body NULL: GET. */
static int wire(const caa_wire_opts *o, const char *path, const char *version, const char *body,
                size_t body_len, answer *ret, caa_error **err)
{
    _cleanup_free_ char *url = xasprintf("%s%s", o->endpoint, path);
    __attribute__((cleanup(easy_freep))) CURL *c = curl_easy_init();
    if (!c)
        caa_oom();
    __attribute__((cleanup(headers_freep))) struct curl_slist *hl =
        header(NULL, "x-ms-agent-name: " CAA_WIRE_AGENT_NAME);
    _cleanup_free_ char *version_header = version ? xasprintf("x-ms-version: %s", version) : NULL;
    if (version_header)
        hl = header(hl, version_header);
    if (body) {
        hl = header(hl, "Content-Type: text/xml; charset=utf-8");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    answer a = {0};
    long timeout = o->request_timeout_ms > 0 ? (long)o->request_timeout_ms : 1L;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &a);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout);
    /* The WireServer is reached directly: no proxy, no redirect, one connection per request. */
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (o->verbose)
        log_info("%s %s", body ? "POST" : "GET", url);
    CURLcode cr = curl_easy_perform(c);
    _cleanup_free_ char *data = a.data;
    if (a.too_big)
        return caa_error_set(err, -EFBIG, "%s: answer larger than %d bytes", path, CAA_WIRE_MAX_BODY);
    if (cr != CURLE_OK)
        return caa_error_set(err, -EAGAIN, "%s: %s", path, curl_easy_strerror(cr));
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status / 100 != 2)
        return caa_error_set(err, -EAGAIN, "%s: HTTP %ld", path, status);
    ret->data = TAKE_PTR(data);
    ret->len = a.len;
    return 0;
}

int caa_wire_report_ready(const caa_wire_opts *o, caa_error **err)
{
    answer versions = {0};
    int r = wire(o, "/?comp=versions", NULL, NULL, 0, &versions, err);
    if (r < 0)
        return caa_error_prefix(err, "version negotiation");
    _cleanup_free_ char *versions_xml = versions.data;
    _cleanup_free_ char *version = NULL;
    if ((r = caa_wire_pick_version(versions_xml ? versions_xml : "", versions.len, &version, err)) < 0)
        return r;
    if (o->verbose)
        log_info("WireServer version %s", version);

    answer goal = {0};
    if ((r = wire(o, "/machine/?comp=goalstate", version, NULL, 0, &goal, err)) < 0)
        return caa_error_prefix(err, "goal state");
    _cleanup_free_ char *goal_xml = goal.data;
    caa_wire_goal_state gs = {0};
    if ((r = caa_wire_parse_goal_state(goal_xml ? goal_xml : "", goal.len, &gs, err)) < 0)
        return r;
    if (o->verbose)
        log_info("incarnation %s, container %s, instance %s", gs.incarnation, gs.container_id,
                 gs.instance_id);

    size_t len = 0;
    _cleanup_free_ char *health = caa_wire_health_ready(&gs, &len, err);
    caa_wire_goal_state_done(&gs);
    if (!health)
        return -EINVAL;
    answer posted = {0};
    r = wire(o, "/machine?comp=health", version, health, len, &posted, err);
    free(posted.data);
    return r < 0 ? caa_error_prefix(err, "health report") : 0;
}
