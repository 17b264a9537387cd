#!/bin/bash
# peerpods-webhook throughput and latency on one core (method and results: bench/README.md).
#   bench/webhook/run.sh -b <build-dir> [-d seconds] [-r runs] [-c "1 8 32"]
# The webhook is pinned to CPU 0 (taskset), the load generator to CPU 1. Each run starts a fresh
# webhook on a free loopback port with an openssl-made certificate, warms up 1 s, then measures each
# connection count for D seconds; server CPU per review from /proc/<pid>/stat (utime+stime).
set -euo pipefail
build=build
duration=5
runs=3
conns="1 8 32"
while getopts "b:d:r:c:" o; do
  case $o in
    b) build=$OPTARG ;; d) duration=$OPTARG ;; r) runs=$OPTARG ;; c) conns=$OPTARG ;;
    *) exit 2 ;;
  esac
done
webhook=$build/cluster/webhook/peerpods-webhook
load=$build/bench/webhook/webhook-load
work=$(mktemp -d /tmp/caa-bench-webhook.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost -keyout "$work/tls.key" -out "$work/tls.crt" 2>/dev/null
# Upstream's richest test case: an init container and three containers with cpu, memory and a GPU.
python3 - "$work/review.json" <<'PY'
import json, sys
def c(name, req, lim):
    return {"name": name, "image": "busybox", "resources": {"requests": req, "limits": lim}}
pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bench", "namespace": "default",
       "labels": {"app": "bench"}, "annotations": {"example.com/a": "b"}},
       "spec": {"runtimeClassName": "kata-remote",
                "initContainers": [c("init", {"cpu": "1", "memory": "2Gi"}, {"cpu": "1", "memory": "2Gi"})],
                "containers": [c("c1", {"cpu": "2", "memory": "4Gi"}, {"cpu": "3", "memory": "5Gi"}),
                               c("c2", {"cpu": "1", "memory": "1Gi"}, {"cpu": "1", "memory": "1Gi"}),
                               c("c3", {"cpu": "1", "nvidia.com/gpu": "1"}, {"cpu": "1", "nvidia.com/gpu": "1"})]}}
review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
          "request": {"uid": "0b6f1c9e-7d1f-4c1b-9a51-6f2b3f0f0001", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                      "resource": {"group": "", "version": "v1", "resource": "pods"}, "namespace": "default",
                      "operation": "CREATE", "userInfo": {"username": "bench"}, "object": pod}}
json.dump(review, open(sys.argv[1], "w"))
PY
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
echo "review: $(wc -c < "$work/review.json") bytes; webhook on CPU 0, client on CPU 1; ${duration}s per point, $runs runs"
for run in $(seq 1 "$runs"); do
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  taskset -c 0 "$webhook" -cert-dir "$work" -host 127.0.0.1 -port "$port" -metrics-bind-address 0 \
    -health-probe-bind-address 0 -log-level warn &
  pid=$!
  sleep 0.5
  taskset -c 1 "$load" "$port" "$work/tls.crt" "$work/review.json" 4 1 > /dev/null
  for c in $conns; do
    t0=$(cpu_ticks "$pid")
    out=$(taskset -c 1 "$load" "$port" "$work/tls.crt" "$work/review.json" "$c" "$duration")
    t1=$(cpu_ticks "$pid")
    reqs=$(sed 's/.*"requests": \([0-9]*\).*/\1/' <<< "$out")
    echo "run $run conns $c $out cpu_us_per_review=$(awk -v t=$((t1 - t0)) -v hz="$hz" -v r="$reqs" 'BEGIN{printf "%.1f", t/hz*1e6/r}')"
  done
  kill "$pid"; wait "$pid" || true; pid=
done
