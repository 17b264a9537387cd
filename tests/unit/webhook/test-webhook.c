/* Unit tests of the webhook pieces: quantities, HTTP framing, the pod
 * mutation and AdmissionReview answers (cmocka, TAP). The HTTPS server and
 * the JSON Patch applied by a real library are tested end to end in
 * tests/integration/webhook. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "admission-review.h"
#include "http-request.h"
#include "pod-mutation.h"
#include "quantity.h"

#define NANO ((caa_quantity)1000000000)

static caa_quantity parse_ok(const char *text)
{
    caa_quantity q = -1;
    caa_error *err = NULL;
    int r = caa_quantity_parse(text, strlen(text), &q, &err);
    if (r < 0)
        fail_msg("%s: %s", text, caa_error_msg(err));
    return q;
}

static void test_quantity_parse(void **state)
{
    (void)state;
    assert_true(parse_ok("2") == 2 * NANO);
    assert_true(parse_ok("+2") == 2 * NANO);
    assert_true(parse_ok("500m") == NANO / 2);
    assert_true(parse_ok("1.5") == 3 * NANO / 2);
    assert_true(parse_ok(".5") == NANO / 2);
    assert_true(parse_ok("5.") == 5 * NANO);
    assert_true(parse_ok("4Gi") == (caa_quantity)4 * 1024 * 1024 * 1024 * NANO);
    assert_true(parse_ok("1k") == 1000 * NANO);
    assert_true(parse_ok("1E") == (caa_quantity)1000000000000000000 * NANO);
    assert_true(parse_ok("2e3") == 2000 * NANO);
    assert_true(parse_ok("2E-3") == NANO / 500);
    assert_true(parse_ok("1n") == 1);
    assert_true(parse_ok("0.1n") == 1); /* below nano: rounded up */
    assert_true(parse_ok("0") == 0);
    assert_true(parse_ok("9223372036854775807") == (caa_quantity)INT64_MAX * NANO);

    static const char *const bad[] = {
        "",     "-1",   "1Ki ", " 1", "1.2.3", "Gi", "1e", "1e1000", "1 Gi", "1gi", "9223372036854775808",
        "1Ei9", "0x10", ".",    "+",  "1KiB",  "1e+"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        caa_quantity q = 42;
        caa_error *err = NULL;
        assert_int_equal(caa_quantity_parse(bad[i], strlen(bad[i]), &q, &err), -EINVAL);
        assert_true(q == 42);
        assert_non_null(err);
        caa_error_free(err);
    }
    /* A NUL inside the text is not a terminator. */
    caa_quantity q = 0;
    caa_error *err = NULL;
    assert_int_equal(caa_quantity_parse("1\0m", 3, &q, &err), -EINVAL);
    assert_non_null(strstr(caa_error_msg(err), "non-printable"));
    caa_error_free(err);
}

static void test_quantity_rounding(void **state)
{
    (void)state;
    assert_int_equal(caa_quantity_ceil_units(parse_ok("500m")), 1);
    assert_int_equal(caa_quantity_ceil_units(parse_ok("1500m")), 2);
    assert_int_equal(caa_quantity_ceil_units(parse_ok("2")), 2);
    assert_int_equal(caa_quantity_ceil_mib(parse_ok("4Gi")), 4096);
    assert_int_equal(caa_quantity_ceil_mib(parse_ok("1M")), 1); /* 10^6 bytes: a partial MiB */
    assert_int_equal(caa_quantity_ceil_mib(parse_ok("129M")), 124);
    assert_int_equal(caa_quantity_ceil_mib(parse_ok("1")), 1);
    assert_int_equal(caa_quantity_ceil_mib(parse_ok("1Mi")), 1);
    assert_int_equal(caa_quantity_ceil_mib(parse_ok("1025Ki")), 2);

    struct {
        const char *in, *out;
    } fmt[] = {{"1", "1"},     {"2", "2"}, {"500m", "500m"}, {"1.5", "1500m"},
               {"1000", "1k"}, {"0", "0"}, {"1n", "1n"},     {"3e6", "3M"}};
    for (size_t i = 0; i < sizeof(fmt) / sizeof(fmt[0]); i++) {
        char buf[48];
        caa_quantity_format(parse_ok(fmt[i].in), buf, sizeof(buf));
        assert_string_equal(buf, fmt[i].out);
    }
    caa_quantity sum = 0;
    caa_error *err = NULL;
    assert_int_equal(caa_quantity_add(parse_ok("9223372036854775807"), NANO, &sum, &err), -ERANGE);
    caa_error_free(err);
}

