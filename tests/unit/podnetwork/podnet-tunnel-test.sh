#!/usr/bin/env bash
# Pod network tunnel end to end, on real namespaces, veth, bridges and VXLAN:
# worker-side inspect + setup in a "worker" netns, VM-side setup in "VM"
# netns, traffic between pods and the VMs' pod namespaces, teardown back to
# the exact starting state. TAP output. Needs root (exit 77 otherwise).
#   usage: podnet-tunnel-test.sh PODNET_DRIVER
set -u
driver=${1:-${PODNET_DRIVER:-}}
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP needs root"; exit 77; }
for t in ip tc nft python3; do
  command -v $t >/dev/null || { echo "1..0 # SKIP $t missing"; exit 77; }
done
[ -x "$driver" ] || { echo "Bail out! driver not found: $driver"; exit 1; }

. "$here/podnet-fixture.sh"
pn_init "caa-pnt-$$"

n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
check() {
  local what=$1 out; shift
  if out=$("$@" 2>&1) && ! grep -Eq 'Sanitizer|runtime error' <<<"$out"; then ok "$what"; else nok "$what" "$out"; fi
}
finish() { echo "1..$n"; [ $failed -eq 0 ]; exit; }

W=$(pn_ns w) WP=$(pn_nspath w)
drv_w() { "$driver" --netns "$WP" "$@"; }
drv_vm() { local v=$1; shift; "$driver" --netns "$(pn_nspath "vm$v")" "$@"; }

# Everything the tunnel may touch, minus what traffic changes (neighbour caches).
snapshot() {
  local ns=$1 dev
  echo "== $ns links"; ip -n "$ns" -d link show
  echo "== addrs"; ip -n "$ns" addr show
  echo "== routes"; ip -n "$ns" route show table all
  echo "== qdiscs"; ip netns exec "$ns" tc qdisc show
  for dev in $(ip -n "$ns" -o link show | awk -F': ' '{print $2}' | cut -d@ -f1); do
    echo "== filters $dev"; ip netns exec "$ns" tc filter show dev "$dev" ingress
  done
  echo "== nft"; ip netns exec "$ns" nft list ruleset
}
# Bridge timers and IPv6 DAD flags move on their own: normalised away.
snapshot_all() {
  local s
  for s in w p1 p2 p3 vm1 vm3; do snapshot "$(pn_ns $s)"; done |
    sed -E 's/[a-z_]+_timer +[0-9.]+//g; s/ (tentative|dadfailed)//g'
}

# ---- fixture: worker with three pods on its bridge, two VMs on its underlay ----
if pn_worker && pn_pod 1 && pn_pod 2 && pn_pod 3 && pn_vm 1 && pn_vm 3 &&
  ip -n "$(pn_ns p1)" neigh add 198.19.0.99 lladdr 02:00:00:00:00:99 dev eth0 nud permanent; then
  ok "fixture built"
else
  nok "fixture built"; finish
fi
before=$(snapshot_all)

# ---- VNI allocation: first pod, then a second with the first in use ----
read -r vni1 idx1 < <("$driver" alloc 555000)
read -r vni3 idx3 < <("$driver" alloc 555000 "$vni1")
[ "$vni1" = 555000 ] && [ "$idx1" = 0 ] && [ "$vni3" = 555001 ] && [ "$idx3" = 1 ] &&
  ok "VNIs allocated ($vni1, $vni3)" || nok "VNIs allocated" "got $vni1/$idx1 $vni3/$idx3"

# ---- inspect ----
cfg1=$PN_TMP/pod1.json cfg3=$PN_TMP/pod3.json
if drv_w inspect "$(pn_nspath p1)" --vni "$vni1" --index "$idx1" > "$cfg1" &&
  drv_w inspect "$(pn_nspath p3)" --vni "$vni3" --index "$idx3" > "$cfg3"; then
  ok "inspect both pods"
else
  nok "inspect both pods" "$(cat "$cfg1" "$cfg3")"; finish
fi
mac1=$(ip -n "$(pn_ns p1)" -j link show eth0 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])')
check "inspect: pod config fields" python3 - "$cfg1" "$mac1" "$vni1" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
want = {"podip": "198.19.0.11/24", "pod-hw-addr": sys.argv[2], "interface": "eth0",
        "worker-node-ip": "198.18.0.1/24", "tunnel-type": "vxlan", "mtu": 1500, "index": 0,
        "vxlan-port": 4789, "vxlan-id": int(sys.argv[3]), "dedicated": False, "external-net-via-pod-vm": False}
bad = {k: (c.get(k), v) for k, v in want.items() if c.get(k) != v}
routes = {(r["dst"], r["gw"], r["dev"], r["protocol"], r["scope"]) for r in c["routes"]}
need = {("0.0.0.0/0", "198.19.0.1", "eth0", "boot", "universe"), ("198.19.0.0/24", "", "eth0", "kernel", "link")}
neigh = [(x["ip"], x["hw-addr"], x["dev"], x["state"]) for x in c["neighbors"]]
if bad or routes != need or neigh != [("198.19.0.99", "02:00:00:00:00:99", "eth0", "permanent")]:
    sys.exit("bad %s routes %s neighbors %s" % (bad, routes, neigh))
