#!/usr/bin/env bash
# bench/kube: CreateVM/StartVM/StopVM with image-pull secrets against the fake Kubernetes API
# server (tests/support/fake-kube-apiserver.py). Usage: run.sh -b <build-dir> [-n pods] [-s secrets]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=build n=1000 s=2
while getopts b:n:s: o; do
  case $o in b) build=$OPTARG ;; n) n=$OPTARG ;; s) s=$OPTARG ;; *) exit 2 ;; esac
done
build=$(cd "$build" && pwd)
export CAA_TEST_DAEMON=$build/tests/support/cloud-api-adaptor-test CAA_CTL=$build/adaptor/ctl/caa-ctl
export PYTHONDONTWRITEBYTECODE=1
exec /usr/bin/python3 "$here/bench_kube.py" -n "$n" -s "$s"
