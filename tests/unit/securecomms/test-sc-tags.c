/* Secure comms tag grammar: upstream's examples, every refusal, ordering and
 * duplicate rules, and the canonical formatting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sc-tags.h"
#include "xalloc.h"

static void test_upstream_examples(void **state)
{
    (void)state;
    caa_sc_tags out;
    caa_sc_tags_init(&out, CAA_SC_OUTBOUND);
    assert_int_equal(caa_sc_tags_parse_append(&out,
                                              "KUBERNETES_PHASE:mytunnel:149.81.64.62:7777, "
                                              "BOTH_PHASES:KBS:kbs-service.trustee-operator-system:8080,"
                                              "ATTESTATION_PHASE:ABC:127.0.0.1:7020",
                                              NULL),
                     0);
    assert_int_equal(out.n, 3);
    assert_int_equal(out.items[0].phase, CAA_SC_PHASE_KUBERNETES);
    assert_string_equal(out.items[0].host, "149.81.64.62");
    assert_int_equal(out.items[0].port, 7777);
    const caa_sc_tag *kbs = caa_sc_tags_find(&out, "KBS");
    assert_non_null(kbs);
    assert_int_equal(kbs->phase, CAA_SC_PHASE_BOTH);
    assert_string_equal(kbs->host, "kbs-service.trustee-operator-system");
    assert_null(caa_sc_tags_find(&out, "kbs")); /* case-sensitive */
    caa_sc_tags_done(&out);

    caa_sc_tags in;
    caa_sc_tags_init(&in, CAA_SC_INBOUND);
    assert_int_equal(
        caa_sc_tags_parse_append(&in,
                                 "KUBERNETES_PHASE:mytunnel:podns:6666,ATTESTATION_PHASE:ABC:7010,"
                                 "KUBERNETES_PHASE:KATAAGENT:0",
                                 NULL),
        0);
    assert_int_equal(in.n, 3);
    assert_string_equal(in.items[0].netns, "podns");
    assert_null(in.items[1].netns);
    assert_null(in.items[1].host);
    assert_int_equal(in.items[2].port, 0);
    caa_sc_tags_done(&in);
}

static void test_defaults_and_empty(void **state)
{
    (void)state;
    caa_sc_tags out;
    caa_sc_tags_init(&out, CAA_SC_OUTBOUND);
    assert_int_equal(caa_sc_tags_parse_append(&out, "", NULL), 0);
    assert_int_equal(caa_sc_tags_parse_append(&out, NULL, NULL), 0);
    assert_int_equal(caa_sc_tags_parse_append(&out, " , ,", NULL), 0);
    assert_int_equal(out.n, 0);
    assert_int_equal(caa_sc_tags_parse_append(&out, "KUBERNETES_PHASE:A:80,KUBERNETES_PHASE:B::81", NULL), 0);
    assert_string_equal(out.items[0].host, "127.0.0.1");
    assert_string_equal(out.items[1].host, "127.0.0.1");
    caa_sc_tags_done(&out);
}

static void expect_refused(caa_sc_direction dir, const char *text, const char *needle)
{
    caa_sc_tags t;
    caa_sc_tags_init(&t, dir);
    assert_int_equal(caa_sc_tags_parse_append(&t, "BOTH_PHASES:KEEP:1", NULL), 0);
    caa_error *err = NULL;
    int r = caa_sc_tags_parse_append(&t, text, &err);
    if (r != -EINVAL && r != -E2BIG)
        fail_msg("'%s' accepted (%d)", text, r);
    assert_non_null(err);
    if (!strstr(caa_error_msg(err), needle))
        fail_msg("'%s': message '%s' lacks '%s'", text, caa_error_msg(err), needle);
    /* All or nothing: the earlier list is untouched. */
    assert_int_equal(t.n, 1);
    assert_string_equal(t.items[0].name, "KEEP");
    caa_error_free(err);
    caa_sc_tags_done(&t);
}

static void test_refusals(void **state)
{
    (void)state;
    expect_refused(CAA_SC_OUTBOUND, "KUBERNETES_PHASE:A", "expected PHASE:NAME:PORT");
    expect_refused(CAA_SC_OUTBOUND, "KUBERNETES_PHASE:A:h:1:2", "expected PHASE:NAME:PORT");
    expect_refused(CAA_SC_OUTBOUND, "KUBERNETES_PHASE:A:h:1:2:3:4", "expected");
    expect_refused(CAA_SC_OUTBOUND, "K:A:80", "unknown phase");
    expect_refused(CAA_SC_OUTBOUND, "kubernetes_phase:A:80", "unknown phase");
    expect_refused(CAA_SC_OUTBOUND, "BOTH_PHASES::80", "name must have");
    expect_refused(CAA_SC_OUTBOUND, "BOTH_PHASES:A:65536", "port must be");
    expect_refused(CAA_SC_OUTBOUND, "BOTH_PHASES:A:-1", "port must be");
    expect_refused(CAA_SC_OUTBOUND, "BOTH_PHASES:A:0x50", "port must be");
    expect_refused(CAA_SC_OUTBOUND, "BOTH_PHASES:A:", "port must be");
    expect_refused(CAA_SC_OUTBOUND, "BOTH_PHASES:A:0", "needs a port");
    expect_refused(CAA_SC_OUTBOUND, "BOTH_PHASES:A:ho st:80", "invalid character in the host");
    expect_refused(CAA_SC_OUTBOUND, "BOTH_PHASES:A:h/x:80", "invalid character in the host");
    expect_refused(CAA_SC_OUTBOUND, "BOTH_PHASES:A\x01:80", "invalid character in the name");
    expect_refused(CAA_SC_INBOUND, "BOTH_PHASES:A:../etc:80", "invalid character in the namespace");
    expect_refused(CAA_SC_INBOUND, "BOTH_PHASES:A:..:80", "invalid namespace");
    expect_refused(CAA_SC_INBOUND, "BOTH_PHASES:KEEP:80", "given twice");
    expect_refused(CAA_SC_INBOUND, "BOTH_PHASES:B:1", "already used");
    expect_refused(CAA_SC_INBOUND, "BOTH_PHASES:B:2,BOTH_PHASES:C:bad name:3", "invalid character");

    char long_name[CAA_SC_TAG_MAX_NAME + 40];
    memset(long_name, 0, sizeof(long_name));
    strcpy(long_name, "BOTH_PHASES:");
    memset(long_name + strlen(long_name), 'n', CAA_SC_TAG_MAX_NAME + 1);
    strcat(long_name, ":1");
    expect_refused(CAA_SC_OUTBOUND, long_name, "name must have");

    /* More tags than allowed. */
    char *many = xstrdup("");
    for (int i = 0; i < CAA_SC_TAGS_MAX + 1; i++) {
        char *next = xasprintf("%s%sBOTH_PHASES:T%d:%d", many, i ? "," : "", i, i + 100);
        free(many);
        many = next;
    }
    expect_refused(CAA_SC_OUTBOUND, many, "more than");
    free(many);
}

