#!/usr/bin/python3
"""deploy/kubernetes: the kustomization renders with kubectl, every object validates against the
Kubernetes OpenAPI models (python3-kubernetes) or its CRD, the DaemonSet keeps upstream's contract,
and the ClusterRole grants exactly the daemon's requests: run through the fake API server's RBAC
authorizer with python3-kubernetes, each request the daemon makes passes and the neighbours
(list, watch, delete, other resources) get 403. Finally `kubectl apply -k` installs it all into
the fake API server. TAP output."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SRC_ROOT = os.environ.get("CAA_SOURCE_ROOT", os.path.abspath(os.path.join(HERE, "..", "..")))
sys.path.insert(0, os.path.join(SRC_ROOT, "tests", "support"))

import kube_schema  # noqa: E402
import tap  # noqa: E402
from kube_fake import FakeKube  # noqa: E402
from kubernetes import client  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402

DEPLOY = os.path.join(SRC_ROOT, "deploy", "kubernetes")
NS = "confidential-containers-system"
KUBECTL = shutil.which("kubectl")

# Every request the daemon makes (docs/kubernetes.md): (verb, group, resource[/sub]).
DAEMON_REQUESTS = {
    ("get", "", "nodes"), ("patch", "", "nodes"), ("patch", "", "nodes/status"),
    ("get", "", "pods"), ("get", "", "serviceaccounts"), ("get", "", "secrets"),
    ("create", "confidentialcontainers.org", "peerpods"), ("patch", "confidentialcontainers.org", "peerpods"),
}

tests = []


def test(fn):
    tests.append(fn)
    return fn


def rendered():
    r = subprocess.run([KUBECTL, "kustomize", DEPLOY], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def by_kind(docs, kind):
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind} objects"
    return found[0]


@test
def kustomization_renders_and_validates(docs):
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted(["Namespace", "CustomResourceDefinition", "ServiceAccount", "ClusterRole",
                            "ClusterRoleBinding", "ConfigMap", "DaemonSet", "RuntimeClass"]), kinds
    problems = []
    for d in docs:
        problems += [f"{d['kind']}/{d['metadata']['name']}: {p}" for p in kube_schema.check(d)]
    with open(os.path.join(DEPLOY, "secret.example.yaml")) as f:
        secret = yaml.safe_load(f)
    problems += [f"secret.example.yaml: {p}" for p in kube_schema.check(secret)]
    assert secret["metadata"]["name"] == "peer-pods-secret"
    assert not problems, "\n".join(problems)
    for d in docs:
        if d["kind"] not in ("Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding",
                             "RuntimeClass"):
            assert d["metadata"]["namespace"] == NS, d["metadata"]


@test
def daemonset_contract(docs):
    ds = by_kind(docs, "DaemonSet")
    spec = ds["spec"]["template"]["spec"]
    assert spec["hostNetwork"] is True
    sa = by_kind(docs, "ServiceAccount")
    assert spec["serviceAccountName"] == sa["metadata"]["name"]
    (c,) = spec["containers"]
    assert c["command"] == ["/usr/local/bin/entrypoint.sh"]  # upstream's chart contract
    env = {e["name"]: e for e in c["env"]}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert env["POD_UID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.uid"
    refs = {(k, v["name"]) for e in c["envFrom"] for k, v in e.items()}
    assert refs == {("configMapRef", "peer-pods-cm"), ("secretRef", "peer-pods-secret")}, refs
    probe = c["startupProbe"]["httpGet"]
    assert (probe["path"], probe["port"], probe["host"]) == ("/startup", 8000, "127.0.0.1"), probe
    assert set(c["securityContext"]["capabilities"]["add"]) == {"NET_ADMIN", "SYS_ADMIN"}
    vols = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"].rstrip("/"): m for m in c["volumeMounts"]}
    for m in c["volumeMounts"]:
        assert m["name"] in vols, f"mount {m['name']} has no volume"
    assert vols[mounts["/run/peerpod"]["name"]]["hostPath"]["path"] == "/run/peerpod"
    assert vols[mounts["/run/netns"]["name"]]["hostPath"]["path"] == "/run/netns"
    assert mounts["/run/netns"]["mountPropagation"] == "HostToContainer"
    assert mounts["/lib/modules"]["readOnly"] is True
    cm = by_kind(docs, "ConfigMap")
    assert cm["metadata"]["name"] == "peer-pods-cm" and cm["data"]["CLOUD_PROVIDER"] in ("libvirt", "aws", "azure")


@test
def runtimeclass_and_crd(docs):
    rc = by_kind(docs, "RuntimeClass")
    assert rc["metadata"]["name"] == rc["handler"] == "kata-remote"
    assert rc["overhead"]["podFixed"] == {"memory": "120Mi", "cpu": "250m"}
    assert rc["scheduling"]["nodeSelector"] == {"katacontainers.io/kata-runtime": "true"}
    crd = by_kind(docs, "CustomResourceDefinition")
    assert crd["metadata"]["name"] == "peerpods.confidentialcontainers.org"
    (v,) = crd["spec"]["versions"]
    assert v["name"] == "v1alpha1" and v["subresources"] == {"status": {}} and crd["spec"]["scope"] == "Namespaced"
    props = v["schema"]["openAPIV3Schema"]["properties"]
    assert set(props["spec"]["properties"]) == {"cloudProvider", "instanceID"}
    assert props["status"]["properties"]["cleand"]["type"] == "boolean"


@test
def rbac_grants_exactly_the_daemons_requests(docs):
    role = by_kind(docs, "ClusterRole")
    binding = by_kind(docs, "ClusterRoleBinding")
    sa = by_kind(docs, "ServiceAccount")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": NS}]
    granted = {(v, g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
               for v in rule["verbs"]}
    assert granted == DAEMON_REQUESTS, f"extra: {granted - DAEMON_REQUESTS}, missing: {DAEMON_REQUESTS - granted}"
    assert not any("*" in x for rule in role["rules"] for k in ("verbs", "resources", "apiGroups")
                   for x in rule[k])

    # The same rules enforced by the fake API server's authorizer, driven by the official client.
    with FakeKube(token="t", tls=True, python="/usr/bin/python3") as kube:
        cfg = client.Configuration()
        cfg.host, cfg.ssl_ca_cert = kube.url, kube.certs["ca"]
        cfg.api_key = {"authorization": "Bearer t"}
        api = client.ApiClient(cfg)
        core, co = client.CoreV1Api(api), client.CustomObjectsApi(api)
        container = [client.V1Container(name="c", image="x")]
        core.create_node(client.V1Node(metadata=client.V1ObjectMeta(name="w1")))
        core.create_namespaced_pod("default", client.V1Pod(metadata=client.V1ObjectMeta(name="p"),
                                                           spec=client.V1PodSpec(containers=container)))
        core.create_namespaced_service_account("default", client.V1ServiceAccount(
            metadata=client.V1ObjectMeta(name="default")))
        core.create_namespaced_secret("default", client.V1Secret(metadata=client.V1ObjectMeta(name="s"),
                                                                 string_data={"a": "b"}))
        kube.set_rbac(role)
        g, v, pl = "confidentialcontainers.org", "v1alpha1", "peerpods"
        allowed = [
            lambda: core.read_node("w1"),
            lambda: core.patch_node("w1", [{"op": "add", "path": "/metadata/annotations",
                                            "value": {"kata.peerpods.io/caa-owner": "u"}}]),
            lambda: core.patch_node_status("w1", [{"op": "add", "path": "/status",
                                                   "value": {"capacity": {"kata.peerpods.io/vm": "10"}}}]),
            lambda: core.read_namespaced_pod("p", "default"),
            lambda: core.read_namespaced_service_account("default", "default"),
            lambda: core.read_namespaced_secret("s", "default"),
            lambda: co.create_namespaced_custom_object(g, v, "default", pl, {
                "apiVersion": f"{g}/{v}", "kind": "PeerPod", "metadata": {"name": "pp"},
                "spec": {"cloudProvider": "aws", "instanceID": "i-1"}}),
            lambda: co.patch_namespaced_custom_object(g, v, "default", pl, "pp", {"metadata": {"labels": {"a": "b"}}}),
        ]
        for fn in allowed:
            fn()
        denied = [
            lambda: core.list_namespaced_secret("default"),
            lambda: core.list_node(),
            lambda: core.delete_namespaced_pod("p", "default"),
            lambda: core.patch_namespaced_pod("p", "default", [{"op": "add", "path": "/metadata/labels",
                                                                "value": {"a": "b"}}]),
            lambda: core.delete_node("w1"),
            lambda: core.read_namespaced_config_map("x", "default"),
            lambda: co.list_namespaced_custom_object(g, v, "default", pl),
            lambda: co.get_namespaced_custom_object(g, v, "default", pl, "pp"),
            lambda: co.delete_namespaced_custom_object(g, v, "default", pl, "pp"),
            lambda: core.create_namespaced_event("default", client.CoreV1Event(
                metadata=client.V1ObjectMeta(name="e"), involved_object=client.V1ObjectReference(name="p"))),
            lambda: core.create_namespaced_secret("default", client.V1Secret(metadata=client.V1ObjectMeta(name="z"))),
        ]
        for i, fn in enumerate(denied):
            try:
                fn()
                raise AssertionError(f"denied request {i} was allowed")
            except ApiException as e:
                assert e.status == 403, (i, e.status, e.body)
                assert "is forbidden: User" in json.loads(e.body)["message"]
        verbs = {(r["verb"], r["group"], r["resource"] + ("/" + r["subresource"] if r["subresource"] else ""))
                 for r in kube.requests() if r["status"] in (200, 201)}
        assert DAEMON_REQUESTS <= verbs, DAEMON_REQUESTS - verbs


@test
def kubectl_apply_k_into_fake(docs):
    d = tempfile.mkdtemp(prefix="caa-deploy-", dir="/tmp")
    try:
        with FakeKube(token="t", tls=True, python="/usr/bin/python3") as kube:
            env = dict(os.environ, KUBECONFIG=kube.kubeconfig(os.path.join(d, "config")), HOME=d)

            def k(*args):
                r = subprocess.run([KUBECTL, "--request-timeout=10s", *args], capture_output=True, text=True,
                                   env=env, timeout=120)
                assert r.returncode == 0, f"kubectl {' '.join(args)}: {r.stderr}"
                return r.stdout

            k("apply", "--validate=false", "-k", DEPLOY)
            out = k("apply", "--validate=false", "-k", DEPLOY)
            assert out.count("unchanged") == len(docs), out
            ds = json.loads(k("get", "daemonset", "-n", NS, "cloud-api-adaptor-daemonset", "-o", "json"))
            assert ds["spec"]["template"]["spec"]["serviceAccountName"] == "cloud-api-adaptor"
            stored = {(o["kind"], o["metadata"]["name"]) for o in kube.objects()}
            for doc in docs:
                assert (doc["kind"], doc["metadata"]["name"]) in stored, doc["metadata"]["name"]
            problems = [f"{o['kind']}/{o['metadata']['name']}: {p}" for o in kube.objects()
                        for p in kube_schema.check(o)]
            assert not problems, "\n".join(problems)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@test
def webhook_manifests(docs):
    """deploy/kubernetes/webhook: valid objects, upstream's registration, ports and certificate path
    consistent, and make-serving-cert.sh makes a certificate for the Service's DNS names."""
    r = subprocess.run([KUBECTL, "kustomize", os.path.join(DEPLOY, "webhook")], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    wdocs = [d for d in yaml.safe_load_all(r.stdout) if d]
    problems = [f"{d['kind']}/{d['metadata']['name']}: {p}" for d in wdocs for p in kube_schema.check(d)]
    assert not problems, "\n".join(problems)
    mwc = by_kind(wdocs, "MutatingWebhookConfiguration")["webhooks"][0]
    assert mwc["failurePolicy"] == "Fail" and mwc["sideEffects"] == "None"
    assert mwc["clientConfig"]["service"]["path"] == "/mutate-v1-pod"
    assert mwc["rules"][0]["operations"] == ["CREATE"] and mwc["rules"][0]["resources"] == ["pods"]
    svc = by_kind(wdocs, "Service")
    assert mwc["clientConfig"]["service"]["name"] == svc["metadata"]["name"]
    pod = by_kind(wdocs, "Deployment")["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["command"] == ["/usr/local/bin/peerpods-webhook"]
    assert svc["spec"]["ports"][0]["targetPort"] == 9443 and c["args"][c["args"].index("-port") + 1] == "9443"
    mount = c["volumeMounts"][0]
    assert mount["mountPath"] == "/tmp/k8s-webhook-server/serving-certs"
    vol = [v for v in pod["volumes"] if v["name"] == mount["name"]][0]
    assert vol["secret"]["secretName"] == "peer-pods-webhook-serving-cert"
    d = tempfile.mkdtemp()
    try:
        r = subprocess.run([os.path.join(DEPLOY, "webhook", "make-serving-cert.sh"), "-o", f"{d}/c", "-d", "2"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        r = subprocess.run(["openssl", "x509", "-in", f"{d}/c/tls.crt", "-noout", "-ext", "subjectAltName"],
                           capture_output=True, text=True, check=True)
        assert "DNS:peer-pods-webhook-svc.confidential-containers-system.svc" in r.stdout, r.stdout
        assert oct(os.stat(f"{d}/c/tls.key").st_mode & 0o777) == "0o600"
    finally:
        shutil.rmtree(d, ignore_errors=True)


@test
def peerpod_ctrl_manifests(docs):
    """deploy/kubernetes/peerpod-ctrl: valid objects, bindings pointing at the ServiceAccount, the
    controller started with the daemon's provider settings and leader election. (Its RBAC is exercised by
    running peerpod-ctrl under it: tests/integration/peerpod-ctrl.)"""
    r = subprocess.run([KUBECTL, "kustomize", os.path.join(DEPLOY, "peerpod-ctrl")], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    pdocs = [d for d in yaml.safe_load_all(r.stdout) if d]
    problems = [f"{d['kind']}/{d['metadata']['name']}: {p}" for d in pdocs for p in kube_schema.check(d)]
    assert not problems, "\n".join(problems)
    sa = by_kind(pdocs, "ServiceAccount")
    for kind in ("ClusterRoleBinding", "RoleBinding"):
        b = by_kind(pdocs, kind)
        assert b["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": NS}]
    assert not any("*" in x for d in pdocs if d["kind"] in ("ClusterRole", "Role") for rule in d["rules"]
                   for k in ("verbs", "resources", "apiGroups") for x in rule[k])
    spec = by_kind(pdocs, "Deployment")["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == sa["metadata"]["name"]
    c = spec["containers"][0]
    assert "peerpod-ctrl \"$CLOUD_PROVIDER\" -leader-elect" in c["command"][-1], c["command"]
    assert {"configMapRef": {"name": "peer-pods-cm"}} in c["envFrom"]


def main():
    print(f"1..{len(tests)}")
    if not KUBECTL:
        for i, fn in enumerate(tests, 1):
            print(f"not ok {i} - {fn.__name__} # kubectl not installed (scripts/install-deps.sh)")
        return 1
    docs = rendered()
    failed = tap.run(tests, docs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
