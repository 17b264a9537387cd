#!/usr/bin/python3
"""PeerPod objects against the fake API server: created once the instance exists (finalizer,
controller ownerReference to the Pod, spec {cloudProvider, instanceID}; valid against the CRD and
the Kubernetes models), released (finalizer removed) after StopVM deleted the instance; 3 + one
request per secret for CreateVM+StartVM; name persisted so a restarted daemon releases it; 409 on
create retried with a new name; the API server failing never fails StartVM/StopVM; no
CLOUD_PROVIDER: no PeerPods (as upstream)."""
import json
import os
import time

import kube_schema
from caa_harness import check, pod_annotations, run_main, sandbox_id
from kube_daemon import FakeKube, KubeDaemon, kube_requests, node_seed, tmpdir
from test_daemon_kube_secrets import NS, b64, secret, seed

UID = "8d3c1d7e-1111-4c55-9a0b-%012d" % os.getpid()
UID_ANN = "io.kubernetes.cri.sandbox-uid"


def annotations(uid=UID):
    return pod_annotations("web", NS, {UID_ANN: uid} if uid else None)


def peerpods(kube):
    return [o for o in kube.objects("peerpods") if o["metadata"]["namespace"] == NS]


def one_seed():
    cfg = {"auths": {"r.example": {"auth": b64("u:p")}}}
    return seed(["pull"], [], [secret("pull", ".dockerconfigjson", b64(json.dumps(cfg)))])


def start_daemon(kube, root=None, env=None):
    e = {"CLOUD_PROVIDER": "libvirt"}
    e.update(env or {})
    d = KubeDaemon(kube.kubeconfig(os.path.join(tmpdir(), "kc")), env=e, root=root).start()
    d.wait_log(r"advertised")
    return d


def lifecycle():
    with FakeKube(token="t1", seed=one_seed()) as kube:
        d = start_daemon(kube)
        sid = sandbox_id(1)
        kube.clear_requests()
        d.ctl_ok("create", sid, *annotations())
        d.ctl_ok("start", sid)
        d.wait_log(r"created PeerPod")
        reqs = kube_requests(kube)
        check(len(reqs) == 3 + 1, "CreateVM+StartVM made %d requests: %s" % (len(reqs), [(r["method"], r["path"]) for r in reqs]))
        pps = peerpods(kube)
        check(len(pps) == 1, "PeerPods: %s" % pps)
        pp = pps[0]
        inst = d.pod_state(sid)["instance_id"]
        md = pp["metadata"]
        check(md["name"].startswith("web-resource-") and len(md["name"]) == len("web-resource-") + 5, md["name"])
        check(md["finalizers"] == ["peer.pod/finalizer"], "finalizers %s" % md)
        check(md["ownerReferences"] == [{"apiVersion": "v1", "kind": "Pod", "name": "web", "uid": UID,
                                          "controller": True, "blockOwnerDeletion": True}], "owner %s" % md)
        check(pp["spec"] == {"cloudProvider": "libvirt", "instanceID": inst}, "spec %s" % pp["spec"])
        problems = kube_schema.check(pp)
        check(problems == [], "PeerPod against the CRD schema: %s" % problems)
        with open(os.path.join(d.pods, sid, "peerpod.json")) as f:
            check(json.load(f) == {"name": md["name"], "namespace": NS}, "peerpod.json")
        # /metrics through python3-prometheus-client's parser.
        m = d.metrics()
        check(m.get(("caa_pods", (("state", "ready"),))) == 1, "caa_pods ready: %r" % m)
        check(m.get(("caa_provider_requests_total", (("op", "create_instance"), ("result", "ok")))) == 1,
              "provider create counted")
        check(m.get(("caa_startvm_duration_seconds_count", ())) == 1, "StartVM observed")
        check(m.get(("caa_kube_requests_total", (("code", "201"), ("verb", "POST")))) == 1, "POST counted")
        deadline = time.monotonic() + 10
        while d.metrics().get(("caa_agent_proxy_connections", ())) != 1:
            check(time.monotonic() < deadline, "caa_agent_proxy_connections never reached 1")
            time.sleep(0.2)
        kube.clear_requests()
        d.ctl_ok("stop", sid)
        d.wait_log(r"released PeerPod")
        m = d.metrics()
        check(m.get(("caa_pods", (("state", "ready"),))) == 0, "no ready pod after StopVM")
        check(m.get(("caa_stopvm_duration_seconds_count", ())) == 1, "StopVM observed")
        check(m.get(("caa_provider_requests_total", (("op", "delete_instance"), ("result", "ok")))) == 1,
              "provider delete counted")
        reqs = kube_requests(kube)
        check([r["method"] for r in reqs] == ["PATCH"], "release requests %s" % reqs)
        check(not peerpods(kube)[0]["metadata"].get("finalizers"), "finalizer must be removed")
        check(d.stop() == 0, "clean exit")