static void test_outbound_later_wins_inbound_same_port_other_ns(void **state)
{
    (void)state;
    caa_sc_tags out;
    caa_sc_tags_init(&out, CAA_SC_OUTBOUND);
    assert_int_equal(caa_sc_tags_parse_append(&out, "KUBERNETES_PHASE:KATAAGENT:127.0.0.1:15150", NULL), 0);
    assert_int_equal(caa_sc_tags_parse_append(&out, "BOTH_PHASES:KATAAGENT:10.0.0.1:15151", NULL), 0);
    assert_int_equal(out.n, 1);
    assert_string_equal(out.items[0].host, "10.0.0.1");
    assert_int_equal(out.items[0].port, 15151);
    assert_int_equal(out.items[0].phase, CAA_SC_PHASE_BOTH);
    caa_sc_tags_done(&out);

    caa_sc_tags in;
    caa_sc_tags_init(&in, CAA_SC_INBOUND);
    assert_int_equal(caa_sc_tags_parse_append(&in, "BOTH_PHASES:A:80,BOTH_PHASES:B:podns:80", NULL), 0);
    assert_int_equal(caa_sc_tags_parse_append(&in, "BOTH_PHASES:C:0,BOTH_PHASES:D:0", NULL), 0);
    assert_int_equal(in.n, 4);
    caa_sc_tags_done(&in);
}

static void test_format_roundtrip(void **state)
{
    (void)state;
    caa_sc_tags out;
    caa_sc_tags_init(&out, CAA_SC_OUTBOUND);
    assert_int_equal(caa_sc_tags_parse_append(&out, " BOTH_PHASES:KBS:kbs:8080 ,KUBERNETES_PHASE:X:9", NULL),
                     0);
    char *s = caa_sc_tags_format(&out);
    assert_string_equal(s, "BOTH_PHASES:KBS:kbs:8080,KUBERNETES_PHASE:X:127.0.0.1:9");
    caa_sc_tags back;
    caa_sc_tags_init(&back, CAA_SC_OUTBOUND);
    assert_int_equal(caa_sc_tags_parse_append(&back, s, NULL), 0);
    assert_int_equal(back.n, 2);
    free(s);
    caa_sc_tags_done(&back);
    caa_sc_tags_done(&out);

    caa_sc_tags in;
    caa_sc_tags_init(&in, CAA_SC_INBOUND);
    assert_int_equal(caa_sc_tags_parse_append(&in, "ATTESTATION_PHASE:A:7,KUBERNETES_PHASE:B:podns:8", NULL),
                     0);
    s = caa_sc_tags_format(&in);
    assert_string_equal(s, "ATTESTATION_PHASE:A:7,KUBERNETES_PHASE:B:podns:8");
    free(s);
    caa_sc_tags_done(&in);
}

static void test_phase_match(void **state)
{
    (void)state;
    assert_true(caa_sc_phase_matches(CAA_SC_PHASE_BOTH, CAA_SC_PHASE_ATTESTATION));
    assert_true(caa_sc_phase_matches(CAA_SC_PHASE_BOTH, CAA_SC_PHASE_KUBERNETES));
    assert_true(caa_sc_phase_matches(CAA_SC_PHASE_KUBERNETES, CAA_SC_PHASE_KUBERNETES));
    assert_false(caa_sc_phase_matches(CAA_SC_PHASE_KUBERNETES, CAA_SC_PHASE_ATTESTATION));
    assert_false(caa_sc_phase_matches(CAA_SC_PHASE_ATTESTATION, CAA_SC_PHASE_KUBERNETES));
    assert_string_equal(caa_sc_phase_name(CAA_SC_PHASE_BOTH), "BOTH_PHASES");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upstream_examples),
        cmocka_unit_test(test_defaults_and_empty),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_outbound_later_wins_inbound_same_port_other_ns),
        cmocka_unit_test(test_format_roundtrip),
        cmocka_unit_test(test_phase_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
