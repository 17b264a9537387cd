#!/usr/bin/env bash
# Azure provider benchmark: 200 pod VMs created at once against the fake
# Azure endpoint with 1 s latency per call; runs the cases of bench/README.md
# (section azure) and prints one JSON line per run.
#
#   bench/azure/run.sh [-b BUILD_DIR] [-r RUNS] [-n PODS] [-l LATENCY_MS] [-S]
#   -S: the storm case only: PODS creates under ARM's documented rate limits
#       (bench/README.md, "Storm under ARM's rate limits")
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build runs=3 pods=200 lat=1000 storm=0
while getopts b:r:n:l:S o; do
  case $o in
    b) build=$(cd "$OPTARG" && pwd) ;; r) runs=$OPTARG ;; n) pods=$OPTARG ;; l) lat=$OPTARG ;;
    S) storm=1 ;;
    *) echo "usage: $0 [-b build] [-r runs] [-n pods] [-l latency_ms] [-S]"; exit 2 ;;
  esac
done
tool=$build/bench/azure/azure-bench
[ -x "$tool" ] || { echo "missing $tool: ninja -C $build bench/azure/azure-bench"; exit 1; }
export CAA_SOURCE_ROOT=$root
ulimit -n 4096 2>/dev/null || true
echo "# azure bench, $(date -u +%Y-%m-%dT%H:%MZ), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for r in $(seq "$runs"); do
  if [ "$storm" = 1 ]; then
    "$tool" -n "$pods" -latency-ms "$lat" -polls 1 -max-requests 256 -arm-limits
    continue
  fi
  # The official client's LRO (PUT, one status poll, final GET) + our NIC read;
  # the default cap of 256 requests in flight.
  "$tool" -n "$pods" -latency-ms "$lat" -polls 1 -max-requests 256
  # InProgress twice, then Succeeded.
  "$tool" -n "$pods" -latency-ms "$lat" -polls 3 -max-requests 256
  # Cold start: the first token is part of the clock.
  "$tool" -n "$pods" -latency-ms "$lat" -polls 1 -max-requests 256 -cold
  # A cap of 64 requests in flight.
  "$tool" -n "$pods" -latency-ms "$lat" -polls 1 -max-requests 64
done
