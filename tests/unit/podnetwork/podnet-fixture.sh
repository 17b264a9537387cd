# Shared fixture for the pod network namespace tests and the benchmark.
# Source it; it defines:
#   pn_init PREFIX       names every namespace PREFIX-*, installs the EXIT trap;
#                        PREFIX is caa-pn<letter>-<pid of the test shell>
#   pn_worker            "worker" netns PREFIX-w: CNI-like bridge cni0 198.19.0.1/24
#                        and an underlay bridge ul0 198.18.0.1/24 (default route)
#   pn_pod N             pod netns PREFIX-pN: eth0 198.19.0.(10+N)/24 on cni0,
#                        default route via 198.19.0.1
#   pn_vm N              "VM" netns PREFIX-vmN: eth0 198.18.0.(1+N)/24 on ul0,
#                        default route via 198.18.0.1
#   pn_bg OUT CMD...     runs CMD in the background with stdout to OUT; killed
#                        (by PID) on exit
#   pn_cleanup           kills background jobs, deletes every PREFIX-* netns
# Only addresses inside 198.18.0.0/15, only in namespaces made here.

PN_PREFIX=
PN_PIDS=()

pn_ns() { echo "$PN_PREFIX-$1"; }
pn_nspath() { echo "/run/netns/$PN_PREFIX-$1"; }

pn_cleanup() {
  local pid ns
  for pid in "${PN_PIDS[@]}"; do
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  PN_PIDS=()
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
    case $ns in "$PN_PREFIX"-*) ip netns del "$ns" 2>/dev/null ;; esac
  done
  [ -n "${PN_TMP:-}" ] && rm -rf "$PN_TMP"
  return 0
}

# Namespaces left by a run that was killed with SIGKILL (no trap ran): any
# caa-pn?-<pid>-* whose <pid> is gone.
pn_sweep_stale() {
  local ns pid
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
    [[ $ns =~ ^caa-pn[a-z]-([0-9]+)- ]] || continue
    pid=${BASH_REMATCH[1]}
    kill -0 "$pid" 2>/dev/null || ip netns del "$ns" 2>/dev/null
  done
  return 0
}

pn_init() {
  PN_PREFIX=$1
  pn_sweep_stale
  PN_TMP=$(mktemp -d "/tmp/$PN_PREFIX.XXXXXX")
  trap 'pn_cleanup' EXIT
  trap 'exit 130' INT TERM
}

# IPv6 is off in the fixture: the tunnel is IPv4 only, and DAD would make
# routes appear on their own between two snapshots.
pn_addns() {
  local ns; ns=$(pn_ns "$1")
  ip netns add "$ns" &&
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 &&
    ip -n "$ns" link set lo up
}

pn_worker() {
  local w; w=$(pn_ns w)
  pn_addns w || return 1
  ip -n "$w" link add cni0 type bridge && ip -n "$w" addr add 198.19.0.1/24 dev cni0 &&
    ip -n "$w" link set cni0 up &&
    ip -n "$w" link add ul0 type bridge && ip -n "$w" addr add 198.18.0.1/24 dev ul0 &&
    ip -n "$w" link set ul0 up && ip -n "$w" route add default via 198.18.0.254 dev ul0
}

pn_pod() {
  local n=$1 w p; w=$(pn_ns w); p=$(pn_ns "p$n")
  pn_addns "p$n" || return 1
  ip -n "$w" link add "veth-p$n" type veth peer name eth0 netns "$p" &&
    ip -n "$w" link set "veth-p$n" master cni0 up &&
    ip -n "$p" addr add "198.19.0.$((10 + n))/24" dev eth0 && ip -n "$p" link set eth0 up &&
    ip -n "$p" route add default via 198.19.0.1
}

pn_vm() {
  local n=$1 w v; w=$(pn_ns w); v=$(pn_ns "vm$n")
  pn_addns "vm$n" || return 1
  ip -n "$w" link add "ul-vm$n" type veth peer name eth0 netns "$v" &&
    ip -n "$w" link set "ul-vm$n" master ul0 up &&
    ip -n "$v" addr add "198.18.0.$((1 + n))/24" dev eth0 && ip -n "$v" link set eth0 up &&
    ip -n "$v" route add default via 198.18.0.1
}

pn_bg() {
  local out=$1; shift
  # The redirection happens in the background child: opening a FIFO here
  # would block until its reader shows up.
  "$@" >"$out" &
  PN_PIDS+=($!)
}
