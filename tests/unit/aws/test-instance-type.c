/* Instance-type selection (providers/common/instance-type.c): upstream's
 * rules and error texts, the true minimum where upstream's binary search
 * misses it, and capacity fallbacks. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "instance-type.h"
#include "strv.h"
#include "xalloc.h"

typedef struct row {
    const char *name;
    int64_t vcpus, mem, gpus;
} row;

static caa_instance_type *table(const row *rows, size_t n)
{
    caa_instance_type *t = xnew0(caa_instance_type, n);
    for (size_t i = 0; i < n; i++)
        t[i] = (caa_instance_type){xstrdup(rows[i].name), rows[i].vcpus, rows[i].mem, rows[i].gpus};
    caa_instance_types_sort(t, n);
    return t;
}

static const row AWS[] = {
    {"m6a.large", 2, 8192, 0},      {"m6a.xlarge", 4, 16384, 0},      {"m6a.2xlarge", 8, 32768, 0},
    {"c6a.xlarge", 4, 8192, 0},     {"r6a.large", 2, 16384, 0},       {"g5.xlarge", 4, 16384, 1},
    {"g5.12xlarge", 48, 196608, 4}, {"p4d.24xlarge", 96, 1179648, 8},
};
#define N_AWS (sizeof(AWS) / sizeof(AWS[0]))

static char *select_type(const caa_instance_type *t, size_t n, char *const *allowed,
                         const char *explicit_type, int64_t vcpus, int64_t mem, int64_t gpus, caa_error **err)
{
    caa_instance_type_request req = {explicit_type, vcpus, mem, gpus};
    char *ret = NULL;
    int r = caa_instance_type_select(t, n, "m6a.large", allowed, &req, &ret, err);
    return r < 0 ? NULL : ret;
}

static char *allowed_all[] = {"m6a.large", "m6a.xlarge",  "m6a.2xlarge",  "c6a.xlarge", "r6a.large",
                              "g5.xlarge", "g5.12xlarge", "p4d.24xlarge", NULL};

static void test_sort_order(void **state)
{
    (void)state;
    caa_instance_type *t = table(AWS, N_AWS);
    /* (gpus, memory, vcpus, name) */
    assert_string_equal(t[0].name, "m6a.large");
    assert_string_equal(t[1].name, "c6a.xlarge");
    assert_string_equal(t[2].name, "r6a.large");
    assert_string_equal(t[3].name, "m6a.xlarge");
    assert_string_equal(t[4].name, "m6a.2xlarge");
    assert_string_equal(t[5].name, "g5.xlarge");
    assert_string_equal(t[7].name, "p4d.24xlarge");
    caa_instance_types_free(t, N_AWS);
}

static void test_rules(void **state)
{
    (void)state;
    caa_instance_type *t = table(AWS, N_AWS);
    char *s;
    /* 4. nothing asked: the default */
    s = select_type(t, N_AWS, allowed_all, NULL, 0, 0, 0, NULL);
    assert_string_equal(s, "m6a.large");
    free(s);
    /* only one of vcpus/memory: still the default (upstream) */
    s = select_type(t, N_AWS, allowed_all, NULL, 8, 0, 0, NULL);
    assert_string_equal(s, "m6a.large");
    free(s);
    /* 1. explicit type wins over sizes */
    s = select_type(t, N_AWS, allowed_all, "m6a.2xlarge", 1, 1, 0, NULL);
    assert_string_equal(s, "m6a.2xlarge");
    free(s);
    /* 3. sizes: smallest non-GPU fit */
    s = select_type(t, N_AWS, allowed_all, NULL, 2, 8000, 0, NULL);
    assert_string_equal(s, "m6a.large");
    free(s);
    s = select_type(t, N_AWS, allowed_all, NULL, 3, 4096, 0, NULL);
    assert_string_equal(s, "c6a.xlarge");
    free(s);
    s = select_type(t, N_AWS, allowed_all, NULL, 4, 16384, 0, NULL);
    assert_string_equal(s, "m6a.xlarge"); /* not g5.xlarge, which has the same sizes and a GPU */
    free(s);
    /* 2. GPUs */
    s = select_type(t, N_AWS, allowed_all, NULL, 0, 0, 1, NULL);
    assert_string_equal(s, "g5.xlarge");
    free(s);
    s = select_type(t, N_AWS, allowed_all, NULL, 8, 0, 2, NULL);
    assert_string_equal(s, "g5.12xlarge");
    free(s);
    s = select_type(t, N_AWS, allowed_all, NULL, 64, 0, 1, NULL);
    assert_string_equal(s, "p4d.24xlarge");
    free(s);
    caa_instance_types_free(t, N_AWS);
}

/* A larger-memory type with fewer vCPUs than a smaller one: the predicate is
 * not monotone over the sort order, and a binary search can miss the fit. */
