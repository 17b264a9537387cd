"""peerpods-webhook end to end: the real binary on loopback, HTTPS clients curl, openssl s_client and
Python's ssl; every returned JSON Patch applied with python3-jsonpatch and the resulting Pod checked
against the Kubernetes Pod model (python3-kubernetes, tests/support/kube_schema.py).

Run with /usr/bin/python3 (Debian's jsonpatch and kubernetes modules). Env: CAA_WEBHOOK (binary).
"""
import base64
import copy
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

import jsonpatch

import kube_schema
from free_port import free_port
import tap

BINARY = os.environ["CAA_WEBHOOK"]
CPU = "io.katacontainers.config.hypervisor.default_vcpus"
MEM = "io.katacontainers.config.hypervisor.default_memory"
GPU = "io.katacontainers.config.hypervisor.default_gpus"
VM = "kata.peerpods.io/vm"


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
            "-subj", f"/CN={name}", "-keyout", f"{d}/{name}.key", "-out", f"{d}/{name}.crt")
    return f"{d}/{name}.crt"


def issue(d, ca, out_dir):
    """Serving certificate for localhost/127.0.0.1 signed by ca, written as tls.crt/tls.key (atomically,
    as a Secret volume update swaps files)."""
    tmp = tempfile.mkdtemp(dir=d)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost",
            "-keyout", f"{tmp}/tls.key", "-out", f"{tmp}/tls.csr")
    with open(f"{tmp}/ext", "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", f"{tmp}/tls.csr", "-CA", f"{d}/{ca}.crt", "-CAkey", f"{d}/{ca}.key",
            "-CAcreateserial", "-days", "1", "-extfile", f"{tmp}/ext", "-out", f"{tmp}/tls.crt")
    os.makedirs(out_dir, exist_ok=True)
    for name in ("tls.key", "tls.crt"):
        os.replace(f"{tmp}/{name}", f"{out_dir}/{name}")
    shutil.rmtree(tmp)


class Webhook:
    def __init__(self, d, cert_dir, env=None):
        self.port, self.metrics_port, self.probe_port = free_port(), free_port(), free_port()
        self.log = open(f"{d}/webhook-{self.port}.log", "w+")
        e = dict(os.environ)
        e.update(env or {})
        self.proc = subprocess.Popen(
            [BINARY, "-cert-dir", cert_dir, "-host", "127.0.0.1", "-port", str(self.port),
             "-metrics-bind-address", f"127.0.0.1:{self.metrics_port}",
             "-health-probe-bind-address", f"127.0.0.1:{self.probe_port}", "-log-level", "debug"],
            stderr=self.log, env=e)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                if self.http_get(self.probe_port, "/healthz") == (200, "ok"):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("webhook did not start: " + self.logs())

    def http_get(self, port, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()

    def logs(self):
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        self.proc.terminate()
        rc = self.proc.wait(timeout=20)
        self.log.close()
        if rc != 0:
            raise RuntimeError(f"webhook exited {rc}")


class Fixture:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="caa-webhook-test-")
        self.certs = f"{self.dir}/certs"
        make_ca(self.dir, "ca1")
        make_ca(self.dir, "ca2")
        issue(self.dir, "ca1", self.certs)
        self.ca = f"{self.dir}/ca1.crt"
        self.wh = Webhook(self.dir, self.certs)

    def close(self):
        try:
            self.wh.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def curl(f, body, ca=None, content_type="application/json", path="/mutate-v1-pod", extra=()):
    """POST with curl; returns (status, body text)."""
    data = body if isinstance(body, bytes) else body.encode()
    r = subprocess.run(["curl", "-sS", "--max-time", "20", "--cacert", ca or f.ca, "-o", "-", "-w",
                        "\n%{http_code}", "-H", f"Content-Type: {content_type}", "--data-binary", "@-",
                        *extra, f"https://localhost:{f.wh.port}{path}"],
                       input=data, capture_output=True, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"curl rc {r.returncode}: {r.stderr.decode()}")
    text, _, code = r.stdout.decode().rpartition("\n")
    return int(code), text


def pod(containers, init=None, runtime_class="kata-remote", annotations=None):
    p = {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": "p", "namespace": "default"},
         "spec": {"containers": containers}}
    if runtime_class:
        p["spec"]["runtimeClassName"] = runtime_class
    if init:
        p["spec"]["initContainers"] = init
    if annotations is not None:
        p["metadata"]["annotations"] = annotations
    return p


