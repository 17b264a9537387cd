#!/usr/bin/env bash
# hypervisor.Hypervisor/Version round trips per second, over 1 and over 64
# connections, for several servers driven by the same Go ttRPC client
# (containerd/ttrpc 1.1.1, tests/interop/go goclient "throughput").
#
# usage: bench/ttrpc-version/run.sh [-b BUILD_DIR] [-d SECONDS] [-r RUNS] [-c CONNS] [-s NAME=COMMAND]...
#   -b  meson build dir holding tests/interop/c-peer (default: build)
#   -d  seconds per measurement (default 5)
#   -r  runs; servers alternate within each run, the table shows the median (default 3)
#   -c  comma-separated connection counts (default 1,64)
#   -s  a server to measure; COMMAND is run through bash with {sock} replaced by a
#       fresh unix socket path and {addr} by unix:{sock}. It must serve
#       hypervisor.Hypervisor/Version on that socket. Repeatable; without -s:
#         c=<build>/tests/interop/c-peer server {addr}     (our C ttRPC library)
#         go=<build>/tests/interop/go-bin/goserver {addr}  (Go containerd/ttrpc)
#       e.g. -s 'caa=build/adaptor/cloud-api-adaptor libvirt -socket {sock}'
set -euo pipefail

src_root=$(cd "$(dirname "$0")/../.." && pwd)
build=build
secs=5
runs=3
conn_list=1,64
servers=()
while getopts "b:d:r:c:s:h" opt; do
    case $opt in
    b) build=$OPTARG ;;
    d) secs=$OPTARG ;;
    r) runs=$OPTARG ;;
    c) conn_list=$OPTARG ;;
    s) servers+=("$OPTARG") ;;
    *) sed -n '2,17p' "$0"; exit 2 ;;
    esac
done
build=$(cd "$build" && pwd)
IFS=, read -r -a conns <<<"$conn_list"

command -v go >/dev/null || { echo "run.sh: go is not installed (scripts/install-deps.sh)" >&2; exit 1; }
mapfile -t gobins < <(python3 -B "$src_root/tests/interop/goproc.py" "$src_root/tests/interop/go" "$build/tests/interop")
goclient=${gobins[1]}
if [ ${#servers[@]} -eq 0 ]; then
    if ! ninja -C "$build" tests/interop/c-peer >"$build/bench-ttrpc-ninja.log" 2>&1; then
        [ -x "$build/tests/interop/c-peer" ] || { cat "$build/bench-ttrpc-ninja.log" >&2; exit 1; }
        echo "run.sh: warning: could not rebuild c-peer, using the existing binary" >&2
    fi
    servers=("c=$build/tests/interop/c-peer server {addr}" "go=${gobins[0]} {addr}")
fi

tmp=$(mktemp -d /tmp/caa-bench-ttrpc.XXXXXX)
server_pid=
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# CPU time (user+system, clock ticks, all threads) the process has used so far.
cpu_ticks() {
    sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}
clk_tck=$(getconf CLK_TCK)

# measure <name> <command>: one run of every connection count against a fresh
# server; appends "name conns rate server-cpu-us-per-call" lines to $tmp/results.
measure() {
    local name=$1 cmd=$2 sock=$tmp/$1.sock
    cmd=${cmd//\{addr\}/unix:$sock}
    cmd=${cmd//\{sock\}/$sock}
    rm -f "$sock"
    # exec: the PID we hold is the server itself, not a wrapper shell.
    bash -c "exec $cmd" >"$tmp/$name.log" 2>&1 &
    server_pid=$!
    # Warm-up, which also waits (up to 30 s) for the socket to accept.
    if ! "$goclient" -wait 30s "unix:$sock" throughput 1 1 >/dev/null; then
        echo "run.sh: server '$name' did not answer Version; its log:" >&2
        tail -20 "$tmp/$name.log" >&2
        exit 1
    fi
    for n in "${conns[@]}"; do
        t0=$(cpu_ticks "$server_pid")
        out=$("$goclient" "unix:$sock" throughput "$n" "$secs")
        t1=$(cpu_ticks "$server_pid")
        rate=${out##*rate=}
        calls=${out##*calls=}
        calls=${calls%% *}
        us=$(awk -v t="$((t1 - t0))" -v hz="$clk_tck" -v c="$calls" 'BEGIN { printf "%.1f", t * 1e6 / hz / c }')
        echo "$name $n $rate $us" >>"$tmp/results"
        echo "  run $run  $name  conns=$n  $rate calls/s  server CPU ${us} us/call" >&2
    done
    kill "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=
}

echo "ttrpc-version: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores," \
    "load $(cut -d' ' -f1-3 /proc/loadavg); ${runs} runs x ${secs} s per point" >&2
for run in $(seq 1 "$runs"); do
    for s in "${servers[@]}"; do
        measure "${s%%=*}" "${s#*=}"
    done
done

median() {
    sort -n | awk '{ v[NR] = $1 } END { printf "%.1f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Per (server, conns), in the order the servers were given: median, min and
# max calls/s, and the median server CPU time per call.
printf '\n%-8s %6s %12s %10s %10s %16s\n' server conns "median/s" "min/s" "max/s" "srv CPU us/call"
for s in "${servers[@]}"; do
    name=${s%%=*}
    for n in "${conns[@]}"; do
        rates=$(awk -v s="$name" -v n="$n" '$1 == s && $2 == n { print $3 }' "$tmp/results" | sort -n)
        us=$(awk -v s="$name" -v n="$n" '$1 == s && $2 == n { print $4 }' "$tmp/results" | median)
        printf '%-8s %6d %12.0f %10.0f %10.0f %16s\n' "$name" "$n" "$(median <<<"$rates")" \
            "$(head -1 <<<"$rates")" "$(tail -1 <<<"$rates")" "$us"
    done
done
