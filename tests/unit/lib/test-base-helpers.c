/* lib/list.h, lib/closing.h, lib/refcount.h, lib/timeutil.h and the option-table macros. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "closing.h"
#include "list.h"
#include "options.h"
#include "refcount.h"
#include "timeutil.h"

typedef struct item {
    int v;
    caa_list node;
} item;

static void test_list(void **state)
{
    (void)state;
    caa_list head;
    caa_list_init(&head);
    assert_true(caa_list_empty(&head));
    item a = {.v = 1}, b = {.v = 2}, c = {.v = 3};
    assert_false(caa_list_linked(&a.node)); /* zeroed */
    caa_list_append(&head, &a.node);
    caa_list_append(&head, &b.node);
    caa_list_append(&head, &c.node);
    assert_true(caa_list_linked(&b.node));
    caa_list_remove(&b.node);
    assert_false(caa_list_linked(&b.node));
    caa_list_remove(&b.node); /* removing twice is harmless */
    int sum = 0, order = 0;
    caa_list *pos, *tmp;
    caa_list_foreach_safe(pos, tmp, &head)
    {
        item *it = caa_list_entry(pos, item, node);
        order = order * 10 + it->v;
        sum += it->v;
        caa_list_remove(pos);
    }
    assert_int_equal(order, 13);
    assert_int_equal(sum, 4);
    assert_true(caa_list_empty(&head));
}

/* Runs fn in a child and reports whether it died of a signal (assert()). */
static bool dies(void (*fn)(void))
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* No core dump or sanitizer report noise for the expected abort. */
        fclose(stderr);
        fn();
        _exit(0);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) != 0);
}

static void append_twice(void)
{
    caa_list head;
    caa_list_init(&head);
    item a = {0};
    caa_list_append(&head, &a.node);
    caa_list_append(&head, &a.node);
}

static void unref_underflow(void)
{
    caa_refcount r;
    caa_refcount_init(&r, 1);
    (void)caa_unref(&r);
    (void)caa_unref(&r);
}

static void test_list_move_all(void **state)
{
    (void)state;
    caa_list src, dst;
    caa_list_init(&src);
    caa_list_move_all(&dst, &src); /* empty source: empty batch */
    assert_true(caa_list_empty(&dst));
    item a = {.v = 1}, b = {.v = 2}, c = {.v = 3};
    caa_list_append(&src, &a.node);
    caa_list_append(&src, &b.node);
    caa_list_move_all(&dst, &src);
    assert_true(caa_list_empty(&src));
    caa_list_append(&src, &c.node); /* the source takes new nodes meanwhile */
    int order = 0;
    while (!caa_list_empty(&dst)) {
        item *it = caa_list_entry(dst.next, item, node);
        caa_list_remove(&it->node);
        order = order * 10 + it->v;
    }
    assert_int_equal(order, 12);
    assert_ptr_equal(src.next, &c.node);
    assert_ptr_equal(src.prev, &c.node);
}

static void count_done(void *opaque)
{
    (*(int *)opaque)++;
}

static void test_closing(void **state)
{
    (void)state;
    caa_closing c = {0}, closed;
    int done = 0;
    assert_true(caa_closing_begin(&c, count_done, &done));
    assert_false(caa_closing_begin(&c, count_done, &done)); /* a second close is ignored */
    caa_closing_add(&c);                                    /* a handle still closing */
    assert_false(caa_closing_part_done(&c, &closed));
    assert_true(caa_closing_part_done(&c, &closed)); /* the last part */
    assert_int_equal(done, 0);                       /* the owner frees itself first */
    caa_closing_notify(&closed);
    assert_int_equal(done, 1);
    caa_closing none = {0};
    assert_true(caa_closing_begin(&none, NULL, NULL));
    assert_true(caa_closing_part_done(&none, &closed));
    caa_closing_notify(&closed); /* no callback: nothing to run */
}

static void test_ownership_asserts(void **state)
{
    (void)state;
#ifdef NDEBUG
    skip();
#else
    assert_true(dies(append_twice));
    assert_true(dies(unref_underflow));
#endif
}

static void test_refcount(void **state)
{
    (void)state;
    caa_refcount r;
    caa_refcount_init(&r, 1);
    caa_ref(&r);
    assert_int_equal(caa_refcount_get(&r), 2);
    assert_false(caa_unref(&r));
    assert_true(caa_unref(&r));
    assert_int_equal(caa_refcount_get(&r), 0);
}

static void test_time(void **state)
{
    (void)state;
    assert_int_equal(caa_ns_to_ms_ceil(0), 0);
    assert_int_equal(caa_ns_to_ms_ceil(-5), 0);
    assert_int_equal(caa_ns_to_ms_ceil(1), 1);
    assert_int_equal(caa_ns_to_ms_ceil(CAA_NSEC_PER_MSEC), 1);
    assert_int_equal(caa_ns_to_ms_ceil(CAA_NSEC_PER_MSEC + 1), 2);
    assert_int_equal(caa_ns_to_ms(CAA_NSEC_PER_SEC * 5 + 999999), 5000);
    assert_int_equal(caa_ms_to_ns(1500), INT64_C(1500000000));
    struct timespec ts = caa_ms_to_timespec(2345);
    assert_int_equal(ts.tv_sec, 2);
    assert_int_equal(ts.tv_nsec, 345000000);
    assert_int_equal(caa_timespec_to_ms(&ts), 2345);
    int64_t a = caa_clock_ms(CLOCK_MONOTONIC), b = caa_clock_ms(CLOCK_MONOTONIC);
    assert_true(b >= a);
}

typedef struct cfg {
    char *s;
    int64_t n;
    char *secret;
} cfg;

static const caa_option cfg_options[] = {
    CAA_OPTION(cfg, "s", "S_ENV", CAA_OPT_STRING, s, "def", "a string"),
    CAA_OPTION_INT(cfg, "n", NULL, n, "3", 1, 9, "a number"),
    CAA_OPTION_SECRET(cfg, "secret", NULL, secret, "a secret"),
};

static void test_option_macros(void **state)
{
    (void)state;
    assert_string_equal(cfg_options[0].name, "s");
    assert_string_equal(cfg_options[0].env, "S_ENV");
    assert_int_equal(cfg_options[0].offset, offsetof(cfg, s));
    assert_int_equal(cfg_options[0].flags, 0);
    assert_int_equal(cfg_options[1].type, CAA_OPT_INT);
    assert_int_equal(cfg_options[1].min, 1);
    assert_int_equal(cfg_options[1].max, 9);
    assert_int_equal(cfg_options[1].offset, offsetof(cfg, n));
    assert_int_equal(cfg_options[2].type, CAA_OPT_STRING);
    assert_int_equal(cfg_options[2].flags, CAA_OPT_SECRET);
    assert_string_equal(cfg_options[2].def, "");

    cfg c = {0};
    caa_option_set set = {.title = "t", .opts = cfg_options, .n_opts = 3, .target = &c};
    char *argv[] = {"-n=7", "-secret", "x"};
    unsetenv("S_ENV");
    assert_int_equal(caa_options_parse(&set, 1, 3, argv, NULL), 0);
    assert_string_equal(c.s, "def");
    assert_int_equal(c.n, 7);
    assert_string_equal(c.secret, "x");
    caa_options_free(&set, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list),          cmocka_unit_test(test_list_move_all),
        cmocka_unit_test(test_closing),       cmocka_unit_test(test_ownership_asserts),
        cmocka_unit_test(test_refcount),      cmocka_unit_test(test_time),
        cmocka_unit_test(test_option_macros),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
