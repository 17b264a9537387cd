#!/usr/bin/env bash
# How fast the worker agent proxy notices a pod VM's forwarder that starts
# listening late (the VM boots): the proxy dials a port that refuses until the
# real agent-protocol-forwarder (TLS) starts there after a boot delay; the time
# from the forwarder's "listening" to the proxy's "connected" is the adaptor's
# readiness lag. Method and results: bench/README.md, "agent-ready".
#
# usage: bench/agent-ready/run.sh [-b BUILD_DIR] [-r RUNS] [-d BOOT_SECONDS] [-B DIR] [-D]
#   -b  meson build dir (default: build); builds the forwarder and proxy-host there
#   -r  runs per proxy (default 10)
#   -d  boot delay before the forwarder starts, seconds (default 3); each run adds a
#       different fraction of a second so the start falls at every phase of the retry timer
#   -B  directory holding the proxy-host of another build: measured in turn ("before")
#   -D  SYNs dropped (not refused) until the forwarder starts, as in a VPC before the VM's
#       network is up (root: runs in a network namespace of its own, nftables drops them;
#       the kernel resends SYNs at 1, 3, 7 s there, as the clouds' node kernels do)
set -euo pipefail

src_root=$(cd "$(dirname "$0")/../.." && pwd)
build=build
extra=()
netns=()
while getopts "b:r:d:B:Dh" opt; do
    case $opt in
    b) build=$OPTARG ;;
    r) extra+=(--runs "$OPTARG") ;;
    d) extra+=(--boot "$OPTARG") ;;
    B) extra+=(--before "$(cd "$OPTARG" && pwd)/proxy-host") ;;
    D)
        extra+=(--dropped)
        # lo up; Linux >= 6.7 resends the first 4 SYNs a second apart unless told not to.
        netns=(unshare -n sh -c 'ip link set lo up && { [ ! -e /proc/sys/net/ipv4/tcp_syn_linear_timeouts ] ||
            echo 0 >/proc/sys/net/ipv4/tcp_syn_linear_timeouts; } && exec "$@"' sh)
        ;;
    *) sed -n '2,17p' "$0"; exit 2 ;;
    esac
done
build=$(cd "$build" && pwd)
for tool in go python3; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool is not installed (scripts/install-deps.sh)" >&2; exit 1; }
done
ninja -C "$build" agent-protocol/forwarder/agent-protocol-forwarder tests/integration/proxy/proxy-host \
    >"$build/bench-agent-ready-ninja.log" 2>&1 || { cat "$build/bench-agent-ready-ninja.log" >&2; exit 1; }
mapfile -t gobins < <(python3 -B "$src_root/tests/interop/goproc.py" "$src_root/tests/interop/go" "$build/tests/interop")

echo "# agent-ready benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
CAA_FORWARDER="$build/agent-protocol/forwarder/agent-protocol-forwarder" \
CAA_PROXY_HOST="$build/tests/integration/proxy/proxy-host" \
CAA_SOURCE_ROOT="$src_root" \
    "${netns[@]}" python3 -B "$src_root/bench/agent-ready/bench.py" --goserver "${gobins[0]}" "${extra[@]}"
