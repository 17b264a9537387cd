#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "codec.h"
#include "initdata.h"
#include "xalloc.h"

static const char sample[] =
    "# initdata for a pod\n"
    "algorithm = \"sha384\"   # digest algorithm\n"
    "version = '0.1.0'\n"
    "\n"
    "[data]\n"
    "\"aa.toml\" = '''\n"
    "[token_configs]\n"
    "[token_configs.kbs]\n"
    "url = \"http://198.18.0.1:8080\"\n"
    "'''\n"
    "'cdh.toml'  =  \"\"\"\n"
    "[kbc]\n"
    "name = \\\"cc_kbc\\\"\n"
    "url = \\\n"
    "     \"http://198.18.0.1:8080\"\n"
    "\"\"\"\n"
    "\"policy.rego\" = \"package agent_policy\\n\\ndefault AllowRequestsFailingPolicy := true\\n\"\n"
    "bare-key_1 = 'C:\\path'\n"
    "\"esc\" = \"\\t\\u00e9\\U0001F600\\\\\\\"\\b\\f\\r\"\n"
    "\"quotes\" = \"\"\"two \"\" inside and one at the end\"\"\"\"\n"
    "\"lit-quotes\" = '''it''s'''''\n"
    "\"empty\" = \"\"\n";

static void test_parse_sample(void **state)
{
    (void)state;
    _cleanup_initdata_ caa_initdata *d = NULL;
    caa_error *err = NULL;
    if (caa_initdata_parse(sample, strlen(sample), &d, &err) < 0)
        fail_msg("%s", caa_error_msg(err));
    assert_int_equal(d->alg, CAA_INITDATA_SHA384);
    assert_string_equal(d->version, "0.1.0");
    assert_int_equal(d->n_data, 8);
    assert_string_equal(d->data[0].name, "aa.toml");
    assert_string_equal(d->data[0].value,
                        "[token_configs]\n[token_configs.kbs]\nurl = \"http://198.18.0.1:8080\"\n");
    assert_string_equal(caa_initdata_find(d, "cdh.toml")->value,
                        "[kbc]\nname = \"cc_kbc\"\nurl = \"http://198.18.0.1:8080\"\n");
    assert_string_equal(caa_initdata_find(d, "policy.rego")->value,
                        "package agent_policy\n\ndefault AllowRequestsFailingPolicy := true\n");
    assert_string_equal(caa_initdata_find(d, "bare-key_1")->value, "C:\\path");
    assert_string_equal(caa_initdata_find(d, "esc")->value, "\t\xc3\xa9\xf0\x9f\x98\x80\\\"\b\f\r");
    assert_string_equal(caa_initdata_find(d, "quotes")->value, "two \"\" inside and one at the end\"");
    assert_string_equal(caa_initdata_find(d, "lit-quotes")->value, "it''s''");
    assert_int_equal(caa_initdata_find(d, "empty")->value_len, 0);
    assert_null(caa_initdata_find(d, "missing"));
}

static void test_parse_variants(void **state)
{
    (void)state;
    static const char *const ok[] = {
        /* no [data] */
        "algorithm = \"sha256\"\nversion = \"0.1.0\"\n",
        /* CRLF, no final newline, spaces in the header */
        "algorithm = \"sha512\"\r\nversion = \"0.1.0\"\r\n[ data ]\r\n\"a\" = '''\r\nx\r\n'''",
        /* empty [data], comment after header, tabs */
        "\talgorithm\t=\t\"sha256\"\nversion=\"0.1.0\"\n[data] # none\n",
        /* NUL through an escape is data, not a terminator */
        "algorithm = \"sha256\"\nversion = \"0.1.0\"\n[data]\n\"n\" = \"a\\u0000b\"\n",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        caa_initdata *d = NULL;
        caa_error *err = NULL;
        if (caa_initdata_parse(ok[i], strlen(ok[i]), &d, &err) < 0)
            fail_msg("case %zu: %s", i, caa_error_msg(err));
        if (i == 1)
            assert_string_equal(caa_initdata_find(d, "a")->value, "x\r\n");
        if (i == 3) {
            assert_int_equal(d->data[0].value_len, 3);
            assert_memory_equal(d->data[0].value, "a\0b", 3);
        }
        caa_initdata_free(d);
    }
}

