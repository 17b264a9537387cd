#!/usr/bin/python3
"""bench/kube: N pods (CreateVM with image-pull secrets, StartVM, StopVM) through the test daemon,
once with Kubernetes off and once against the fake Kubernetes API server; prints the CreateVM and
StartVM latency (median, p90, p99) of both, the added latency, and the API requests per pod.
Method and results: bench/README.md ("kube")."""
import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path[:0] = [os.path.join(SRC, "tests", "integration"), os.path.join(SRC, "tests", "support"),
                os.path.join(SRC, "tests", "integration", "kube")]

import caa_harness  # noqa: E402
from caa_harness import TtrpcClient, check, pb_bytes, sandbox_id  # noqa: E402
from kube_daemon import FakeKube, KubeDaemon, node_seed, tmpdir  # noqa: E402
from test_daemon_kube_secrets import NS, b64, secret  # noqa: E402

SVC = "hypervisor.Hypervisor"


def create_payload(sid, uid):
    ann = {"io.kubernetes.cri.sandbox-name": "web", "io.kubernetes.cri.sandbox-namespace": NS,
           "io.kubernetes.cri.sandbox-uid": uid}
    body = pb_bytes(1, sid)
    for k, v in ann.items():
        body += pb_bytes(2, pb_bytes(1, k) + pb_bytes(2, v))
    return body


def seed(n_secrets):
    names = ["pull-%d" % i for i in range(n_secrets)]
    secrets = [secret(n, ".dockerconfigjson",
                      b64(json.dumps({"auths": {"reg%d.example" % i: {"auth": b64("user:pw%d" % i)}}})))
               for i, n in enumerate(names)]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": NS, "uid": "u-web"},
           "spec": {"containers": [{"name": "c", "image": "nginx"}],
                    "imagePullSecrets": [{"name": n} for n in names[1:]]}}
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": NS},
          "imagePullSecrets": [{"name": n} for n in names[:1]]}
    return [node_seed(), {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}, pod, sa, *secrets]


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def cpu_seconds(pid):
    """User + system CPU time of a process (all threads), from /proc."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(d, n):
    cpu0 = cpu_seconds(d.proc.pid)
    cli = TtrpcClient(d.sock, timeout=60)
    create_ms, start_ms = [], []
    for i in range(n):
        sid = sandbox_id(100000 + i)
        t0 = time.perf_counter()
        code, msg, _ = cli.call(SVC, "CreateVM", create_payload(sid, "uid-%d" % i))
        t1 = time.perf_counter()
        check(code == 0, "CreateVM: %d %s" % (code, msg))
        code, msg, _ = cli.call(SVC, "StartVM", pb_bytes(1, sid))
        t2 = time.perf_counter()
        check(code == 0, "StartVM: %d %s" % (code, msg))
        code, msg, _ = cli.call(SVC, "StopVM", pb_bytes(1, sid))
        check(code == 0, "StopVM: %d %s" % (code, msg))
        create_ms.append((t1 - t0) * 1000)
        start_ms.append((t2 - t1) * 1000)
    cli.close()
    run.cpu_ms_per_pod = (cpu_seconds(d.proc.pid) - cpu0) * 1000 / n
    return create_ms, start_ms


def summary(name, values):
    return "%-28s median %7.2f ms  p90 %7.2f ms  p99 %7.2f ms" % (name, statistics.median(values), pct(values, 90),
                                                                   pct(values, 99))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("-s", "--secrets", type=int, default=2)
    args = ap.parse_args()
    if not caa_harness.DAEMON:
        sys.exit("set CAA_TEST_DAEMON and CAA_CTL (bench/kube/run.sh does)")

    off = KubeDaemon("", env={"CLOUD_PROVIDER": "libvirt"}).start()
    base_create, base_start = run(off, args.n)
    base_cpu = run.cpu_ms_per_pod
    check(off.stop() == 0, "clean exit")

    with FakeKube(token="bench-token", seed=seed(args.secrets)) as kube:
        d = KubeDaemon(kube.kubeconfig(os.path.join(tmpdir(), "kc")), env={"CLOUD_PROVIDER": "libvirt"}).start()
        d.wait_log(r"advertised")
        kube.clear_requests()
        k_create, k_start = run(d, args.n)
        k_cpu = run.cpu_ms_per_pod
        d.wait_log(r"released PeerPod")
        time.sleep(1)  # the last PeerPod release
        reqs = kube.requests()
        check(d.stop() == 0, "clean exit")
        peerpods = [o for o in kube.objects("peerpods") if not o["metadata"].get("finalizers")]

    create_side = [r for r in reqs if r["method"] in ("GET", "POST")]
    print("pods: %d, pull secrets per pod: %d (1 from the service account, %d from the pod)" %
          (args.n, args.secrets, args.secrets - 1))
    print(summary("CreateVM, Kubernetes off", base_create))
    print(summary("CreateVM, Kubernetes on", k_create))
    print(summary("StartVM, Kubernetes off", base_start))
    print(summary("StartVM, Kubernetes on", k_start))
    print("added CreateVM latency: median %.2f ms, p99 %.2f ms" %
          (statistics.median(k_create) - statistics.median(base_create), pct(k_create, 99) - pct(base_create, 99)))
    print("daemon CPU per pod (CreateVM+StartVM+StopVM): %.2f ms off, %.2f ms on (+%.2f ms)" %
          (base_cpu, k_cpu, k_cpu - base_cpu))
    print("API requests per pod: %.2f for CreateVM+StartVM (GET+POST; upstream: 3 + %d = %d), %.2f at StopVM"
          " (PATCH); %d requests in all, %d PeerPods released" %
          (len(create_side) / args.n, args.secrets, 3 + args.secrets,
           len([r for r in reqs if r["method"] == "PATCH"]) / args.n, len(reqs), len(peerpods)))
    by = {}
    for r in reqs:
        parts = r["path"].strip("/").split("/")
        resource = parts[-1] if r["method"] == "POST" else parts[-2]  # collection / object paths
        key = r["method"] + " " + resource
        by[key] = by.get(key, 0) + 1
    print("by kind: " + ", ".join("%s %d" % kv for kv in sorted(by.items())))


if __name__ == "__main__":
    try:
        main()
    finally:
        caa_harness._cleanup()
