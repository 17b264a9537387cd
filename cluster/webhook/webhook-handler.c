/* Webhook routes; see webhook-handler.h. */
#define LOG_COMPONENT "webhook"
#include "webhook-handler.h"

#include <inttypes.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "admission-review.h"
#include "log.h"
#include "xalloc.h"

static void text_answer(caa_http_response *resp, int status, const char *text)
{
    resp->status = status;
    resp->content_type = "text/plain; charset=utf-8";
    resp->body = xstrdup(text);
    resp->body_len = strlen(text);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* "application/json", optionally with parameters (charset). */
static bool is_json_content_type(const char *ct)
{
    size_t n = strlen("application/json");
    return strncasecmp(ct, "application/json", n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

void webhook_handle_admission(const caa_http_request *req, caa_http_response *resp, void *opaque)
{
    webhook_handler *h = opaque;
    if (strcmp(req->path, WEBHOOK_MUTATE_PATH) != 0) {
        h->stats.refused_requests++;
        {
            text_answer(resp, 404, "not found\n");
            return;
        }
    }
    if (strcmp(req->method, "POST") != 0) {
        h->stats.refused_requests++;
        {
            text_answer(resp, 405, "only POST\n");
            return;
        }
    }
    if (!is_json_content_type(req->content_type)) {
        h->stats.refused_requests++;
        {
            text_answer(resp, 400, "contentType must be application/json\n");
            return;
        }
    }
    uint64_t start = now_ns();
    caa_admission_answer a;
    caa_admission_review_answer(req->body, req->body_len, &h->mutation, &a);
    h->stats.reviews[a.verdict]++;
    h->stats.review_ns_total += now_ns() - start;
    if (a.verdict == CAA_ADMISSION_BAD_BODY || a.verdict == CAA_ADMISSION_DENIED)
        log_info("review %s: %.*s", caa_admission_verdict_name(a.verdict), (int)strcspn(a.body, "\n"),
                 a.body);
    resp->status = a.http_status;
    resp->content_type = a.content_type;
    resp->body = a.body;
    resp->body_len = a.body_len;
}

void webhook_handle_probe(const caa_http_request *req, caa_http_response *resp, void *opaque)
{
    (void)opaque;
    if (strcmp(req->path, "/healthz") == 0 || strcmp(req->path, "/readyz") == 0) {
        text_answer(resp, 200, "ok");
        return;
    }
    text_answer(resp, 404, "not found\n");
}

void webhook_handle_metrics(const caa_http_request *req, caa_http_response *resp, void *opaque)
{
    webhook_handler *h = opaque;
    if (strcmp(req->path, "/metrics") != 0) {
        text_answer(resp, 404, "not found\n");
        return;
    }
    const webhook_stats *s = &h->stats;
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    resp->body = xasprintf(
        "# HELP peerpods_webhook_reviews_total AdmissionReviews answered, by verdict.\n"
        "# TYPE peerpods_webhook_reviews_total counter\n"
        "peerpods_webhook_reviews_total{verdict=\"patched\"} %" PRIu64 "\n"
        "peerpods_webhook_reviews_total{verdict=\"allowed\"} %" PRIu64 "\n"
        "peerpods_webhook_reviews_total{verdict=\"denied\"} %" PRIu64 "\n"
        "peerpods_webhook_reviews_total{verdict=\"bad_request\"} %" PRIu64 "\n"
        "# HELP peerpods_webhook_refused_requests_total Requests for another path, method or content type.\n"
        "# TYPE peerpods_webhook_refused_requests_total counter\n"
        "peerpods_webhook_refused_requests_total %" PRIu64 "\n"
        "# HELP peerpods_webhook_review_seconds_total Time spent decoding, mutating and encoding reviews.\n"
        "# TYPE peerpods_webhook_review_seconds_total counter\n"
        "peerpods_webhook_review_seconds_total %.9f\n",
        s->reviews[CAA_ADMISSION_PATCHED], s->reviews[CAA_ADMISSION_ALLOWED],
        s->reviews[CAA_ADMISSION_DENIED], s->reviews[CAA_ADMISSION_BAD_BODY], s->refused_requests,
        (double)s->review_ns_total / 1e9);
    resp->body_len = strlen(resp->body);
}
