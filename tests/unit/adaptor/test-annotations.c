/* CreateVM annotation parsing and sandbox id checks. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "annotations.h"
#include "sandbox-id.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_all_keys(void **state)
{
    (void)state;
    const caa_annotation ann[] = {
        {CAA_ANN_SANDBOX_NAME, "nginx"},
        {CAA_ANN_SANDBOX_NAMESPACE, "default"},
        {CAA_ANN_SANDBOX_UID, "uid-1"},
        {CAA_ANN_MACHINE_TYPE, "t3.small"},
        {CAA_ANN_DEFAULT_VCPUS, "2"},
        {CAA_ANN_DEFAULT_MEMORY, "4096"},
        {CAA_ANN_DEFAULT_GPUS, "1"},
        {CAA_ANN_DEFAULT_GPU_MODEL, "a100"},
        {CAA_ANN_IMAGE, "podvm-base.qcow2"},
        {CAA_ANN_INITDATA, "version = \"0.1.0\"\n"},
        {"io.katacontainers.config.agent.policy", "ignored"},
    };
    caa_pod_spec s;
    caa_error *err = NULL;
    assert_int_equal(caa_pod_spec_from_annotations(ann, N(ann), &s, &err), 0);
    assert_null(err);
    assert_string_equal(s.pod_name, "nginx");
    assert_string_equal(s.pod_namespace, "default");
    assert_string_equal(s.pod_uid, "uid-1");
    assert_string_equal(s.machine_type, "t3.small");
    assert_int_equal(s.vcpus, 2);
    assert_int_equal(s.memory_mib, 4096);
    assert_int_equal(s.gpus, 1);
    assert_string_equal(s.gpu_model, "a100");
    assert_string_equal(s.image, "podvm-base.qcow2");
    assert_string_equal(s.initdata, "version = \"0.1.0\"\n");
    caa_pod_spec_done(&s);
    assert_null(s.pod_name);
}

static void test_empty_values_are_defaults(void **state)
{
    (void)state;
    /* The Go shim always sends every key, possibly empty or "0". */
    const caa_annotation ann[] = {
        {CAA_ANN_SANDBOX_NAME, "p"},  {CAA_ANN_SANDBOX_NAMESPACE, "ns"},
        {CAA_ANN_MACHINE_TYPE, ""},   {CAA_ANN_DEFAULT_VCPUS, "0"},
        {CAA_ANN_DEFAULT_MEMORY, ""}, {CAA_ANN_DEFAULT_GPUS, "0"},
        {CAA_ANN_IMAGE, ""},          {CAA_ANN_INITDATA, ""},
    };
    caa_pod_spec s;
    assert_int_equal(caa_pod_spec_from_annotations(ann, N(ann), &s, NULL), 0);
    assert_null(s.machine_type);
    assert_null(s.image);
    assert_null(s.initdata);
    assert_int_equal(s.vcpus, 0);
    assert_int_equal(s.memory_mib, 0);
    assert_int_equal(s.gpus, 0);
    caa_pod_spec_done(&s);
}

static void test_crio_sandbox_name(void **state)
{
    (void)state;
    const caa_annotation ann[] = {
        {CAA_ANN_SANDBOX_NAME, "k8s_busybox-1_team-a_0b1c2d3e-uid_0"},
        {CAA_ANN_SANDBOX_NAMESPACE, "team-a"},
    };
    caa_pod_spec s;
    assert_int_equal(caa_pod_spec_from_annotations(ann, N(ann), &s, NULL), 0);
    assert_string_equal(s.pod_name, "busybox-1");
    assert_string_equal(s.pod_namespace, "team-a");
    caa_pod_spec_done(&s);

    /* Without the namespace annotation the CRI-O name supplies it. */
    const caa_annotation ann2[] = {{CAA_ANN_SANDBOX_NAME, "k8s_web_prod_uid_0"}};
    assert_int_equal(caa_pod_spec_from_annotations(ann2, N(ann2), &s, NULL), 0);
    assert_string_equal(s.pod_name, "web");
    assert_string_equal(s.pod_namespace, "prod");
    caa_pod_spec_done(&s);

    char *n = caa_pod_name_from_sandbox_name("k8s_only");
    assert_string_equal(n, "only");
    free(n);
    n = caa_pod_name_from_sandbox_name("plain-name");
    assert_string_equal(n, "plain-name");
    free(n);
}

