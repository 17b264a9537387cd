#!/usr/bin/python3
"""Keeps tests/support/fake-kube-apiserver.py honest: Debian's official Kubernetes clients
(python3-kubernetes and kubectl) run the requests the daemon and the controllers make against it
over TLS with a bearer token, and every object it served or accepted is checked against the
Kubernetes OpenAPI models (tests/support/kube_schema.py). TAP output."""
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "support"))

import kube_schema  # noqa: E402
import tap  # noqa: E402
from kube_fake import FakeKube  # noqa: E402
from kubernetes import client, watch  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402

NS = "caa-test"
GROUP, VERSION, PLURAL = "confidentialcontainers.org", "v1alpha1", "peerpods"
results = []


def test(fn):
    results.append(fn)
    return fn


def api_client(kube, token):
    cfg = client.Configuration()
    cfg.host = kube.url
    cfg.ssl_ca_cert = kube.certs["ca"]
    cfg.api_key = {"authorization": "Bearer " + token}
    return client.ApiClient(cfg)


def expect_status(fn, code, reason=None):
    try:
        fn()
    except ApiException as e:
        assert e.status == code, f"want {code}, got {e.status}: {e.body}"
        if reason:
            body = json.loads(e.body)
            assert body["kind"] == "Status" and body["reason"] == reason, body
            return body
        return e
    raise AssertionError(f"expected HTTP {code}")


def dockerconfig(registry, user, pw):
    auth = base64.b64encode(f"{user}:{pw}".encode()).decode()
    raw = json.dumps({"auths": {registry: {"auth": auth}}}).encode()
    return base64.b64encode(raw).decode()


# ------------------------------------------------------------------------------------------------

@test
def core_objects_python_client(kube):
    """Node status JSON patch (the daemon's extended resource), pod/SA/secret reads, errors."""
    core = client.CoreV1Api(api_client(kube, "tok-1"))
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
    node = core.create_node(client.V1Node(metadata=client.V1ObjectMeta(name="worker-1", labels={
        "node.kubernetes.io/worker": ""}), status=client.V1NodeStatus(capacity={"cpu": "2"})))
    assert node.metadata.uid and node.metadata.resource_version
    patched = core.patch_node_status("worker-1", [
        {"op": "add", "path": "/status/capacity/kata.peerpods.io~1vm", "value": "10"},
        {"op": "add", "path": "/metadata/annotations", "value": {"kata.peerpods.io/caa-owner": "uid-1"}}])
    assert patched.status.capacity == {"cpu": "2", "kata.peerpods.io/vm": "10"}, patched.status.capacity
    assert patched.metadata.annotations["kata.peerpods.io/caa-owner"] == "uid-1"
    assert int(patched.metadata.resource_version) > int(node.metadata.resource_version)
    # removing a key that is not there: 422 as the API server answers a failed JSON patch
    expect_status(lambda: core.patch_node_status("worker-1", [
        {"op": "remove", "path": "/status/capacity/nope"}]), 422, "Invalid")
    # 'test' op guarding the owner annotation (the daemon's remove-only-when-owner step)
    expect_status(lambda: core.patch_node_status("worker-1", [
        {"op": "test", "path": "/metadata/annotations/kata.peerpods.io~1caa-owner", "value": "uid-2"},
        {"op": "remove", "path": "/status/capacity/kata.peerpods.io~1vm"}]), 422, "Invalid")
    done = core.patch_node_status("worker-1", [
        {"op": "test", "path": "/metadata/annotations/kata.peerpods.io~1caa-owner", "value": "uid-1"},
        {"op": "remove", "path": "/status/capacity/kata.peerpods.io~1vm"}])
    assert "kata.peerpods.io/vm" not in done.status.capacity

    sec = core.create_namespaced_secret(NS, client.V1Secret(
        metadata=client.V1ObjectMeta(name="regcred"), type="kubernetes.io/dockerconfigjson",
        data={".dockerconfigjson": dockerconfig("registry.example", "u", "p")}))
    assert sec.type == "kubernetes.io/dockerconfigjson"
    body = expect_status(lambda: core.create_namespaced_secret(NS, client.V1Secret(
        metadata=client.V1ObjectMeta(name="broken"), type="kubernetes.io/dockerconfigjson",
        data={".dockerconfigjson": base64.b64encode(b"{not json").decode()})), 422, "Invalid")
    assert body["details"]["causes"][0]["field"] == "data[.dockerconfigjson]", body
    core.create_namespaced_service_account(NS, client.V1ServiceAccount(
        metadata=client.V1ObjectMeta(name="default"),
        image_pull_secrets=[client.V1LocalObjectReference(name="regcred")]))
    pod = core.create_namespaced_pod(NS, client.V1Pod(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="nginx")],
                              image_pull_secrets=[client.V1LocalObjectReference(name="regcred")],
                              runtime_class_name="kata-remote")))
    assert pod.status.phase == "Pending"
    assert core.read_namespaced_service_account("default", NS).image_pull_secrets[0].name == "regcred"
    assert core.read_namespaced_pod("web", NS).spec.image_pull_secrets[0].name == "regcred"
    got = core.read_namespaced_secret("regcred", NS)
    assert json.loads(base64.b64decode(got.data[".dockerconfigjson"]))["auths"]["registry.example"]
    body = expect_status(lambda: core.read_namespaced_pod("missing", NS), 404, "NotFound")
    assert body["message"] == 'pods "missing" not found' and body["details"] == {"name": "missing", "kind": "pods"}
    body = expect_status(lambda: core.create_namespaced_pod(NS, client.V1Pod(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="x")]))), 409, "AlreadyExists")
    assert body["message"] == 'pods "web" already exists'
    expect_status(lambda: core.create_namespaced_pod("nope", client.V1Pod(
        metadata=client.V1ObjectMeta(name="p"),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="x")]))), 404, "NotFound")
    # an event, as the daemon records failures
    ev = core.create_namespaced_event(NS, client.CoreV1Event(
        metadata=client.V1ObjectMeta(generate_name="web."), type="Warning", reason="FailedCreateVM",
        message="boom", involved_object=client.V1ObjectReference(kind="Pod", name="web", namespace=NS)))
    assert ev.metadata.name.startswith("web.")
    lst = core.list_namespaced_pod(NS, label_selector="app notin (x)", limit=10)
    assert [p.metadata.name for p in lst.items] == ["web"]


