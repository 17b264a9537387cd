/* Unit tests of peerpod-ctrl's building blocks: PeerPod classification and
 * finalizer release, the owner index of superseded PeerPods, Lease leader election (two electors sharing one
 * Lease as two replicas would), watch stream decoding (cmocka, TAP). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "lease-election.h"
#include "peerpod-owners.h"
#include "peerpod-reconcile.h"
#include "watch-stream.h"

static json_t *peerpod(const char *deletion, const char *finalizers_json, const char *instance)
{
    json_t *o = json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s}, s:{s:s}}", "apiVersion",
                          "confidentialcontainers.org/v1alpha1", "kind", "PeerPod", "metadata", "name",
                          "web-resource-abcde", "namespace", "default", "uid", "u-1", "resourceVersion", "42",
                          "creationTimestamp", "2026-12-07T10:00:00Z", "spec", "cloudProvider", "aws");
    json_t *md = json_object_get(o, "metadata");
    if (deletion)
        json_object_set_new(md, "deletionTimestamp", json_string(deletion));
    if (finalizers_json)
        json_object_set_new(md, "finalizers", json_loads(finalizers_json, JSON_DECODE_ANY, NULL));
    if (instance)
        json_object_set_new(json_object_get(o, "spec"), "instanceID", json_string(instance));
    return o;
}

static caa_peerpod_action classify(json_t *o)
{
    caa_peerpod_action a = 99;
    caa_peerpod_ref ref;
    caa_error *err = NULL;
    if (caa_peerpod_classify(o, &a, &ref, &err) < 0)
        fail_msg("%s", caa_error_msg(err));
    caa_peerpod_ref_done(&ref);
    json_decref(o);
    return a;
}

static void test_classify(void **state)
{
    (void)state;
    assert_int_equal(classify(peerpod(NULL, "[\"peer.pod/finalizer\"]", "i-1")), CAA_PEERPOD_KEEP);
    assert_int_equal(classify(peerpod("2026-12-07T11:00:00Z", "[\"other\"]", "i-1")), CAA_PEERPOD_KEEP);
    assert_int_equal(classify(peerpod("2026-12-07T11:00:00Z", NULL, "i-1")), CAA_PEERPOD_KEEP);
    assert_int_equal(classify(peerpod("2026-12-07T11:00:00Z", "[\"a\",\"peer.pod/finalizer\"]", "i-1")),
                     CAA_PEERPOD_DELETE_INSTANCE);
    assert_int_equal(classify(peerpod("2026-12-07T11:00:00Z", "[\"peer.pod/finalizer\"]", NULL)),
                     CAA_PEERPOD_RELEASE_ONLY);

    json_t *o = peerpod("2026-12-07T11:00:00Z", "[\"peer.pod/finalizer\"]", "i-0abc");
    caa_peerpod_action a;
    caa_peerpod_ref ref;
    caa_error *err = NULL;
    assert_int_equal(caa_peerpod_classify(o, &a, &ref, &err), 0);
    assert_string_equal(ref.ns, "default");
    assert_string_equal(ref.name, "web-resource-abcde");
    assert_string_equal(ref.resource_version, "42");
    assert_string_equal(ref.cloud_provider, "aws");
    assert_string_equal(ref.instance_id, "i-0abc");
    caa_peerpod_ref_done(&ref);
    json_decref(o);

    /* Hostile objects are refused, never acted on. */
    static const char *const bad[] = {
        "{}",
        "{\"metadata\":[]}",
        "{\"metadata\":{\"name\":\"x\",\"namespace\":\"d\",\"uid\":\"u\"}}",
        "{\"metadata\":{\"name\":\"x\",\"namespace\":\"d\",\"uid\":\"u\",\"resourceVersion\":\"1\","
        "\"finalizers\":\"peer.pod/finalizer\"}}",
        "{\"metadata\":{\"name\":\"x\",\"namespace\":\"d\",\"uid\":\"u\",\"resourceVersion\":\"1\","
        "\"deletionTimestamp\":5}}",
        "{\"metadata\":{\"name\":\"x\",\"namespace\":\"d\",\"uid\":\"u\",\"resourceVersion\":\"1\","
        "\"deletionTimestamp\":\"t\",\"finalizers\":[\"peer.pod/"
        "finalizer\"]},\"spec\":{\"instanceID\":\"i\"}}",
        "{\"metadata\":{\"name\":\"x\",\"namespace\":\"d\",\"uid\":\"u\",\"resourceVersion\":\"1\","
        "\"deletionTimestamp\":\"t\",\"finalizers\":[\"peer.pod/finalizer\"]},\"spec\":{\"instanceID\":7}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *b = json_loads(bad[i], 0, NULL);
        assert_non_null(b);
        assert_int_equal(caa_peerpod_classify(b, &a, &ref, &err), -EINVAL);
        assert_null(ref.name);
        caa_error_free(err);
        err = NULL;
        json_decref(b);
    }
}

