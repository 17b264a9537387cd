"""peerpod-ctrl against the fake API server (tests/support/fake-kube-apiserver.py) and the test provider
(instances are files in a state directory, so the test counts them before and after).

Cases: orphans collected, live PeerPods and other providers' PeerPods spared, instance already gone,
provider errors (retry with backoff, Warning Event, metric) then a restart that finishes the job, API
faults on the release, two replicas with leader election (only the leader deletes; the other takes over
when the leader stops). Env: CAA_PEERPOD_CTRL (peerpod-ctrl-test binary). TAP output.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import yaml

import tap
from ctrl_harness import (ELECTION, FINALIZER, NO_RESYNC, Fixture, add_peerpod, api, expire_the_watch, fixture_runner,
                          peerpods, wait_for, watch_rv, watches)

BINARY = os.environ["CAA_PEERPOD_CTRL"]
RBAC = os.path.join(os.environ["CAA_SOURCE_ROOT"], "deploy", "kubernetes", "peerpod-ctrl", "rbac.yaml")


def add_instance(state, iid):
    with open(os.path.join(state, f"{iid}.json"), "w") as f:
        json.dump({"id": iid, "name": f"podvm-{iid}", "ips": ["198.18.0.2"]}, f)


def instances(state):
    return sorted(n[:-5] for n in os.listdir(state) if n.endswith(".json"))


class TestProviderFixture(Fixture):
    """The test provider: instances are files in a state directory."""

    def __init__(self, fake_args=()):
        super().__init__(fake_args)
        self.state = os.path.join(self.dir, "instances")
        os.mkdir(self.state)

    def ctrl_argv(self):
        return [BINARY, "test", "-test-state-dir", self.state]


with_fake_args = fixture_runner(TestProviderFixture)
with_fixture = with_fake_args()


def wait_collected(fx, iid, name, within):
    """The orphan's instance deleted and its PeerPod released within `within` seconds."""
    t0 = time.time()
    wait_for(lambda: iid not in instances(fx.state) and name not in peerpods(fx.kube), timeout=10,
             what=f"{name} collected")
    took = time.time() - t0
    assert took < within, f"{name} collected after {took:.1f} s"
    return took


@with_fixture
def test_collects_orphans_and_spares_the_rest(fx):
    for iid in ("i-live", "i-orphan1", "i-orphan2", "i-aws"):
        add_instance(fx.state, iid)
    add_peerpod(fx.kube, "live-resource-aaaaa", "i-live")
    add_peerpod(fx.kube, "orphan1-resource-bbbbb", "i-orphan1", delete=True)
    add_peerpod(fx.kube, "orphan2-resource-ccccc", "i-orphan2", delete=True, ns="kube-public")
    add_peerpod(fx.kube, "gone-resource-ddddd", "i-already-gone", delete=True)
    add_peerpod(fx.kube, "aws-resource-eeeee", "i-aws", provider="aws", delete=True)
    assert instances(fx.state) == ["i-aws", "i-live", "i-orphan1", "i-orphan2"]
    c = fx.ctrl()
    wait_for(lambda: set(peerpods(fx.kube)) == {"live-resource-aaaaa", "aws-resource-eeeee"}, what="collection")
    assert instances(fx.state) == ["i-aws", "i-live"], instances(fx.state)  # zero orphans, zero wrong deletions
    pp = peerpods(fx.kube)
    assert pp["aws-resource-eeeee"]["metadata"]["finalizers"] == [FINALIZER]
    assert "deletionTimestamp" not in pp["live-resource-aaaaa"]["metadata"]
    m = c.metrics()
    # A resync list answered just before a release may bring that PeerPod back once more: deleted again
    # (gone counts as done) and released again (404 is done). Harmless, so only the lower bound is exact.
    assert m['peerpod_ctrl_instance_deletions_total{result="ok"}'] >= 3, m
    assert m['peerpod_ctrl_releases_total{result="ok"}'] >= 3, m
    assert m["peerpod_ctrl_leader"] == 1
    assert "belongs to cloud provider aws" in c.logs()
    c.stop()


