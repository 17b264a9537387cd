/* process-user-data's validate-then-write step (agent-protocol/process-user-data/provision.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "cloud-config.h"
#include "fs.h"
#include "initdata.h"
#include "provision.h"
#include "xalloc.h"
#include "test-tmpdir.h"

static char *tmpdir;
static char *outdir;

static int setup(void **state)
{
    (void)state;
    tmpdir = caa_test_tmpdir_new("test-provision");
    outdir = xasprintf("%s/run/peerpod", tmpdir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(caa_test_tmpdir_remove(tmpdir), 0);
    free(outdir);
    return 0;
}

static const char toml[] = "algorithm = \"sha384\"\nversion = \"0.1.0\"\n\n[data]\n"
                           "\"aa.toml\" = '''\n[token_configs.kbs]\nurl = \"http://198.18.0.1:8080\"\n'''\n"
                           "\"cdh.toml\" = '''\n[kbc]\nname = \"cc_kbc\"\n'''\n"
                           "\"policy.rego\" = '''\npackage agent_policy\n'''\n"
                           "\"other.conf\" = 'ignored'\n";

/* Builds a cloud-config from (path, content) pairs. */
static char *doc_of(const char *const *pairs, size_t *len)
{
    _cleanup_cloud_config_ caa_cloud_config *cc = caa_cloud_config_new();
    for (size_t i = 0; pairs[i]; i += 2)
        caa_cloud_config_add(cc, pairs[i], pairs[i + 1], strlen(pairs[i + 1]));
    char *text = NULL;
    assert_int_equal(caa_cloud_config_emit(cc, &text, len, NULL), 0);
    return text;
}

static char *read_out(const char *name, size_t *len, mode_t *mode)
{
    _cleanup_free_ char *path = xasprintf("%s/%s", outdir, name);
    struct stat st;
    if (lstat(path, &st) < 0)
        fail_msg("%s missing", path);
    assert_true(S_ISREG(st.st_mode));
    if (mode)
        *mode = st.st_mode & 07777;
    char *data = NULL;
    assert_int_equal(caa_read_file(path, 1 << 20, 1, &data, len, NULL), 0);
    return data;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    return n;
}

static int provision(const char *doc, size_t len, caa_error **err)
{
    _cleanup_pud_plan_ caa_pud_plan *plan = NULL;
    int r = caa_pud_plan_build(doc, len, &plan, err);
    if (r < 0)
        return r;
    return caa_pud_plan_write(plan, outdir, err);
}

static void test_full(void **state)
{
    (void)state;
    _cleanup_free_ char *enc = caa_initdata_encode(toml, strlen(toml), NULL);
    const char *pairs[] = {"/run/peerpod/apf.json",
                           "{\"pod-name\":\"nginx\"}",
                           "/run/peerpod/auth.json",
                           "{\"auths\":{}}",
                           "/run/peerpod/initdata",
                           enc,
                           "/run/peerpod/scratch-space.marker",
                           "",
                           NULL};
    size_t len;
    _cleanup_free_ char *doc = doc_of(pairs, &len);
    caa_error *err = NULL;
    if (provision(doc, len, &err) < 0)
        fail_msg("%s", caa_error_msg(err));

    size_t n;
    mode_t mode;
    _cleanup_free_ char *apf = read_out("apf.json", &n, &mode);
    assert_string_equal(apf, "{\"pod-name\":\"nginx\"}");
    assert_int_equal(mode, 0600);
    _cleanup_free_ char *auth = read_out("auth.json", &n, &mode);
    assert_int_equal(mode, 0600);
    _cleanup_free_ char *init = read_out("initdata", &n, &mode);
    assert_string_equal(init, enc);
    assert_int_equal(mode, 0644);
    _cleanup_free_ char *aa = read_out("aa.toml", &n, &mode);
    assert_string_equal(aa, "[token_configs.kbs]\nurl = \"http://198.18.0.1:8080\"\n");
    assert_int_equal(mode, 0644);
    _cleanup_free_ char *cdh = read_out("cdh.toml", &n, NULL);
    assert_string_equal(cdh, "[kbc]\nname = \"cc_kbc\"\n");
    _cleanup_free_ char *rego = read_out("policy.rego", &n, NULL);
    assert_string_equal(rego, "package agent_policy\n");
    _cleanup_free_ char *marker = read_out("scratch-space.marker", &n, NULL);
    assert_int_equal(n, 0);
    _cleanup_free_ char *digest = read_out("initdata.digest", &n, NULL);
    _cleanup_free_ char *want = caa_initdata_digest(CAA_INITDATA_SHA384, toml, strlen(toml));
    assert_int_equal(n, 96);
    assert_string_equal(digest, want);
    /* other.conf is not on the list; no temporary files left */
    assert_int_equal(count_entries(outdir), 8);

    struct stat st;
    assert_int_equal(stat(outdir, &st), 0);
    mode_t um = umask(0);
    umask(um);
    assert_int_equal(st.st_mode & 0777, 0755 & ~um);

    /* Running again replaces the files (a reboot with the same ISO). */
    assert_int_equal(provision(doc, len, NULL), 0);
    assert_int_equal(count_entries(outdir), 8);
}