static void test_true_minimum_not_binary_search(void **state)
{
    (void)state;
    static const row rows[] = {
        {"a.small", 8, 4096, 0},
        {"b.mem", 2, 8192, 0},
        {"c.mem", 2, 12288, 0},
        {"d.big", 8, 16384, 0},
    };
    caa_instance_type *t = table(rows, 4);
    char *allowed[] = {"a.small", "b.mem", "c.mem", "d.big", NULL};
    char *s;
    caa_instance_type_request req = {NULL, 8, 4096, 0};
    assert_int_equal(caa_instance_type_select(t, 4, "b.mem", allowed, &req, &s, NULL), 0);
    /* sort.Search over [a.small, b.mem, c.mem, d.big] with "vcpus>=8 &&
     * mem>=4096" (true, false, false, true) probes c.mem (false), then d.big
     * (true) and answers d.big; the smallest fit is a.small. */
    assert_string_equal(s, "a.small");
    free(s);
    req.memory_mib = 6000;
    assert_int_equal(caa_instance_type_select(t, 4, "b.mem", allowed, &req, &s, NULL), 0);
    assert_string_equal(s, "d.big");
    free(s);
    static const row rows2[] = {
        {"x1", 1, 1024, 0}, {"x2", 16, 2048, 0}, {"x3", 2, 4096, 0}, {"x4", 2, 8192, 0}, {"x5", 4, 16384, 0},
    };
    caa_instance_type *t2 = table(rows2, 5);
    char *allowed2[] = {"x1", "x2", "x3", "x4", "x5", NULL};
    /* A binary search probes x3 (2 vcpus: no), then x4, x5 (4 vcpus: no) and
     * reports no fit; x2 fits. */
    caa_instance_type_request req2 = {NULL, 8, 1500, 0};
    assert_int_equal(caa_instance_type_select(t2, 5, "x1", allowed2, &req2, &s, NULL), 0);
    assert_string_equal(s, "x2");
    free(s);
    caa_instance_types_free(t, 4);
    caa_instance_types_free(t2, 5);
}

static void test_errors_as_upstream(void **state)
{
    (void)state;
    caa_instance_type *t = table(AWS, N_AWS);
    caa_error *e = NULL;
    assert_null(select_type(t, N_AWS, allowed_all, NULL, 200, 1 << 30, 0, &e));
    assert_int_equal(e->code, -EINVAL);
    assert_string_equal(e->msg, "no instance type found for the given vcpus (200) and memory (1073741824)");
    caa_error_free(e);
    e = NULL;
    assert_null(select_type(t, N_AWS, NULL, "m6a.xlarge", 0, 0, 0, &e));
    assert_string_equal(e->msg, "requested instance type (\"m6a.xlarge\") is not default (\"m6a.large\") and "
                                "supported instance types list is empty");
    caa_error_free(e);
    e = NULL;
    char *some[] = {"m6a.large", "c6a.xlarge", NULL};
    assert_null(select_type(t, N_AWS, some, "m6a.xlarge", 0, 0, 0, &e));
    assert_string_equal(
        e->msg, "requested instance type (\"m6a.xlarge\") is not part of supported instance types list");
    caa_error_free(e);
    e = NULL;
    /* A size-based pick outside a non-empty allow-list is refused too. */
    static const row rows[] = {{"m6a.large", 2, 8192, 0}, {"huge", 64, 262144, 0}};
    caa_instance_type *t2 = table(rows, 2);
    assert_null(select_type(t2, 2, some, NULL, 32, 1000, 0, &e));
    assert_non_null(strstr(e->msg, "is not part of supported instance types list"));
    caa_error_free(e);
    /* The default is always allowed, even with an allow-list without it. */
    char *s = select_type(t, N_AWS, some, "m6a.large", 0, 0, 0, NULL);
    assert_string_equal(s, "m6a.large");
    free(s);
    caa_instance_types_free(t, N_AWS);
    caa_instance_types_free(t2, 2);
}

static void test_empty_table(void **state)
{
    (void)state;
    caa_error *e = NULL;
    char *s = select_type(NULL, 0, NULL, NULL, 0, 0, 0, NULL);
    assert_string_equal(s, "m6a.large");
    free(s);
    assert_null(select_type(NULL, 0, NULL, NULL, 1, 1, 0, &e));
    assert_int_equal(e->code, -EINVAL);
    caa_error_free(e);
}

static void test_fallbacks(void **state)
{
    (void)state;
    caa_instance_type *t = table(AWS, N_AWS);
    caa_instance_type_request sized = {NULL, 2, 8192, 0};
    char **fb = caa_instance_type_fallbacks(t, N_AWS, allowed_all, &sized, "m6a.large");
    /* after m6a.large in order, fitting 2 vCPU / 8 GiB, no GPU types */
    assert_int_equal(caa_strv_len(fb), 4);
    assert_string_equal(fb[0], "c6a.xlarge");
    assert_string_equal(fb[1], "r6a.large");
    assert_string_equal(fb[2], "m6a.xlarge");
    assert_string_equal(fb[3], "m6a.2xlarge");
    caa_strv_free(fb);

    /* default type, no sizes: types at least as big as the default */
    caa_instance_type_request none = {NULL, 0, 0, 0};
    char *some[] = {"m6a.large", "r6a.large", "m6a.2xlarge", NULL};
    fb = caa_instance_type_fallbacks(t, N_AWS, some, &none, "m6a.xlarge");
    /* m6a.xlarge (4 vCPU, 16 GiB) is not allowed but known: r6a.large has
     * too few vCPUs, m6a.2xlarge fits */
    assert_int_equal(caa_strv_len(fb), 1);
    assert_string_equal(fb[0], "m6a.2xlarge");
    caa_strv_free(fb);

    /* explicit type: no fallback */
    caa_instance_type_request expl = {"m6a.large", 0, 0, 0};
    fb = caa_instance_type_fallbacks(t, N_AWS, allowed_all, &expl, "m6a.large");
    assert_int_equal(caa_strv_len(fb), 0);
    caa_strv_free(fb);

    /* GPU request: only GPU types that fit */
    caa_instance_type_request gpu = {NULL, 0, 0, 1};
    fb = caa_instance_type_fallbacks(t, N_AWS, allowed_all, &gpu, "g5.xlarge");
    assert_int_equal(caa_strv_len(fb), 2);
    assert_string_equal(fb[0], "g5.12xlarge");
    caa_strv_free(fb);
    caa_instance_types_free(t, N_AWS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sort_order),
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_true_minimum_not_binary_search),
        cmocka_unit_test(test_errors_as_upstream),
        cmocka_unit_test(test_empty_table),
        cmocka_unit_test(test_fallbacks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