@test
def peerpods_custom_objects(kube):
    """PeerPod CRUD, resourceVersion conflicts, finalizers and deletionTimestamp, status subresource."""
    co = client.CustomObjectsApi(api_client(kube, "tok-1"))
    core = client.CoreV1Api(api_client(kube, "tok-1"))
    pod = core.read_namespaced_pod("web", NS)
    pp = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "PeerPod",
          "metadata": {"name": "web-pp", "finalizers": ["peer.pod/finalizer"],
                       "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "web",
                                            "uid": pod.metadata.uid, "controller": True,
                                            "blockOwnerDeletion": True}]},
          "spec": {"cloudProvider": "libvirt", "instanceID": "abc-123", "notInSchema": 1}}
    made = co.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, pp)
    assert "notInSchema" not in made["spec"], "unknown fields are pruned"
    assert made["metadata"]["generation"] == 1
    body = expect_status(lambda: co.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, pp), 409,
                         "AlreadyExists")
    assert body["details"] == {"name": "web-pp", "group": GROUP, "kind": PLURAL}, body
    bad = json.loads(json.dumps(pp))
    bad["metadata"]["name"] = "bad-pp"
    bad["spec"]["instanceID"] = 7
    body = expect_status(lambda: co.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, bad), 422,
                         "Invalid")
    assert body["details"]["causes"][0]["field"] == "spec.instanceID", body
    # optimistic concurrency: a stale resourceVersion is a 409 Conflict
    stale = json.loads(json.dumps(made))
    cur = co.patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "web-pp",
                                            {"metadata": {"labels": {"a": "b"}}})
    assert cur["metadata"]["resourceVersion"] != made["metadata"]["resourceVersion"]
    stale["spec"]["instanceID"] = "other"
    expect_status(lambda: co.replace_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "web-pp", stale), 409,
                  "Conflict")
    nov = json.loads(json.dumps(cur))
    del nov["metadata"]["resourceVersion"]
    expect_status(lambda: co.replace_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "web-pp", nov), 422,
                  "Invalid")
    cur["spec"]["instanceID"] = "abc-456"
    rep = co.replace_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "web-pp", cur)
    assert rep["metadata"]["generation"] == 2 and rep["spec"]["instanceID"] == "abc-456"
    # status subresource: the main resource ignores status, /status changes only status
    st = co.patch_namespaced_custom_object_status(GROUP, VERSION, NS, PLURAL, "web-pp",
                                                  {"status": {"cleand": True}, "spec": {"instanceID": "zzz"}})
    assert st["status"] == {"cleand": True} and st["spec"]["instanceID"] == "abc-456", st
    m = co.patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "web-pp", {"status": {"cleand": False}})
    assert m["status"] == {"cleand": True}
    # delete with a finalizer: deletionTimestamp, object stays until the finalizer goes
    co.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "web-pp")
    still = co.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "web-pp")
    assert still["metadata"]["deletionTimestamp"] and still["metadata"]["finalizers"] == ["peer.pod/finalizer"]
    body = expect_status(lambda: co.patch_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, "web-pp", {"metadata": {"finalizers": ["peer.pod/finalizer", "x/y"]}}),
        422, "Invalid")
    co.patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "web-pp", {"metadata": {"finalizers": None}})
    expect_status(lambda: co.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "web-pp"), 404, "NotFound")
    lst = co.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL)
    assert lst["kind"] == "PeerPodList" and lst["items"] == []
    # a strategic merge patch is refused for custom resources (415), as by the API server
    co.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "PeerPod", "metadata": {"name": "plain"},
        "spec": {"cloudProvider": "aws", "instanceID": "i-1"}})
    expect_status(lambda: co.api_client.call_api(
        f"/apis/{GROUP}/{VERSION}/namespaces/{NS}/{PLURAL}/plain", "PATCH",
        header_params={"Content-Type": "application/strategic-merge-patch+json"}, body={"spec": {}},
        auth_settings=["BearerToken"], response_type="object"), 415, "UnsupportedMediaType")


