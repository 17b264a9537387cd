#!/usr/bin/env bash
# StartVM against the AWS and Azure fakes with realistic delays, and the
# adaptor's share of it: the shipped daemon (TLS on), the real forwarder on
# the VM's loopback address after the modelled boot, one agent call through
# the pod's agent socket. Method and results: bench/README.md, "startvm-cloud".
#
# usage: bench/startvm-cloud/run.sh [-b BUILD_DIR] [-B BEFORE_BUILD_DIR] [-c aws|azure] [-r RUNS]
#                                   [-l LATENCY_MS] [-d BOOT_S] [-p PENDING_S] [-P PROVISION_S] [-R RETRY_AFTER]
#                                   [-A DAEMON_FLAGS]
#   -b  meson build dir (default: build)
#   -B  another build dir whose daemon is measured in turn with this one ("before")
#   -c  one cloud only (default: both)
#   -r  runs per cloud and build (default 5)
#   -l  latency of every API call, ms (default 150)
#   -d  create -> forwarder listening, s (default 25)
#   -p  aws: pending -> running, s (default 12)
#   -P  azure: PUT -> operation done, s (default 20)
#   -R  azure: Retry-After seconds on the operation answers (default: no header)
#   -A  more daemon flags for every build (e.g. "-poll-interval 500ms")
set -euo pipefail

src_root=$(cd "$(dirname "$0")/../.." && pwd)
build=build
before=
extra=()
while getopts "b:B:c:r:l:d:p:P:R:A:h" opt; do
    case $opt in
    b) build=$OPTARG ;;
    B) before=$(cd "$OPTARG" && pwd) ;;
    c) extra+=(--cloud "$OPTARG") ;;
    r) extra+=(--runs "$OPTARG") ;;
    l) extra+=(--latency-ms "$OPTARG") ;;
    d) extra+=(--boot "$OPTARG") ;;
    p) extra+=(--pending "$OPTARG") ;;
    P) extra+=(--provision "$OPTARG") ;;
    R) extra+=(--retry-after "$OPTARG") ;;
    A) extra+=(--daemon-args "$OPTARG") ;;
    *) sed -n '2,19p' "$0"; exit 2 ;;
    esac
done
build=$(cd "$build" && pwd)
targets=(adaptor/cloud-api-adaptor adaptor/ctl/caa-ctl agent-protocol/forwarder/agent-protocol-forwarder
    tests/test-agent/caa-test-agent)
ninja -C "$build" "${targets[@]}" providers/caa-provider-aws.so providers/caa-provider-azure.so \
    >"$build/bench-startvm-cloud-ninja.log" 2>&1 || { cat "$build/bench-startvm-cloud-ninja.log" >&2; exit 1; }
daemons=(--daemon "after=$build/adaptor/cloud-api-adaptor")
if [ -n "$before" ]; then
    ninja -C "$before" adaptor/cloud-api-adaptor providers/caa-provider-aws.so \
        providers/caa-provider-azure.so >/dev/null
    daemons=(--daemon "before=$before/adaptor/cloud-api-adaptor" "${daemons[@]}")
fi

echo "# startvm-cloud benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
CAA_SOURCE_ROOT="$src_root" CAA_BUILD_ROOT="$build" \
CAA_FORWARDER="$build/agent-protocol/forwarder/agent-protocol-forwarder" \
CAA_TEST_AGENT="$build/tests/test-agent/caa-test-agent" CAA_CTL="$build/adaptor/ctl/caa-ctl" \
    python3 -B "$src_root/bench/startvm-cloud/bench.py" "${daemons[@]}" "${extra[@]}"