static long parse_http(const char *text, caa_http_request *req, int *status)
{
    caa_error *err = NULL;
    long r = caa_http_request_parse(text, strlen(text), 1024, req, status, &err);
    caa_error_free(err);
    return r;
}

static void test_http_request(void **state)
{
    (void)state;
    caa_http_request req;
    int status = 0;
    const char *ok =
        "POST /mutate-v1-pod?timeout=10s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 4\r\n\r\n{}\r\nGET / HTTP/1.1\r\n\r\n";
    long used = parse_http(ok, &req, &status);
    assert_true(used > 0 && used < (long)strlen(ok));
    assert_string_equal(req.method, "POST");
    assert_string_equal(req.path, "/mutate-v1-pod");
    assert_string_equal(req.content_type, "application/json");
    assert_true(req.keep_alive);
    assert_int_equal(req.body_len, 4);
    assert_memory_equal(req.body, "{}\r\n", 4);
    assert_true(parse_http(ok + used, &req, &status) > 0); /* pipelined */
    assert_string_equal(req.method, "GET");

    assert_int_equal(parse_http("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc", &req, &status), 0);
    assert_int_equal(parse_http("POST / HTTP/1.1\r\nContent-Le", &req, &status), 0);
    assert_true(parse_http("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n", &req, &status) > 0);
    assert_false(req.keep_alive);
    assert_true(parse_http("GET / HTTP/1.0\r\n\r\n", &req, &status) > 0);
    assert_false(req.keep_alive);
    assert_true(parse_http("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &req, &status) > 0);
    assert_true(req.keep_alive);

    struct {
        const char *text;
        int status;
    } bad[] = {
        {"POST / HTTP/1.1\r\nContent-Length: 2000\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411},
        {"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", 400},
        {"POST / HTTP/2.0\r\n\r\n", 505},
        {"POST http://x/ HTTP/1.1\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\n folded\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nX: a\rb\r\n\r\n", 400},
        {"POST /\x01 HTTP/1.1\r\n\r\n", 400},
        {"GARBAGE\r\n\r\n", 400},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        status = 0;
        assert_true(parse_http(bad[i].text, &req, &status) < 0);
        assert_int_equal(status, bad[i].status);
    }
    /* A head that never ends. */
    char *big = malloc(CAA_HTTP_MAX_HEAD + 16);
    memset(big, 'a', CAA_HTTP_MAX_HEAD + 15);
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    big[CAA_HTTP_MAX_HEAD + 15] = '\0';
    assert_true(parse_http(big, &req, &status) < 0);
    assert_int_equal(status, 431);
    free(big);
}

static const caa_pod_mutation_config cfg = {"kata-remote", "kata.peerpods.io/vm"};

/* Applies the few op shapes the mutation emits (add to an object member or
 * replace it); the integration test applies them with python3-jsonpatch. */
static json_t *mutated(const char *pod_text)
{
    json_t *pod = json_loads(pod_text, 0, NULL);
    assert_non_null(pod);
    json_t *patch = NULL;
    caa_error *err = NULL;
    if (caa_pod_mutation_patch(pod, &cfg, &patch, &err) < 0)
        fail_msg("%s", caa_error_msg(err));
    size_t i;
    json_t *op;
    json_array_foreach(patch, i, op)
    {
        assert_string_equal(json_string_value(json_object_get(op, "op")), "add");
        char *path = strdup(json_string_value(json_object_get(op, "path")));
        json_t *parent = pod;
        char *save = NULL, *tok = strtok_r(path + 1, "/", &save), *next;
        while ((next = strtok_r(NULL, "/", &save))) {
            parent = json_is_array(parent) ? json_array_get(parent, (size_t)atoi(tok))
                                           : json_object_get(parent, tok);
            assert_non_null(parent);
            tok = next;
        }
        json_object_set(parent, tok, json_object_get(op, "value"));
        free(path);
    }
    json_decref(patch);
    return pod;
}

static const char *annotation(json_t *pod, const char *name)
{
    return json_string_value(
        json_object_get(json_object_get(json_object_get(pod, "metadata"), "annotations"), name));
}

static void assert_resources_cleared(json_t *pod)
{
    json_t *spec = json_object_get(pod, "spec");
    json_t *c0 = json_object_get(json_array_get(json_object_get(spec, "containers"), 0), "resources");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(c0, "requests"), "kata.peerpods.io/vm")), "1");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(c0, "limits"), "kata.peerpods.io/vm")), "1");
    assert_int_equal(json_object_size(json_object_get(c0, "requests")), 1);
    assert_int_equal(json_object_size(json_object_get(c0, "limits")), 1);
    for (size_t i = 1; i < json_array_size(json_object_get(spec, "containers")); i++)
        assert_int_equal(json_object_size(json_object_get(
                             json_array_get(json_object_get(spec, "containers"), i), "resources")),
                         0);
    for (size_t i = 0; i < json_array_size(json_object_get(spec, "initContainers")); i++)
        assert_int_equal(json_object_size(json_object_get(
                             json_array_get(json_object_get(spec, "initContainers"), i), "resources")),
                         0);
}

