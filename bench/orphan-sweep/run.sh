#!/usr/bin/env bash
# Orphan sweep: time for one sweep over N instances of this node that no pod
# knows (default 10,000), in the test provider's cloud (one JSON file per
# instance; bench.py) or in the AWS or Azure fake (clouds.py, the real daemon,
# paginated listing). See README.md here and bench/README.md.
#
#   bench/orphan-sweep/run.sh -b <build-dir> [-c test|aws|azure] [-n instances] [-r runs] [-p ARM page size]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build=build
n=10000
runs=3
cloud=test
page=1000
while getopts "b:c:n:r:p:" opt; do
  case $opt in
    b) build=$OPTARG ;;
    c) cloud=$OPTARG ;;
    n) n=$OPTARG ;;
    r) runs=$OPTARG ;;
    p) page=$OPTARG ;;
    *) echo "usage: $0 -b build-dir [-c test|aws|azure] [-n instances] [-r runs] [-p ARM page size]" >&2; exit 2 ;;
  esac
done
build="$(cd "$build" && pwd)"
if [ "$cloud" = test ]; then
  ninja -C "$build" tests/support/cloud-api-adaptor-test >/dev/null
  exec python3 "$here/bench.py" "$build/tests/support/cloud-api-adaptor-test" "$n" "$runs"
fi
ninja -C "$build" adaptor/cloud-api-adaptor "providers/caa-provider-$cloud.so" >/dev/null
CAA_DAEMON="$build/adaptor/cloud-api-adaptor" CAA_SOURCE_ROOT="$(cd "$here/../.." && pwd)" CAA_BUILD_ROOT="$build" \
  exec python3 "$here/clouds.py" "$cloud" "$n" "$runs" "$page"