static void test_release_patch(void **state)
{
    (void)state;
    json_t *o = peerpod("2026-12-07T11:00:00Z", "[\"a\",\"peer.pod/finalizer\",\"b\"]", "i-1");
    json_t *patch = caa_peerpod_release_patch(o);
    json_t *expected = json_loads("[{\"op\":\"test\",\"path\":\"/metadata/finalizers\",\"value\":[\"a\","
                                  "\"peer.pod/finalizer\",\"b\"]},{\"op\":\"replace\",\"path\":\"/metadata/"
                                  "finalizers\",\"value\":[\"a\",\"b\"]}]",
                                  0, NULL);
    assert_true(json_equal(patch, expected));
    json_decref(patch);
    json_decref(expected);
    json_decref(o);
    o = peerpod("2026-12-07T11:00:00Z", "[\"a\"]", "i-1");
    assert_null(caa_peerpod_release_patch(o));
    json_decref(o);
}

/* A PeerPod of owner created at created (seconds into 10:00), optionally being deleted. */
static json_t *owned(const char *uid, const char *owner, int created, bool deleting)
{
    char ts[32];
    snprintf(ts, sizeof(ts), "2026-12-07T10:00:%02dZ", created);
    json_t *o = peerpod(deleting ? "2026-12-07T11:00:00Z" : NULL, NULL, "i-1");
    json_t *md = json_object_get(o, "metadata");
    json_object_set_new(md, "uid", json_string(uid));
    json_object_set_new(md, "name", json_string(uid));
    json_object_set_new(md, "creationTimestamp", json_string(ts));
    if (owner)
        json_object_set_new(md, "ownerReferences", json_pack("[{s:s, s:s}]", "uid", owner, "kind", "Pod"));
    return o;
}

static const char *put(caa_peerpod_owners *ix, json_t *o)
{
    const char *owner = caa_peerpod_owners_put(ix, o);
    json_decref(o);
    return owner;
}

/* The names in victims, comma-separated, in order. */
static char *names(json_t *victims)
{
    static char buf[256];
    buf[0] = '\0';
    size_t i;
    json_t *v;
    json_array_foreach(victims, i, v)
    {
        if (buf[0])
            strcat(buf, ",");
        strcat(buf, json_string_value(json_object_get(v, "name")));
    }
    json_array_clear(victims);
    return buf;
}