@test
def watch_bookmarks_and_expiry(kube):
    """List+watch from a resourceVersion, bookmarks, and 410 Expired after compaction."""
    co = client.CustomObjectsApi(api_client(kube, "tok-1"))
    rv0 = co.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL)["metadata"]["resourceVersion"]
    events = []

    def run():
        w = watch.Watch()
        for ev in w.stream(co.list_namespaced_custom_object, GROUP, VERSION, NS, PLURAL, resource_version=rv0,
                           allow_watch_bookmarks=True, timeout_seconds=4):
            events.append((ev["type"], ev["object"]["metadata"].get("name")))
            if ev["type"] == "DELETED":
                w.stop()

    t = threading.Thread(target=run)
    t.start()
    co.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "PeerPod", "metadata": {"name": "w1"},
        "spec": {"cloudProvider": "aws", "instanceID": "i-2"}})
    co.patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "w1", {"metadata": {"labels": {"x": "y"}}})
    kube.wait_for(lambda: len(events) >= 2, 3)
    time.sleep(1.3)  # one bookmark interval
    co.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "w1")
    t.join(10)
    types = [e[0] for e in events]
    assert types[:2] == ["ADDED", "MODIFIED"] and types[-1] == "DELETED", events
    assert "BOOKMARK" in types, events
    kube.compact()
    try:
        for _ in watch.Watch().stream(co.list_namespaced_custom_object, GROUP, VERSION, NS, PLURAL,
                                      resource_version=rv0, timeout_seconds=2):
            pass
        raise AssertionError("watch from a compacted version did not fail")
    except ApiException as e:
        assert e.status == 410 and "Expired" in e.reason, e


@test
def leases_and_events_api(kube):
    coord = client.CoordinationV1Api(api_client(kube, "tok-1"))
    lease = coord.create_namespaced_lease(NS, client.V1Lease(
        metadata=client.V1ObjectMeta(name="leader"),
        spec=client.V1LeaseSpec(holder_identity="a", lease_duration_seconds=15)))
    lease.spec.holder_identity = "b"
    upd = coord.replace_namespaced_lease("leader", NS, lease)
    assert upd.spec.holder_identity == "b"
    lease.spec.holder_identity = "c"  # stale resourceVersion
    expect_status(lambda: coord.replace_namespaced_lease("leader", NS, lease), 409, "Conflict")
    evs = client.EventsV1Api(api_client(kube, "tok-1"))
    import datetime
    e = evs.create_namespaced_event(NS, client.EventsV1Event(
        metadata=client.V1ObjectMeta(name="e1"), event_time=datetime.datetime.now(datetime.timezone.utc),
        reason="Test", action="Test", reporting_controller="caa", reporting_instance="caa-1", type="Normal"))
    assert e.metadata.name == "e1"