/* The cases of upstream's mutating-webhook_test.go. */
static void test_mutation_upstream_cases(void **state)
{
    (void)state;
    json_t *p = mutated(
        "{\"metadata\":{},\"spec\":{\"runtimeClassName\":\"kata-remote\",\"containers\":[{\"name\":\"c\","
        "\"resources\":{\"requests\":{\"cpu\":\"2\",\"memory\":\"4Gi\"},\"limits\":{\"cpu\":\"3\","
        "\"memory\":\"5Gi\"}}}]}}");
    assert_string_equal(annotation(p, CAA_ANNOTATION_VCPUS), "3");
    assert_string_equal(annotation(p, CAA_ANNOTATION_MEMORY), "5120");
    assert_null(annotation(p, CAA_ANNOTATION_GPUS));
    assert_resources_cleared(p);
    json_decref(p);

    p = mutated(
        "{\"spec\":{\"runtimeClassName\":\"kata-remote\",\"containers\":[{\"name\":\"c\",\"resources\":"
        "{\"requests\":{\"cpu\":\"2\"}}}]}}");
    assert_string_equal(annotation(p, CAA_ANNOTATION_VCPUS), "2");
    assert_null(annotation(p, CAA_ANNOTATION_MEMORY));
    assert_resources_cleared(p);
    json_decref(p);

    p = mutated(
        "{\"spec\":{\"runtimeClassName\":\"kata-remote\",\"containers\":[{\"name\":\"c\",\"resources\":"
        "{\"requests\":{\"nvidia.com/gpu\":\"1\"}}}]}}");
    assert_null(annotation(p, CAA_ANNOTATION_VCPUS));
    assert_string_equal(annotation(p, CAA_ANNOTATION_GPUS), "1");
    json_decref(p);

    p = mutated(
        "{\"metadata\":{\"annotations\":{\"keep\":\"me\"}},\"spec\":{\"runtimeClassName\":\"kata-remote\","
        "\"containers\":[{\"name\":\"c\"}]}}");
    assert_null(annotation(p, CAA_ANNOTATION_VCPUS));
    assert_null(annotation(p, CAA_ANNOTATION_MEMORY));
    assert_string_equal(annotation(p, "keep"), "me");
    assert_resources_cleared(p);
    json_decref(p);

    /* init containers and several containers: sums over all of them. */
    p = mutated(
        "{\"metadata\":{\"annotations\":{}},\"spec\":{\"runtimeClassName\":\"kata-remote\","
        "\"initContainers\":[{\"name\":\"i\",\"resources\":{\"requests\":{\"cpu\":\"1\",\"memory\":\"2Gi\"},"
        "\"limits\":{\"cpu\":\"1\",\"memory\":\"2Gi\"}}}],"
        "\"containers\":[{\"name\":\"c1\",\"resources\":{\"requests\":{\"cpu\":\"2\",\"memory\":\"4Gi\"},"
        "\"limits\":{\"cpu\":\"3\",\"memory\":\"5Gi\"}}},"
        "{\"name\":\"c2\",\"resources\":{\"requests\":{\"cpu\":\"1\",\"memory\":\"1Gi\"},\"limits\":{\"cpu\":"
        "\"1\",\"memory\":\"1Gi\"}}},"
        "{\"name\":\"c3\",\"resources\":{\"requests\":{\"cpu\":\"1\",\"nvidia.com/gpu\":\"1\"},\"limits\":{"
        "\"cpu\":\"1\",\"nvidia.com/gpu\":\"1\"}}}]}}");
    assert_string_equal(annotation(p, CAA_ANNOTATION_VCPUS), "6");
    assert_string_equal(annotation(p, CAA_ANNOTATION_MEMORY), "8192");
    assert_string_equal(annotation(p, CAA_ANNOTATION_GPUS), "1");
    assert_resources_cleared(p);
    json_decref(p);

    /* Limits only: no request, so no annotation (upstream's rule). */
    p = mutated(
        "{\"spec\":{\"runtimeClassName\":\"kata-remote\",\"containers\":[{\"name\":\"c\",\"resources\":"
        "{\"limits\":{\"cpu\":\"2\",\"memory\":\"1Gi\"}}}]}}");
    assert_null(annotation(p, CAA_ANNOTATION_VCPUS));
    assert_null(annotation(p, CAA_ANNOTATION_MEMORY));
    assert_resources_cleared(p);
    json_decref(p);

    /* Limit below the request: the request wins; fractions round up. */
    p = mutated(
        "{\"spec\":{\"runtimeClassName\":\"kata-remote\",\"containers\":[{\"name\":\"c\",\"resources\":"
        "{\"requests\":{\"cpu\":\"1500m\",\"memory\":\"100M\"},\"limits\":{\"cpu\":\"1\"}}}]}}");
    assert_string_equal(annotation(p, CAA_ANNOTATION_VCPUS), "2");
    assert_string_equal(annotation(p, CAA_ANNOTATION_MEMORY), "96");
    json_decref(p);
}

