#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cloud-config.h"
#include "fs.h"
#include "xalloc.h"

#include "golden.h"

static caa_cloud_config *fixed_config(void)
{
    caa_cloud_config *cc = caa_cloud_config_new();
    const char *apf = "{\"pod-network\":{\"podip\":\"10.244.1.7/24\"},\"pod-namespace\":\"default\","
                      "\"pod-name\":\"nginx\",\"tls-server-key\":\"-----BEGIN PRIVATE KEY-----\\nMIG\\n\","
                      "\"tls-min-version\":\"\",\"tls-cipher-suites\":[]}";
    caa_cloud_config_add(cc, "/run/peerpod/apf.json", apf, strlen(apf));
    const char *auth = "{\"auths\":{\"quay.io\":{\"auth\":\"dXNlcjpwYXNz\"}}}\n";
    caa_cloud_config_add(cc, "/run/peerpod/auth.json", auth, strlen(auth));
    const char *initdata = "H4sIAAAAAAACA0vMSS0uSUxJBABPfSL6CgAAAA==";
    caa_cloud_config_add(cc, "/run/peerpod/initdata", initdata, strlen(initdata));
    caa_cloud_config_add(cc, "/run/peerpod/scratch-space.marker", "", 0);
    return cc;
}

static void test_emit_golden(void **state)
{
    (void)state;
    _cleanup_cloud_config_ caa_cloud_config *cc = fixed_config();
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    assert_int_equal(caa_cloud_config_emit(cc, &text, &len, NULL), 0);
    assert_int_equal(strlen(text), len);
    assert_true(strncmp(text, "#cloud-config\nwrite_files:\n", 27) == 0);
    golden_compare("cloud-config.golden", text, len);
}

static void assert_same(const caa_cloud_config *a, const caa_cloud_config *b)
{
    assert_int_equal(a->n_files, b->n_files);
    for (size_t i = 0; i < a->n_files; i++) {
        assert_string_equal(a->files[i].path, b->files[i].path);
        assert_int_equal(a->files[i].content_len, b->files[i].content_len);
        assert_memory_equal(a->files[i].content, b->files[i].content, a->files[i].content_len);
    }
}

static void roundtrip(const caa_cloud_config *cc)
{
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    assert_int_equal(caa_cloud_config_emit(cc, &text, &len, NULL), 0);
    _cleanup_cloud_config_ caa_cloud_config *back = NULL;
    caa_error *err = NULL;
    int r = caa_cloud_config_parse(text, len, &back, &err);
    if (r < 0)
        fail_msg("parse: %s\n%s", caa_error_msg(err), text);
    assert_same(cc, back);
}

static void test_roundtrip(void **state)
{
    (void)state;
    _cleanup_cloud_config_ caa_cloud_config *cc = fixed_config();
    roundtrip(cc);

    /* Contents that cannot be literal blocks fall back to quoted styles and
     * must still come back byte for byte. */
    static const struct {
        const char *s;
        size_t n;
    } tricky[] = {
        {"", 0},
        {"\n", 1},
        {"a\n\n\n", 4},
        {"  leading spaces\nsecond\n", 24},
        {"trailing space \nx", 17},
        {"tab\there\n", 9},
        {"nul\0byte", 8},
        {"unicode \xc3\xa9\xe2\x82\xac \xf0\x9f\x98\x80\n", 18},
        {"- looks: like yaml\n# comment?\n---\n...\n", 38},
        {"\r\nwindows\r\n", 11},
        {"'\"quotes\"'", 10},
    };
    _cleanup_cloud_config_ caa_cloud_config *t = caa_cloud_config_new();
    for (size_t i = 0; i < sizeof(tricky) / sizeof(tricky[0]); i++) {
        _cleanup_free_ char *path = xasprintf("/run/peerpod/f%zu", i);
        caa_cloud_config_add(t, path, tricky[i].s, tricky[i].n);
    }
    roundtrip(t);

    _cleanup_cloud_config_ caa_cloud_config *empty = caa_cloud_config_new();
    roundtrip(empty);
}