@test
def auth_rotation_and_faults(kube):
    core1 = client.CoreV1Api(api_client(kube, "tok-1"))
    core2 = client.CoreV1Api(api_client(kube, "tok-2"))
    expect_status(lambda: core2.read_node("worker-1"), 401, "Unauthorized")
    kube.set_token("tok-2")
    expect_status(lambda: core1.read_node("worker-1"), 401, "Unauthorized")
    assert core2.read_node("worker-1").metadata.name == "worker-1"
    kube.set_token("tok-1")
    kube.fault(path=r"/api/v1/nodes/worker-1/status$", method="PATCH", status=403, count=1)
    body = expect_status(lambda: core1.patch_node_status("worker-1", [
        {"op": "add", "path": "/status/capacity/x", "value": "1"}]), 403, "Forbidden")
    assert body["message"].startswith('nodes "worker-1" is forbidden: User "') and \
        'cannot patch resource "nodes/status" in API group "" at the cluster scope' in body["message"], body
    # urllib3 (under the official client) honours Retry-After on 429: one retry, then success
    seq = kube.requests()[-1]["seq"]
    kube.fault(path=r"/api/v1/namespaces/[^/]+/pods/web$", status=429, retry_after=1, count=1)
    t0 = time.monotonic()
    assert core1.read_namespaced_pod("web", NS).metadata.name == "web"
    assert time.monotonic() - t0 >= 0.9
    assert [r["status"] for r in kube.requests(seq)] == [429, 200]
    # without retries the client sees the Status and the header
    cfg = api_client(kube, "tok-1")
    cfg.configuration.retries = False
    cfg.rest_client.pool_manager.connection_pool_kw["retries"] = False
    kube.fault(path=r"/api/v1/namespaces/[^/]+/pods/web$", status=429, retry_after=2, count=1)
    try:
        client.CoreV1Api(cfg).read_namespaced_pod("web", NS)
        raise AssertionError("no 429")
    except ApiException as e:  # throttling filters: plain text
        assert e.status == 429 and e.headers["Retry-After"] == "2", (e.status, e.headers)
        assert str(e.body).startswith("Too many requests"), e.body
        assert e.headers["Content-Type"].startswith("text/plain")
    kube.fault(path=r"/api/v1/namespaces/[^/]+/pods/web$", status=429, retry_after=2, count=1, status_json=True)
    try:
        client.CoreV1Api(cfg).read_namespaced_pod("web", NS)
        raise AssertionError("no 429")
    except ApiException as e:
        assert json.loads(e.body)["details"]["retryAfterSeconds"] == 2
    kube.fault(path=r"/pods/web$", body="garbage", count=1)
    try:
        core1.read_namespaced_pod("web", NS)
        raise AssertionError("garbage body accepted")
    except (ValueError, UnicodeDecodeError, ApiException):
        pass
    assert core1.read_namespaced_pod("web", NS).metadata.name == "web"