@with_fixture
def test_provider_error_retried_with_event_then_restart_finishes(fx):
    add_instance(fx.state, "i-stuck")
    add_peerpod(fx.kube, "stuck-resource-aaaaa", "i-stuck", delete=True)
    c = fx.ctrl("-test-fail-delete")
    wait_for(lambda: c.metric('peerpod_ctrl_instance_deletions_total{result="error"}') >= 3, what="retries")
    events = [e for e in fx.kube.objects("events") if e.get("reason") == "DeleteInstanceFailed"]
    assert events, fx.kube.objects("events")
    ev = events[0]
    assert ev["involvedObject"]["kind"] == "PeerPod" and ev["involvedObject"]["name"] == "stuck-resource-aaaaa"
    assert ev["type"] == "Warning" and "i-stuck" in ev["message"], ev
    assert "stuck-resource-aaaaa" in peerpods(fx.kube) and instances(fx.state) == ["i-stuck"]
    # Backoff: 200 ms doubling to 1 s, so far fewer attempts than ticks.
    first = c.metric('peerpod_ctrl_instance_deletions_total{result="error"}')
    time.sleep(2)
    assert c.metric('peerpod_ctrl_instance_deletions_total{result="error"}') - first <= 3
    c.stop()  # restart in the middle of a delete that keeps failing
    c2 = fx.ctrl(name="ctrl2")
    wait_for(lambda: not peerpods(fx.kube), what="collection after restart")
    assert instances(fx.state) == []
    c2.stop()


@with_fixture
def test_api_faults_on_list_and_release(fx):
    add_instance(fx.state, "i-1")
    add_peerpod(fx.kube, "one-resource-aaaaa", "i-1", delete=True)
    fx.kube.fault("/peerpods\\?limit=", status=503, method="GET", count=2)
    fx.kube.fault("/peerpods/one-resource-aaaaa", status=500, method="PATCH", count=6)
    c = fx.ctrl()
    wait_for(lambda: not peerpods(fx.kube), timeout=30, what="collection despite faults")
    assert instances(fx.state) == []
    # The instance is deleted once per attempt at most; gone counts as success on the retries.
    assert c.metric('peerpod_ctrl_releases_total{result="ok"}') == 1
    c.stop()


@with_fixture
def test_two_replicas_only_the_leader_deletes(fx):
    a = fx.ctrl(*ELECTION, "-identity", "replica-a", name="a")
    wait_for(lambda: a.metric("peerpod_ctrl_leader") == 1, what="a leads")
    b = fx.ctrl(*ELECTION, "-identity", "replica-b", name="b")
    time.sleep(1.5)
    assert b.metric("peerpod_ctrl_leader") == 0 and a.metric("peerpod_ctrl_leader") == 1
    lease = [o for o in fx.kube.objects("leases") if o["metadata"]["name"] == "peerpod-ctrl.confidentialcontainers.org"]
    assert lease and lease[0]["spec"]["holderIdentity"] == "replica-a", lease

    for i in range(5):
        add_instance(fx.state, f"i-{i}")
        add_peerpod(fx.kube, f"p{i}-resource-aaaaa", f"i-{i}", delete=True)
    wait_for(lambda: not peerpods(fx.kube), what="a collects")
    assert instances(fx.state) == []
    assert "deleting instance" in a.logs() and "deleting instance" not in b.logs()
    assert b.metric('peerpod_ctrl_instance_deletions_total{result="ok"}') == 0

    a.stop()  # the leader goes away without releasing: b waits for the lease to expire
    wait_for(lambda: b.metric("peerpod_ctrl_leader") == 1, timeout=15, what="b takes over")
    lease = [o for o in fx.kube.objects("leases") if o["metadata"]["name"] == "peerpod-ctrl.confidentialcontainers.org"]
    assert lease[0]["spec"]["holderIdentity"] == "replica-b" and lease[0]["spec"]["leaseTransitions"] == 1, lease
    add_instance(fx.state, "i-late")
    add_peerpod(fx.kube, "late-resource-aaaaa", "i-late", delete=True)
    wait_for(lambda: not peerpods(fx.kube), what="b collects")
    assert instances(fx.state) == []
    b.stop()