static void expect_reject(const char *doc, const char *needle)
{
    caa_initdata *d = NULL;
    caa_error *err = NULL;
    int r = caa_initdata_parse(doc, strlen(doc), &d, &err);
    if (r != -EINVAL)
        fail_msg("expected -EINVAL, got %d for:\n%s", r, doc);
    assert_null(d);
    if (!strstr(caa_error_msg(err), needle))
        fail_msg("message '%s' lacks '%s'", caa_error_msg(err), needle);
    caa_error_free(err);
}

#define HDR "algorithm = \"sha256\"\nversion = \"0.1.0\"\n"

static void test_parse_rejects(void **state)
{
    (void)state;
    /* duplicates */
    expect_reject(HDR "algorithm = \"sha384\"\n", "line 3: duplicate key 'algorithm'");
    expect_reject(HDR "version = \"0.1.0\"\n", "duplicate key 'version'");
    expect_reject(HDR "[data]\n'a' = 'x'\n\"a\" = \"y\"\n", "line 5: duplicate key 'a' in [data]");
    expect_reject(HDR "[data]\n[data]\n", "duplicate table [data]");
    /* unterminated strings */
    expect_reject(HDR "[data]\na = \"open\n", "line 4: unterminated string");
    expect_reject(HDR "[data]\na = 'open\n", "unterminated string");
    expect_reject(HDR "[data]\na = \"\"\"open\nstill\n", "line 4: unterminated multi-line string");
    expect_reject(HDR "[data]\na = '''open\n", "unterminated multi-line string");
    expect_reject("algorithm = \"sha256", "unterminated string");
    /* wrong types */
    expect_reject(HDR "[data]\na = 1\n", "value of 'a' must be a string, found a number or date");
    expect_reject(HDR "[data]\na = true\n", "found a boolean");
    expect_reject(HDR "[data]\na = [\"x\"]\n", "found an array");
    expect_reject(HDR "[data]\na = {b = \"c\"}\n", "found an inline table");
    expect_reject(HDR "[data]\na =\n", "found no value");
    expect_reject(HDR "[data]\na = bare\n", "found an invalid value");
    expect_reject("algorithm = 256\nversion = \"0.1.0\"\n", "value of 'algorithm' must be a string");
    expect_reject(HDR "data = \"x\"\n", "'data' must be a table");
    /* algorithm and version */
    expect_reject("algorithm = \"md5\"\nversion = \"0.1.0\"\n", "unsupported algorithm 'md5'");
    expect_reject("algorithm = \"SHA256\"\nversion = \"0.1.0\"\n", "unsupported algorithm");
    expect_reject("version = \"0.1.0\"\n", "missing 'algorithm'");
    expect_reject("algorithm = \"sha256\"\n", "missing 'version'");
    expect_reject("algorithm = \"sha256\"\nversion = \"0.2.0\"\n", "unsupported version '0.2.0'");
    expect_reject("", "missing 'algorithm'");
    /* outside the subset */
    expect_reject(HDR "extra = \"x\"\n", "unknown key 'extra'");
    expect_reject(HDR "[other]\n", "unsupported table [other]");
    expect_reject(HDR "[[data]]\n", "arrays of tables are not supported");
    expect_reject(HDR "[data.sub]\n", "dotted keys are not supported");
    expect_reject(HDR "[data]\naa.toml = 'x'\n", "dotted keys are not supported");
    expect_reject(HDR "[data]\n\"\" = 'x'\n", "empty keys");
    expect_reject(HDR "[data]\n\"a\\u0000\" = 'x'\n", "NUL character in key");
    expect_reject(HDR "[data]\n\"\"\"a\"\"\" = 'x'\n", "multi-line strings cannot be keys");
    expect_reject(HDR "[data\n", "expected ']'");
    expect_reject(HDR "[data]\na 'x'\n", "expected '='");
    expect_reject(HDR "= 'x'\n", "expected a key");
    /* lexical errors */
    expect_reject(HDR "[data]\na = \"\\q\"\n", "invalid escape");
    expect_reject(HDR "[data]\na = \"\\u12\"\n", "expected 4 hex digits");
    expect_reject(HDR "[data]\na = \"\\uD800\"\n", "not a Unicode scalar value");
    expect_reject(HDR "[data]\na = \"\\U00110000\"\n", "not a Unicode scalar value");
    expect_reject(HDR "[data]\na = \"ctl\x01\"\n", "control character in string");
    expect_reject(HDR "[data]\na = '''x\x7f'''\n", "control character in string");
    expect_reject(HDR "# bad \x02 comment\n", "control character in comment");
    expect_reject(HDR "[data]\na = \"bad \xc3\x28\"\n", "line 4: invalid UTF-8");
    expect_reject(HDR "[data]\na = \"overlong \xc0\xaf\"\n", "invalid UTF-8");
    expect_reject(HDR "[data]\na = 'x' 'y'\n", "unexpected text after value");
    expect_reject(HDR "[data] x\n", "unexpected text after value");
    expect_reject(HDR "[data]\na = \"\"\"x\"\"\"\"\"\"\n", "too many quotes");
}