def container(name, requests=None, limits=None):
    c = {"name": name, "image": "busybox"}
    res = {}
    if requests:
        res["requests"] = requests
    if limits:
        res["limits"] = limits
    if res:
        c["resources"] = res
    return c


def review(obj, uid="7b0c7d3e-1111-4c4c-9a9a-000000000001"):
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": uid, "kind": {"group": "", "version": "v1", "kind": "Pod"},
                        "resource": {"group": "", "version": "v1", "resource": "pods"},
                        "namespace": "default", "operation": "CREATE",
                        "userInfo": {"username": "tester"}, "object": obj, "dryRun": False}}


def admit(f, obj):
    """Sends a review; returns (response, mutated pod) after applying the patch with jsonpatch."""
    status, text = curl(f, json.dumps(review(obj)))
    assert status == 200, (status, text)
    answer = json.loads(text)
    assert answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview", answer
    resp = answer["response"]
    assert resp["uid"] == "7b0c7d3e-1111-4c4c-9a9a-000000000001"
    if "patch" not in resp:
        return resp, obj
    assert resp["patchType"] == "JSONPatch"
    patch = jsonpatch.JsonPatch(json.loads(base64.b64decode(resp["patch"])))
    mutated = patch.apply(copy.deepcopy(obj))
    problems = kube_schema.check(mutated)
    assert problems == [], problems
    return resp, mutated


def assert_cleared(p):
    cs = p["spec"]["containers"]
    assert cs[0]["resources"] == {"requests": {VM: "1"}, "limits": {VM: "1"}}, cs[0]
    for c in cs[1:] + p["spec"].get("initContainers", []):
        assert c["resources"] == {}, c


def annotations(p):
    return p["metadata"].get("annotations", {})


# --- upstream's mutating-webhook_test.go cases, through the wire -------------------------------------------

def test_cpu_mem_request_and_limit(f):
    resp, p = admit(f, pod([container("c", {"cpu": "2", "memory": "4Gi"}, {"cpu": "3", "memory": "5Gi"})]))
    assert resp["allowed"] is True
    assert annotations(p) == {CPU: "3", MEM: "5120"}, annotations(p)
    assert_cleared(p)


def test_cpu_request_only(f):
    _, p = admit(f, pod([container("c", {"cpu": "2"})]))
    assert annotations(p) == {CPU: "2"}
    assert_cleared(p)


def test_memory_request_only(f):
    _, p = admit(f, pod([container("c", {"memory": "4Gi"})]))
    assert annotations(p) == {MEM: "4096"}
    assert_cleared(p)


def test_gpu_request_only(f):
    _, p = admit(f, pod([container("c", {"nvidia.com/gpu": "1"}, {"nvidia.com/gpu": "1"})]))
    assert annotations(p) == {GPU: "1"}
    assert_cleared(p)


def test_no_requests(f):
    _, p = admit(f, pod([container("c")], annotations={"keep": "me"}))
    assert annotations(p) == {"keep": "me"}
    assert_cleared(p)


def test_request_equals_limit(f):
    _, p = admit(f, pod([container("c", {"cpu": "2", "memory": "4Gi"}, {"cpu": "2", "memory": "4Gi"})]))
    assert annotations(p) == {CPU: "2", MEM: "4096"}


def test_init_containers_and_several_containers(f):
    same = {"cpu": "1", "memory": "2Gi"}
    _, p = admit(f, pod(
        [container("c1", {"cpu": "2", "memory": "4Gi"}, {"cpu": "3", "memory": "5Gi"}),
         container("c2", {"cpu": "1", "memory": "1Gi"}, {"cpu": "1", "memory": "1Gi"}),
         container("c3", {"cpu": "1", "nvidia.com/gpu": "1"}, {"cpu": "1", "nvidia.com/gpu": "1"})],
        init=[container("i1", same, same)], annotations={"a/b~c": "escaped keys survive"}))
    assert annotations(p) == {CPU: "6", MEM: "8192", GPU: "1", "a/b~c": "escaped keys survive"}, annotations(p)
    assert_cleared(p)


