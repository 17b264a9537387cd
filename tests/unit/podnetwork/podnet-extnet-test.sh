#!/usr/bin/env bash
# external-net-via-pod-vm on real namespaces (upstream's podnode semantics,
# common.go setupExternalNetwork): the "VM" has a second NIC (eth1) on a
# "cloud" network with its own default route; after vm-setup that NIC lives
# in the pod namespace with its address and carries the pod's default route,
# while the pod subnet stays on the tunnel device. TAP output. Needs root
# (exit 77 otherwise).
#   usage: podnet-extnet-test.sh PODNET_DRIVER
set -u
driver=${1:-${PODNET_DRIVER:-}}
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP needs root"; exit 77; }
for t in ip python3; do
  command -v $t >/dev/null || { echo "1..0 # SKIP $t missing"; exit 77; }
done
[ -x "$driver" ] || { echo "Bail out! driver not found: $driver"; exit 1; }

. "$here/podnet-fixture.sh"
pn_init "caa-pnx-$$"

n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
finish() { echo "1..$n"; [ $failed -eq 0 ]; exit; }

V=$(pn_ns vm1) VP=$(pn_nspath vm1) C=$(pn_ns cloud) PODNS=$(pn_nspath podns)
# The cloud network: 198.18.7.0/24 with the gateway .1, and an "outside"
# address 198.18.99.1 behind it.
if pn_worker && pn_pod 1 && pn_vm 1 && pn_addns cloud &&
  ip -n "$C" link add gw0 type veth peer name eth1 netns "$V" &&
  ip -n "$C" addr add 198.18.7.1/24 dev gw0 && ip -n "$C" link set gw0 up &&
  ip -n "$C" addr add 198.18.99.1/32 dev lo &&
  ip -n "$V" addr add 198.18.7.2/24 dev eth1 && ip -n "$V" link set eth1 up &&
  ip -n "$V" route add default via 198.18.7.1 dev eth1 metric 200; then
  ok "fixture: VM with a primary (eth0) and a secondary (eth1) NIC"
else
  nok "fixture"; finish
fi

cfg=$PN_TMP/pod1.json ext=$PN_TMP/ext.json
"$driver" --netns "$(pn_nspath w)" inspect "$(pn_nspath p1)" --vni 555000 >"$cfg" &&
  python3 - "$cfg" "$ext" <<'PY' && ok "pod-network with external-net-via-pod-vm" || { nok "config"; finish; }
import json, sys
c = json.load(open(sys.argv[1])); c["external-net-via-pod-vm"] = True
json.dump(c, open(sys.argv[2], "w"))
PY

if out=$("$driver" --netns "$VP" vm-setup "$ext" --podns "$PODNS" --no-notrack 2>&1); then
  ok "vm-setup"
else
  nok "vm-setup" "$out"; finish
fi
P=$(pn_ns podns)
addr=$(ip -n "$P" -o -4 addr show dev eth1 2>&1)
grep -q "inet 198.18.7.2/24" <<<"$addr" && ok "eth1 moved into the pod namespace with its address" ||
  nok "eth1 in the pod namespace" "$addr"
ip -n "$V" link show eth1 >/dev/null 2>&1 && nok "eth1 left the VM's root namespace" || ok "eth1 left the VM's root namespace"
def=$(ip -n "$P" route show default | sed 's/ *$//')
[ "$def" = "default via 198.18.7.1 dev eth1" ] && ok "the pod's only default route goes through eth1" ||
  nok "default route" "$def"
via=$(ip -n "$P" route get 198.19.0.12 2>&1)
grep -q "dev eth0" <<<"$via" && ok "the pod subnet stays on the tunnel device" || nok "pod subnet route" "$via"
ip -n "$P" -d link show eth0 | grep -q "vxlan id 555000" && ok "tunnel device in place" || nok "tunnel device" "$(ip -n "$P" -d link show)"
fifo=$PN_TMP/ready line=
mkfifo "$fifo"
pn_bg "$fifo" ip netns exec "$C" python3 "$here/podnet-echo.py" serve 198.18.99.1 7007 2
read -r -t 10 line <"$fifo"
out=$(ip netns exec "$P" python3 "$here/podnet-echo.py" client 198.18.99.1 7007 64 2>&1) &&
  ok "outside reachable from the pod namespace through eth1 (TCP and UDP echo)" || nok "echo through eth1" "$line" "$out"

# Teardown removes the tunnel; eth1 stays in the pod namespace, as upstream leaves it.
if out=$("$driver" --netns "$VP" vm-teardown "$ext" --podns "$PODNS" --no-notrack 2>&1) &&
  ! ip -n "$P" link show eth0 >/dev/null 2>&1; then
  ok "vm-teardown removes the tunnel"
else
  nok "vm-teardown" "$out"
fi
finish