static void test_too_many_entries(void **state)
{
    (void)state;
    _cleanup_free_ char *doc = xstrdup(HDR "[data]\n");
    for (int i = 0; i < 65; i++) {
        char *n = xasprintf("%s\"k%d\" = ''\n", doc, i);
        free(doc);
        doc = n;
    }
    expect_reject(doc, "more than 64 entries");
}

static void test_encode_decode(void **state)
{
    (void)state;
    _cleanup_free_ char *enc = caa_initdata_encode(sample, strlen(sample), NULL);
    assert_non_null(enc);
    assert_null(strchr(enc, '\n'));
    assert_true(strncmp(enc, "H4sI", 4) == 0); /* gzip magic 1f 8b 08 in base64 */
    _cleanup_free_ char *dec = NULL;
    size_t len = 0;
    assert_int_equal(caa_initdata_decode(enc, strlen(enc), &dec, &len, NULL), 0);
    assert_int_equal(len, strlen(sample));
    assert_memory_equal(dec, sample, len);

    /* Line breaks (a YAML literal block) and a trailing newline are fine. */
    size_t n = strlen(enc);
    _cleanup_free_ char *wrapped = xmalloc(n + n / 10 + 4);
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        wrapped[j++] = enc[i];
        if (i % 10 == 9)
            wrapped[j++] = '\n';
    }
    wrapped[j++] = '\r';
    wrapped[j++] = '\n';
    wrapped[j] = '\0';
    _cleanup_free_ char *dec2 = NULL;
    assert_int_equal(caa_initdata_decode(wrapped, j, &dec2, &len, NULL), 0);
    assert_memory_equal(dec2, sample, len);

    _cleanup_initdata_ caa_initdata *d = NULL;
    assert_int_equal(caa_initdata_decode_parse(enc, strlen(enc), &d, NULL), 0);
    assert_int_equal(d->alg, CAA_INITDATA_SHA384);
    assert_int_equal(caa_initdata_decode_parse(enc, strlen(enc), NULL, NULL), 0);
}

static void expect_decode_error(const char *text, size_t len, int code, const char *needle)
{
    char *out = NULL;
    size_t n = 0;
    caa_error *err = NULL;
    int r = caa_initdata_decode(text, len, &out, &n, &err);
    if (r != code)
        fail_msg("expected %d got %d (%s)", code, r, err ? caa_error_msg(err) : "-");
    assert_null(out);
    if (!strstr(caa_error_msg(err), needle))
        fail_msg("message '%s' lacks '%s'", caa_error_msg(err), needle);
    caa_error_free(err);
}

static void test_decode_errors(void **state)
{
    (void)state;
    expect_decode_error("H4sI!AAA", 8, -EINVAL, "invalid base64");
    expect_decode_error("H4sIAAA", 7, -EINVAL, "not a multiple of 4");
    expect_decode_error("H4s=IAAA", 8, -EINVAL, "invalid base64");
    expect_decode_error("H===", 4, -EINVAL, "too much padding");
    expect_decode_error("", 0, -EINVAL, "gzip: truncated");
    /* valid base64 of text that is not gzip */
    _cleanup_free_ char *plain = caa_bootdata_base64_encode("algorithm = \"sha256\"\n", 21);
    expect_decode_error(plain, strlen(plain), -EINVAL, "gzip");
    /* zlib (not gzip) framing is refused */
    expect_decode_error("eJzLSM3JyQcABiwCFQ==", 20, -EINVAL, "gzip");

    /* truncated gzip */
    _cleanup_free_ void *gz = NULL;
    size_t gz_len = 0;
    assert_int_equal(caa_bootdata_gzip_compress(sample, strlen(sample), &gz, &gz_len, NULL), 0);
    _cleanup_free_ char *cut = caa_bootdata_base64_encode(gz, gz_len - 6);
    expect_decode_error(cut, strlen(cut), -EINVAL, "gzip");
    /* trailing garbage after the gzip member */
    unsigned char *more = xmalloc(gz_len + 3);
    memcpy(more, gz, gz_len);
    memcpy(more + gz_len, "xyz", 3);
    _cleanup_free_ char *trail = caa_bootdata_base64_encode(more, gz_len + 3);
    free(more);
    expect_decode_error(trail, strlen(trail), -EINVAL, "unexpected bytes after");
    /* corrupted payload (CRC mismatch) */
    unsigned char *bad = xmemdup(gz, gz_len);
    bad[gz_len - 5] ^= 0xff;
    _cleanup_free_ char *crc = caa_bootdata_base64_encode(bad, gz_len);
    free(bad);
    expect_decode_error(crc, strlen(crc), -EINVAL, "gzip");

    /* a gzip bomb: 8 MiB of zeros compresses to a few KiB */
    size_t big = 8 * 1024 * 1024;
    char *zeros = xcalloc(1, big);
    _cleanup_free_ void *bomb = NULL;
    size_t bomb_len = 0;
    assert_int_equal(caa_bootdata_gzip_compress(zeros, big, &bomb, &bomb_len, NULL), 0);
    free(zeros);
    assert_true(bomb_len < 64 * 1024);
    _cleanup_free_ char *b64 = caa_bootdata_base64_encode(bomb, bomb_len);
    expect_decode_error(b64, strlen(b64), -EFBIG, "more than");
}