static void test_owner_index(void **state)
{
    (void)state;
    caa_peerpod_owners ix;
    caa_peerpod_owners_init(&ix);
    json_t *out = json_array();

    assert_null(put(&ix, owned("orphaned", NULL, 1, false))); /* no owner: takes no part */
    const char *pod1 = put(&ix, owned("a-old", "pod-1", 1, false));
    assert_string_equal(pod1, "pod-1");
    put(&ix, owned("a-mid", "pod-1", 2, true)); /* already being deleted: left alone */
    put(&ix, owned("b-only", "pod-2", 3, false));
    caa_peerpod_owners_superseded(&ix, "pod-1", out);
    assert_string_equal(names(out), ""); /* a-old is the newest live one so far */

    pod1 = put(&ix, owned("a-new", "pod-1", 5, false));
    caa_peerpod_owners_superseded(&ix, pod1, out);
    assert_int_equal(json_array_size(out), 1);
    json_t *v = json_array_get(out, 0);
    assert_string_equal(json_string_value(json_object_get(v, "uid")), "a-old");
    assert_string_equal(json_string_value(json_object_get(v, "owner")), "pod-1");
    assert_string_equal(json_string_value(json_object_get(v, "namespace")), "default");
    assert_string_equal(names(out), "a-old");
    caa_peerpod_owners_superseded(&ix, "pod-1", out);
    assert_string_equal(names(out), "");         /* asked once */
    put(&ix, owned("a-old", "pod-1", 1, false)); /* a refresh keeps the mark */
    caa_peerpod_owners_all_superseded(&ix, out);
    assert_string_equal(names(out), "");
    caa_peerpod_owners_delete_failed(&ix, "pod-1", "a-old");
    caa_peerpod_owners_all_superseded(&ix, out);
    assert_string_equal(names(out), "a-old"); /* asked again after a failure */

    /* The newest is being deleted: the newest live one decides. */
    put(&ix, owned("c-1", "pod-3", 1, false));
    put(&ix, owned("c-2", "pod-3", 2, false));
    put(&ix, owned("c-3", "pod-3", 3, true));
    caa_peerpod_owners_superseded(&ix, "pod-3", out);
    assert_string_equal(names(out), "c-1");
    /* Same second: neither is older. */
    put(&ix, owned("d-1", "pod-4", 4, false));
    put(&ix, owned("d-2", "pod-4", 4, false));
    caa_peerpod_owners_superseded(&ix, "pod-4", out);
    assert_string_equal(names(out), "");

    assert_int_equal(caa_peerpod_owners_count(&ix), 9);
    json_t *gone = owned("c-2", "pod-3", 2, false);
    caa_peerpod_owners_remove(&ix, gone);
    json_decref(gone);
    assert_int_equal(caa_peerpod_owners_count(&ix), 8);
    /* A full list that saw only b-only and d-1: the rest is dropped. */
    caa_peerpod_owners_list_started(&ix);
    put(&ix, owned("b-only", "pod-2", 3, false));
    put(&ix, owned("d-1", "pod-4", 4, false));
    caa_peerpod_owners_list_done(&ix);
    assert_int_equal(caa_peerpod_owners_count(&ix), 2);
    caa_peerpod_owners_all_superseded(&ix, out);
    assert_string_equal(names(out), "");
    caa_peerpod_owners_superseded(&ix, "no-such-owner", out);
    assert_int_equal(json_array_size(out), 0);

    /* Many owners (the table grows): each one's older PeerPod, once. */
    for (int i = 0; i < 300; i++) {
        char owner[16], a[16], b[16];
        snprintf(owner, sizeof(owner), "many-%d", i);
        snprintf(a, sizeof(a), "m%d-a", i);
        snprintf(b, sizeof(b), "m%d-b", i);
        put(&ix, owned(a, owner, 1, false));
        put(&ix, owned(b, owner, 2, false));
    }
    assert_int_equal(caa_peerpod_owners_count(&ix), 602);
    caa_peerpod_owners_all_superseded(&ix, out);
    assert_int_equal(json_array_size(out), 300);
    size_t i;
    json_t *victim;
    json_array_foreach(out, i, victim)
    {
        const char *name = json_string_value(json_object_get(victim, "name"));
        assert_string_equal(name + strlen(name) - 2, "-a");
    }
    json_array_clear(out);
    caa_peerpod_owners_all_superseded(&ix, out);
    assert_int_equal(json_array_size(out), 0);

    json_decref(out);
    caa_peerpod_owners_done(&ix);
}

