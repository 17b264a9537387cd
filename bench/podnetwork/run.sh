#!/usr/bin/env bash
# Pod network tunnel benchmark: TCP throughput and UDP round-trip latency
# between a plain pod on the worker's bridge and a pod behind the VXLAN tunnel
# (the "VM" pod namespace), against the same two namespaces joined directly
# by a veth pair, in one run. Method and results: bench/README.md.
#
#   bench/podnetwork/run.sh [-b BUILD_DIR] [-t SECONDS] [-r RUNS] [-n ROUND_TRIPS]
# Needs root. Uses iperf3 when installed, else podnet-bench tcp-send/tcp-sink.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build secs=5 runs=3 count=5000
while getopts b:t:r:n: o; do
  case $o in
    b) build=$(cd "$OPTARG" && pwd) ;; t) secs=$OPTARG ;; r) runs=$OPTARG ;; n) count=$OPTARG ;;
    *) echo "usage: $0 [-b build] [-t seconds] [-r runs] [-n round_trips]"; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "needs root"; exit 77; }
driver=$build/tests/unit/podnetwork/podnet-driver
tool=$build/bench/podnetwork/podnet-bench
for b in "$driver" "$tool"; do
  [ -x "$b" ] || { echo "missing $b: ninja -C $build tests/unit/podnetwork/podnet-driver bench/podnetwork/podnet-bench"; exit 1; }
done

. "$root/tests/unit/podnetwork/podnet-fixture.sh"
pn_init "caa-pnb-$$"
set -e

# Worker with pods 1 and 2 on its bridge, VM 1 on its underlay; pod 1's
# network is tunnelled into VM 1's pod namespace (198.19.0.11 lives there).
pn_worker; pn_pod 1; pn_pod 2; pn_vm 1
cfg=$PN_TMP/pod1.json
"$driver" --netns "$(pn_nspath w)" inspect "$(pn_nspath p1)" >"$cfg"
"$driver" --netns "$(pn_nspath w)" worker-setup "$(pn_nspath p1)" "$cfg" 198.18.0.2
"$driver" --netns "$(pn_nspath vm1)" vm-setup "$cfg" --podns "$(pn_nspath vp1)"
A=$(pn_ns p2) B=$(pn_ns vp1)
# Direct path between the same two namespaces.
ip link add bench-a netns "$A" type veth peer name bench-b netns "$B"
ip -n "$A" addr add 198.19.9.1/30 dev bench-a; ip -n "$A" link set bench-a up
ip -n "$B" addr add 198.19.9.2/30 dev bench-b; ip -n "$B" link set bench-b up
set +e

declare -A target=([tunnel]=198.19.0.11 [veth]=198.19.9.2)

# Starts a server in B that prints a readiness line first; waits for it.
serve() {  # name pattern cmd...
  local fifo=$PN_TMP/ready-$1 pat=$2 line; shift 2
  mkfifo "$fifo"
  pn_bg "$fifo" ip netns exec "$B" "$@"
  while read -r -t 10 line; do [[ $line == *$pat* ]] && break; done <"$fifo"
  [[ $line == *$pat* ]]
}

median() { sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

if command -v iperf3 >/dev/null; then tput_tool="iperf3 $(iperf3 --version | head -1 | awk '{print $2}')"
else tput_tool="podnet-bench tcp-send"; fi
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) CPUs, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# throughput: $tput_tool, ${secs}s x $runs runs; latency: $count UDP round trips of 64 bytes x $runs runs"
printf '%-8s %14s %14s %14s %12s %12s %12s\n' path "Mbit/s med" min max "p50 us" "p99 us" "mean us"
port=5201
for path in tunnel veth; do
  ip=${target[$path]}
  tputs=() p50s=() p99s=() means=()
  for ((i = 0; i < runs; i++)); do
    port=$((port + 1))
    if [[ $tput_tool == iperf3* ]]; then
      serve "t$path$i" "listening" iperf3 -s -1 -B "$ip" -p "$port" --forceflush || { echo "iperf3 server did not start"; exit 1; }
      bps=$(ip netns exec "$A" iperf3 -c "$ip" -p "$port" -t "$secs" -J |
        python3 -c 'import json,sys; print(round(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e6))')
    else
      serve "t$path$i" ready "$tool" tcp-sink "$ip" "$port" || exit 1
      bps=$(ip netns exec "$A" "$tool" tcp-send "$ip" "$port" "$secs")
    fi
    tputs+=("$bps")
    serve "r$path$i" ready "$tool" rr-server "$ip" "$((port + 1000))" || exit 1
    read -r p50 p99 mean < <(ip netns exec "$A" "$tool" rr-client "$ip" "$((port + 1000))" "$count" 64)
    p50s+=("$p50") p99s+=("$p99") means+=("$mean")
  done
  printf '%-8s %14s %14s %14s %12s %12s %12s\n' "$path" \
    "$(printf '%s\n' "${tputs[@]}" | median)" "$(printf '%s\n' "${tputs[@]}" | sort -n | head -1)" \
    "$(printf '%s\n' "${tputs[@]}" | sort -n | tail -1)" "$(printf '%s\n' "${p50s[@]}" | median)" \
    "$(printf '%s\n' "${p99s[@]}" | median)" "$(printf '%s\n' "${means[@]}" | median)"
done
