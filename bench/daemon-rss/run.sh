#!/usr/bin/env bash
# Daemon memory: VmRSS/VmHWM (and the anonymous/file-backed split, and the
# number of shared objects mapped) of the daemon idle, with N pods in the
# created state, then after StopVM of all of them. Variants:
#   test        tests/support/cloud-api-adaptor-test test: the daemon core with
#               the statically registered test provider (no provider module)
#   test-notls  the same with -disable-tls (no TLS material made at start)
#   libvirt     adaptor/cloud-api-adaptor libvirt -uri test:///default: the
#               product binary, which loads the libvirt provider module
#               (docs/provider-modules.md); libvirt's in-process test driver
#   all-linked  bench/daemon-rss/cloud-api-adaptor-all-linked test: as before
#               provider modules, every provider linked in; test provider
# In the first run, the idle point also lists the largest mappings (smaps Rss).
#
#   bench/daemon-rss/run.sh -b <build-dir> [-n pods] [-r runs] [-v "variants"]
#
# The pods dir lives on tmpfs (/dev/shm), like /run/peerpod on a node.
set -euo pipefail

build=build
pods=1000
runs=3
variants="test test-notls libvirt all-linked"
while getopts "b:n:r:v:" opt; do
  case $opt in
    b) build=$OPTARG ;;
    n) pods=$OPTARG ;;
    r) runs=$OPTARG ;;
    v) variants=$OPTARG ;;
    *) echo "usage: $0 -b build-dir [-n pods] [-r runs] [-v variants]" >&2; exit 2 ;;
  esac
done
ctl=$build/adaptor/ctl/caa-ctl
ninja -C "$build" tests/support/cloud-api-adaptor-test adaptor/cloud-api-adaptor adaptor/ctl/caa-ctl \
  providers/caa-provider-libvirt.so bench/daemon-rss/cloud-api-adaptor-all-linked >/dev/null

work=$(mktemp -d /dev/shm/caa-rss.XXXXXX)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

field() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$pid/status"; }
objects() { awk '$6 ~ /\.so/ { print $6 }' "/proc/$pid/maps" | sort -u | wc -l; }
top_mappings() { # variant
  awk '/^[0-9a-f]+-[0-9a-f]+ / { name = $6 == "" ? "[anon]" : $6 } /^Rss:/ { rss[name] += $2 }
       END { for (n in rss) printf "%7d KiB  %s\n", rss[n], n }' "/proc/$pid/smaps" |
    sort -rn | head -8 | sed "s|^|$1    |"
}
report() { # variant label
  printf '%-10s %-18s VmRSS %6s KiB  VmHWM %6s KiB  RssAnon %6s KiB  RssFile %6s KiB  %3s shared objects\n' \
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
  [ "$run" != 1 ] || top_mappings "$variant"
  local t0 t1
  t0=$(date +%s.%N)
  for i in $(seq 1 "$pods"); do
    c create "$(printf 'sb%062d' "$i")" -a io.kubernetes.cri.sandbox-name="pod-$i" \
      -a io.kubernetes.cri.sandbox-namespace=bench
  done
  t1=$(date +%s.%N)
  report "$variant" "$pods pods created"
  awk -v a="$t0" -v b="$t1" -v n="$pods" -v v="$variant" \
    'BEGIN { printf "%-10s %-18s %.2f s, %.2f ms per CreateVM (incl. starting caa-ctl)\n", v, "create time", b - a, (b - a) * 1000 / n }'
  for i in $(seq 1 "$pods"); do c stop "$(printf 'sb%062d' "$i")"; done
  report "$variant" "after $pods StopVM"
  kill -TERM "$pid"
  wait "$pid" || { echo "daemon exited with $?"; exit 1; }
  pid=
}

for run in $(seq 1 "$runs"); do
  echo "== run $run"
  for v in $variants; do
    case $v in
    test) measure test "$build/tests/support/cloud-api-adaptor-test" test -test-state-dir "$work/inst" ;;
    test-notls)
      measure test-notls "$build/tests/support/cloud-api-adaptor-test" test -test-state-dir "$work/inst" \
        -disable-tls ;;
    libvirt)
      measure libvirt "$build/adaptor/cloud-api-adaptor" libvirt -uri test:///default -pool-name default-pool ;;
    all-linked)
      measure all-linked "$build/bench/daemon-rss/cloud-api-adaptor-all-linked" test -test-state-dir "$work/inst" ;;
    *) echo "unknown variant $v" >&2; exit 2 ;;
    esac
  done
done