def raw_peerpod(name, iid, deleted=False, ns="default"):
    md = {"name": name, "namespace": ns, "finalizers": [FINALIZER]}
    if deleted:
        md["deletionTimestamp"] = "2026-12-07T10:00:00Z"
    return {"apiVersion": "confidentialcontainers.org/v1alpha1", "kind": "PeerPod", "metadata": md,
            "spec": {"cloudProvider": "test", "instanceID": iid}}


@with_fixture
def test_many_peerpods_listed_in_pages(fx):
    live = [raw_peerpod(f"live{i}-resource-aaaaa", f"i-live{i}") for i in range(1200)]
    orphans = [raw_peerpod(f"orphan{i}-resource-aaaaa", f"i-orphan{i}", deleted=True) for i in (0, 600, 1100)]
    for o in orphans:
        add_instance(fx.state, o["spec"]["instanceID"])
    add_instance(fx.state, "i-live7")
    fx.kube.put_objects(live[:600] + orphans + live[600:])
    c = fx.ctrl()
    wait_for(lambda: len(peerpods(fx.kube)) == 1200, timeout=60, what="the orphans collected")
    assert instances(fx.state) == ["i-live7"]
    pages = [r for r in fx.kube.requests()
             if r["method"] == "GET" and r["path"].endswith("/peerpods") and "limit=500" in r["query"]]
    assert any("continue=" in r["query"] for r in pages), pages[:3]
    c.stop()