static void test_emit_invalid_utf8(void **state)
{
    (void)state;
    _cleanup_cloud_config_ caa_cloud_config *cc = caa_cloud_config_new();
    caa_cloud_config_add(cc, "/run/peerpod/apf.json", "\xff\xfe", 2);
    char *text = NULL;
    caa_error *err = NULL;
    assert_int_equal(caa_cloud_config_emit(cc, &text, NULL, &err), -EINVAL);
    assert_null(text);
    assert_non_null(strstr(caa_error_msg(err), "cloud-config"));
    caa_error_free(err);
}

static void test_parse_accepts(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "",
        "#cloud-config\n",
        "#cloud-config\nwrite_files:\n",
        "#cloud-config\nwrite_files: []\n",
        "write_files: ~\n",
        /* upstream's indentation of the list */
        "#cloud-config\nwrite_files:\n  - path: /run/peerpod/apf.json\n    content: |\n      {}\n",
        "write_files:\n- {path: \"/run/peerpod/a\", content: 'x'}\n",
        "write_files:\n- path: !!str /run/peerpod/a\n  content: !!str x\n",
        "---\nwrite_files:\n- content: x\n  path: /a\n...\n",
        "write_files:\n- path: /a\n  content:\n",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        caa_cloud_config *cc = NULL;
        caa_error *err = NULL;
        int r = caa_cloud_config_parse(ok[i], strlen(ok[i]), &cc, &err);
        if (r < 0)
            fail_msg("case %zu: %s", i, caa_error_msg(err));
        caa_cloud_config_free(cc);
    }
    caa_cloud_config *cc = NULL;
    const char *doc =
        "#cloud-config\nwrite_files:\n  - path: /run/peerpod/apf.json\n    content: |\n      {}\n"
        "  - path: /run/peerpod/x\n    content:\n";
    assert_int_equal(caa_cloud_config_parse(doc, strlen(doc), &cc, NULL), 0);
    assert_int_equal(cc->n_files, 2);
    assert_string_equal(cc->files[0].content, "{}\n");
    assert_int_equal(cc->files[1].content_len, 0);
    assert_ptr_equal(caa_cloud_config_find(cc, "/run/peerpod/x"), &cc->files[1]);
    assert_null(caa_cloud_config_find(cc, "/run/peerpod/y"));
    caa_cloud_config_free(cc);
}

static void expect_reject(const char *doc, size_t len, int code, const char *needle)
{
    caa_cloud_config *cc = NULL;
    caa_error *err = NULL;
    int r = caa_cloud_config_parse(doc, len, &cc, &err);
    if (r != code)
        fail_msg("expected %d, got %d (%s) for:\n%.200s", code, r, err ? caa_error_msg(err) : "-", doc);
    assert_null(cc);
    assert_non_null(err);
    if (needle && !strstr(caa_error_msg(err), needle))
        fail_msg("message '%s' lacks '%s'", caa_error_msg(err), needle);
    caa_error_free(err);
}

#define REJECT(doc, needle) expect_reject((doc), strlen(doc), -EINVAL, (needle))

/* What upstream's adaptor sends and its Go decoder (yaml.UnmarshalStrict into
 * {Path, Content string}) accepts: a missing key is the empty string. The
 * first document is upstream's template (cloudconfig.go) rendered by hand
 * with the scratch-space marker, whose empty content the template leaves
 * out. */
static void test_parse_upstream_omitted_keys(void **state)
{
    (void)state;
    static const char doc[] = "#cloud-config\n"
                              "write_files:\n"
                              "  - path: /run/peerpod/apf.json\n"
                              "    content: |\n"
                              "      {\"pod-namespace\":\"default\",\"pod-name\":\"nginx\"}\n"
                              "  - path: /run/peerpod/scratch-space.marker\n"
                              "  - content: orphan\n";
    caa_cloud_config *cc = NULL;
    assert_int_equal(caa_cloud_config_parse(doc, strlen(doc), &cc, NULL), 0);
    assert_int_equal(cc->n_files, 3);
    assert_string_equal(cc->files[1].path, "/run/peerpod/scratch-space.marker");
    assert_int_equal(cc->files[1].content_len, 0);
    assert_string_equal(cc->files[1].content, "");
    assert_string_equal(cc->files[2].path, "");
    assert_string_equal(cc->files[2].content, "orphan");
    caa_cloud_config_free(cc);
}

