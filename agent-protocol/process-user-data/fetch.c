#define LOG_COMPONENT "process-user-data"
#include "fetch.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/mount.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cloud-config.h"
#include "codec.h"
#include "fs.h"
#include "log.h"
#include "xalloc.h"
#include "timeutil.h"

/* Azure and GCP answer base64 of the document, so it may be 4/3 larger,
 * plus line breaks. */
#define BASE64_MAX_BODY (2 * CAA_CLOUD_CONFIG_MAX_SIZE)
/* The probe's answer (the instance's metadata tree) is only checked for 200. */
#define GCP_PROBE_MAX_BODY (1024 * 1024)
#define GCP_FLAVOR_HEADER "Metadata-Flavor: Google"
#define AWS_MAX_TOKEN 4096
#define CONNECT_TIMEOUT_MS 2000

/* ---- reasons: why a round found nothing, for the final error ---- */

typedef struct reasons {
    char text[768];
} reasons;

static void reason_add(reasons *rs, const char *source, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reason_add(reasons *rs, const char *source, const char *fmt, ...)
{
    size_t used = strlen(rs->text);
    if (used + 8 >= sizeof(rs->text))
        return;
    int n = snprintf(rs->text + used, sizeof(rs->text) - used, "%s%s: ", used ? "; " : "", source);
    if (n < 0 || (size_t)n >= sizeof(rs->text) - used)
        return;
    used += (size_t)n;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rs->text + used, sizeof(rs->text) - used, fmt, ap);
    va_end(ap);
}

static bool enabled(const char *s)
{
    return s && *s;
}

/* ---- cidata ---- */

static int read_user_data_file(const char *path, char **ret, size_t *ret_len, caa_error **err)
{
    return caa_read_file(path, CAA_CLOUD_CONFIG_MAX_SIZE, 1, ret, ret_len, err);
}

static int fetch_cidata(const caa_pud_sources *src, char **ret, size_t *ret_len, reasons *rs, caa_error **err)
{
    _cleanup_free_ char *path = xasprintf("%s/user-data", src->cidata_dir);
    _cleanup_error_ caa_error *e = NULL;
    int r = read_user_data_file(path, ret, ret_len, &e);
    if (r == 0)
        return 0;
    if (r != -ENOENT) {
        caa_error_propagate(err, &e);
        return caa_error_prefix(err, "cidata");
    }
    if (!src->cidata_device || !*src->cidata_device) {
        reason_add(rs, "cidata", "no %s", path);
        return -EAGAIN;
    }
    if (access(src->cidata_device, F_OK) < 0) {
        reason_add(rs, "cidata", "no %s and no device %s", path, src->cidata_device);
        return -EAGAIN;
    }
    caa_error_freep(&e);
    if (caa_mkdir_p(src->cidata_dir, 0755, &e) < 0) {
        reason_add(rs, "cidata", "%s", caa_error_msg(e));
        return -EAGAIN;
    }
    const char *fstype = enabled(src->cidata_fstype) ? src->cidata_fstype : "iso9660";
    if (mount(src->cidata_device, src->cidata_dir, fstype, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
              NULL) < 0) {
        reason_add(rs, "cidata", "mounting %s (%s): %s", src->cidata_device, fstype, strerror(errno));
        return -EAGAIN;
    }
    log_debug("mounted %s on %s", src->cidata_device, src->cidata_dir);
    r = read_user_data_file(path, ret, ret_len, &e);
    /* The ISO has served its purpose; do not leave it mounted. */
    if (umount2(src->cidata_dir, 0) < 0)
        log_debug("unmounting %s: %s, ignoring", src->cidata_dir, strerror(errno));
    if (r == 0)
        return 0;
    if (r == -ENOENT) {
        reason_add(rs, "cidata", "no user-data on %s", src->cidata_device);
        return -EAGAIN;
    }
    caa_error_propagate(err, &e);
    return caa_error_prefix(err, "cidata");
}

/* ---- HTTP ---- */

typedef struct body {
    char *data;
    size_t len, max;
    bool too_big;
} body;