PY
check "inspect: host interface override sets dedicated" sh -c \
  "'$driver' --netns '$WP' inspect '$(pn_nspath p1)' --host-if cni0 | grep -q '\"dedicated\": true'"

# ---- worker-side setup ----
check "worker setup pod 1 (VM 198.18.0.2)" drv_w worker-setup "$(pn_nspath p1)" "$cfg1" 198.18.0.2
check "worker setup pod 3 (VM 198.18.0.4)" drv_w worker-setup "$(pn_nspath p3)" "$cfg3" 198.18.0.4
vx=$(ip -n "$(pn_ns p1)" -d link show vxlan1 2>&1)
case $vx in
  *"vxlan id $vni1 remote 198.18.0.2 "*"dstport 4789 nolearning"*) ok "pod 1 vxlan1: id, remote, port, nolearning" ;;
  *) nok "pod 1 vxlan1: id, remote, port, nolearning" "$vx" ;;
esac
f=$(ip netns exec "$(pn_ns p1)" tc filter show dev eth0 ingress; ip netns exec "$(pn_ns p1)" tc filter show dev vxlan1 ingress)
[ "$(grep -c 'Egress Redirect to device' <<<"$f")" = 2 ] && grep -q 'to device vxlan1' <<<"$f" &&
  grep -q 'to device eth0' <<<"$f" && ok "pod 1: mirred redirect both ways" || nok "pod 1: mirred redirect both ways" "$f"
rules=$(ip netns exec "$W" nft list table ip peerpod 2>&1)
[ "$(grep -c notrack <<<"$rules")" = 4 ] &&
  grep -q "ip daddr 198.18.0.2 udp dport 4789 notrack comment \"peerpod \[vni:$vni1\]\"" <<<"$rules" &&
  grep -q "ip saddr 198.18.0.4 udp dport 4789 notrack comment \"peerpod \[vni:$vni3\]\"" <<<"$rules" &&
  ok "NOTRACK rules in the worker netns" || nok "NOTRACK rules in the worker netns" "$rules"
[ -z "$(ip netns exec "$(pn_ns w)" nft list ruleset 2>/dev/null | grep -v peerpod | grep notrack)" ] || true

# ---- VM-side setup: the pod netns is created by the driver ----
check "VM 1 setup (creates its pod netns)" drv_vm 1 vm-setup "$cfg1" --podns "$(pn_nspath vp1)"
check "VM 3 setup (creates its pod netns)" drv_vm 3 vm-setup "$cfg3" --podns "$(pn_nspath vp3)"
VP1=$(pn_ns vp1)
l=$(ip -n "$VP1" -d link show eth0 2>&1)
case $l in
  *"mtu 1450 "*"link/ether $mac1 "*"vxlan id $vni1 remote 198.18.0.1 "*"dstport 4789 nolearning"*) ok "VM pod netns eth0: MAC, MTU 1450, vxlan" ;;
  *) nok "VM pod netns eth0: MAC, MTU 1450, vxlan" "$l" ;;
esac
r=$(ip -n "$VP1" route show; ip -n "$VP1" addr show eth0; ip -n "$VP1" neigh show dev eth0)
grep -q '^default via 198.19.0.1 dev eth0 $' <<<"$r" && grep -q '^198.19.0.0/24 dev eth0 proto kernel scope link' <<<"$r" &&
  grep -q 'inet 198.19.0.11/24 brd 198.19.0.255 scope global noprefixroute eth0' <<<"$r" &&
  grep -q '198.19.0.99 lladdr 02:00:00:00:00:99 PERMANENT' <<<"$r" &&
  ok "VM pod netns: address, routes, permanent neighbour" || nok "VM pod netns: address, routes, permanent neighbour" "$r"
grep -q 'lo: <LOOPBACK,UP' <<<"$(ip -n "$VP1" link show lo)" && ok "VM pod netns: lo up" || nok "VM pod netns: lo up"

# ---- traffic: pod 2 (plain pod on the bridge) <-> servers in the VMs' pod netns ----
start_echo() {  # ns addr port count
  local fifo=$PN_TMP/ready-$1-$3 line=
  mkfifo "$fifo"
  pn_bg "$fifo" ip netns exec "$1" python3 "$here/podnet-echo.py" serve "$2" "$3" "$4"
  read -r -t 10 line <"$fifo"
  [ "$line" = ready ]
}
client() { ip netns exec "$1" python3 "$here/podnet-echo.py" client "$2" "$3" "$4"; }
if start_echo "$VP1" 198.19.0.11 7001 6 && start_echo "$(pn_ns vp3)" 198.19.0.13 7003 6; then
  ok "echo servers listening in the VMs' pod netns"
else
  nok "echo servers listening in the VMs' pod netns"; finish
