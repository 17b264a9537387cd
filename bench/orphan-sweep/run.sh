#!/usr/bin/env bash
# Orphan sweep: time for one sweep over N instances of this node that no pod
# knows (default 10,000), in the test provider's cloud (one JSON file per
# instance). See bench/README.md.
#
#   bench/orphan-sweep/run.sh -b <build-dir> [-n instances] [-r runs]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build=build
n=10000
runs=3
while getopts "b:n:r:" opt; do
  case $opt in
    b) build=$OPTARG ;;
    n) n=$OPTARG ;;
    r) runs=$OPTARG ;;
    *) echo "usage: $0 -b build-dir [-n instances] [-r runs]" >&2; exit 2 ;;
  esac
done
build="$(cd "$build" && pwd)"
ninja -C "$build" tests/support/cloud-api-adaptor-test >/dev/null
exec python3 "$here/bench.py" "$build/tests/support/cloud-api-adaptor-test" "$n" "$runs"
