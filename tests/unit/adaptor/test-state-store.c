/* state.json: round trip, atomic replacement, and every hostile-file case. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fs.h"
#include "state-store.h"
#include "strv.h"
#include "xalloc.h"
#include "test-tmpdir.h"

#define ID "4f1e2d3c4b5a69788796a5b4c3d2e1f04f1e2d3c4b5a69788796a5b4c3d2e1f0"

static char *tmpdir;

static int setup(void **state)
{
    (void)state;
    tmpdir = caa_test_tmpdir_new("state-test");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(caa_test_tmpdir_remove(tmpdir), 0);
    tmpdir = NULL;
    return 0;
}

static caa_pod_record sample(void)
{
    caa_pod_record r = {
        .sandbox_id = xstrdup(ID),
        .pod_name = xstrdup("nginx"),
        .pod_namespace = xstrdup("default"),
        .state = CAA_POD_READY,
        .instance_name = xstrdup("podvm-nginx-4f1e2d3c"),
        .idempotency_key = xstrdup("9b2f4c1e-8d7a-4e3b-a1c2-0f9e8d7c6b5a"),
        .instance_id = xstrdup("i-0123456789abcdef0"),
        .vni = 555001,
        .tls_dir = NULL,
        .netns_path = xstrdup("/var/run/netns/cni-1234"),
        .gpus = 3,
        .created_at = 1767225600, /* 2026-01-01T00:00:00Z */
        .updated_at = 1767225660,
    };
    caa_strv_push(&r.instance_ips, "198.18.0.2");
    caa_strv_push(&r.instance_ips, "fd00::2");
    return r;
}

static void test_round_trip(void **state)
{
    (void)state;
    caa_pod_record a = sample();
    char *json = caa_pod_record_to_json(&a);
    assert_non_null(strstr(json, "\"schema\": 1"));
    assert_non_null(strstr(json, "\"created_at\": \"2026-01-01T00:00:00Z\""));
    caa_pod_record b;
    caa_error *err = NULL;
    assert_int_equal(caa_pod_record_from_json(json, strlen(json), ID, &b, &err), 0);
    assert_string_equal(b.sandbox_id, a.sandbox_id);
    assert_string_equal(b.pod_name, a.pod_name);
    assert_string_equal(b.pod_namespace, a.pod_namespace);
    assert_int_equal(b.state, a.state);
    assert_string_equal(b.instance_name, a.instance_name);
    assert_string_equal(b.idempotency_key, a.idempotency_key);
    assert_string_equal(b.instance_id, a.instance_id);
    assert_string_equal(b.instance_ips[0], "198.18.0.2");
    assert_string_equal(b.instance_ips[1], "fd00::2");
    assert_null(b.instance_ips[2]);
    assert_int_equal(b.vni, 555001);
    assert_null(b.tls_dir);
    assert_string_equal(b.netns_path, "/var/run/netns/cni-1234");
    assert_int_equal(b.gpus, 3);
    assert_int_equal(b.created_at, a.created_at);
    assert_int_equal(b.updated_at, a.updated_at);
    caa_pod_record_done(&b);

    /* No instance yet: null id, empty IP list. */
    free(a.instance_id);
    a.instance_id = NULL;
    caa_strv_free(a.instance_ips);
    a.instance_ips = NULL;
    a.state = CAA_POD_CREATED;
    free(json);
    json = caa_pod_record_to_json(&a);
    assert_non_null(strstr(json, "\"instance_id\": null"));
    assert_int_equal(caa_pod_record_from_json(json, strlen(json), NULL, &b, NULL), 0);
    assert_null(b.instance_id);
    assert_null(b.instance_ips);
    assert_int_equal(b.state, CAA_POD_CREATED);
    caa_pod_record_done(&b);
    free(json);
    caa_pod_record_done(&a);
}

static void test_every_state_round_trips(void **state)
{
    (void)state;
    for (int s = 0; s < CAA_POD_STATE_COUNT; s++) {
        caa_pod_record a = sample();
        a.state = (caa_pod_state)s;
        char *json = caa_pod_record_to_json(&a);
        caa_pod_record b;
        assert_int_equal(caa_pod_record_from_json(json, strlen(json), ID, &b, NULL), 0);
        assert_int_equal(b.state, s);
        caa_pod_record_done(&b);
        caa_pod_record_done(&a);
        free(json);
    }
}