static void test_float_vcpus(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int64_t out;
    } cases[] = {{"1.5", 2}, {"2.0", 2}, {"2.", 2},  {"0.1", 1},
                 {".5", 1},  {"3", 3},   {"0.0", 0}, {"1.000001", 2}};
    for (size_t i = 0; i < N(cases); i++) {
        const caa_annotation ann[] = {{CAA_ANN_SANDBOX_NAME, "p"},
                                      {CAA_ANN_SANDBOX_NAMESPACE, "n"},
                                      {CAA_ANN_DEFAULT_VCPUS, cases[i].in}};
        caa_pod_spec s;
        assert_int_equal(caa_pod_spec_from_annotations(ann, N(ann), &s, NULL), 0);
        assert_int_equal(s.vcpus, cases[i].out);
        caa_pod_spec_done(&s);
    }
}

static void expect_invalid(const char *key, const char *value, const char *needle)
{
    const caa_annotation ann[] = {
        {CAA_ANN_SANDBOX_NAME, "p"}, {CAA_ANN_SANDBOX_NAMESPACE, "n"}, {key, value}};
    caa_pod_spec s = {0};
    caa_error *err = NULL;
    assert_int_equal(caa_pod_spec_from_annotations(ann, N(ann), &s, &err), -EINVAL);
    assert_non_null(err);
    assert_non_null(strstr(err->msg, key));
    if (needle)
        assert_non_null(strstr(err->msg, needle));
    assert_null(s.pod_name);
    caa_error_free(err);
}

static void test_bad_numbers(void **state)
{
    (void)state;
    const char *bad[] = {"-1", "abc", "1e3", "0x10", " 2", "2 ", "+2", ".", "1..2", "1,5", "∞"};
    for (size_t i = 0; i < N(bad); i++) {
        expect_invalid(CAA_ANN_DEFAULT_VCPUS, bad[i], "expected a non-negative");
        expect_invalid(CAA_ANN_DEFAULT_MEMORY, bad[i], "expected a non-negative");
        expect_invalid(CAA_ANN_DEFAULT_GPUS, bad[i], "expected a non-negative");
    }
    /* Fractions only for vCPUs. */
    expect_invalid(CAA_ANN_DEFAULT_MEMORY, "1.5", "integer");
    expect_invalid(CAA_ANN_DEFAULT_GPUS, "1.5", "integer");
    /* Range. */
    expect_invalid(CAA_ANN_DEFAULT_VCPUS, "4097", "out of range");
    expect_invalid(CAA_ANN_DEFAULT_VCPUS, "4096.5", "out of range");
    expect_invalid(CAA_ANN_DEFAULT_MEMORY, "99999999999999999999999", "out of range");
    expect_invalid(CAA_ANN_DEFAULT_GPUS, "1025", "out of range");
}