@test
def kubectl_against_fake(kube):
    """The same operations through kubectl with a kubeconfig pointing at the fake."""
    kc = shutil.which("kubectl")
    assert kc, "kubectl not installed"
    d = tempfile.mkdtemp(prefix="caa-kubectl-", dir="/tmp")
    try:
        cfg = kube.kubeconfig(os.path.join(d, "config"), token="tok-1")
        env = dict(os.environ, KUBECONFIG=cfg, HOME=d)

        def k(*args, ok=True):
            r = subprocess.run([kc, "--request-timeout=10s", *args], capture_output=True, text=True, env=env,
                               timeout=60)
            if ok:
                assert r.returncode == 0, f"kubectl {' '.join(args)}: {r.stderr}"
            return r

        nodes = json.loads(k("get", "nodes", "-o", "json").stdout)
        assert [n["metadata"]["name"] for n in nodes["items"]] == ["worker-1"]
        ver = json.loads(k("version", "--client", "-o", "json").stdout)["clientVersion"]
        minor = int(re.match(r"\d+", ver["minor"]).group(0))
        if minor >= 24:  # --subresource is new in kubectl 1.24 (Debian 12 ships 1.20)
            k("patch", "node", "worker-1", "--subresource=status", "--type=json",
              "-p", '[{"op":"add","path":"/status/capacity/kata.peerpods.io~1vm","value":"5"}]')
            n = json.loads(k("get", "node", "worker-1", "-o", "json").stdout)
            assert n["status"]["capacity"]["kata.peerpods.io/vm"] == "5"
        k("patch", "node", "worker-1", "--type=json",
          "-p", '[{"op":"add","path":"/metadata/labels/example.com~1pool","value":"a"}]')
        n = json.loads(k("get", "node", "worker-1", "-o", "json").stdout)
        assert n["metadata"]["labels"]["example.com/pool"] == "a"
        manifest = os.path.join(d, "pp.json")
        with open(manifest, "w") as f:
            json.dump({"apiVersion": "v1", "kind": "List", "items": [
                {"apiVersion": f"{GROUP}/{VERSION}", "kind": "PeerPod",
                 "metadata": {"name": "kc-pp", "namespace": NS, "finalizers": ["peer.pod/finalizer"]},
                 "spec": {"cloudProvider": "azure", "instanceID": "vm-1"}},
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "peer-pods-cm", "namespace": NS},
                 "data": {"CLOUD_PROVIDER": "libvirt"}}]}, f)
        k("apply", "--validate=false", "-f", manifest)
        k("apply", "--validate=false", "-f", manifest)  # second apply: a patch with no change
        with open(manifest) as f:
            doc = json.load(f)
        doc["items"][1]["data"]["VXLAN_PORT"] = "4789"
        with open(manifest, "w") as f:
            json.dump(doc, f)
        k("apply", "--validate=false", "-f", manifest)
        cm = json.loads(k("get", "configmap", "peer-pods-cm", "-n", NS, "-o", "json").stdout)
        assert cm["data"] == {"CLOUD_PROVIDER": "libvirt", "VXLAN_PORT": "4789"}, cm["data"]
        assert "kubectl.kubernetes.io/last-applied-configuration" in cm["metadata"]["annotations"]
        pps = json.loads(k("get", "peerpods", "-A", "-o", "json").stdout)
        names = sorted(p["metadata"]["name"] for p in pps["items"])
        assert "kc-pp" in names, names
        k("delete", "peerpod", "kc-pp", "-n", NS, "--wait=false")
        pp = json.loads(k("get", "peerpod", "kc-pp", "-n", NS, "-o", "json").stdout)
        assert pp["metadata"].get("deletionTimestamp")
        k("patch", "peerpod", "kc-pp", "-n", NS, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
        r = k("get", "peerpod", "kc-pp", "-n", NS, ok=False)
        assert r.returncode != 0 and \
            'Error from server (NotFound): peerpods.confidentialcontainers.org "kc-pp" not found' in r.stderr, r.stderr
        k("delete", "configmap", "peer-pods-cm", "-n", NS)  # waits for the DELETED watch event
        r = k("get", "pods", "-n", NS, "--token=wrong", ok=False)
        assert r.returncode != 0 and "Unauthorized" in r.stderr, r.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)


