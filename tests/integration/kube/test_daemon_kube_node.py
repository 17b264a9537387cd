#!/usr/bin/python3
"""The daemon against the fake Kubernetes API server: the node's extended resource (advertised with
the owner annotation, removed at shutdown only while still the owner), the API server down at start
and coming back, 401 until the token file rotates, 403 (the log names the verb and the resource),
429 storms with Retry-After, hostile answers; /startup follows it; /metrics parsed by
python3-prometheus-client; no Kubernetes configured: one log line, daemon unchanged."""
import os
import time

from caa_harness import check, run_main
from kube_daemon import (NODE, OWNER, POD_UID, RESOURCE, FakeKube, KubeDaemon, capacity, free_port,
                         kube_requests, kubeconfig_token_file, node_seed, tmpdir)


def wait(pred, what, timeout=15):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def advertise_and_release():
    with FakeKube(token="t1", tls=True, seed=[node_seed()]) as kube:
        d = KubeDaemon(kube.kubeconfig(os.path.join(tmpdir(), "kc"))).start()
        d.wait_log(r"advertised kata\.peerpods\.io/vm = 10 on node " + NODE)
        cap, ann = capacity(kube)
        check(cap == "10", "capacity %r" % cap)
        check(ann.get(OWNER) == POD_UID, "owner annotation %r" % ann)
        import kube_schema
        node = [n for n in kube.objects("nodes") if n["metadata"]["name"] == NODE][0]
        problems = kube_schema.check(node)
        check(problems == [], "the patched Node against the Kubernetes models: %s" % problems)
        types = sorted(r["contentType"] for r in kube_requests(kube, "PATCH", "/nodes/"))
        check(types == ["application/json-patch+json", "application/merge-patch+json"], "patch types %s" % types)
        check(d.probe("/startup")[0] == 200, "/startup must be 200 once the resource is set")
        check(d.probe("/healthz")[0] == 200, "/healthz")
        # Upstream's requests: one patch of the annotation, one JSON patch of the status.
        patches = kube_requests(kube, "PATCH", "/nodes/")
        check(len(patches) == 2, "start made %d PATCH requests" % len(patches))
        m = d.metrics()
        check(m.get(("caa_kube_requests_total", (("code", "200"), ("verb", "PATCH")))) == 2, "kube metric: %r" % m)
        check([v for k, v in m.items() if k[0] == "caa_build_info"] == [1], "caa_build_info")
        check(d.stop() == 0, "clean exit")
        check(capacity(kube)[0] is None, "the resource must be removed at shutdown")


def client_certificate_inline_data():
    """mTLS with the kubeconfig's *-data fields (no token), then insecure-skip-tls-verify."""
    import base64
    import json

    with FakeKube(tls=True, client_cert_cn="system:node:caa", seed=[node_seed()]) as kube:
        kc = kube.kubeconfig(os.path.join(tmpdir(), "kc"), client_cert=True)
        with open(kc) as f:
            cfg = json.load(f)

        def data(path):
            with open(path, "rb") as f:
                return base64.b64encode(f.read()).decode()

        cluster, user = cfg["clusters"][0]["cluster"], cfg["users"][0]["user"]
        cluster["certificate-authority-data"] = data(cluster.pop("certificate-authority"))
        user["client-certificate-data"] = data(user.pop("client-certificate"))
        user["client-key-data"] = data(user.pop("client-key"))
        with open(kc, "w") as f:
            json.dump(cfg, f)
        d = KubeDaemon(kc).start()
        d.wait_log(r"advertised kata\.peerpods\.io/vm")
        check(d.count_log(r"client certificate") >= 1, "the log says how the daemon authenticates")
        check(d.count_log(r"BEGIN|PRIVATE") == 0, "key material in the log")
        check(d.stop() == 0, "clean exit")
        # Without the CA: refused, unless the kubeconfig explicitly skips verification.
        del cluster["certificate-authority-data"]
        with open(kc, "w") as f:
            json.dump(cfg, f)
        d = KubeDaemon(kc).start()
        d.wait_log(r"advertising .*retrying")
        check(d.stop() == 0, "clean exit")
        cluster["insecure-skip-tls-verify"] = True
        with open(kc, "w") as f:
            json.dump(cfg, f)
        d = KubeDaemon(kc).start()
        d.wait_log(r"insecure-skip-tls-verify")
        d.wait_log(r"advertised kata\.peerpods\.io/vm")
        check(d.stop() == 0, "clean exit")


def not_owner_keeps_resource():
    with FakeKube(token="t1", tls=True, seed=[node_seed()]) as kube:
        d = KubeDaemon(kube.kubeconfig(os.path.join(tmpdir(), "kc"))).start()
        d.wait_log(r"advertised kata\.peerpods\.io/vm")
        # A newer daemon of a rolling update took over the node.
        kube.put_objects([dict(node_seed(annotations={OWNER: "newer-pod"}),
                               status={"capacity": {"cpu": "2", RESOURCE: "10"}})])
        check(d.stop() == 0, "clean exit")
        d.wait_log(r"owned by another daemon")
        check(capacity(kube)[0] == "10", "a resource owned by another daemon must stay")


