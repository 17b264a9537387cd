#!/usr/bin/env bash
# Agent path benchmark: per-call latency (p50, p99) and calls/s of
# grpc.Health/Check and a 64 KiB WriteStdin through the worker agent proxy +
# agent-protocol-forwarder (plain TCP and TLS), against the Go client calling
# the Go server directly and through two socat byte relays; then the
# adaptor's memory per connected pod. Method: bench/README.md, "agent-path".
#
# usage: bench/agent-path/run.sh [-b BUILD_DIR] [-d SECONDS] [-r RUNS] [-c CONNS] [-p PODS] [-B DIR] [-l LOADS] [-S] [-H] [-M]
#   -b  meson build dir (default: build); builds agent-protocol-forwarder and proxy-host there
#   -d  seconds per measurement (default 5)
#   -r  runs; paths alternate within each run, tables show the median (default 3)
#   -c  connections for the throughput rows (default 16)
#   -p  pods for the memory measurement (default 100)
#   -B  directory holding agent-protocol-forwarder and proxy-host of another build: adds the
#       paths caa-before and caa-tls-before, measured in turn with the others
#   -l  workloads to run, e.g. 13 (1: Check x1, 2: Check xC, 3: WriteStdin x1, 4: WriteStdin xC)
#   -S  no socat path;  -H  no SSH (secure comms) path;  -M  no memory measurement
#   -P  pin: the Go client and server on CPU 0, the relays (proxy, forwarder, socat) on CPU 1
set -euo pipefail

src_root=$(cd "$(dirname "$0")/../.." && pwd)
build=build
secs=5
runs=3
conns=16
pods=100
extra=()
while getopts "b:d:r:c:p:B:l:SHMPh" opt; do
    case $opt in
    b) build=$OPTARG ;;
    d) secs=$OPTARG ;;
    r) runs=$OPTARG ;;
    c) conns=$OPTARG ;;
    p) pods=$OPTARG ;;
    B) extra+=(--before "$(cd "$OPTARG" && pwd)") ;;
    l) extra+=(--loads "$OPTARG") ;;
    S) extra+=(--no-socat) ;;
    H) extra+=(--no-ssh) ;;
    M) extra+=(--no-memory) ;;
    P) extra+=(--pin) ;;
    *) sed -n '2,20p' "$0"; exit 2 ;;
    esac
done
build=$(cd "$build" && pwd)

for tool in go socat python3; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool is not installed (scripts/install-deps.sh)" >&2; exit 1; }
done
ninja -C "$build" agent-protocol/forwarder/agent-protocol-forwarder tests/integration/proxy/proxy-host \
    >"$build/bench-agent-path-ninja.log" 2>&1 || { cat "$build/bench-agent-path-ninja.log" >&2; exit 1; }
mapfile -t gobins < <(python3 -B "$src_root/tests/interop/goproc.py" "$src_root/tests/interop/go" "$build/tests/interop")

echo "# agent-path benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
CAA_FORWARDER="$build/agent-protocol/forwarder/agent-protocol-forwarder" \
CAA_PROXY_HOST="$build/tests/integration/proxy/proxy-host" \
CAA_SOURCE_ROOT="$src_root" \
    python3 -B "$src_root/bench/agent-path/bench.py" --goserver "${gobins[0]}" --goclient "${gobins[1]}" \
    --secs "$secs" --runs "$runs" --conns "$conns" --pods "$pods" "${extra[@]}"