static size_t body_write(char *ptr, size_t size, size_t nmemb, void *opaque)
{
    body *b = opaque;
    size_t n = size * nmemb;
    if (b->len + n > b->max) {
        b->too_big = true;
        return 0; /* aborts the transfer */
    }
    b->data = xrealloc(b->data, b->len + n + 1);
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

CAA_DEFINE_CLEANUP(CURL *, curl_easy_cleanup)
CAA_DEFINE_CLEANUP(struct curl_slist *, curl_slist_free_all)

/* 0 with *ret_status for any HTTP answer; -EAGAIN when no answer came
 * (reason recorded); -EFBIG when the body exceeded max. */
static int http(const char *method, const char *url, const char *const *headers, int64_t timeout_ms,
                size_t max, long *ret_status, body *ret_body, const char *source, reasons *rs,
                caa_error **err)
{
    __attribute__((cleanup(curl_easy_cleanupp))) CURL *c = curl_easy_init();
    if (!c)
        caa_oom();
    __attribute__((cleanup(curl_slist_free_allp))) struct curl_slist *hl = NULL;
    for (const char *const *h = headers; h && *h; h++) {
        struct curl_slist *n = curl_slist_append(hl, *h);
        if (!n)
            caa_oom();
        hl = n;
    }
    body b = {.max = max};
    long connect_ms = timeout_ms < CONNECT_TIMEOUT_MS ? timeout_ms : CONNECT_TIMEOUT_MS;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, connect_ms > 0 ? connect_ms : 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? (long)timeout_ms : 1L);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max);
    /* Metadata services are link-local: never through a proxy, never redirected. */
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode cr = curl_easy_perform(c);
    if (b.too_big || cr == CURLE_FILESIZE_EXCEEDED) {
        free(b.data);
        return caa_error_set(err, -EFBIG, "%s: user-data larger than %zu bytes", source, max);
    }
    if (cr != CURLE_OK) {
        free(b.data);
        reason_add(rs, source, "%s %s: %s", method, url, curl_easy_strerror(cr));
        return -EAGAIN;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, ret_status);
    *ret_body = b;
    return 0;
}

/* GET url; a 200 with a non-empty body is the document, base64-decoded when
 * the cloud serves it so (Azure, GCP). Anything else: -EAGAIN with a reason. */