static void test_mutation_other_pods_and_errors(void **state)
{
    (void)state;
    static const char *const untouched[] = {
        "{\"spec\":{\"containers\":[{\"name\":\"c\"}]}}",
        "{\"spec\":{\"runtimeClassName\":\"kata\",\"containers\":[{\"name\":\"c\",\"resources\":{"
        "\"requests\":{"
        "\"cpu\":\"junk\"}}}]}}",
        "{\"spec\":{\"runtimeClassName\":null}}",
        "{}",
    };
    for (size_t i = 0; i < sizeof(untouched) / sizeof(untouched[0]); i++) {
        json_t *pod = json_loads(untouched[i], 0, NULL);
        json_t *patch = (json_t *)1;
        caa_error *err = NULL;
        assert_int_equal(caa_pod_mutation_patch(pod, &cfg, &patch, &err), 0);
        assert_null(patch);
        json_decref(pod);
    }
    static const char *const refused[] = {
        "{\"spec\":{\"runtimeClassName\":\"kata-remote\",\"containers\":[]}}",
        "{\"spec\":{\"runtimeClassName\":\"kata-remote\"}}",
        "{\"spec\":{\"runtimeClassName\":\"kata-remote\",\"containers\":[{\"resources\":{\"requests\":{"
        "\"cpu\":"
        "\"2 cores\"}}}]}}",
        "{\"spec\":{\"runtimeClassName\":\"kata-remote\",\"containers\":[{\"resources\":{\"requests\":{"
        "\"cpu\":"
        "1.5}}}]}}",
        "{\"spec\":{\"runtimeClassName\":\"kata-remote\",\"containers\":[{\"resources\":{\"limits\":[]}}]}}",
        "{\"spec\":{\"runtimeClassName\":\"kata-remote\",\"containers\":[7]}}",
        "{\"spec\":{\"runtimeClassName\":\"kata-remote\",\"containers\":[{}],\"initContainers\":{}}}",
        "{\"spec\":{\"runtimeClassName\":\"kata-remote\",\"containers\":[{\"resources\":{\"requests\":{"
        "\"ephemeral-storage\":\"-1\"}}}]}}",
        "{\"spec\":{\"runtimeClassName\":5}}",
        "{\"metadata\":[],\"spec\":{}}",
        "[]",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        json_t *pod = json_loads(refused[i], JSON_DECODE_ANY, NULL);
        json_t *patch = NULL;
        caa_error *err = NULL;
        assert_int_equal(caa_pod_mutation_patch(pod, &cfg, &patch, &err), -EINVAL);
        assert_null(patch);
        assert_non_null(err);
        caa_error_free(err);
        json_decref(pod);
    }
}