/* A fake API server's view of one Lease: resourceVersion bumps on every
 * write; a write with a stale resourceVersion is a 409. */
typedef struct lease_store {
    json_t *lease;
    int rv;
} lease_store;

static bool store_write(lease_store *s, caa_lease_verdict v, json_t *obj)
{
    if (v == CAA_LEASE_CREATE && s->lease)
        return json_decref(obj), false; /* 409 AlreadyExists */
    if (v == CAA_LEASE_UPDATE) {
        const char *rv =
            json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
        char cur[16];
        snprintf(cur, sizeof(cur), "%d", s->rv);
        if (!rv || strcmp(rv, cur) != 0)
            return json_decref(obj), false; /* 409 Conflict */
    }
    char next[16];
    snprintf(next, sizeof(next), "%d", ++s->rv);
    json_object_set_new(json_object_get(obj, "metadata"), "resourceVersion", json_string(next));
    json_decref(s->lease);
    s->lease = obj;
    return true;
}

/* One election round of elector e at now_ms, reading then writing. */
static void round_of(caa_lease_elector *e, lease_store *s, int64_t now_ms)
{
    char when[40];
    caa_lease_micro_time(1765100000000000 + now_ms * 1000, when, sizeof(when));
    json_t *read = s->lease ? json_deep_copy(s->lease) : NULL;
    caa_lease_verdict v;
    json_t *obj = NULL;
    caa_error *err = NULL;
    assert_int_equal(caa_lease_step(e, read, now_ms, when, &v, &obj, &err), 0);
    json_decref(read);
    if (v != CAA_LEASE_FOLLOW && store_write(s, v, obj))
        caa_lease_written(e, now_ms);
}

static void test_lease_two_replicas(void **state)
{
    (void)state;
    caa_lease_elector a, b;
    caa_error *err = NULL;
    assert_int_equal(caa_lease_elector_init(&a, "replica-a", "ns", "peerpod-ctrl", 15, 10, &err), 0);
    assert_int_equal(caa_lease_elector_init(&b, "replica-b", "ns", "peerpod-ctrl", 15, 10, &err), 0);
    lease_store s = {0};

    /* Both start at once: a creates, b's create loses (409) and b follows. */
    round_of(&a, &s, 0);
    round_of(&b, &s, 0);
    assert_true(caa_lease_is_leader(&a, 1));
    assert_false(caa_lease_is_leader(&b, 1));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(s.lease, "spec"), "holderIdentity")), "replica-a");

    /* a renews every 2 s; b never takes over; never both leaders. */
    for (int64_t t = 2000; t <= 60000; t += 2000) {
        round_of(&a, &s, t);
        round_of(&b, &s, t + 1);
        assert_true(caa_lease_is_leader(&a, t + 1));
        assert_false(caa_lease_is_leader(&b, t + 1));
    }
    /* a stops (crash): b takes over once the record stood still for 15 s of b's clock. */
    int64_t t = 62000;
    for (; t < 62000 + 14000; t += 2000) {
        round_of(&b, &s, t);
        assert_false(caa_lease_is_leader(&b, t));
    }
    assert_false(caa_lease_is_leader(&a, 71000)); /* a's renew deadline passed long ago */
    for (; t < 62000 + 20000 && !caa_lease_is_leader(&b, t); t += 2000)
        round_of(&b, &s, t);
    assert_true(caa_lease_is_leader(&b, t));
    json_t *spec = json_object_get(s.lease, "spec");
    assert_string_equal(json_string_value(json_object_get(spec, "holderIdentity")), "replica-b");
    assert_int_equal(json_integer_value(json_object_get(spec, "leaseTransitions")), 1);

    /* Malformed Lease: refused, no write. */
    json_t *bad =
        json_loads("{\"metadata\":{\"resourceVersion\":\"1\"},\"spec\":{\"holderIdentity\":5}}", 0, NULL);
    caa_lease_verdict v;
    json_t *obj = (json_t *)1;
    assert_int_equal(caa_lease_step(&a, bad, t, "x", &v, &obj, &err), -EINVAL);
    assert_null(obj);
    caa_error_free(err);
    err = NULL;
    json_decref(bad);
    assert_int_equal(caa_lease_elector_init(&a, "x", "ns", "n", 10, 10, &err), -EINVAL);
    caa_error_free(err);

    caa_lease_elector_done(&a);
    caa_lease_elector_done(&b);
    json_decref(s.lease);

    char buf[40];
    caa_lease_micro_time(1765100000123456, buf, sizeof(buf));
    assert_string_equal(buf, "2025-12-07T09:33:20.123456Z");
}