static void test_no_initdata_default(void **state)
{
    (void)state;
    const char *pairs[] = {"/run/peerpod/apf.json", "{}", NULL};
    size_t len;
    _cleanup_free_ char *doc = doc_of(pairs, &len);
    _cleanup_pud_plan_ caa_pud_plan *plan = NULL;
    assert_int_equal(caa_pud_plan_build(doc, len, &plan, NULL), 0);
    assert_false(plan->has_initdata);
    assert_int_equal(caa_pud_plan_write(plan, outdir, NULL), 0);
    size_t n;
    _cleanup_free_ char *aa = read_out("aa.toml", &n, NULL);
    assert_int_equal(n, 0);
    _cleanup_free_ char *digest = read_out("initdata.digest", &n, NULL);
    assert_string_equal(digest, "c0208fd1fb0315723e581bbbc1c57c03236f0cfb8215d8ea6578f6359bd5245b");
    _cleanup_free_ char *initdata = xasprintf("%s/initdata", outdir);
    assert_int_equal(access(initdata, F_OK), -1);
    /* aa.toml is written last: attestation-agent starts when it appears */
    assert_string_equal(plan->files[plan->n_files - 1].name, "aa.toml");
    assert_int_equal(count_entries(outdir), 3);
}

static void test_direct_files_without_initdata(void **state)
{
    (void)state;
    const char *pairs[] = {"/run/peerpod/apf.json", "{}", "/run/peerpod/aa.toml", "direct = true\n", NULL};
    size_t len;
    _cleanup_free_ char *doc = doc_of(pairs, &len);
    assert_int_equal(provision(doc, len, NULL), 0);
    size_t n;
    _cleanup_free_ char *aa = read_out("aa.toml", &n, NULL);
    assert_string_equal(aa, "direct = true\n");
}

static void expect_rejected(const char *doc, size_t len, const char *needle)
{
    caa_error *err = NULL;
    int r = provision(doc, len, &err);
    if (r >= 0)
        fail_msg("accepted:\n%s", doc);
    if (needle && !strstr(caa_error_msg(err), needle))
        fail_msg("message '%s' lacks '%s'", caa_error_msg(err), needle);
    caa_error_free(err);
    /* hostile or broken user-data writes nothing, not even the directory */
    assert_int_equal(count_entries(outdir), 0);
}

static void reject_pairs(const char *const *pairs, const char *needle)
{
    size_t len;
    _cleanup_free_ char *doc = doc_of(pairs, &len);
    expect_rejected(doc, len, needle);
}

