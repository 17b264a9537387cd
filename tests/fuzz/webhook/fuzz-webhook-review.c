/* Fuzzes the webhook's review path: AdmissionReview JSON through decoding,
 * quantity parsing, the pod mutation and the answer. Never crash or leak;
 * every answer is either a 400 in text or an AdmissionReview that parses
 * back, and a patch is present only on an allowed answer. The first byte
 * picks the runtime class so both the peer-pod and the other-pod paths run. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "admission-review.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    caa_pod_mutation_config cfg = {(data[0] & 1) ? "kata-remote" : "kata", "kata.peerpods.io/vm"};
    caa_admission_answer a;
    caa_admission_review_answer((const char *)data + 1, size - 1, &cfg, &a);
    if (a.http_status == 400) {
        if (a.verdict != CAA_ADMISSION_BAD_BODY || strncmp(a.body, "bad AdmissionReview: ", 21) != 0)
            abort();
    } else {
        json_t *review = json_loads(a.body, 0, NULL);
        json_t *resp = json_object_get(review, "response");
        if (a.http_status != 200 || !json_is_object(resp) || !json_is_string(json_object_get(resp, "uid")))
            abort();
        bool allowed = json_is_true(json_object_get(resp, "allowed"));
        bool patched = json_object_get(resp, "patch") != NULL;
        if (patched != (a.verdict == CAA_ADMISSION_PATCHED) || (patched && !allowed) ||
            allowed == (a.verdict == CAA_ADMISSION_DENIED))
            abort();
        json_decref(review);
    }
    caa_admission_answer_done(&a);
    return 0;
}