static void test_base64(void **state)
{
    (void)state;
    static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const out[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        _cleanup_free_ char *e = caa_bootdata_base64_encode(in[i], strlen(in[i]));
        assert_string_equal(e, out[i]);
        _cleanup_free_ void *d = NULL;
        size_t n = 99;
        assert_int_equal(caa_bootdata_base64_decode(e, strlen(e), 100, &d, &n, NULL), 0);
        assert_int_equal(n, strlen(in[i]));
        assert_memory_equal(d, in[i], n);
    }
    void *d = NULL;
    size_t n = 0;
    caa_error *err = NULL;
    assert_int_equal(caa_bootdata_base64_decode("Zm9vYmFy", 8, 5, &d, &n, &err), -EFBIG);
    caa_error_free(err);
    err = NULL;
    assert_int_equal(caa_bootdata_base64_decode("Zm9v-mFy", 8, 100, &d, &n, &err), -EINVAL);
    caa_error_free(err);
    assert_null(d);
}

static void test_digest(void **state)
{
    (void)state;
    _cleanup_free_ char *s256 = caa_initdata_digest(CAA_INITDATA_SHA256, "abc", 3);
    assert_string_equal(s256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    _cleanup_free_ char *s384 = caa_initdata_digest(CAA_INITDATA_SHA384, "abc", 3);
    assert_string_equal(
        s384, "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca1"
              "34c825a7");
    _cleanup_free_ char *s512 = caa_initdata_digest(CAA_INITDATA_SHA512, "abc", 3);
    assert_int_equal(strlen(s512), 128);
    assert_true(strncmp(s512, "ddaf35a193617aba", 16) == 0);

    caa_initdata_alg alg;
    assert_int_equal(caa_initdata_alg_from_name("sha512", &alg), 0);
    assert_int_equal(alg, CAA_INITDATA_SHA512);
    assert_string_equal(caa_initdata_alg_name(CAA_INITDATA_SHA384), "sha384");
    assert_int_equal(caa_initdata_alg_from_name("sha1", &alg), -EINVAL);
}

static void test_default_document(void **state)
{
    (void)state;
    _cleanup_initdata_ caa_initdata *d = NULL;
    const char *doc = caa_initdata_default_toml;
    assert_int_equal(caa_initdata_parse(doc, strlen(doc), &d, NULL), 0);
    assert_int_equal(d->alg, CAA_INITDATA_SHA256);
    assert_int_equal(d->n_data, 1);
    assert_string_equal(d->data[0].name, "aa.toml");
    assert_int_equal(d->data[0].value_len, 0);
    /* Pinned: the VM extends PCR 8 with this value when it got no initdata. */
    _cleanup_free_ char *hex = caa_initdata_digest(d->alg, doc, strlen(doc));
    assert_string_equal(hex, "c0208fd1fb0315723e581bbbc1c57c03236f0cfb8215d8ea6578f6359bd5245b");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_sample),     cmocka_unit_test(test_parse_variants),
        cmocka_unit_test(test_parse_rejects),    cmocka_unit_test(test_too_many_entries),
        cmocka_unit_test(test_encode_decode),    cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_base64),           cmocka_unit_test(test_digest),
        cmocka_unit_test(test_default_document),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