def test_limits_only(f):
    # Upstream annotates only when requests are set (the API server defaults requests from limits
    # before admission, so real pods carry both).
    _, p = admit(f, pod([container("c", None, {"cpu": "2", "memory": "1Gi"})]))
    assert annotations(p) == {}
    assert_cleared(p)


def test_fractions_round_up(f):
    _, p = admit(f, pod([container("c", {"cpu": "500m", "memory": "100M"}),
                         container("d", {"cpu": "1100m", "memory": "1"})]))
    assert annotations(p) == {CPU: "2", MEM: "96"}, annotations(p)


def test_other_runtime_class_untouched(f):
    for rc in ("kata", None):
        obj = pod([container("c", {"cpu": "2"})], runtime_class=rc)
        resp, p = admit(f, obj)
        assert resp["allowed"] is True and "patch" not in resp and "patchType" not in resp, resp
        assert p == obj


# --- bad input ------------------------------------------------------------------------------------------

def test_malformed_reviews_get_400(f):
    cases = [b"", b"{", b"[1,2]", json.dumps({"apiVersion": "admission.k8s.io/v1beta1",
                                                "kind": "AdmissionReview", "request": {"uid": "x"}}).encode(),
             json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}).encode(),
             b"[" * 5000]
    for body in cases:
        status, text = curl(f, body)
        assert status == 400 and text.startswith("bad AdmissionReview: "), (body[:40], status, text)
    status, text = curl(f, "{}", content_type="text/plain")
    assert status == 400 and "application/json" in text
    status, _ = curl(f, "{}", path="/other")
    assert status == 404


def test_oversized_review_gets_400(f):
    big = json.dumps(review(pod([container("c")], annotations={"x": "y" * (8 * 1024 * 1024)})))
    status, text = curl(f, big)
    assert status == 400 and "larger than" in text, (status, text)


def test_undecodable_pod_is_denied_with_reason(f):
    for bad, why in (({"cpu": "two"}, "quantity"), ({"memory": "-1Gi"}, "negative")):
        status, text = curl(f, json.dumps(review(pod([container("c", bad)]))))
        resp = json.loads(text)["response"]
        assert status == 200 and resp["allowed"] is False and resp["status"]["code"] == 400, resp
        assert why in resp["status"]["message"], resp
    status, text = curl(f, json.dumps(review(pod([]))))
    assert json.loads(text)["response"]["allowed"] is False


def test_chunked_body_refused(f):
    status, text = curl(f, "{}", extra=("-H", "Transfer-Encoding: chunked"))
    assert status == 411, (status, text)


# --- TLS and HTTP transport -----------------------------------------------------------------------------

def s_client(f, *args, request=None):
    req = request if request is not None else b"GET /mutate-v1-pod HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    return subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{f.wh.port}", "-CAfile", f.ca,
                           "-verify_return_error", "-servername", "localhost", "-ign_eof", *args],
                          input=req, capture_output=True, timeout=20)


