/* admission.k8s.io/v1 AdmissionReview in, AdmissionReview out.
 *
 * Two kinds of failure, as upstream's framework answers them:
 *  - the body is not an AdmissionReview we can answer (not JSON, too deep,
 *    wrong apiVersion/kind, no request.uid): HTTP 400 with a plain-text
 *    reason; the API server then applies the webhook's failurePolicy;
 *  - the review is fine but its pod cannot be decoded: HTTP 200 with a
 *    review that denies the request (allowed: false, status.code 400 and the
 *    reason), so the user sees why the pod was refused.
 * A pod that is not a peer pod is allowed without a patch. */
#pragma once

#include <stddef.h>

#include "error.h"
#include "pod-mutation.h"

/* Largest review body accepted (upstream's framework: 7 MiB). */
#define CAA_ADMISSION_MAX_BODY (7u * 1024 * 1024)

typedef enum caa_admission_verdict {
    CAA_ADMISSION_PATCHED,  /* allowed with a JSON Patch */
    CAA_ADMISSION_ALLOWED,  /* allowed unchanged */
    CAA_ADMISSION_DENIED,   /* answered, denied (pod undecodable) */
    CAA_ADMISSION_BAD_BODY, /* not answerable: HTTP 400 */
} caa_admission_verdict;

typedef struct caa_admission_answer {
    int http_status;          /* 200 or 400 */
    const char *content_type; /* "application/json" or "text/plain" */
    char *body;               /* newly allocated */
    size_t body_len;
    caa_admission_verdict verdict;
} caa_admission_answer;

/* Always fills *ret (never fails): a review answer or a 400. */
void caa_admission_review_answer(const char *body, size_t len, const caa_pod_mutation_config *cfg,
                                 caa_admission_answer *ret);
void caa_admission_answer_done(caa_admission_answer *a);
const char *caa_admission_verdict_name(caa_admission_verdict v);
