/* AdmissionReview decoding and answers; see admission-review.h. */
#include "admission-review.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <openssl/evp.h>

#include "xalloc.h"

#define REVIEW_API_VERSION "admission.k8s.io/v1"
/* Pods nest a few levels; a deeper document is an attack on the parser. */
#define MAX_JSON_DEPTH 64

static void answer_bad_body(caa_admission_answer *ret, const char *reason)
{
    ret->http_status = 400;
    ret->content_type = "text/plain; charset=utf-8";
    ret->body = xasprintf("bad AdmissionReview: %s\n", reason);
    ret->body_len = strlen(ret->body);
    ret->verdict = CAA_ADMISSION_BAD_BODY;
}

/* jansson's own depth limit is 2048; a nesting check before parsing keeps
 * both the parser and our walk cheap on hostile input. Strings are skipped. */
static int json_depth_ok(const char *s, size_t len)
{
    int depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (++depth > MAX_JSON_DEPTH)
                return 0;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return 1;
}

static char *base64(const char *data, size_t len)
{
    char *out = xmalloc(4 * ((len + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)data, (int)len);
    return out;
}

static void answer_review(caa_admission_answer *ret, json_t *response /* stolen */,
                          caa_admission_verdict verdict)
{
    json_t *review = json_pack("{s:s, s:s, s:o}", "apiVersion", REVIEW_API_VERSION, "kind", "AdmissionReview",
                               "response", response);
    ret->http_status = 200;
    ret->content_type = "application/json";
    ret->body = json_dumps(review, JSON_COMPACT);
    ret->body_len = strlen(ret->body);
    ret->verdict = verdict;
    json_decref(review);
}

void caa_admission_review_answer(const char *body, size_t len, const caa_pod_mutation_config *cfg,
                                 caa_admission_answer *ret)
{
    memset(ret, 0, sizeof(*ret));
    if (len == 0) {
        answer_bad_body(ret, "empty body");
        return;
    }
    if (len > CAA_ADMISSION_MAX_BODY) {
        answer_bad_body(ret, "body larger than 7 MiB");
        return;
    }
    if (!json_depth_ok(body, len)) {
        answer_bad_body(ret, "JSON nested too deeply");
        return;
    }

    json_error_t jerr;
    json_t *review = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!review) {
        _cleanup_free_ char *why = xasprintf("not valid JSON (line %d column %d)", jerr.line, jerr.column);
        {
            answer_bad_body(ret, why);
            return;
        }
    }
    const char *api_version = json_string_value(json_object_get(review, "apiVersion"));
    const char *kind = json_string_value(json_object_get(review, "kind"));
    const json_t *request = json_object_get(review, "request");
    const char *uid = json_string_value(json_object_get(request, "uid"));
    if (!json_is_object(review) || !api_version || strcmp(api_version, REVIEW_API_VERSION) != 0) {
        json_decref(review);
        {
            answer_bad_body(ret, "apiVersion must be " REVIEW_API_VERSION);
            return;
        }
    }
    if (!kind || strcmp(kind, "AdmissionReview") != 0) {
        json_decref(review);
        {
            answer_bad_body(ret, "kind must be AdmissionReview");
            return;
        }
    }
    if (!json_is_object(request) || !uid || uid[0] == '\0') {
        json_decref(review);
        {
            answer_bad_body(ret, "request.uid missing");
            return;
        }
    }

    json_t *response = json_pack("{s:s}", "uid", uid);
    const json_t *pod = json_object_get(request, "object");
    const char *pod_kind = json_string_value(json_object_get(pod, "kind"));
    _cleanup_error_ caa_error *err = NULL;
    json_t *patch = NULL;
    int r;
    if (!json_is_object(pod))
        r = caa_error_set(&err, -EINVAL, "request.object: no pod in the review");
    else if (pod_kind && strcmp(pod_kind, "Pod") != 0)
        r = caa_error_set(&err, -EINVAL, "request.object: kind %s is not a Pod", pod_kind);
    else
        r = caa_pod_mutation_patch(pod, cfg, &patch, &err);
    json_decref(review);

    if (r < 0) {
        json_object_set_new(response, "allowed", json_false());
        json_object_set_new(
            response, "status",
            json_pack("{s:i, s:s, s:s}", "code", 400, "message", caa_error_msg(err), "reason", "BadRequest"));
        {
            answer_review(ret, response, CAA_ADMISSION_DENIED);
            return;
        }
    }
    json_object_set_new(response, "allowed", json_true());
    if (!patch) {
        answer_review(ret, response, CAA_ADMISSION_ALLOWED);
        return;
    }

    _cleanup_free_ char *patch_text = json_dumps(patch, JSON_COMPACT);
    json_decref(patch);
    json_object_set_new(response, "patchType", json_string("JSONPatch"));
    _cleanup_free_ char *patch_b64 = base64(patch_text, strlen(patch_text));
    json_object_set_new(response, "patch", json_string(patch_b64));
    answer_review(ret, response, CAA_ADMISSION_PATCHED);
}

void caa_admission_answer_done(caa_admission_answer *a)
{
    free(a->body);
    memset(a, 0, sizeof(*a));
}

const char *caa_admission_verdict_name(caa_admission_verdict v)
{
    switch (v) {
    case CAA_ADMISSION_PATCHED:
        return "patched";
    case CAA_ADMISSION_ALLOWED:
        return "allowed";
    case CAA_ADMISSION_DENIED:
        return "denied";
    case CAA_ADMISSION_BAD_BODY:
        return "bad_request";
    }
    return "unknown";
}