fi
check "pod 2 -> VM pod 1: TCP + UDP, 64 bytes" client "$(pn_ns p2)" 198.19.0.11 7001 64
check "pod 2 -> VM pod 1: TCP + UDP, 1400-byte datagram" client "$(pn_ns p2)" 198.19.0.11 7001 1400
nb=$(ip -n "$(pn_ns p2)" neigh show 198.19.0.11)
grep -q "lladdr $mac1" <<<"$nb" && ok "ARP for the pod IP resolves to the pod MAC across the tunnel" ||
  nok "ARP for the pod IP resolves to the pod MAC across the tunnel" "$nb"
check "pod 2 -> VM pod 3: TCP + UDP (second tunnel, VNI $vni3)" client "$(pn_ns p2)" 198.19.0.13 7003 1400
check "VM pod 1 -> VM pod 3 through both tunnels" client "$VP1" 198.19.0.13 7003 512
check "VM pod 1 -> its worker gateway 198.19.0.1 reachable (ARP)" \
  sh -c "ip netns exec $VP1 python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b\"x\", (\"198.19.0.1\", 9))' && ip -n $VP1 neigh show 198.19.0.1 | grep -q lladdr"
cnt=$(ip netns exec "$W" nft list table ip peerpod 2>&1)
check "traffic was encapsulated with the right VNI (pod 1 tunnel counters)" \
  sh -c "[ \$(ip -n $(pn_ns p1) -s -j link show vxlan1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0][\"stats64\"][\"tx\"][\"packets\"])') -gt 4 ]"

# ---- teardown (twice: idempotent) ----
check "worker teardown pod 1" drv_w worker-teardown "$(pn_nspath p1)" "$cfg1"
check "worker teardown pod 1 again" drv_w worker-teardown "$(pn_nspath p1)" "$cfg1"
rules=$(ip netns exec "$W" nft list table ip peerpod 2>&1)
[ "$(grep -c notrack <<<"$rules")" = 2 ] && ! grep -q "vni:$vni1" <<<"$rules" &&
  ok "pod 3 NOTRACK rules survive pod 1 teardown" || nok "pod 3 NOTRACK rules survive pod 1 teardown" "$rules"
check "pod 2 -> VM pod 3 still works after pod 1 teardown" client "$(pn_ns p2)" 198.19.0.13 7003 100
check "worker teardown pod 3" drv_w worker-teardown "$(pn_nspath p3)" "$cfg3"
check "VM 1 teardown" drv_vm 1 vm-teardown "$cfg1" --podns "$(pn_nspath vp1)"
check "VM 1 teardown again" drv_vm 1 vm-teardown "$cfg1" --podns "$(pn_nspath vp1)"
check "VM 3 teardown" drv_vm 3 vm-teardown "$cfg3" --podns "$(pn_nspath vp3)"
[ "$(ip -n "$VP1" -o link show | wc -l)" = 1 ] && ok "VM pod netns left with lo only" ||
  nok "VM pod netns left with lo only" "$(ip -n "$VP1" -o link show)"

after=$(snapshot_all)
if [ "$before" = "$after" ]; then
  ok "worker, pods and VMs exactly as before (links, addresses, routes, qdiscs, filters, nft)"
else
  nok "worker, pods and VMs exactly as before" "$(diff <(echo "$before") <(echo "$after") | head -40)"
fi

# ---- setup failing half way is undone; a foreign filter is left alone ----
ip netns exec "$(pn_ns p1)" tc qdisc add dev eth0 ingress
ip netns exec "$(pn_ns p1)" tc filter add dev eth0 parent ffff: protocol ip prio 3242 u32 match u32 0 0 classid 1:1
mid=$(snapshot_all)
out=$(drv_w worker-setup "$(pn_nspath p1)" "$cfg1" 198.18.0.2 2>&1)
[ $? -ne 0 ] && grep -q 'adding a redirect filter' <<<"$out" && ok "setup fails at the tc step" ||
  nok "setup fails at the tc step" "$out"
[ "$mid" = "$(snapshot_all)" ] && ok "failed setup undone (no vxlan1, no NOTRACK rules, foreign filter kept)" ||
  nok "failed setup undone" "$(diff <(echo "$mid") <(snapshot_all) | head -30)"
ip netns exec "$(pn_ns p1)" tc qdisc del dev eth0 ingress

# ---- teardown after a partial setup and after the pod netns is gone ----
drv_w worker-setup "$(pn_nspath p1)" "$cfg1" 198.18.0.2 >/dev/null 2>&1
ip -n "$(pn_ns p1)" link del vxlan1
check "teardown after a partial setup (vxlan1 already gone)" drv_w worker-teardown "$(pn_nspath p1)" "$cfg1"
[ "$before" = "$(snapshot_all)" ] && ok "state exactly as before after partial teardown" ||
  nok "state exactly as before after partial teardown" "$(diff <(echo "$before") <(snapshot_all) | head -30)"
drv_w worker-setup "$(pn_nspath p3)" "$cfg3" 198.18.0.4 >/dev/null 2>&1
ip netns del "$(pn_ns p3)"
check "teardown after the pod netns was deleted" drv_w worker-teardown "$(pn_nspath p3)" "$cfg3"
check "no NOTRACK table left in the worker" sh -c "! ip netns exec $W nft list tables | grep -q peerpod"

finish
