#!/usr/bin/env bash
# Loop time of the worst request each daemon handler can be sent; see
# bench/hostile-requests/README.md.   run.sh -b <build-dir> [-r reps]
set -euo pipefail
build=build
reps=20
while getopts "b:r:" opt; do
  case $opt in
    b) build=$OPTARG ;;
    r) reps=$OPTARG ;;
    *) echo "usage: $0 -b build-dir [-r reps]" >&2; exit 2 ;;
  esac
done
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$build" && pwd)
export CAA_TEST_DAEMON="$build/tests/support/cloud-api-adaptor-test"
export CAA_CTL="$build/adaptor/ctl/caa-ctl"
exec python3 "$here/bench.py" -r "$reps"