static void test_watch_stream(void **state)
{
    (void)state;
    caa_watch_decoder d = {0};
    caa_error *err = NULL;
    const char *stream =
        "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"10\"}}}\n"
        "\r\n"
        "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"PeerPod\",\"metadata\":{\"resourceVersion\":\"12\"}}}"
        "\r\n"
        "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,\"reason\":\"Expired\"}}\n"
        "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"resourceVersion\":\"13\"}}}";
    /* Fed in small pieces, as a socket would deliver it. */
    caa_watch_type seen[8];
    size_t n_seen = 0;
    for (size_t off = 0; off < strlen(stream); off += 7) {
        size_t len = strlen(stream) - off < 7 ? strlen(stream) - off : 7;
        assert_int_equal(caa_watch_decoder_feed(&d, stream + off, len, &err), 0);
        const char *line;
        size_t ll;
        while (caa_watch_decoder_next(&d, &line, &ll)) {
            caa_watch_event ev;
            assert_int_equal(caa_watch_event_parse(line, ll, &ev, &err), 0);
            seen[n_seen++] = ev.type;
            if (ev.type == CAA_WATCH_BOOKMARK)
                assert_string_equal(ev.resource_version, "12");
            caa_watch_event_done(&ev);
        }
    }
    assert_int_equal(n_seen, 3); /* the last line has no newline yet */
    assert_int_equal(seen[0], CAA_WATCH_ADDED);
    assert_int_equal(seen[1], CAA_WATCH_BOOKMARK);
    assert_int_equal(seen[2], CAA_WATCH_GONE);
    caa_watch_decoder_done(&d);

    static const char *const bad[] = {
        "nope",
        "{\"type\":\"ADDED\"}",
        "{\"type\":\"ADDED\",\"object\":{}}",
        "{\"type\":\"SOMETHING\",\"object\":{\"metadata\":{\"resourceVersion\":\"1\"}}}",
        "{\"type\":\"ERROR\",\"object\":{\"code\":500,\"message\":\"boom\\nline\"}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        caa_watch_event ev = {0};
        assert_true(caa_watch_event_parse(bad[i], strlen(bad[i]), &ev, &err) < 0);
        assert_null(ev.object);
        assert_null(strchr(caa_error_msg(err), '\n'));
        caa_error_free(err);
        err = NULL;
    }

    /* An endless line is cut off. */
    caa_watch_decoder big = {0};
    char *chunk = malloc(1024 * 1024);
    memset(chunk, 'x', 1024 * 1024);
    int r = 0;
    for (int i = 0; i < 6 && r == 0; i++)
        r = caa_watch_decoder_feed(&big, chunk, 1024 * 1024, &err);
    assert_int_equal(r, -EMSGSIZE);
    caa_error_free(err);
    free(chunk);
    caa_watch_decoder_done(&big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),     cmocka_unit_test(test_release_patch),
        cmocka_unit_test(test_owner_index),  cmocka_unit_test(test_lease_two_replicas),
        cmocka_unit_test(test_watch_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