def api_down_then_back():
    port = free_port()
    with FakeKube(token="t1", seed=[node_seed()], extra_args=["--port", str(port)]) as kube:
        kc = kube.kubeconfig(os.path.join(tmpdir(), "kc"))
    # The API server is gone: the daemon serves anyway; /startup stays 503.
    d = KubeDaemon(kc).start()
    d.wait_log(r"advertising kata\.peerpods\.io/vm on node .*retrying", timeout=30)
    check(d.probe("/startup")[0] == 503, "/startup must be 503 while the resource is not set")
    check(d.ctl_ok("version").strip() == "0.0.0", "the hypervisor service must answer meanwhile")
    with FakeKube(token="t1", seed=[node_seed()], extra_args=["--port", str(port)]) as kube:
        d.wait_log(r"advertised kata\.peerpods\.io/vm", timeout=40)
        check(capacity(kube)[0] == "10", "capacity after the API server came back")
        check(d.probe("/startup")[0] == 200, "/startup after the API server came back")
        m = d.metrics()
        check(m.get(("caa_kube_requests_total", (("code", "error"), ("verb", "PATCH"))), 0) >= 1,
              "failed attempts counted as code=error")
        check(d.stop() == 0, "clean exit")


def shutdown_while_api_down():
    port = free_port()
    with FakeKube(token="t1", seed=[node_seed()], extra_args=["--port", str(port)]) as kube:
        kc = kube.kubeconfig(os.path.join(tmpdir(), "kc"))
    d = KubeDaemon(kc).start()
    d.wait_log(r"retrying", timeout=30)
    t0 = time.monotonic()
    check(d.stop() == 0, "clean exit while the advertise is still retrying")
    check(time.monotonic() - t0 < 5, "the shutdown must not wait for the API server")


def token_rotation():
    with FakeKube(token="good-token", seed=[node_seed()]) as kube:
        kc, token_file = kubeconfig_token_file(kube, tmpdir(), "old-token")
        d = KubeDaemon(kc).start()
        d.wait_log(r"HTTP 401")
        check(capacity(kube)[0] is None, "no capacity with a refused token")
        with open(token_file + ".new", "w") as f:
            f.write("good-token\n")
        os.rename(token_file + ".new", token_file)
        d.wait_log(r"advertised kata\.peerpods\.io/vm", timeout=40)
        check(d.count_log(r"good-token|old-token") == 0, "a token appeared in the log")
        check(d.stop() == 0, "clean exit")


def forbidden_names_verb_and_resource():
    with FakeKube(token="t1", seed=[node_seed()]) as kube:
        kube.fault(path="/api/v1/nodes/%s/status" % NODE, method="PATCH", status=403, count=2)
        d = KubeDaemon(kube.kubeconfig(os.path.join(tmpdir(), "kc"))).start()
        line = d.wait_log(r"HTTP 403")
        check("PATCH /api/v1/nodes/%s/status" % NODE in line, "the 403 log line must name verb and resource: " + line)
        d.wait_log(r"advertised kata\.peerpods\.io/vm", timeout=40)
        check(d.stop() == 0, "clean exit")


def too_many_requests_storm():
    with FakeKube(token="t1", seed=[node_seed()]) as kube:
        kube.fault(path="/api/v1/nodes/", status=429, retry_after=1, count=4)
        d = KubeDaemon(kube.kubeconfig(os.path.join(tmpdir(), "kc"))).start()
        t0 = time.monotonic()
        d.wait_log(r"advertised kata\.peerpods\.io/vm", timeout=40)
        # Retry-After: 1 was honoured for each of the 4 refusals.
        check(time.monotonic() - t0 >= 3.5, "Retry-After not honoured")
        m = d.metrics()
        check(m.get(("caa_kube_requests_total", (("code", "429"), ("verb", "PATCH")))) == 4, "429s counted: %r" % m)
        check(d.stop() == 0, "clean exit")


def hostile_answers():
    with FakeKube(token="t1", seed=[node_seed()]) as kube:
        for body in ("garbage", "truncate", "close"):
            kube.fault(path="/api/v1/nodes/", status=200, body=body, count=1)
        d = KubeDaemon(kube.kubeconfig(os.path.join(tmpdir(), "kc"))).start()
        d.wait_log(r"advertised kata\.peerpods\.io/vm", timeout=40)
        check(d.stop() == 0, "clean exit")


def no_kubernetes():
    d = KubeDaemon("").start()
    d.wait_log(r"no Kubernetes API server configured")
    check(d.probe("/startup")[0] == 200, "/startup without Kubernetes: ready once serving")
    check(d.stop() == 0, "clean exit")


def bad_kubeconfig_stops_daemon():
    kc = os.path.join(tmpdir(), "kc")
    with open(kc, "w") as f:
        f.write("current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n"
                "clusters: [{name: c, cluster: {server: 'http://198.18.0.1:6443'}}]\n")
    d = KubeDaemon(kc).start(wait=False)
    rc = d.proc.wait(20)
    check(rc != 0, "a kubeconfig with plain http to a non-loopback host must stop the daemon")
    d.wait_log(r"Kubernetes API configuration")


def main():
    for t in (advertise_and_release, client_certificate_inline_data, not_owner_keeps_resource, api_down_then_back, shutdown_while_api_down, token_rotation,
              forbidden_names_verb_and_resource, too_many_requests_storm, hostile_answers, no_kubernetes,
              bad_kubeconfig_stops_daemon):
        t()
        print("ok - %s" % t.__name__)


run_main(main)