static void test_count_parser(void **state)
{
    (void)state;
    int64_t v = -1;
    assert_int_equal(caa_parse_count("", 0, 10, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(caa_parse_count("10", 0, 10, &v), 0);
    assert_int_equal(v, 10);
    assert_int_equal(caa_parse_count("11", 0, 10, &v), -ERANGE);
    assert_int_equal(caa_parse_count("9.5", 1, 10, &v), 0);
    assert_int_equal(v, 10);
    assert_int_equal(caa_parse_count("10.5", 1, 10, &v), -ERANGE);
    assert_int_equal(caa_parse_count("9223372036854775807", 0, INT64_MAX, &v), 0);
    assert_int_equal(caa_parse_count("9223372036854775808", 0, INT64_MAX, &v), -ERANGE);
    assert_int_equal(caa_parse_count(NULL, 0, 10, &v), -EINVAL);
}

static void test_missing_name_namespace(void **state)
{
    (void)state;
    caa_pod_spec s = {0};
    caa_error *err = NULL;
    const caa_annotation no_name[] = {{CAA_ANN_SANDBOX_NAMESPACE, "n"}};
    assert_int_equal(caa_pod_spec_from_annotations(no_name, N(no_name), &s, &err), -EINVAL);
    assert_string_equal(err->msg, "pod name io.kubernetes.cri.sandbox-name is missing in annotations");
    caa_error_free(err);
    err = NULL;

    const caa_annotation empty_name[] = {{CAA_ANN_SANDBOX_NAME, ""}, {CAA_ANN_SANDBOX_NAMESPACE, "n"}};
    assert_int_equal(caa_pod_spec_from_annotations(empty_name, N(empty_name), &s, &err), -EINVAL);
    assert_string_equal(err->msg, "pod name io.kubernetes.cri.sandbox-name is missing in annotations");
    caa_error_free(err);
    err = NULL;

    const caa_annotation crio_empty[] = {{CAA_ANN_SANDBOX_NAME, "k8s__ns_uid_0"},
                                         {CAA_ANN_SANDBOX_NAMESPACE, "n"}};
    assert_int_equal(caa_pod_spec_from_annotations(crio_empty, N(crio_empty), &s, &err), -EINVAL);
    caa_error_free(err);
    err = NULL;

    const caa_annotation no_ns[] = {{CAA_ANN_SANDBOX_NAME, "p"}};
    assert_int_equal(caa_pod_spec_from_annotations(no_ns, N(no_ns), &s, &err), -EINVAL);
    assert_string_equal(err->msg,
                        "namespace name io.kubernetes.cri.sandbox-namespace is missing in annotations");
    caa_error_free(err);
    err = NULL;

    assert_int_equal(caa_pod_spec_from_annotations(NULL, 0, &s, &err), -EINVAL);
    caa_error_free(err);
}

static void test_hostile_names(void **state)
{
    (void)state;
    caa_pod_spec s = {0};
    caa_error *err = NULL;
    const caa_annotation ctl[] = {{CAA_ANN_SANDBOX_NAME, "a\nb"}, {CAA_ANN_SANDBOX_NAMESPACE, "n"}};
    assert_int_equal(caa_pod_spec_from_annotations(ctl, N(ctl), &s, &err), -EINVAL);
    caa_error_free(err);
    err = NULL;
    char long_name[300];
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    const caa_annotation lng[] = {{CAA_ANN_SANDBOX_NAME, "p"}, {CAA_ANN_SANDBOX_NAMESPACE, long_name}};
    assert_int_equal(caa_pod_spec_from_annotations(lng, N(lng), &s, &err), -EINVAL);
    caa_error_free(err);
}

/* Kubernetes' 256 KiB: keys and values together, exactly at the limit is fine. */
static void test_total_size_limit(void **state)
{
    (void)state;
    const size_t fixed = strlen(CAA_ANN_SANDBOX_NAME) + 1 + strlen(CAA_ANN_SANDBOX_NAMESPACE) + 1 + 1;
    char *big = malloc(CAA_ANNOTATIONS_MAX_TOTAL);
    memset(big, 'v', CAA_ANNOTATIONS_MAX_TOTAL - 1);
    big[CAA_ANNOTATIONS_MAX_TOTAL - fixed] = '\0';
    caa_annotation ann[] = {{CAA_ANN_SANDBOX_NAME, "p"}, {CAA_ANN_SANDBOX_NAMESPACE, "n"}, {"k", big}};
    caa_pod_spec s;
    assert_int_equal(caa_pod_spec_from_annotations(ann, N(ann), &s, NULL), 0);
    caa_pod_spec_done(&s);
    big[CAA_ANNOTATIONS_MAX_TOTAL - fixed] = 'v';
    big[CAA_ANNOTATIONS_MAX_TOTAL - fixed + 1] = '\0';
    caa_error *err = NULL;
    assert_int_equal(caa_pod_spec_from_annotations(ann, N(ann), &s, &err), -EINVAL);
    assert_non_null(strstr(err->msg, "262144 bytes"));
    caa_error_free(err);
    free(big);

    /* At most CAA_ANNOTATIONS_MAX_COUNT annotations, however small. */
    caa_annotation *many = calloc(CAA_ANNOTATIONS_MAX_COUNT + 1, sizeof(*many));
    many[0] = (caa_annotation){CAA_ANN_SANDBOX_NAME, "p"};
    many[1] = (caa_annotation){CAA_ANN_SANDBOX_NAMESPACE, "n"};
    for (size_t i = 2; i <= CAA_ANNOTATIONS_MAX_COUNT; i++)
        many[i] = (caa_annotation){"k", ""};
    assert_int_equal(caa_pod_spec_from_annotations(many, CAA_ANNOTATIONS_MAX_COUNT, &s, NULL), 0);
    caa_pod_spec_done(&s);
    err = NULL;
    assert_int_equal(caa_pod_spec_from_annotations(many, CAA_ANNOTATIONS_MAX_COUNT + 1, &s, &err), -EINVAL);
    assert_non_null(strstr(err->msg, "4097 annotations, more than the 4096 allowed"));
    caa_error_free(err);
    free(many);
}

static void test_duplicate_keys_last_wins(void **state)
{
    (void)state;
    const caa_annotation ann[] = {
        {CAA_ANN_SANDBOX_NAME, "first"}, {CAA_ANN_SANDBOX_NAMESPACE, "n"}, {CAA_ANN_SANDBOX_NAME, "second"}};
    caa_pod_spec s;
    assert_int_equal(caa_pod_spec_from_annotations(ann, N(ann), &s, NULL), 0);
    assert_string_equal(s.pod_name, "second");
    caa_pod_spec_done(&s);
}

static void test_sandbox_id(void **state)
{
    (void)state;
    caa_error *err = NULL;
    assert_int_equal(
        caa_sandbox_id_check("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", NULL), 0);
    assert_int_equal(caa_sandbox_id_check("a.b_c-D", NULL), 0);
    assert_int_equal(caa_sandbox_id_check("", &err), -EINVAL);
    assert_string_equal(err->msg, "empty sandbox id");
    caa_error_free(err);
    assert_int_equal(caa_sandbox_id_check(NULL, NULL), -EINVAL);
    const char *bad[] = {".", "..", "a/b", "../x", "a b", "a\nb", "a:b", "ä"};
    for (size_t i = 0; i < N(bad); i++)
        assert_int_equal(caa_sandbox_id_check(bad[i], NULL), -EINVAL);
    char id[CAA_SANDBOX_ID_MAX + 2];
    memset(id, 'a', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    assert_int_equal(caa_sandbox_id_check(id, NULL), -EINVAL);
    id[CAA_SANDBOX_ID_MAX] = '\0';
    assert_int_equal(caa_sandbox_id_check(id, NULL), 0);
    assert_int_equal(caa_sandbox_id_check("...", NULL), 0);
}

/* Kata 3.9+ shims: io.katacontainers.config.runtime.cc_init_data. The
 * fixtures are the forms the Kata docs and CoCo guides put in the pod
 * annotation (`gzip | base64 -w0`, `base64 -w0`), made with those commands
 * from this TOML, and the decoded TOML a shim passes on. */
static const char initdata_toml[] =
    "algorithm = \"sha256\"\nversion = \"0.1.0\"\n\n[data]\n\"aa.toml\" = \"\"\"\n"
    "[token_configs.kbs]\nurl = \"https://kbs.example\"\n\"\"\"\n";
static const char initdata_gzip_b64[] =
    "H4sIAAAAAAAAAxXLTQqDMBBA4f2cQuYA4w/"
    "ootCTiMjYpiaYZCQzlR7fZvs+HsddSjCfmmeD6nkYJ4TLFQ2Sa+qopw4B5jcbL4DMZJIiVkOE2"
    "eRweX1J/oRd6dh0gW+JVb3ZqY+2/TdyP05ndAj1uQE6eQEmcwAAAA==";
static const char initdata_b64[] =
    "YWxnb3JpdGhtID0gInNoYTI1NiIKdmVyc2lvbiA9ICIwLjEuMCIKCltkYXRhXQoiYWEudG9tbCIgPSAiIiIKW3Rva2"
    "VuX2NvbmZpZ3Mua2JzXQp1cmwgPSAiaHR0cHM6Ly9rYnMuZXhhbXBsZSIKIiIiCg==";

static char *initdata_from(const char *key, const char *value, const char *hyp_value, caa_error **err)
{
    const caa_annotation ann[] = {
        {CAA_ANN_SANDBOX_NAME, "p"},
        {CAA_ANN_SANDBOX_NAMESPACE, "ns"},
        {CAA_ANN_INITDATA, hyp_value},
        {key, value},
    };
    caa_pod_spec s;
    if (caa_pod_spec_from_annotations(ann, N(ann), &s, err) < 0)
        return NULL;
    char *ret = s.initdata;
    s.initdata = NULL;
    caa_pod_spec_done(&s);
    return ret;
}

static void test_runtime_initdata_forms(void **state)
{
    (void)state;
    const char *forms[] = {initdata_toml, initdata_gzip_b64, initdata_b64};
    for (size_t i = 0; i < N(forms); i++) {
        char *t = initdata_from(CAA_ANN_RUNTIME_INITDATA, forms[i], "", NULL);
        assert_non_null(t);
        assert_string_equal(t, initdata_toml);
        free(t);
    }
    /* the hypervisor key accepts the same forms */
    char *t = initdata_from("unrelated", "", initdata_gzip_b64, NULL);
    assert_string_equal(t, initdata_toml);
    free(t);
}

static void test_runtime_initdata_wins(void **state)
{
    (void)state;
    char *t = initdata_from(CAA_ANN_RUNTIME_INITDATA, initdata_gzip_b64, "version = \"0.1.0\"\n", NULL);
    assert_string_equal(t, initdata_toml);
    free(t);
    /* an empty runtime key (a shim sends every key) leaves the hypervisor one */
    t = initdata_from(CAA_ANN_RUNTIME_INITDATA, "", "version = \"0.1.0\"\n", NULL);
    assert_string_equal(t, "version = \"0.1.0\"\n");
    free(t);
}

static void test_runtime_initdata_bad(void **state)
{
    (void)state;
    caa_error *err = NULL;
    /* gzip magic, then garbage */
    assert_null(initdata_from(CAA_ANN_RUNTIME_INITDATA, "H4sIAAAA", "", &err));
    assert_non_null(strstr(caa_error_msg(err), CAA_ANN_RUNTIME_INITDATA));
    caa_error_free(err);
    err = NULL;
    /* base64 of "a\0b" */
    assert_null(initdata_from(CAA_ANN_RUNTIME_INITDATA, "YQBi", "", &err));
    assert_non_null(strstr(caa_error_msg(err), "NUL"));
    caa_error_free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_keys),
        cmocka_unit_test(test_runtime_initdata_forms),
        cmocka_unit_test(test_runtime_initdata_wins),
        cmocka_unit_test(test_runtime_initdata_bad),
        cmocka_unit_test(test_empty_values_are_defaults),
        cmocka_unit_test(test_crio_sandbox_name),
        cmocka_unit_test(test_float_vcpus),
        cmocka_unit_test(test_bad_numbers),
        cmocka_unit_test(test_count_parser),
        cmocka_unit_test(test_missing_name_namespace),
        cmocka_unit_test(test_hostile_names),
        cmocka_unit_test(test_total_size_limit),
        cmocka_unit_test(test_duplicate_keys_last_wins),
        cmocka_unit_test(test_sandbox_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