def owned_peerpod(name, iid, owner, created):
    obj = raw_peerpod(name, iid)
    obj["metadata"]["creationTimestamp"] = created
    obj["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "Pod", "name": owner, "uid": f"uid-{owner}"}]
    return obj


@with_fixture
def test_older_peerpods_of_a_pod_are_deleted(fx):
    """Upstream's isOldPeerPod: a live PeerPod makes every older PeerPod of the same Pod (ownerReferences[0])
    be deleted; the finalizer keeps each, so its instance is collected as an orphan's. Found by the list
    (all owners once the last page is in) and by the watch (a newer PeerPod added later)."""
    for iid in ("i-old", "i-new", "i-other", "i-pod3", "i-pod4-a", "i-pod4-b"):
        add_instance(fx.state, iid)
    fx.kube.put_objects([
        owned_peerpod("old-resource-aaaaa", "i-old", "web", "2026-12-07T10:00:00Z"),
        owned_peerpod("other-resource-bbbbb", "i-other", "db", "2026-12-07T10:01:00Z"),
        owned_peerpod("new-resource-ccccc", "i-new", "web", "2026-12-07T10:05:00Z"),
        owned_peerpod("pod3-resource-ddddd", "i-pod3", "cache", "2026-12-07T10:02:00Z"),
        # Same second: neither is older, both stay (as upstream's Time.Before).
        owned_peerpod("pod4a-resource-eeeee", "i-pod4-a", "queue", "2026-12-07T10:03:00Z"),
        owned_peerpod("pod4b-resource-fffff", "i-pod4-b", "queue", "2026-12-07T10:03:00Z"),
    ])
    c = fx.ctrl(*NO_RESYNC)
    wait_for(lambda: "old-resource-aaaaa" not in peerpods(fx.kube), what="the older PeerPod of web collected")
    assert instances(fx.state) == ["i-new", "i-other", "i-pod3", "i-pod4-a", "i-pod4-b"], instances(fx.state)
    assert set(peerpods(fx.kube)) == {"new-resource-ccccc", "other-resource-bbbbb", "pod3-resource-ddddd",
                                      "pod4a-resource-eeeee", "pod4b-resource-fffff"}
    deletes = [r for r in fx.kube.requests() if r["method"] == "DELETE" and "/peerpods/" in r["path"]]
    assert [r["path"].rsplit("/", 1)[1] for r in deletes] == ["old-resource-aaaaa"], deletes
    # The watch: db gets a newer PeerPod (created now), so its older one goes.
    wait_for(lambda: "watching PeerPods from resourceVersion" in c.logs(), what="a PeerPod watch")
    add_instance(fx.state, "i-other2")
    add_peerpod(fx.kube, "other2-resource-ggggg", "i-other2", owner="db")
    wait_for(lambda: "other-resource-bbbbb" not in peerpods(fx.kube), what="the older PeerPod of db collected")
    assert instances(fx.state) == ["i-new", "i-other2", "i-pod3", "i-pod4-a", "i-pod4-b"], instances(fx.state)
    m = c.metrics()
    assert m['peerpod_ctrl_superseded_deletions_total{result="ok"}'] == 2, m
    assert m['peerpod_ctrl_lists_total{result="ok"}'] == 1, "the second one found by the watch"
    c.stop()


@with_fixture
def test_works_under_the_manifests_rbac(fx):
    """deploy/kubernetes/peerpod-ctrl/rbac.yaml grants every request the controller makes: election, paged
    list, Events, release, deleting an older PeerPod of a Pod. (The fake's authorizer ignores namespaces, so
    the Role counts cluster-wide.)"""
    add_instance(fx.state, "i-ok")
    add_peerpod(fx.kube, "ok-resource-aaaaa", "i-ok", delete=True)
    add_peerpod(fx.kube, "stuck-resource-aaaaa", "i-stuck", delete=True)
    add_instance(fx.state, "i-older")
    fx.kube.put_objects([owned_peerpod("older-resource-aaaaa", "i-older", "web", "2026-12-07T10:00:00Z")])
    add_peerpod(fx.kube, "newer-resource-aaaaa", "i-newer", owner="web")  # created now: the older one goes
    with open(RBAC) as f:
        docs = [d for d in yaml.safe_load_all(f) if d and d["kind"] in ("ClusterRole", "Role")]
    fx.kube.set_rbac(docs)
    fx.kube.clear_requests()
    # i-stuck cannot be deleted (no such instance is fine, so make the provider fail for all): first
    # run with failures to exercise Events, then without.
    c = fx.ctrl("-leader-elect", "-leader-election-namespace", "default", "-test-fail-delete")
    wait_for(lambda: c.metric("peerpod_ctrl_events_total") >= 2, what="Events posted")
    c.stop()
    c = fx.ctrl("-leader-elect", "-leader-election-namespace", "default", name="ctrl2")
    wait_for(lambda: list(peerpods(fx.kube)) == ["newer-resource-aaaaa"], timeout=30, what="collection under RBAC")
    assert instances(fx.state) == [], instances(fx.state)
    c.stop()
    denied = [r for r in fx.kube.requests() if r["status"] == 403]
    assert not denied, denied
    verbs = {(r["verb"], r["resource"]) for r in fx.kube.requests() if r["status"] < 300}
    for need in (("list", "peerpods"), ("patch", "peerpods"), ("create", "events"), ("get", "leases"),
                 ("create", "leases"), ("update", "leases"), ("delete", "peerpods")):
        assert need in verbs, (need, verbs)


def test_start_errors(_):
    r = subprocess.run([BINARY, "nosuch"], capture_output=True, text=True, timeout=20)
    assert r.returncode == 2 and "nosuch" in r.stderr, r.stderr
    d = tempfile.mkdtemp()
    try:
        env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
        r = subprocess.run([BINARY, "test", "-test-state-dir", d], capture_output=True, text=True, timeout=20,
                           env=env)
        assert r.returncode == 1 and "no Kubernetes API server" in r.stderr, r.stderr
    finally:
        shutil.rmtree(d)


@with_fixture
def test_watch_collects_an_orphan_at_once(fx):
    for iid in ("i-live", "i-orphan"):
        add_instance(fx.state, iid)
    add_peerpod(fx.kube, "live-resource-aaaaa", "i-live")
    c = fx.ctrl(*NO_RESYNC)
    # The fake logs a request when it ends: a running watch shows in the controller's log.
    wait_for(lambda: "watching PeerPods from resourceVersion" in c.logs(), what="a PeerPod watch")
    add_peerpod(fx.kube, "orphan-resource-bbbbb", "i-orphan", delete=True)
    took = wait_collected(fx, "i-orphan", "orphan-resource-bbbbb", within=2.0)
    assert instances(fx.state) == ["i-live"]
    assert list(peerpods(fx.kube)) == ["live-resource-aaaaa"]
    assert c.metric("peerpod_ctrl_watch_events_total") >= 2  # ADDED, MODIFIED (deletionTimestamp)
    assert c.metric('peerpod_ctrl_lists_total{result="ok"}') == 1, "collected by the watch, not a list"
    c.stop()
    print(f"# orphan collected {took:.2f} s after its deletionTimestamp")


@with_fake_args("--max-watch-seconds", "1", "--bookmark-interval", "0.2")
def test_watch_broken_mid_stream_and_expired(fx):
    add_instance(fx.state, "i-live")
    add_peerpod(fx.kube, "live-resource-aaaaa", "i-live")
    c = fx.ctrl(*NO_RESYNC)
    wait_for(lambda: watches(fx.kube), what="a PeerPod watch")
    # The server ends each watch after 1 s: the controller resumes where it was, without listing again.
    wait_for(lambda: len(watches(fx.kube)) >= 3, what="resumed watches")
    assert c.metric('peerpod_ctrl_lists_total{result="ok"}') == 1
    # Broken: the next two watch requests fail; it reconnects with backoff.
    fx.kube.fault(r"peerpods\?.*watch=1", status=500, count=2)
    wait_for(lambda: c.metric("peerpod_ctrl_watch_restarts_total") >= 2, what="two watch restarts")
    add_instance(fx.state, "i-orphan1")
    add_peerpod(fx.kube, "orphan1-resource-bbbbb", "i-orphan1", delete=True)
    wait_collected(fx, "i-orphan1", "orphan1-resource-bbbbb", within=4.0)
    # Expired: while the watch is held off, the store moves on and is compacted past the controller's
    # resourceVersion; the resumed watch gets an ERROR 410 event and the controller lists again.
    expire_the_watch(fx.kube, c)
    assert "resourceVersion expired" in c.logs()
    add_instance(fx.state, "i-orphan2")
    add_peerpod(fx.kube, "orphan2-resource-ccccc", "i-orphan2", delete=True)
    wait_collected(fx, "i-orphan2", "orphan2-resource-ccccc", within=4.0)
    assert instances(fx.state) == ["i-live"], instances(fx.state)
    assert list(peerpods(fx.kube)) == ["live-resource-aaaaa"]
    c.stop()


@with_fake_args("--max-watch-seconds", "1", "--bookmark-interval", "0.2")
def test_bookmarks_advance_the_resource_version_and_http_410_relists(fx):
    c = fx.ctrl(*NO_RESYNC)
    wait_for(lambda: watches(fx.kube), what="a PeerPod watch")
    w = watches(fx.kube)[0]
    assert "allowWatchBookmarks=true" in w["query"] and "timeoutSeconds=300" in w["query"], w
    first = watch_rv(w)
    # Changes to other resources only: the PeerPod watch sees no event but bookmarks.
    for i in range(3):
        api(fx.kube, "POST", "/api/v1/namespaces/default/configmaps",
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"bump{i}"}})
    wait_for(lambda: watch_rv(watches(fx.kube)[-1]) >= first + 3, what="a watch resumed past the bookmarks")
    assert c.metric("peerpod_ctrl_watch_events_total") >= 1
    assert c.metric('peerpod_ctrl_lists_total{result="ok"}') == 1
    # 410 Gone as the HTTP answer to the watch (not an ERROR event): a new list, then watching again.
    fx.kube.fault(r"peerpods\?.*watch=1", status=410, count=1)
    wait_for(lambda: c.metric('peerpod_ctrl_lists_total{result="ok"}') == 2, what="a list after HTTP 410")
    n = len(watches(fx.kube))
    wait_for(lambda: len(watches(fx.kube)) > n + 1, what="watching again after the list")
    c.stop()


TESTS = [test_watch_collects_an_orphan_at_once, test_watch_broken_mid_stream_and_expired,
         test_bookmarks_advance_the_resource_version_and_http_410_relists, test_collects_orphans_and_spares_the_rest,
         test_provider_error_retried_with_event_then_restart_finishes, test_api_faults_on_list_and_release,
         test_two_replicas_only_the_leader_deletes, test_many_peerpods_listed_in_pages,
         test_older_peerpods_of_a_pod_are_deleted, test_works_under_the_manifests_rbac, test_start_errors]

if __name__ == "__main__":
    print(f"1..{len(TESTS)}")
    sys.exit(1 if tap.run(TESTS, None) else 0)