@test
def client_certificate_auth(_kube):
    """--client-ca: a certificate signed by that CA authenticates (user = CN), none is refused."""
    with FakeKube(tls=True, client_cert_cn="system:node:worker-1", python="/usr/bin/python3") as kube:
        cfg = client.Configuration()
        cfg.host, cfg.ssl_ca_cert = kube.url, kube.certs["ca"]
        cfg.cert_file, cfg.key_file = kube.certs["client_cert"], kube.certs["client_key"]
        core = client.CoreV1Api(client.ApiClient(cfg))
        assert core.list_namespace().items
        kube.set_rbac([{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list"]}])
        body = expect_status(lambda: core.read_namespace("default"), 403, "Forbidden")
        assert 'User "system:node:worker-1" cannot get resource "namespaces"' in body["message"], body
        anon = client.Configuration()
        anon.host, anon.ssl_ca_cert = kube.url, kube.certs["ca"]
        expect_status(lambda: client.CoreV1Api(client.ApiClient(anon)).list_namespace(), 401, "Unauthorized")
        d = tempfile.mkdtemp(prefix="caa-kubectl-", dir="/tmp")
        try:
            env = dict(os.environ, KUBECONFIG=kube.kubeconfig(os.path.join(d, "config"), client_cert=True), HOME=d)
            r = subprocess.run(["kubectl", "get", "namespaces", "-o", "name"], capture_output=True, text=True,
                               env=env, timeout=60)
            assert r.returncode == 0 and "namespace/default" in r.stdout, r.stderr
        finally:
            shutil.rmtree(d, ignore_errors=True)


@test
def hostile_input_gets_status_errors(kube):
    """Malformed and randomly mutated requests: always a Status (4xx) or a valid answer, never a 5xx
    or a dropped connection, and the fake keeps serving."""
    import http.client
    import random
    import ssl

    ctx = ssl.create_default_context(cafile=kube.certs["ca"])
    base = f"/apis/{GROUP}/{VERSION}/namespaces/{NS}/{PLURAL}"

    def send(method, path, body=b"", ctype="application/json"):
        conn = http.client.HTTPSConnection("127.0.0.1", kube.port, context=ctx, timeout=10)
        try:
            conn.request(method, path, body=body, headers={"Authorization": "Bearer tok-1", "Content-Type": ctype})
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    cases = [("POST", base, b"{not json"), ("POST", base, b"[]"), ("POST", base, b'{"metadata": 5}'),
             ("POST", base, b'{"apiVersion": "v9", "kind": "PeerPod", "metadata": {"name": "x"}}'),
             ("POST", base, b'{"metadata": {"name": "UPPER"}}'), ("POST", base, b'{"metadata": {}}'),
             ("POST", base, b'{"metadata": {"name": "a", "labels": {"k": 1}}}'),
             ("POST", base, b'{"metadata": {"name": "a", "ownerReferences": [{}]}}'),
             ("PATCH", base + "/missing", b"[]", "application/json-patch+json"),
             ("GET", base + "?labelSelector=a%20in%20(", b""), ("GET", base + "?fieldSelector=spec.x%3D1", b""),
             ("GET", base + "?continue=%%%", b""), ("GET", base + "?watch=true&resourceVersion=abc", b""),
             ("GET", "/api/v1/namespaces/" + NS + "/pods/web/exec", b""), ("GET", "/nope", b""),
             ("DELETE", base + "/missing", b"{bad"), ("PUT", base + "/missing", b"{}")]
    rnd = random.Random(11)
    valid = json.dumps({"apiVersion": f"{GROUP}/{VERSION}", "kind": "PeerPod", "metadata": {"name": "fz"},
                        "spec": {"cloudProvider": "aws", "instanceID": "i-9"}}).encode()
    patch = json.dumps([{"op": "replace", "path": "/spec/instanceID", "value": "i-8"}]).encode()
    send("POST", base, valid)
    for _ in range(150):
        b = bytearray(valid if rnd.random() < 0.5 else patch)
        for _ in range(rnd.randint(1, 4)):
            i = rnd.randrange(len(b))
            b[i] = rnd.choice(b'{}[]":,0aZ\x00\xff ')
        if b[:1] == b"[":
            cases.append(("PATCH", base + "/fz", bytes(b), "application/json-patch+json"))
        else:
            cases.append((rnd.choice(["POST", "PUT"]), base + ("/fz" if rnd.random() < 0.5 else ""), bytes(b)))
    for case in cases:
        status, body = send(*case)
        assert status < 500, (case, status, body[:300])
        if status >= 400:
            st = json.loads(body)
            assert st["kind"] == "Status" and st["code"] == status and st["message"], (case, st)
    assert send("GET", "/_fake/healthz")[0] == 200


@test
def everything_served_validates(kube):
    """Every stored object and every JSON object a client sent or the fake answered fits the models."""
    problems = []
    for obj in kube.objects():
        for p in kube_schema.check(obj):
            problems.append(f"stored {obj['kind']}/{obj['metadata']['name']}: {p}")
    for r in kube.requests():
        b = r.get("body")
        if isinstance(b, dict) and "notInSchema" in json.dumps(b):
            continue  # sent on purpose by peerpods_custom_objects (the fake prunes it)
        if isinstance(b, dict) and b.get("kind") not in (None, "DeleteOptions", "List") and "apiVersion" in b \
                and r["method"] in ("POST", "PUT") and r["status"] in (200, 201):
            for p in kube_schema.check(b):
                problems.append(f"request {r['method']} {r['path']}: {p}")
    assert not problems, "\n".join(problems[:20])
    # and the fake's embedded PeerPod CRD schema is the one we ship
    fake_src = os.path.join(HERE, "..", "..", "support", "fake-kube-apiserver.py")
    import importlib.util
    spec = importlib.util.spec_from_file_location("fake_kube_apiserver", fake_src)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    shipped = kube_schema.load_crds()[(f"{GROUP}/{VERSION}", "PeerPod")]

    def strip(s):
        if isinstance(s, dict):
            return {k: strip(v) for k, v in s.items() if k != "description"}
        return s

    embedded = mod.PEERPOD_CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert strip(shipped) == strip(embedded), (strip(shipped), embedded)


def main():
    print(f"1..{len(results)}")
    with FakeKube(token="tok-1", tls=True, python="/usr/bin/python3") as kube:
        failed = tap.run(results, kube)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