def no_uid_annotation_reads_pod():
    with FakeKube(token="t1", seed=seed()) as kube:
        d = start_daemon(kube)
        sid = sandbox_id(2)
        d.ctl_ok("create", sid, *annotations(uid=None))
        d.ctl_ok("start", sid)
        d.wait_log(r"created PeerPod")
        pod_uid = [o for o in kube.objects("pods") if o["metadata"]["name"] == "web"][0]["metadata"]["uid"]
        check(peerpods(kube)[0]["metadata"]["ownerReferences"][0]["uid"] == pod_uid, "uid from the pod")
        d.ctl_ok("stop", sid)
        check(d.stop() == 0, "clean exit")


def restart_releases():
    with FakeKube(token="t1", seed=seed()) as kube:
        root = tmpdir()
        d = start_daemon(kube, root=root)
        sid = sandbox_id(3)
        d.ctl_ok("create", sid, *annotations())
        d.ctl_ok("start", sid)
        d.wait_log(r"created PeerPod")
        check(d.stop() == 0, "clean exit")  # pods and VMs outlive the daemon
        d2 = start_daemon(kube, root=root)
        d2.ctl_ok("stop", sid)
        d2.wait_log(r"released PeerPod")
        check(not peerpods(kube)[0]["metadata"].get("finalizers"), "the restarted daemon must release it")
        check(d2.stop() == 0, "clean exit")


def conflict_on_create():
    with FakeKube(token="t1", seed=seed()) as kube:
        d = start_daemon(kube)
        kube.fault(path="/peerpods", method="POST", status=409, count=1)
        sid = sandbox_id(4)
        d.ctl_ok("create", sid, *annotations())
        d.ctl_ok("start", sid)
        d.wait_log(r"created PeerPod")
        check(len(peerpods(kube)) == 1, "one PeerPod after the 409")
        d.ctl_ok("stop", sid)
        check(d.stop() == 0, "clean exit")


def api_failing_never_fails_vm_calls():
    with FakeKube(token="t1", seed=seed()) as kube:
        d = start_daemon(kube)
        sid = sandbox_id(5)
        d.ctl_ok("create", sid, *annotations())
        kube.fault(path="/peerpods", status=403, count=-1)
        d.ctl_ok("start", sid)
        line = d.wait_log(r"creating the PeerPod")
        check("POST /apis/confidentialcontainers.org/v1alpha1/namespaces/%s/peerpods" % NS in line and "403" in line,
              "the log names verb and resource: " + line)
        d.ctl_ok("stop", sid)
        check(d.instances() == [], "instance deleted")
        check(d.stop() == 0, "clean exit")


def no_cloud_provider():
    with FakeKube(token="t1", seed=seed()) as kube:
        d = KubeDaemon(kube.kubeconfig(os.path.join(tmpdir(), "kc")), env={"CLOUD_PROVIDER": ""}).start()
        sid = sandbox_id(6)
        d.ctl_ok("create", sid, *annotations())
        d.ctl_ok("start", sid)
        d.wait_log(r"CLOUD_PROVIDER is not set")
        check(peerpods(kube) == [], "no PeerPods without CLOUD_PROVIDER")
        d.ctl_ok("stop", sid)
        check(d.stop() == 0, "clean exit")


def rbac_from_the_manifest():
    """The whole daemon (node resource, secrets, PeerPod, release, shutdown) under the ClusterRole of
    deploy/kubernetes/rbac.yaml enforced by the fake's RBAC authorizer: nothing is refused."""
    import yaml

    src = os.environ.get("CAA_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", "..", ".."))
    with open(os.path.join(src, "deploy", "kubernetes", "rbac.yaml")) as f:
        role = [d for d in yaml.safe_load_all(f) if d and d.get("kind") == "ClusterRole"][0]
    with FakeKube(token="t1", seed=one_seed()) as kube:
        kube.set_rbac(role)
        d = start_daemon(kube)
        sid = sandbox_id(7)
        d.ctl_ok("create", sid, *annotations())
        d.ctl_ok("start", sid)
        d.wait_log(r"created PeerPod")
        d.ctl_ok("stop", sid)
        d.wait_log(r"released PeerPod")
        check(d.stop() == 0, "clean exit")
        used = sorted({(r["verb"], r["resource"] + ("/" + r["subresource"] if r["subresource"] else ""))
                       for r in kube.requests()})
        check(used == [("create", "peerpods"), ("get", "nodes"), ("get", "pods"), ("get", "secrets"),
                       ("get", "serviceaccounts"), ("patch", "nodes"), ("patch", "nodes/status"),
                       ("patch", "peerpods")], "the daemon's requests: %s" % used)
        check(d.count_log(r"HTTP 403") == 0, "a request was refused by the manifest's RBAC:\n" + d.log())
        print("# (verb, resource) the daemon used: %s" % used)


def main():
    for t in (rbac_from_the_manifest, lifecycle, no_uid_annotation_reads_pod, restart_releases, conflict_on_create,
              api_failing_never_fails_vm_calls, no_cloud_provider):
        t()
        print("ok - %s" % t.__name__)


if __name__ == "__main__":
    run_main(main)
