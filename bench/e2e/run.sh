#!/usr/bin/env bash
# StartVM -> agent ready on the local libvirt/QEMU cloud, split into its steps, and the
# adaptor's CPU time and memory meanwhile (bench/README.md, section "e2e").
# Usage: bench/e2e/run.sh [-b BUILD_DIR] [-r RUNS] [-j RESULTS.json]    (as root)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build
args=()
while getopts "b:r:j:" o; do
  case $o in
    b) build=$OPTARG ;;
    r) args+=(--runs "$OPTARG") ;;
    j) args+=(--json "$OPTARG") ;;
    *) echo "usage: $0 [-b BUILD_DIR] [-r RUNS] [-j RESULTS.json]" >&2; exit 2 ;;
  esac
done
ninja -C "$build" adaptor/cloud-api-adaptor providers/caa-provider-libvirt.so adaptor/podnetwork/caa-podnet-worker.so \
  adaptor/ctl/caa-ctl \
  agent-protocol/forwarder/agent-protocol-forwarder agent-protocol/process-user-data/process-user-data \
  tests/test-agent/caa-test-agent >/dev/null
exec python3 "$root/bench/e2e/bench.py" --build "$build" "${args[@]}"
