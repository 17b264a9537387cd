/* Trustee mode's KBS tunnel filter: the pp-sid rewrite, request framing
 * across arbitrary read boundaries, and every refusal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sc-kbs-rewrite.h"
#include "xalloc.h"

#define SID "0123abcd"

/* Feeds text in pieces of `step` bytes (0: all at once); returns the output or NULL on error. */
static char *run(const char *text, size_t step, int *ret_status, unsigned *ret_rewritten)
{
    caa_sc_kbs_rewriter w;
    caa_sc_kbs_rewriter_init(&w, SID);
    caa_buf out = {0};
    caa_buf_reserve(&out, 0);
    size_t len = strlen(text), off = 0;
    int r = 0;
    while (off < len && r == 0) {
        size_t n = step && len - off > step ? step : len - off;
        caa_error *err = NULL;
        r = caa_sc_kbs_rewrite_feed(&w, (const uint8_t *)text + off, n, &out, &err);
        if (r < 0) {
            assert_non_null(err);
            caa_error_free(err);
        }
        off += n;
    }
    *ret_status = r;
    if (ret_rewritten)
        *ret_rewritten = w.rewritten;
    caa_sc_kbs_rewriter_done(&w);
    if (r < 0) {
        caa_buf_done(&out);
        return NULL;
    }
    return caa_buf_steal(&out, NULL);
}

static void test_rewrite_private_key_path(void **state)
{
    (void)state;
    const size_t steps[] = {0, 1, 2, 3, 7};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        int r;
        unsigned n;
        char *out =
            run("GET /kbs/v0/resource/default/pp-sid/privateKey HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
                steps[i], &r, &n);
        assert_int_equal(r, 0);
        assert_int_equal(n, 1);
        assert_string_equal(out, "GET /kbs/v0/resource/default/pp-" SID "/privateKey HTTP/1.1\r\n"
                                 "Host: 127.0.0.1:8080\r\n\r\n");
        free(out);
    }
}

static void test_other_paths_unchanged(void **state)
{
    (void)state;
    const char *same[] = {
        "GET /kbs/v0/resource/default/sshclient/publicKey HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /kbs/v0/resource/default/pp-sid/publicKey HTTP/1.1\r\n\r\n",
        "GET /kbs/v0/resource/default/pp-sid/privateKeyX HTTP/1.0\r\n\r\n",
        "GET /x?pp-sid/privateKey HTTP/1.1\r\n\r\n", /* the query is not the path */
    };
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        int r;
        unsigned n;
        char *out = run(same[i], 1, &r, &n);
        assert_int_equal(r, 0);
        assert_int_equal(n, 0);
        assert_string_equal(out, same[i]);
        free(out);
    }
    /* A query after the rewritten path is kept. */
    int r;
    char *out = run("GET /a/pp-sid/privateKey?x=pp-sid/ HTTP/1.1\r\n\r\n", 0, &r, NULL);
    assert_string_equal(out, "GET /a/pp-" SID "/privateKey?x=pp-sid/ HTTP/1.1\r\n\r\n");
    free(out);
}

static void test_keep_alive_with_bodies(void **state)
{
    (void)state;
    /* An attestation POST whose body mentions the generic name, then the key GET. */
    const char *in =
        "POST /kbs/v0/auth HTTP/1.1\r\nContent-Type: application/json\r\ncontent-length: 32\r\n\r\n"
        "{\"p\":\"GET /pp-sid/privateKey H\"}"
        "GET /kbs/v0/resource/default/pp-sid/privateKey HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
    const char *want =
        "POST /kbs/v0/auth HTTP/1.1\r\nContent-Type: application/json\r\ncontent-length: 32\r\n\r\n"
        "{\"p\":\"GET /pp-sid/privateKey H\"}"
        "GET /kbs/v0/resource/default/pp-" SID "/privateKey HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
    for (size_t step = 0; step < 9; step++) {
        int r;
        unsigned n;
        char *out = run(in, step, &r, &n);
        assert_int_equal(r, 0);
        assert_int_equal(n, 1);
        assert_string_equal(out, want);
        free(out);
    }
}

static void test_refusals(void **state)
{
    (void)state;
    const char *bad[] = {
        "GET /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        "POST /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        "POST /x HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
        "POST /x HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "GET /x HTTP/2.0\r\n\r\n",
        "GET  HTTP/1.1\r\n\r\n",
        "G@T /x HTTP/1.1\r\n\r\n",
        "GET /x HTTP/1.1\r\nno colon here\r\n\r\n",
        "\r\n\r\n",
        "GET /a\tb HTTP/1.1\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int r;
        char *out = run(bad[i], 0, &r, NULL);
        assert_int_equal(r, -EPROTO);
        assert_null(out);
    }
    /* A head that never ends is cut at 16 KiB. */
    char *big = xmalloc(CAA_SC_KBS_HEAD_MAX + 64);
    memset(big, 'a', CAA_SC_KBS_HEAD_MAX + 63);
    memcpy(big, "GET /x HTTP/1.1\r\nX: ", 20);
    big[CAA_SC_KBS_HEAD_MAX + 63] = '\0';
    int r;
    assert_null(run(big, 4096, &r, NULL));
    assert_int_equal(r, -EPROTO);
    free(big);
    /* After a failure every later call fails. */
    caa_sc_kbs_rewriter w;
    caa_sc_kbs_rewriter_init(&w, SID);
    caa_buf out = {0};
    caa_error *err = NULL;
    assert_int_equal(caa_sc_kbs_rewrite_feed(&w, (const uint8_t *)"\r\n\r\n", 4, &out, &err), -EPROTO);
    caa_error_free(err);
    err = NULL;
    assert_int_equal(caa_sc_kbs_rewrite_feed(&w, (const uint8_t *)"GET / HTTP/1.1\r\n\r\n", 18, &out, &err),
                     -EPROTO);
    caa_error_free(err);
    caa_buf_done(&out);
    caa_sc_kbs_rewriter_done(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rewrite_private_key_path),
        cmocka_unit_test(test_other_paths_unchanged),
        cmocka_unit_test(test_keep_alive_with_bodies),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