static json_t *answer_json(const char *body, caa_admission_answer *a)
{
    caa_admission_review_answer(body, strlen(body), &cfg, a);
    return a->http_status == 200 ? json_loads(a->body, 0, NULL) : NULL;
}

static void test_admission_review(void **state)
{
    (void)state;
    caa_admission_answer a;
    json_t *r =
        answer_json("{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{"
                    "\"uid\":\"abc\",\"object\":{\"kind\":\"Pod\",\"spec\":{\"runtimeClassName\":\"kata-"
                    "remote\",\"containers\":[{\"name\":\"c\"}]}}}}",
                    &a);
    assert_int_equal(a.verdict, CAA_ADMISSION_PATCHED);
    json_t *resp = json_object_get(r, "response");
    assert_string_equal(json_string_value(json_object_get(r, "apiVersion")), "admission.k8s.io/v1");
    assert_string_equal(json_string_value(json_object_get(resp, "uid")), "abc");
    assert_true(json_is_true(json_object_get(resp, "allowed")));
    assert_string_equal(json_string_value(json_object_get(resp, "patchType")), "JSONPatch");
    const char *b64 = json_string_value(json_object_get(resp, "patch"));
    unsigned char decoded[4096];
    int n = EVP_DecodeBlock(decoded, (const unsigned char *)b64, (int)strlen(b64));
    assert_true(n > 0 && n < (int)sizeof(decoded));
    decoded[n] = '\0'; /* EVP_DecodeBlock pads with NULs and does not terminate */
    json_t *patch = json_loadb((const char *)decoded, strlen((const char *)decoded), 0, NULL);
    assert_true(json_is_array(patch));
    json_decref(patch);
    json_decref(r);
    caa_admission_answer_done(&a);

    r = answer_json(
        "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":"
        "\"u\",\"object\":{\"kind\":\"Pod\",\"spec\":{\"containers\":[]}}}}",
        &a);
    assert_int_equal(a.verdict, CAA_ADMISSION_ALLOWED);
    assert_null(json_object_get(json_object_get(r, "response"), "patch"));
    json_decref(r);
    caa_admission_answer_done(&a);

    r = answer_json(
        "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":"
        "\"u\",\"object\":{\"kind\":\"Pod\",\"spec\":{\"runtimeClassName\":\"kata-remote\"}}}}",
        &a);
    assert_int_equal(a.verdict, CAA_ADMISSION_DENIED);
    resp = json_object_get(r, "response");
    assert_true(json_is_false(json_object_get(resp, "allowed")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(resp, "status"), "code")), 400);
    json_decref(r);
    caa_admission_answer_done(&a);

    static const char *const bad[] = {
        "",
        "{",
        "[]",
        "{\"apiVersion\":\"admission.k8s.io/"
        "v1beta1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"u\"}}",
        "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"Pod\",\"request\":{\"uid\":\"u\"}}",
        "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{}}",
        "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\"}",
        "{\"apiVersion\":\"admission.k8s.io/v1\",\"apiVersion\":\"admission.k8s.io/v1\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        caa_admission_review_answer(bad[i], strlen(bad[i]), &cfg, &a);
        assert_int_equal(a.http_status, 400);
        assert_int_equal(a.verdict, CAA_ADMISSION_BAD_BODY);
        assert_non_null(strstr(a.body, "bad AdmissionReview"));
        caa_admission_answer_done(&a);
    }
    /* Deep nesting is refused before parsing. */
    char deep[300];
    memset(deep, '[', sizeof(deep) - 1);
    deep[sizeof(deep) - 1] = '\0';
    caa_admission_review_answer(deep, strlen(deep), &cfg, &a);
    assert_int_equal(a.http_status, 400);
    assert_non_null(strstr(a.body, "nested"));
    caa_admission_answer_done(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantity_parse),
        cmocka_unit_test(test_quantity_rounding),
        cmocka_unit_test(test_http_request),
        cmocka_unit_test(test_mutation_upstream_cases),
        cmocka_unit_test(test_mutation_other_pods_and_errors),
        cmocka_unit_test(test_admission_review),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
