#!/usr/bin/env bash
# AWS provider: N pods created at once against the fake EC2 endpoint with an
# injected latency per call (default: 200 pods, 1 s). See bench/README.md.
#
#   bench/aws/run.sh -b <build-dir> [-n pods] [-l latency-ms] [-c max-concurrent] [-r runs] [-t BUCKET:REFILL]
#   -t: storm mode, the fake throttles RunInstances with EC2's token bucket (e.g. 1000:2, the
#       documented RunInstances resource bucket) and the bench compares with what that allows.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build=build
pods=200
latency=1000
conc=128
runs=3
limit=
while getopts "b:n:l:c:r:t:" opt; do
  case $opt in
    b) build=$OPTARG ;;
    n) pods=$OPTARG ;;
    l) latency=$OPTARG ;;
    c) conc=$OPTARG ;;
    r) runs=$OPTARG ;;
    t) limit=$OPTARG ;;
    *) echo "usage: $0 -b build-dir [-n pods] [-l latency-ms] [-c max-concurrent] [-r runs] [-t BUCKET:REFILL]" >&2; exit 2 ;;
  esac
done
build="$(cd "$build" && pwd)"
ninja -C "$build" tests/integration/aws/aws-provider-driver >/dev/null
CAA_BUILD_ROOT="$build" CAA_SOURCE_ROOT="$root" \
  CAA_AWS_DRIVER="$build/tests/integration/aws/aws-provider-driver" \
  exec python3 "$here/bench.py" "$pods" "$latency" "$conc" "$runs" "$limit"
