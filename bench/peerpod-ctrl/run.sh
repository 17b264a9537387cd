#!/bin/bash
# peerpod-ctrl memory with many PeerPods (method and results: bench/README.md).
#   bench/peerpod-ctrl/run.sh -b <build-dir> [-n 10000] [-o 100] [-c cycles]
# Starts the fake API server (tests/support) over TLS, stores N live PeerPods and O orphans (being deleted,
# with finalizer and an instance in the test provider), runs peerpod-ctrl-test (the real controller with
# the test provider) with a 2 s resync, waits until the orphans are collected, lets it list everything
# for C more cycles and reports VmRSS/VmHWM and the controller's CPU time.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=build
n=10000
orphans=100
cycles=5
while getopts "b:n:o:c:" o; do
  case $o in
    b) build=$OPTARG ;; n) n=$OPTARG ;; o) orphans=$OPTARG ;; c) cycles=$OPTARG ;; *) exit 2 ;;
  esac
done
export CAA_PEERPOD_CTRL=$build/tests/support/peerpod-ctrl-test
PYTHONPATH=$here/../../tests/support exec /usr/bin/python3 - "$n" "$orphans" "$cycles" <<'PY'
import json, os, shutil, subprocess, sys, tempfile, time, urllib.request
from kube_fake import FakeKube

n, orphans, cycles = (int(x) for x in sys.argv[1:4])
d = tempfile.mkdtemp(prefix="caa-bench-ctrl-")
state = os.path.join(d, "instances")
os.mkdir(state)
proc = None
try:
    with FakeKube(token="t", tls=True, python="/usr/bin/python3") as kube:
        objs = []
        for i in range(n + orphans):
            orphan = i >= n
            md = {"name": f"pod{i}-resource-abcde", "namespace": f"ns{i % 50}", "finalizers": ["peer.pod/finalizer"],
                  "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": f"pod{i}", "uid": f"uid-{i}"}]}
            if orphan:
                md["deletionTimestamp"] = "2026-12-07T10:00:00Z"
                with open(os.path.join(state, f"i-{i}.json"), "w") as f:
                    json.dump({"id": f"i-{i}", "name": f"podvm-{i}", "ips": []}, f)
            objs.append({"apiVersion": "confidentialcontainers.org/v1alpha1", "kind": "PeerPod", "metadata": md,
                         "spec": {"cloudProvider": "test", "instanceID": f"i-{i}"}})
        for k in range(0, len(objs), 1000):
            kube.put_objects(objs[k:k + 1000])
        cfg = kube.kubeconfig(os.path.join(d, "kubeconfig"))
        log = open(os.path.join(d, "ctrl.log"), "w")
        t0 = time.time()
        proc = subprocess.Popen([os.environ["CAA_PEERPOD_CTRL"], "test", "-test-state-dir", state, "-kubeconfig", cfg,
                                 "-resync-period", "2s", "-metrics-bind-address", "0",
                                 "-health-probe-bind-address", "0", "-log-level", "warn"], stderr=log)

        def status():
            with open(f"/proc/{proc.pid}/status") as f:
                return {l.split(":")[0]: l.split(":")[1].strip() for l in f}

        while len(os.listdir(state)) > 0:
            if time.time() - t0 > 300:
                raise SystemExit("orphans not collected in 300 s")
            time.sleep(0.2)
        collected = time.time() - t0
        lists = lambda: sum(1 for r in kube.requests() if r["method"] == "GET" and r["path"].endswith("/peerpods")
                            and "continue" not in r["query"])
        start = lists()
        while lists() < start + cycles:
            time.sleep(0.2)
        st = status()
        with open(f"/proc/{proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        left = len(kube.objects("peerpods"))
        print(f"peerpods={n} orphans={orphans} collected_in_s={collected:.1f} peerpods_left={left} "
              f"list_cycles_after={cycles} VmRSS={st['VmRSS']} VmHWM={st['VmHWM']} cpu_s={cpu:.2f}")
finally:
    if proc and proc.poll() is None:
        proc.terminate()
        proc.wait()
    shutil.rmtree(d, ignore_errors=True)
PY