static int get_document(const char *source, const char *url, const char *const *headers, bool base64,
                        int64_t timeout_ms, char **ret, size_t *ret_len, reasons *rs, caa_error **err)
{
    long status = 0;
    body b = {0};
    size_t max = base64 ? BASE64_MAX_BODY : CAA_CLOUD_CONFIG_MAX_SIZE;
    int r = http("GET", url, headers, timeout_ms, max, &status, &b, source, rs, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *text = b.data;
    if (status != 200) {
        reason_add(rs, source, "HTTP %ld", status);
        return -EAGAIN;
    }
    if (b.len == 0) {
        reason_add(rs, source, "empty user-data");
        return -EAGAIN;
    }
    if (!base64) {
        *ret = TAKE_PTR(text);
        *ret_len = b.len;
        return 0;
    }
    void *doc = NULL;
    size_t doc_len = 0;
    r = caa_bootdata_base64_decode(text, b.len, CAA_CLOUD_CONFIG_MAX_SIZE, &doc, &doc_len, err);
    if (r < 0)
        return caa_error_prefix(err, "%s user-data", source);
    *ret = doc;
    *ret_len = doc_len;
    return 0;
}

static int fetch_azure(const caa_pud_sources *src, int64_t timeout_ms, char **ret, size_t *ret_len,
                       reasons *rs, caa_error **err)
{
    _cleanup_free_ char *url =
        xasprintf("%s/metadata/instance/compute/userData?api-version=2021-01-01&format=text", src->azure_url);
    const char *headers[] = {"Metadata: true", NULL};
    return get_document("azure", url, headers, true, timeout_ms, ret, ret_len, rs, err);
}

static int fetch_gcp(const caa_pud_sources *src, int64_t timeout_ms, char **ret, size_t *ret_len, reasons *rs,
                     caa_error **err)
{
    _cleanup_free_ char *url = xasprintf("%s/computeMetadata/v1/instance/attributes/user-data", src->gcp_url);
    const char *headers[] = {GCP_FLAVOR_HEADER, NULL};
    return get_document("gcp", url, headers, true, timeout_ms, ret, ret_len, rs, err);
}

static int fetch_alibaba(const caa_pud_sources *src, int64_t timeout_ms, char **ret, size_t *ret_len,
                         reasons *rs, caa_error **err)
{
    _cleanup_free_ char *url = xasprintf("%s/latest/user-data", src->alibaba_url);
    return get_document("alibaba", url, NULL, false, timeout_ms, ret, ret_len, rs, err);
}

bool caa_pud_gcp_metadata_answers(const char *gcp_url, int64_t timeout_ms)
{
    _cleanup_free_ char *url = xasprintf("%s/computeMetadata/v1/instance", gcp_url);
    const char *headers[] = {GCP_FLAVOR_HEADER, NULL};
    reasons rs = {{0}};
    _cleanup_error_ caa_error *e = NULL;
    long status = 0;
    body b = {0};
    if (http("GET", url, headers, timeout_ms, GCP_PROBE_MAX_BODY, &status, &b, "gcp", &rs, &e) < 0) {
        log_debug("gcp probe: %s", e ? caa_error_msg(e) : rs.text);
        return false;
    }
    free(b.data);
    log_debug("gcp probe: HTTP %ld", status);
    return status == 200;
}

static bool token_ok(const char *t, size_t len)
{
    if (len == 0 || strlen(t) != len)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
            return false;
    return true;
}

static int fetch_aws(const caa_pud_sources *src, int64_t timeout_ms, char **ret, size_t *ret_len, reasons *rs,
                     caa_error **err)
{
    _cleanup_free_ char *token_url = xasprintf("%s/latest/api/token", src->aws_url);
    const char *token_headers[] = {"X-aws-ec2-metadata-token-ttl-seconds: 60", NULL};
    long status = 0;
    body tb = {0};
    int r = http("PUT", token_url, token_headers, timeout_ms, AWS_MAX_TOKEN, &status, &tb, "aws", rs, err);
    if (r < 0)
        return r == -EFBIG ? caa_error_prefix(err, "aws token") : r;
    _cleanup_free_ char *token = tb.data;
    _cleanup_free_ char *token_header = NULL;
    if (status == 200) {
        while (tb.len && (token[tb.len - 1] == '\n' || token[tb.len - 1] == '\r'))
            token[--tb.len] = '\0';
        if (!token_ok(token ? token : "", tb.len)) {
            reason_add(rs, "aws", "malformed IMDSv2 token");
            return -EAGAIN;
        }
        token_header = xasprintf("X-aws-ec2-metadata-token: %s", token);
    } else {
        /* An HTTP error to the token request means an IMDSv1-only service. */
        log_debug("aws: token request answered HTTP %ld, trying IMDSv1", status);
    }
    _cleanup_free_ char *url = xasprintf("%s/latest/user-data", src->aws_url);
    const char *headers[] = {token_header, NULL};
    return get_document("aws", url, headers, false, timeout_ms, ret, ret_len, rs, err);
}

typedef int (*imds_fetch_fn)(const caa_pud_sources *src, int64_t timeout_ms, char **ret, size_t *ret_len,
                             reasons *rs, caa_error **err);

/* The metadata services after cidata, in this order; url: the field of src. */
static const struct {
    const char *name;
    size_t url;
    imds_fetch_fn fetch;
} imds_sources[] = {
    {"azure", offsetof(caa_pud_sources, azure_url), fetch_azure},
    {"aws", offsetof(caa_pud_sources, aws_url), fetch_aws},
    {"gcp", offsetof(caa_pud_sources, gcp_url), fetch_gcp},
    {"alibaba", offsetof(caa_pud_sources, alibaba_url), fetch_alibaba},
};

int caa_pud_fetch_once(const caa_pud_sources *src, int64_t request_timeout_ms, char **ret, size_t *ret_len,
                       const char **ret_source, caa_error **err)
{
    reasons rs = {{0}};
    int r;
    if (enabled(src->cidata_dir)) {
        r = fetch_cidata(src, ret, ret_len, &rs, err);
        if (r != -EAGAIN) {
            *ret_source = "cidata";
            return r;
        }
    }
    for (size_t i = 0; i < sizeof(imds_sources) / sizeof(imds_sources[0]); i++) {
        const char *url = *(const char *const *)((const char *)src + imds_sources[i].url);
        if (!enabled(url))
            continue;
        r = imds_sources[i].fetch(src, request_timeout_ms, ret, ret_len, &rs, err);
        if (r != -EAGAIN) {
            *ret_source = imds_sources[i].name;
            return r;
        }
    }
    return caa_error_set(err, -EAGAIN, "no user-data (%s)", rs.text[0] ? rs.text : "no source enabled");
}

static int64_t now_ms(void)
{
    return caa_clock_ms(CLOCK_MONOTONIC);
}

int caa_pud_fetch(const caa_pud_sources *src, int64_t timeout_ms, int64_t retry_ms, char **ret,
                  size_t *ret_len, const char **ret_source, caa_error **err)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (unsigned round = 1;; round++) {
        _cleanup_error_ caa_error *e = NULL;
        int64_t left = deadline - now_ms();
        /* Each request may take at most 5 s, and never past the deadline. */
        int64_t req = left < 5000 ? left : 5000;
        int r = caa_pud_fetch_once(src, req > 0 ? req : 1, ret, ret_len, ret_source, &e);
        if (r != -EAGAIN) {
            if (r < 0)
                caa_error_propagate(err, &e);
            return r;
        }
        log_debug("round %u: %s", round, caa_error_msg(e));
        left = deadline - now_ms();
        if (left <= 0)
            return caa_error_set(err, -ETIMEDOUT, "%s after %lld s", caa_error_msg(e),
                                 (long long)(timeout_ms / 1000));
        /* Retry pacing (the sources offer no event to wait for). */
        int64_t nap = retry_ms < left ? retry_ms : left;
        struct timespec ts = caa_ms_to_timespec(nap);
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
    }
}
