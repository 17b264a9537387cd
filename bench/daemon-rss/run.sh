#!/usr/bin/env bash
# Daemon memory: VmRSS/VmHWM (and the anonymous/file-backed split) of the
# daemon with the "test" provider, idle and with N pods in the created state,
# then after StopVM of all of them. Two binaries, same code:
#   full       tests/support/cloud-api-adaptor-test  (every compiled-in provider linked, as the product)
#   core-only  bench/daemon-rss/cloud-api-adaptor-core-only (no cloud provider libraries)
#
#   bench/daemon-rss/run.sh -b <build-dir> [-n pods] [-r runs]
#
# The pods dir lives on tmpfs (/dev/shm), like /run/peerpod on a node.
set -euo pipefail

build=build
pods=1000
runs=3
while getopts "b:n:r:" opt; do
  case $opt in
    b) build=$OPTARG ;;
    n) pods=$OPTARG ;;
    r) runs=$OPTARG ;;
    *) echo "usage: $0 -b build-dir [-n pods] [-r runs]" >&2; exit 2 ;;
  esac
done
ctl=$build/adaptor/ctl/caa-ctl
ninja -C "$build" tests/support/cloud-api-adaptor-test bench/daemon-rss/cloud-api-adaptor-core-only \
  adaptor/ctl/caa-ctl >/dev/null

work=$(mktemp -d /dev/shm/caa-rss.XXXXXX)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

field() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$pid/status"; }
report() { # variant label
  printf '%-10s %-22s VmRSS %6s KiB  VmHWM %6s KiB  RssAnon %6s KiB  RssFile %6s KiB\n' \
    "$1" "$2" "$(field VmRSS)" "$(field VmHWM)" "$(field RssAnon)" "$(field RssFile)"
}

measure() { # variant binary
  local variant=$1 daemon=$2 sock=$work/hv.sock
  rm -rf "${work:?}"/*
  "$daemon" test -socket "$sock" -pods-dir "$work/pods" -test-state-dir "$work/inst" -log-level warn \
    2>"$work/daemon.log" &
  pid=$!
  for _ in $(seq 1 500); do [ -S "$sock" ] && break; sleep 0.01; done
  c() { "$ctl" -socket "$sock" "$@" >/dev/null; }
  c version
  report "$variant" "idle"
  local t0 t1
  t0=$(date +%s.%N)
  for i in $(seq 1 "$pods"); do
    c create "$(printf 'sb%062d' "$i")" -a io.kubernetes.cri.sandbox-name="pod-$i" \
      -a io.kubernetes.cri.sandbox-namespace=bench
  done
  t1=$(date +%s.%N)
  report "$variant" "$pods pods created"
  awk -v a="$t0" -v b="$t1" -v n="$pods" -v v="$variant" \
    'BEGIN { printf "%-10s %-22s %.2f s, %.2f ms per CreateVM (incl. starting caa-ctl)\n", v, "create time", b - a, (b - a) * 1000 / n }'
  for i in $(seq 1 "$pods"); do c stop "$(printf 'sb%062d' "$i")"; done
  report "$variant" "after $pods StopVM"
  kill -TERM "$pid"
  wait "$pid" || { echo "daemon exited with $?"; exit 1; }
  pid=
}

for run in $(seq 1 "$runs"); do
  echo "== run $run"
  measure full "$build/tests/support/cloud-api-adaptor-test"
  measure core-only "$build/bench/daemon-rss/cloud-api-adaptor-core-only"
done