static void test_hostile(void **state)
{
    (void)state;
    /* paths: traversal, outside the list, relative, near misses */
    static const char *const bad_paths[] = {
        "/run/peerpod/../../etc/passwd", "/etc/passwd",          "/run/peerpod/apf.json/../x",
        "/run/peerpod//apf.json",        "run/peerpod/apf.json", "/run/peerpod/./apf.json",
        "/run/peerpod/initdata.digest",  "/run/peerpod/",        "/run/peerpod/apf.json ",
        "/run/peerpod/sub/apf.json",     "../apf.json",          "/root/.ssh/authorized_keys",
    };
    for (size_t i = 0; i < sizeof(bad_paths) / sizeof(bad_paths[0]); i++) {
        const char *pairs[] = {"/run/peerpod/apf.json", "{}", bad_paths[i], "owned", NULL};
        reject_pairs(pairs, "is not allowed");
    }
    const char *dup[] = {"/run/peerpod/apf.json", "{}", "/run/peerpod/apf.json", "{}", NULL};
    reject_pairs(dup, "more than once");

    /* initdata that does not decode or parse */
    const char *b64[] = {"/run/peerpod/apf.json", "{}", "/run/peerpod/initdata", "not*base64", NULL};
    reject_pairs(b64, "invalid base64");
    const char *gz[] = {"/run/peerpod/apf.json", "{}", "/run/peerpod/initdata", "aGVsbG8gd29ybGQ=", NULL};
    reject_pairs(gz, "gzip");
    static const char *const bad_toml[] = {
        "algorithm = \"sha256\"\nversion = \"0.1.0\"\nalgorithm = \"sha256\"\n",
        "algorithm = \"sha1\"\nversion = \"0.1.0\"\n",
        "algorithm = \"sha256\"\nversion = \"0.1.0\"\n[data]\n\"aa.toml\" = '''unterminated\n",
        "algorithm = \"sha256\"\nversion = \"0.1.0\"\n[data]\n\"aa.toml\" = 42\n",
    };
    for (size_t i = 0; i < sizeof(bad_toml) / sizeof(bad_toml[0]); i++) {
        _cleanup_free_ char *enc = caa_initdata_encode(bad_toml[i], strlen(bad_toml[i]), NULL);
        const char *pairs[] = {"/run/peerpod/apf.json", "{}", "/run/peerpod/initdata", enc, NULL};
        reject_pairs(pairs, "initdata");
    }
    /* a file both directly and through initdata */
    _cleanup_free_ char *enc = caa_initdata_encode(toml, strlen(toml), NULL);
    const char *both[] = {"/run/peerpod/initdata", enc, "/run/peerpod/cdh.toml", "x", NULL};
    reject_pairs(both, "cdh.toml directly and also initdata");

    /* documents the strict parser refuses */
    static const char *const bad_docs[] = {
        "#cloud-config\nwrite_files:\n- path: /run/peerpod/apf.json\n  content: '{}'\nruncmd: [reboot]\n",
        "#cloud-config\nwrite_files:\n- path: /run/peerpod/apf.json\n  content: '{}'\n  permissions: "
        "'4755'\n",
        "#cloud-config\nwrite_files:\n- path: /run/peerpod/apf.json\n  content: !!binary e30=\n",
    };
    for (size_t i = 0; i < sizeof(bad_docs) / sizeof(bad_docs[0]); i++)
        expect_rejected(bad_docs[i], strlen(bad_docs[i]), "cloud-config");
    size_t big = 10 * 1000 * 1000;
    char *huge = xmalloc(big);
    memset(huge, '#', big);
    expect_rejected(huge, big, "more than");
    free(huge);
}

static void test_symlink_destination(void **state)
{
    (void)state;
    assert_int_equal(caa_mkdir_p(outdir, 0755, NULL), 0);
    _cleanup_free_ char *target = xasprintf("%s/victim", tmpdir);
    assert_int_equal(caa_write_file_atomic(target, "keep", 4, 0644, NULL), 0);
    _cleanup_free_ char *link = xasprintf("%s/auth.json", outdir);
    assert_int_equal(symlink(target, link), 0);

    const char *pairs[] = {"/run/peerpod/apf.json", "{}", "/run/peerpod/auth.json", "{\"auths\":{}}", NULL};
    size_t len;
    _cleanup_free_ char *doc = doc_of(pairs, &len);
    caa_error *err = NULL;
    assert_int_equal(provision(doc, len, &err), -EPERM);
    assert_non_null(strstr(caa_error_msg(err), "refusing to replace symlink"));
    caa_error_free(err);
    /* nothing written: apf.json comes first in write order but checks run before */
    assert_int_equal(count_entries(outdir), 1);
    size_t n;
    _cleanup_free_ char *victim = NULL;
    assert_int_equal(caa_read_file(target, 100, 1, &victim, &n, NULL), 0);
    assert_string_equal(victim, "keep");
    assert_int_equal(unlink(link), 0);

    /* a directory squatting on a destination name */
    _cleanup_free_ char *squat = xasprintf("%s/apf.json", outdir);
    assert_int_equal(mkdir(squat, 0755), 0);
    err = NULL;
    assert_int_equal(provision(doc, len, &err), -EPERM);
    assert_non_null(strstr(caa_error_msg(err), "not a regular file"));
    caa_error_free(err);
    assert_int_equal(rmdir(squat), 0);

    /* the output directory itself must not be a symlink */
    assert_int_equal(caa_rm_rf(outdir, NULL), 0);
    _cleanup_free_ char *real = xasprintf("%s/elsewhere", tmpdir);
    assert_int_equal(mkdir(real, 0755), 0);
    assert_int_equal(symlink(real, outdir), 0);
    err = NULL;
    assert_true(provision(doc, len, &err) < 0);
    caa_error_free(err);
    assert_int_equal(count_entries(real), 0);
    assert_int_equal(unlink(outdir), 0);
}

static int clean_out(void **state)
{
    (void)state;
    assert_int_equal(caa_rm_rf(outdir, NULL), 0);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_full, clean_out),
        cmocka_unit_test_teardown(test_no_initdata_default, clean_out),
        cmocka_unit_test_teardown(test_direct_files_without_initdata, clean_out),
        cmocka_unit_test_teardown(test_hostile, clean_out),
        cmocka_unit_test_teardown(test_symlink_destination, clean_out),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
