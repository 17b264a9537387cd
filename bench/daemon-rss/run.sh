#!/usr/bin/env bash
# Daemon memory: VmRSS/VmHWM (and the anonymous/file-backed split, and the
# number of shared objects mapped) of the daemon idle, with N pods in the
# created state, then after StopVM of all of them. Two variants:
#   test     tests/support/cloud-api-adaptor-test test: the daemon core with the
#            statically registered test provider (no provider module loaded)
#   libvirt  adaptor/cloud-api-adaptor libvirt -uri test:///default: the product
#            binary, which loads the libvirt provider module (providers are
#            modules: docs/provider-modules.md); libvirt's in-process test driver
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
ninja -C "$build" tests/support/cloud-api-adaptor-test adaptor/cloud-api-adaptor adaptor/ctl/caa-ctl \
  providers/caa-provider-libvirt.so >/dev/null

work=$(mktemp -d /dev/shm/caa-rss.XXXXXX)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

field() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$pid/status"; }
objects() { awk '$6 ~ /\.so/ { print $6 }' "/proc/$pid/maps" | sort -u | wc -l; }
report() { # variant label
  printf '%-8s %-20s VmRSS %6s KiB  VmHWM %6s KiB  RssAnon %6s KiB  RssFile %6s KiB  %3s shared objects\n' \
    "$1" "$2" "$(field VmRSS)" "$(field VmHWM)" "$(field RssAnon)" "$(field RssFile)" "$(objects)"
}

measure() { # variant daemon provider-args...
  local variant=$1 daemon=$2 sock=$work/hv.sock
  shift 2
  rm -rf "${work:?}"/*
  "$daemon" "$@" -socket "$sock" -pods-dir "$work/pods" -log-level warn 2>"$work/daemon.log" &
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
    'BEGIN { printf "%-8s %-20s %.2f s, %.2f ms per CreateVM (incl. starting caa-ctl)\n", v, "create time", b - a, (b - a) * 1000 / n }'
  for i in $(seq 1 "$pods"); do c stop "$(printf 'sb%062d' "$i")"; done
  report "$variant" "after $pods StopVM"
  kill -TERM "$pid"
  wait "$pid" || { echo "daemon exited with $?"; exit 1; }
  pid=
}

for run in $(seq 1 "$runs"); do
  echo "== run $run"
  measure test "$build/tests/support/cloud-api-adaptor-test" test -test-state-dir "$work/inst"
  measure libvirt "$build/adaptor/cloud-api-adaptor" libvirt -uri test:///default -pool-name default-pool
done