def test_openssl_s_client(f):
    body = json.dumps(review(pod([container("c", {"cpu": "1"})]))).encode()
    req = (b"POST /mutate-v1-pod HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
           b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    for version in ("-tls1_2", "-tls1_3"):
        r = s_client(f, version, request=req)
        out = r.stdout.decode(errors="replace")
        assert r.returncode == 0 and "Verify return code: 0 (ok)" in out, out + r.stderr.decode()
        assert "HTTP/1.1 200 OK" in out and '"allowed":true' in out, out
    r = s_client(f, "-tls1_1")
    assert r.returncode != 0, "TLS 1.1 must be refused"
    r = s_client(f, "-tls1_2", "-no_ticket")
    assert b"405 Method Not Allowed" in r.stdout


def test_keep_alive_and_pipelining(f):
    ctx = ssl.create_default_context(cafile=f.ca)
    body = json.dumps(review(pod([container("c", {"cpu": "1"})]))).encode()
    one = (b"POST /mutate-v1-pod HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
           b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    with socket.create_connection(("127.0.0.1", f.wh.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(one * 3)
            data = b""
            while data.count(b"HTTP/1.1 200 OK") < 3 or not data.endswith(b"}}"):
                chunk = s.recv(65536)
                assert chunk, data
                data += chunk
            s.sendall(one)  # the connection is still open
            assert s.recv(65536).startswith(b"HTTP/1.1 200 OK")


def test_plain_http_on_tls_port_and_garbage(f):
    for junk in (b"GET / HTTP/1.1\r\n\r\n", os.urandom(4096), b"\x16\x03\x01\x00\x05hello"):
        with socket.create_connection(("127.0.0.1", f.wh.port), timeout=10) as s:
            s.sendall(junk)
            try:
                while s.recv(4096):
                    pass
            except ConnectionResetError:
                pass
    assert curl(f, json.dumps(review(pod([container("c")]))))[0] == 200  # still serving


def test_certificate_reload(f):
    issue(f.dir, "ca2", f.certs)
    status, _ = curl(f, json.dumps(review(pod([container("c")]))), ca=f"{f.dir}/ca2.crt")
    assert status == 200
    try:
        curl(f, "{}", ca=f.ca)
        raise AssertionError("old CA still accepted after the reload")
    except RuntimeError as e:
        assert "rc 60" in str(e), e
    assert "serving certificate reloaded" in f.wh.logs()
    # A broken pair keeps the last good certificate.
    with open(f"{f.certs}/tls.key", "w") as k:
        k.write("not a key\n")
    assert curl(f, json.dumps(review(pod([container("c")]))), ca=f"{f.dir}/ca2.crt")[0] == 200
    assert "does not load, still using the previous one" in f.wh.logs()
    issue(f.dir, "ca1", f.certs)
    assert curl(f, json.dumps(review(pod([container("c")]))))[0] == 200


def test_metrics(f):
    status, text = f.wh.http_get(f.wh.metrics_port, "/metrics")
    assert status == 200
    values = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
              if line and not line.startswith("#")}
    assert values['peerpods_webhook_reviews_total{verdict="patched"}'] >= 10, values
    assert values['peerpods_webhook_reviews_total{verdict="bad_request"}'] >= 6, values
    assert values['peerpods_webhook_reviews_total{verdict="denied"}'] >= 3, values
    assert f.wh.http_get(f.wh.probe_port, "/readyz") == (200, "ok")


def test_environment_and_tls13_profile(f):
    other = Webhook(f.dir, f.certs, env={"TARGET_RUNTIMECLASS": "my-peer-pods",
                                         "POD_VM_EXTENDED_RESOURCE": "example.com/vm",
                                         "TLS_MIN_VERSION": "VersionTLS13"})
    try:
        port = f.wh.port
        f.wh.port = other.port
        try:
            _, p = admit(f, pod([container("c", {"cpu": "1"})], runtime_class="my-peer-pods"))
            assert p["spec"]["containers"][0]["resources"] == {"requests": {"example.com/vm": "1"},
                                                               "limits": {"example.com/vm": "1"}}
            assert s_client(f, "-tls1_2").returncode != 0, "TLS 1.2 must be refused with VersionTLS13"
            assert s_client(f, "-tls1_3").returncode == 0
        finally:
            f.wh.port = port
    finally:
        other.stop()
    bad = subprocess.run([BINARY, "-cert-dir", f.certs, "-port", "0"], env=dict(os.environ, TLS_MIN_VERSION="VersionTLS11"),
                         capture_output=True, timeout=20)
    assert bad.returncode != 0 and b"VersionTLS11" in bad.stderr, bad.stderr
    missing = subprocess.run([BINARY, "-cert-dir", f"{f.dir}/nothing-here", "-port", "0"], capture_output=True,
                             timeout=20)
    assert missing.returncode != 0 and b"tls.crt" in missing.stderr, missing.stderr


TESTS = [test_cpu_mem_request_and_limit, test_cpu_request_only, test_memory_request_only, test_gpu_request_only,
         test_no_requests, test_request_equals_limit, test_init_containers_and_several_containers,
         test_limits_only, test_fractions_round_up, test_other_runtime_class_untouched,
         test_malformed_reviews_get_400, test_oversized_review_gets_400, test_undecodable_pod_is_denied_with_reason,
         test_chunked_body_refused, test_openssl_s_client, test_keep_alive_and_pipelining,
         test_plain_http_on_tls_port_and_garbage, test_certificate_reload, test_metrics,
         test_environment_and_tls13_profile]

if __name__ == "__main__":
    print(f"1..{len(TESTS)}")
    fx = Fixture()
    try:
        failed = tap.run(TESTS, fx)
    finally:
        fx.close()
    sys.exit(1 if failed else 0)