static char *pod_dir(const char *name)
{
    char *d = xasprintf("%s/%s", tmpdir, name);
    mkdir(d, 0700);
    return d;
}

static void test_save_load_atomic(void **state)
{
    (void)state;
    char *dir = pod_dir(ID);
    caa_pod_record a = sample();
    assert_int_equal(caa_pod_record_save(dir, &a, NULL), 0);
    char *path = xasprintf("%s/state.json", dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* A reader that opened the old file keeps reading the whole old document:
     * the save replaces the file by rename, it never rewrites it in place. */
    int old_fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(old_fd >= 0);
    a.state = CAA_POD_STOPPING;
    assert_int_equal(caa_pod_record_save(dir, &a, NULL), 0);
    char buf[CAA_STATE_FILE_MAX];
    ssize_t n = read(old_fd, buf, sizeof(buf) - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    close(old_fd);
    caa_pod_record old;
    assert_int_equal(caa_pod_record_from_json(buf, (size_t)n, ID, &old, NULL), 0);
    assert_int_equal(old.state, CAA_POD_READY);
    caa_pod_record_done(&old);

    caa_pod_record b;
    caa_error *err = NULL;
    assert_int_equal(caa_pod_record_load(tmpdir, ID, &b, &err), 0);
    assert_int_equal(b.state, CAA_POD_STOPPING);
    caa_pod_record_done(&b);

    /* No temporary files are left behind. */
    int entries = 0;
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            entries++;
    closedir(d);
    assert_int_equal(entries, 1);

    /* Saving into a missing directory fails and says where. */
    char *missing = xasprintf("%s/missing", tmpdir);
    err = NULL;
    assert_true(caa_pod_record_save(missing, &a, &err) < 0);
    assert_non_null(strstr(err->msg, "missing"));
    caa_error_free(err);

    free(missing);
    free(path);
    free(dir);
    caa_pod_record_done(&a);
}

/* ---------------------------------------------------------------- hostile files */

static void write_state(const char *name, const char *content)
{
    char *dir = pod_dir(name);
    char *path = xasprintf("%s/state.json", dir);
    FILE *f = fopen(path, "we");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
    free(path);
    free(dir);
}

/* A valid document with one field replaced (key -> raw JSON value), or removed (value NULL). */
static char *doc_with(const char *id, const char *key, const char *raw)
{
    static const char *const keys[] = {
        "schema",        "sandbox_id",      "pod_name",    "pod_namespace", "state",
        "instance_name", "idempotency_key", "instance_id", "instance_ips",  "vni",
        "tls_dir",       "created_at",      "updated_at",  "netns_path",    "gpus"};
    char *vals[15];
    vals[0] = xstrdup("1");
    vals[1] = xasprintf("\"%s\"", id);
    vals[2] = xstrdup("\"p\"");
    vals[3] = xstrdup("\"ns\"");
    vals[4] = xstrdup("\"ready\"");
    vals[5] = xstrdup("\"podvm-p-abc\"");
    vals[6] = xstrdup("\"0a1b2c3d-0000-4000-8000-000000000000\"");
    vals[7] = xstrdup("\"i-1\"");
    vals[8] = xstrdup("[\"198.18.0.2\"]");
    vals[9] = xstrdup("0");
    vals[10] = xstrdup("null");
    vals[11] = xstrdup("\"2026-01-01T00:00:00Z\"");
    vals[12] = xstrdup("\"2026-01-01T00:00:00Z\"");
    vals[13] = xstrdup("\"/run/netns/cni-1\"");
    vals[14] = xstrdup("2");
    char *out = xstrdup("{");
    for (size_t i = 0; i < 15; i++) {
        const char *v = vals[i];
        if (key && strcmp(key, keys[i]) == 0) {
            if (!raw)
                continue;
            v = raw;
        }
        char *next = xasprintf("%s%s\"%s\": %s", out, strlen(out) > 1 ? ", " : "", keys[i], v);
        free(out);
        out = next;
    }
    char *next = xasprintf("%s}", out);
    free(out);
    for (size_t i = 0; i < 15; i++)
        free(vals[i]);
    return next;
}

typedef struct scan_result {
    int ok;
    int rejected;
    char *last_error;
    char *last_ok;
} scan_result;

static void on_scan(const char *name, caa_pod_record *rec, const caa_error *err, void *opaque)
{
    scan_result *r = opaque;
    if (rec) {
        r->ok++;
        free(r->last_ok);
        r->last_ok = xstrdup(name);
    } else {
        r->rejected++;
        free(r->last_error);
        r->last_error = xstrdup(err->msg);
    }
}

/* Writes one pod dir with content and expects the scan to reject it with a message containing needle. */
static void expect_rejected(const char *name, const char *content, const char *needle)
{
    assert_int_equal(caa_rm_rf(tmpdir, NULL), 0);
    assert_int_equal(mkdir(tmpdir, 0700), 0);
    write_state(name, content);
    scan_result r = {0};
    assert_int_equal(caa_state_store_scan(tmpdir, on_scan, &r, NULL), 0);
    if (r.rejected != 1 || r.ok != 0)
        fail_msg("content %.60s: expected a rejection, got ok=%d rejected=%d", content, r.ok, r.rejected);
    if (!strstr(r.last_error, needle))
        fail_msg("error \"%s\" does not mention \"%s\"", r.last_error, needle);
    free(r.last_error);
    free(r.last_ok);
}

static void expect_field_rejected(const char *key, const char *raw, const char *needle)
{
    char *doc = doc_with("sb1", key, raw);
    expect_rejected("sb1", doc, needle);
    free(doc);
}

static void test_valid_doc_accepted(void **state)
{
    (void)state;
    char *doc = doc_with("sb1", NULL, NULL);
    write_state("sb1", doc);
    scan_result r = {0};
    assert_int_equal(caa_state_store_scan(tmpdir, on_scan, &r, NULL), 0);
    assert_int_equal(r.ok, 1);
    assert_int_equal(r.rejected, 0);
    assert_string_equal(r.last_ok, "sb1");
    free(r.last_ok);
    free(doc);
}

/* netns_path and gpus came after the first files: absent or null is accepted. */
static void test_optional_fields(void **state)
{
    (void)state;
    const char *variants[][2] = {{"netns_path", NULL}, {"netns_path", "null"}, {"gpus", NULL}};
    for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        char *doc = doc_with("sb1", variants[i][0], variants[i][1]);
        caa_pod_record rec;
        caa_error *err = NULL;
        if (caa_pod_record_from_json(doc, strlen(doc), "sb1", &rec, &err) < 0)
            fail_msg("%s=%s: %s", variants[i][0], variants[i][1] ? variants[i][1] : "(absent)", err->msg);
        if (strcmp(variants[i][0], "gpus") == 0) {
            assert_int_equal(rec.gpus, 0);
            assert_string_equal(rec.netns_path, "/run/netns/cni-1");
        } else {
            assert_null(rec.netns_path);
            assert_int_equal(rec.gpus, 2);
        }
        caa_pod_record_done(&rec);
        free(doc);
    }
}

/* The daemon's TLS directory lives in the pods dir but is not a pod. */
static void test_tls_dir_skipped(void **state)
{
    (void)state;
    char *tls = xasprintf("%s/.tls", tmpdir);
    assert_int_equal(mkdir(tls, 0700), 0);
    char *doc = doc_with("sb1", NULL, NULL);
    write_state("sb1", doc);
    scan_result r = {0};
    assert_int_equal(caa_state_store_scan(tmpdir, on_scan, &r, NULL), 0);
    assert_int_equal(r.ok, 1);
    assert_int_equal(r.rejected, 0);
    free(r.last_ok);
    caa_pod_record rec;
    caa_error *err = NULL;
    assert_int_equal(caa_pod_record_load(tmpdir, ".tls", &rec, &err), -EINVAL);
    assert_non_null(strstr(err->msg, "reserved"));
    caa_error_free(err);
    free(doc);
    free(tls);
}

static void test_bad_json(void **state)
{
    (void)state;
    expect_rejected("sb1", "{\"schema\": 1, ", "not valid JSON");
    expect_rejected("sb1", "", "not valid JSON");
    expect_rejected("sb1", "\x00\x01garbage", "not valid JSON");
    expect_rejected("sb1", "[1, 2]", "not a JSON object");
    expect_rejected("sb1", "\"string\"", "not valid JSON");
    expect_rejected("sb1", "{\"schema\": 1, \"schema\": 1}", "not valid JSON"); /* duplicate key */
    expect_rejected("sb1", "\xff\xfe{}", "not valid JSON");                     /* not UTF-8 */
}

static void test_wrong_types(void **state)
{
    (void)state;
    expect_field_rejected("schema", "\"1\"", "schema");
    expect_field_rejected("schema", "2", "unsupported schema");
    expect_field_rejected("schema", NULL, "schema");
    expect_field_rejected("sandbox_id", "42", "sandbox_id");
    expect_field_rejected("pod_name", "null", "pod_name");
    expect_field_rejected("pod_name", "\"\"", "pod_name");
    expect_field_rejected("pod_namespace", "[]", "pod_namespace");
    expect_field_rejected("state", "3", "state");
    expect_field_rejected("instance_name", "\"Bad_Name\"", "instance_name");
    expect_field_rejected("idempotency_key", "{}", "idempotency_key");
    expect_field_rejected("idempotency_key", "\"../../etc\"", "idempotency_key");
    expect_field_rejected("instance_id", "7", "instance_id");
    expect_field_rejected("instance_id", "\"a\\u0000b\"", "not valid JSON"); /* NUL refused by the parser */
    expect_field_rejected("instance_id", "\"a\\nb\"", "control characters");
    expect_field_rejected("instance_ips", "\"198.18.0.2\"", "instance_ips");
    expect_field_rejected("instance_ips", "[\"not-an-ip\"]", "instance_ips");
    expect_field_rejected("instance_ips", "[7]", "instance_ips");
    expect_field_rejected(
        "instance_ips",
        "[\"1.1.1.1\",\"1.1.1.1\",\"1.1.1.1\",\"1.1.1.1\",\"1.1.1.1\",\"1.1.1.1\",\"1.1.1.1\","
        "\"1.1.1.1\",\"1.1.1.1\",\"1.1.1.1\",\"1.1.1.1\",\"1.1.1.1\",\"1.1.1.1\",\"1.1.1.1\","
        "\"1.1.1.1\",\"1.1.1.1\",\"1.1.1.1\"]",
        "more than");
    expect_field_rejected("vni", "-1", "vni");
    expect_field_rejected("vni", "16777216", "vni");
    expect_field_rejected("vni", "1.5", "vni");
    expect_field_rejected("tls_dir", "false", "tls_dir");
    expect_field_rejected("netns_path", "5", "netns_path");
    expect_field_rejected("netns_path", "\"relative/ns\"", "absolute");
    expect_field_rejected("netns_path", "\"\"", "netns_path");
    expect_field_rejected("gpus", "-1", "gpus");
    expect_field_rejected("gpus", "1025", "gpus");
    expect_field_rejected("gpus", "\"2\"", "gpus");
    expect_field_rejected("created_at", "1767225600", "created_at");
    expect_field_rejected("updated_at", "\"yesterday\"", "updated_at");
}

static void test_unknown_state(void **state)
{
    (void)state;
    expect_field_rejected("state", "\"hibernating\"", "unknown state");
    expect_field_rejected("state", "\"\"", "state");
}

static void test_id_mismatch(void **state)
{
    (void)state;
    char *doc = doc_with("other-id", NULL, NULL);
    expect_rejected("sb1", doc, "does not match");
    free(doc);
    doc = doc_with("../evil", NULL, NULL);
    expect_rejected("sb1", doc, "sandbox_id");
    free(doc);
}

static void test_huge_file(void **state)
{
    (void)state;
    size_t n = CAA_STATE_FILE_MAX + 10;
    char *big = xmalloc(n + 1);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    big[n] = '\0';
    expect_rejected("sb1", big, "larger than");
    free(big);
}

static void test_symlinks(void **state)
{
    (void)state;
    /* state.json is a symlink to a valid document elsewhere. */
    char *doc = doc_with("sb1", NULL, NULL);
    char *target = xasprintf("%s-target.json", tmpdir);
    FILE *f = fopen(target, "we");
    fputs(doc, f);
    fclose(f);
    char *dir = pod_dir("sb1");
    char *link = xasprintf("%s/state.json", dir);
    assert_int_equal(symlink(target, link), 0);
    scan_result r = {0};
    assert_int_equal(caa_state_store_scan(tmpdir, on_scan, &r, NULL), 0);
    assert_int_equal(r.ok, 0);
    assert_int_equal(r.rejected, 1);
    assert_non_null(strstr(r.last_error, "symlink"));
    free(r.last_error);
    r.last_error = NULL;

    /* The pod directory itself is a symlink to a directory with a valid state. */
    assert_int_equal(caa_rm_rf(tmpdir, NULL), 0);
    assert_int_equal(mkdir(tmpdir, 0700), 0);
    char *real = xasprintf("%s-real", tmpdir);
    mkdir(real, 0700);
    char *real_state = xasprintf("%s/state.json", real);
    f = fopen(real_state, "we");
    fputs(doc, f);
    fclose(f);
    char *dlink = xasprintf("%s/sb1", tmpdir);
    assert_int_equal(symlink(real, dlink), 0);
    r = (scan_result){0};
    assert_int_equal(caa_state_store_scan(tmpdir, on_scan, &r, NULL), 0);
    assert_int_equal(r.ok, 0);
    assert_int_equal(r.rejected, 1);
    assert_non_null(strstr(r.last_error, "symlink"));
    free(r.last_error);

    caa_rm_rf(real, NULL);
    unlink(target);
    free(dlink);
    free(real_state);
    free(real);
    free(link);
    free(dir);
    free(target);
    free(doc);
}

static void test_odd_entries(void **state)
{
    (void)state;
    scan_result r = {0};
    /* Not a directory. */
    char *file = xasprintf("%s/stray-file", tmpdir);
    FILE *f = fopen(file, "we");
    fclose(f);
    /* A directory whose name is not a sandbox id. */
    char *badname = xasprintf("%s/bad name", tmpdir);
    mkdir(badname, 0700);
    /* A directory without state. */
    char *empty = pod_dir("sb-empty");
    /* A FIFO as state file: must not block. */
    char *fifo_dir = pod_dir("sb-fifo");
    char *fifo = xasprintf("%s/state.json", fifo_dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    /* A directory as state file. */
    char *dir_dir = pod_dir("sb-dir");
    char *dir_state = xasprintf("%s/state.json", dir_dir);
    mkdir(dir_state, 0700);

    assert_int_equal(caa_state_store_scan(tmpdir, on_scan, &r, NULL), 0);
    assert_int_equal(r.ok, 0);
    assert_int_equal(r.rejected, 5);
    free(r.last_error);

    caa_pod_record rec;
    caa_error *err = NULL;
    assert_int_equal(caa_pod_record_load(tmpdir, "sb-empty", &rec, &err), -ENOENT);
    caa_error_free(err);
    err = NULL;
    assert_int_equal(caa_pod_record_load(tmpdir, "..", &rec, &err), -EINVAL);
    caa_error_free(err);

    /* A missing pods dir is an empty scan. */
    char *missing = xasprintf("%s/nope", tmpdir);
    r = (scan_result){0};
    assert_int_equal(caa_state_store_scan(missing, on_scan, &r, NULL), 0);
    assert_int_equal(r.ok + r.rejected, 0);

    free(missing);
    free(dir_state);
    free(dir_dir);
    free(fifo);
    free(fifo_dir);
    free(empty);
    free(badname);
    free(file);
}

static void test_timestamps(void **state)
{
    (void)state;
    char buf[32];
    caa_format_timestamp(0, buf);
    assert_string_equal(buf, "1970-01-01T00:00:00Z");
    time_t t;
    assert_int_equal(caa_parse_timestamp("2026-08-30T12:34:56Z", &t), 0);
    caa_format_timestamp(t, buf);
    assert_string_equal(buf, "2026-08-30T12:34:56Z");
    assert_int_equal(caa_parse_timestamp("2026-08-30 12:34:56", &t), -EINVAL);
    assert_int_equal(caa_parse_timestamp("2026-08-30T12:34:56Zjunk", &t), -EINVAL);
}

static void touch(const char *dir, const char *name)
{
    _cleanup_free_ char *p = xasprintf("%s/%s", dir, name);
    assert_int_equal(caa_write_file_atomic(p, "x", 1, 0600, NULL), 0);
}

/* What a SIGKILL during CreateVM leaves (nothing, apf.json, temporary files)
 * is removed; anything else, or a state file, is left alone. */
static void test_remove_leftover(void **state)
{
    (void)state;
    _cleanup_free_ char *empty = pod_dir("empty");
    char *held = NULL;
    assert_int_equal(caa_state_store_remove_leftover(tmpdir, "empty", &held, NULL), 1);
    assert_string_equal(held, "nothing");
    free(held);
    assert_int_equal(access(empty, F_OK), -1);

    _cleanup_free_ char *half = pod_dir("half");
    touch(half, "apf.json");
    touch(half, "apf.json.tmp.Ab12Cd");
    touch(half, "state.json.tmp.XyZ123");
    assert_int_equal(caa_state_store_remove_leftover(tmpdir, "half", NULL, NULL), 1);
    assert_int_equal(access(half, F_OK), -1);

    /* Everything CreateVM writes before the state: boot data, the
     * secure-comms public host key, the saved start request. */
    _cleanup_free_ char *late = pod_dir("late");
    touch(late, "apf.json");
    touch(late, "sc-host-key.pub");
    touch(late, "start-request.json");
    touch(late, "start-request.json.tmp.Qw12Er");
    assert_int_equal(caa_state_store_remove_leftover(tmpdir, "late", NULL, NULL), 1);
    assert_int_equal(access(late, F_OK), -1);

    _cleanup_free_ char *with_state = pod_dir("with-state");
    touch(with_state, "apf.json");
    touch(with_state, "state.json");
    assert_int_equal(caa_state_store_remove_leftover(tmpdir, "with-state", NULL, NULL), 0);
    _cleanup_free_ char *other = pod_dir("other");
    touch(other, "agent.ttrpc");
    touch(other, "start-request.jsonx");
    assert_int_equal(caa_state_store_remove_leftover(tmpdir, "other", NULL, NULL), 0);
    _cleanup_free_ char *link = pod_dir("link");
    _cleanup_free_ char *link_apf = xasprintf("%s/apf.json", link);
    assert_int_equal(symlink(with_state, link_apf), 0);
    assert_int_equal(caa_state_store_remove_leftover(tmpdir, "link", NULL, NULL), 0);
    _cleanup_free_ char *sub = pod_dir("sub");
    _cleanup_free_ char *sub_dir = xasprintf("%s/apf.json", sub);
    assert_int_equal(mkdir(sub_dir, 0700), 0);
    assert_int_equal(caa_state_store_remove_leftover(tmpdir, "sub", NULL, NULL), 0);
    _cleanup_free_ char *dir_link = xasprintf("%s/dirlink", tmpdir);
    _cleanup_free_ char *outside = pod_dir("outside");
    assert_int_equal(symlink(outside, dir_link), 0);
    assert_int_equal(caa_state_store_remove_leftover(tmpdir, "dirlink", NULL, NULL), 0);
    assert_int_equal(access(outside, F_OK), 0);
    assert_int_equal(caa_state_store_remove_leftover(tmpdir, "missing", NULL, NULL), 0);
    assert_int_equal(caa_state_store_remove_leftover(tmpdir, "..", NULL, NULL), 0);
    for (const char *const *k = (const char *const[]){with_state, other, link, sub, NULL}; *k; k++)
        assert_int_equal(access(*k, F_OK), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_every_state_round_trips),
        cmocka_unit_test_setup_teardown(test_save_load_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_valid_doc_accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_json, setup, teardown),
        cmocka_unit_test(test_optional_fields),
        cmocka_unit_test_setup_teardown(test_tls_dir_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_id_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huge_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlinks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_odd_entries, setup, teardown),
        cmocka_unit_test(test_timestamps),
        cmocka_unit_test_setup_teardown(test_remove_leftover, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