static void test_parse_rejects(void **state)
{
    (void)state;
    REJECT("#cloud-config\nruncmd:\n- [rm, -rf, /]\n", "unknown top-level key 'runcmd'");
    REJECT("write_files: []\nusers: []\n", "unknown top-level key 'users'");
    REJECT("write_files:\n- path: /run/peerpod/apf.json\n  content: x\n  permissions: '0777'\n",
           "unknown key 'permissions'");
    REJECT("write_files:\n- path: /a\n  content: x\n  encoding: b64\n", "unknown key 'encoding'");
    REJECT("write_files:\n- path: /a\n  content: x\n  owner: root\n", "unknown key 'owner'");
    REJECT("write_files:\n- path: /a\n  path: /b\n  content: x\n", "duplicate key 'path'");
    REJECT("write_files:\n- path: /a\n  content: x\n  content: y\n", "duplicate key 'content'");
    REJECT("write_files: []\nwrite_files: []\n", "duplicate key 'write_files'");
    REJECT("write_files:\n- path: \"/run/a\\0/../../etc/x\"\n  content: x\n",
           "write_files path: NUL byte at offset 6");
    REJECT("write_files:\n- path: [a]\n  content: x\n", "'path' must be a string");
    REJECT("write_files:\n- path: /a\n  content: {a: b}\n", "'content' must be a string");
    REJECT("write_files: /run/peerpod/apf.json\n", "must be a list");
    REJECT("write_files: {path: /a}\n", "must be a list");
    REJECT("write_files:\n- /a\n", "must be mappings");
    REJECT("- write_files\n", "must be a mapping");
    REJECT("just text\n", "must be a mapping");
    REJECT("? [a]\n: b\n", "keys must be strings");
    REJECT("write_files:\n- path: &p /a\n  content: *p\n", "anchors");
    REJECT("write_files:\n- path: /a\n  content: *p\n", "aliases are not allowed");
    REJECT("write_files:\n- path: /a\n  content: !!binary aGVsbG8=\n", "tags");
    REJECT("write_files: !!seq []\n", "tags");
    REJECT("write_files: []\n---\nwrite_files: []\n", "more than one YAML document");
    REJECT("write_files:\n- path: /a\n  content: \"unterminated\n", "invalid YAML");
    REJECT("write_files: [\n", "invalid YAML");
    REJECT("write_files:\n\t- path: /a\n", "invalid YAML");
    expect_reject("write_files: []\n\0", 17, -EINVAL, "invalid YAML");

    /* More files than the limit. */
    _cleanup_free_ char *many = xstrdup("write_files:\n");
    for (int i = 0; i <= CAA_CLOUD_CONFIG_MAX_FILES; i++) {
        char *n = xasprintf("%s- path: /run/peerpod/f%d\n  content: x\n", many, i);
        free(many);
        many = n;
    }
    REJECT(many, "more than");
}

static void test_parse_size_limit(void **state)
{
    (void)state;
    /* A 10 MB document is refused before any parsing. */
    size_t big = 10 * 1000 * 1000;
    char *doc = xmalloc(big);
    memset(doc, '#', big);
    expect_reject(doc, big, -EFBIG, "more than");
    /* Exactly at the limit is parsed (a comment-only document). */
    expect_reject(doc, CAA_CLOUD_CONFIG_MAX_SIZE + 1, -EFBIG, NULL);
    caa_cloud_config *cc = NULL;
    assert_int_equal(caa_cloud_config_parse(doc, CAA_CLOUD_CONFIG_MAX_SIZE, &cc, NULL), 0);
    assert_int_equal(cc->n_files, 0);
    caa_cloud_config_free(cc);
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_emit_golden),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_emit_invalid_utf8),
        cmocka_unit_test(test_parse_accepts),
        cmocka_unit_test(test_parse_upstream_omitted_keys),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_parse_size_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
