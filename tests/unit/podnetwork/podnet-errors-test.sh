#!/usr/bin/env bash
# Pod network error paths on real namespaces: each failure must be reported
# with the right class and a clear message, and must leave nothing behind.
# TAP output. Needs root (exit 77 otherwise).
#   usage: podnet-errors-test.sh PODNET_DRIVER
set -u
driver=${1:-${PODNET_DRIVER:-}}
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP needs root"; exit 77; }
for t in ip nft setpriv python3; do
  command -v $t >/dev/null || { echo "1..0 # SKIP $t missing"; exit 77; }
done
[ -x "$driver" ] || { echo "Bail out! driver not found: $driver"; exit 1; }

. "$here/podnet-fixture.sh"
pn_init "caa-pne-$$"

n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
finish() { echo "1..$n"; [ $failed -eq 0 ]; exit; }
# expect_fail WHAT PATTERN CMD...: CMD fails and its stderr matches PATTERN (grep -E).
expect_fail() {
  local what=$1 pat=$2 out; shift 2
  if out=$("$@" 2>&1); then nok "$what" "unexpected success: $out"
  elif grep -Eq 'Sanitizer|runtime error' <<<"$out"; then nok "$what" "$out"
  elif grep -Eq "$pat" <<<"$out"; then ok "$what"
  else nok "$what" "got: $out" "want: $pat"; fi
}

WP=$(pn_nspath w)
drv_w() { "$driver" --netns "$WP" "$@"; }
# The kernel here has no dummy driver: a veth pair inside one netns stands in.
fake_dev() { ip -n "$(pn_ns "$1")" link add "$2" type veth peer name "$2-peer" && ip -n "$(pn_ns "$1")" link set "$2-peer" up; }
links() { ip -n "$(pn_ns "$1")" -o link show | awk -F': ' '{print $2}' | sort | tr '\n' ' '; }

pn_worker && pn_pod 1 && pn_pod 2 && pn_vm 1 || { nok "fixture"; finish; }
cfg=$PN_TMP/pod1.json
drv_w inspect "$(pn_nspath p1)" --vni 555000 >"$cfg" || { nok "inspect pod 1"; finish; }

# ---- inspect ----
expect_fail "inspect: namespace path does not exist" \
  '^error ENOENT: network namespace "/run/netns/caa-pne-[0-9]+-nope" does not exist' \
  drv_w inspect "$(pn_nspath nope)"
touch "$PN_TMP/plain-file"
expect_fail "inspect: path is not a network namespace" \
  '^error EINVAL: ".*plain-file" is not a network namespace \(a regular file\)' drv_w inspect "$PN_TMP/plain-file"
# A FIFO without a writer: refused at once (timeout: a blocking open would hang here).
mkfifo "$PN_TMP/fifo"
expect_fail "inspect: FIFO refused without blocking" '^error EINVAL: ".*fifo" is not a network namespace \(a FIFO\)' \
  timeout 30 "$driver" --netns "$WP" inspect "$PN_TMP/fifo"
expect_fail "worker setup: pod path is another kind of namespace" \
  '^error EINVAL: "/proc/self/ns/uts" is not a network namespace \(a UTS namespace\)' \
  drv_w worker-setup /proc/self/ns/uts "$cfg" 198.18.0.9

pn_addns noaddr && fake_dev noaddr eth0 && ip -n "$(pn_ns noaddr)" link set eth0 up &&
  ip -n "$(pn_ns noaddr)" route add default dev eth0
expect_fail "inspect: pod interface without IPv4 address" \
  '^error ENOENT: pod interface "eth0" in ".*-noaddr" has no IPv4 address' drv_w inspect "$(pn_nspath noaddr)"

ip -n "$(pn_ns noaddr)" addr add 198.19.1.5/24 dev eth0 && ip -n "$(pn_ns noaddr)" addr add 198.19.2.5/24 dev eth0
expect_fail "inspect: pod interface with two IPv4 addresses" \
  '^error EINVAL: pod interface "eth0" .* has 2 IPv4 addresses; exactly one is supported' \
  drv_w inspect "$(pn_nspath noaddr)"

pn_addns noroute && fake_dev noroute eth0 && ip -n "$(pn_ns noroute)" link set eth0 up &&
  ip -n "$(pn_ns noroute)" addr add 198.19.1.5/24 dev eth0
expect_fail "inspect: pod without default route" '^error ENOENT: pod network namespace ".*-noroute": no IPv4 default route' \
  drv_w inspect "$(pn_nspath noroute)"
expect_fail "inspect: host without default route" \
  "^error ENOENT: finding the host's primary interface: no IPv4 default route" \
  "$driver" --netns "$(pn_nspath noroute)" inspect "$(pn_nspath p1)"
expect_fail "inspect: missing host interface override" '^error ENOENT: host interface: no network device named "nosuch0"' \
  drv_w inspect "$(pn_nspath p1)" --host-if nosuch0
expect_fail "inspect: bad pod-subnet-cidrs" '^error EINVAL: pod-subnet-cidrs: invalid IPv4 prefix "10.0.0.0/40"' \
  drv_w inspect "$(pn_nspath p1)" --subnet 10.0.0.0/40
out=$(drv_w inspect "$(pn_nspath p1)" --subnet 10.96.0.0/12 2>&1)
grep -q '"dst": "10.96.0.0/12",' <<<"$out" && grep -A1 '"dst": "10.96.0.0/12"' <<<"$out" | grep -q '"gw": "198.19.0.1"' &&
  ok "inspect: pod-subnet-cidrs become routes via the pod gateway" || nok "inspect: pod-subnet-cidrs routes" "$out"

# ---- worker setup ----
expect_fail "setup: bad VM address" '^error EINVAL: pod VM address: invalid IPv4 address "198.18.0.300"' \
  drv_w worker-setup "$(pn_nspath p1)" "$cfg" 198.18.0.300
expect_fail "setup: namespace gone" '^error ENOENT: network namespace ".*-nope" does not exist' \
  drv_w worker-setup "$(pn_nspath nope)" "$cfg" 198.18.0.2

before2=$(links p2)
fake_dev p2 vxlan1
expect_fail "setup: device name vxlan1 already taken in the pod netns" \
  '^error EEXIST: a device named "vxlan1" already exists in ".*-p2"' \
  drv_w worker-setup "$(pn_nspath p2)" "$cfg" 198.18.0.3
grep -q 'vxlan1' <<<"$(ip -n "$(pn_ns p2)" -d link show vxlan1)" && ! ip -n "$(pn_ns p2)" -d link show vxlan1 | grep -q 'vxlan id' &&
  ok "the foreign vxlan1 is left alone" || nok "the foreign vxlan1 is left alone"
ip -n "$(pn_ns p2)" link del vxlan1  # takes its peer along

if drv_w worker-setup "$(pn_nspath p1)" "$cfg" 198.18.0.2; then ok "setup pod 1 with VNI 555000"; else nok "setup pod 1"; fi
rules_before=$(ip netns exec "$(pn_ns w)" nft list table ip peerpod)
expect_fail "setup: VNI clash with a live tunnel" '^error EEXIST: VXLAN id 555000 clashes with another tunnel on this host: .*File exists' \
  drv_w worker-setup "$(pn_nspath p2)" "$cfg" 198.18.0.3
[ "$(links p2)" = "$before2" ] && [ "$rules_before" = "$(ip netns exec "$(pn_ns w)" nft list table ip peerpod)" ] &&
  ip -n "$(pn_ns p1)" -d link show vxlan1 | grep -q 'vxlan id 555000' &&
  ok "VNI clash: the other pod's tunnel and NOTRACK rules untouched, nothing left in pod 2" ||
  nok "VNI clash left things intact" "$(links p2)" "$(ip netns exec "$(pn_ns w)" nft list ruleset)"
expect_fail "setup twice on the same pod: vxlan1 exists" '^error EEXIST: a device named "vxlan1" already exists' \
  drv_w worker-setup "$(pn_nspath p1)" "$cfg" 198.18.0.2
ip -n "$(pn_ns p1)" -d link show vxlan1 | grep -q 'vxlan id 555000' && ok "second setup did not break the first" ||
  nok "second setup did not break the first"

# ---- privileges ----
nocap() { setpriv --inh-caps=-net_admin --bounding-set=-net_admin -- "$@"; }
expect_fail "setup without CAP_NET_ADMIN" '^error EPERM: configuring the pod network needs CAP_NET_ADMIN' \
  nocap "$driver" --netns "$WP" worker-setup "$(pn_nspath p2)" "$cfg" 198.18.0.3
expect_fail "VM setup without CAP_NET_ADMIN" '^error EPERM: configuring the pod network needs CAP_NET_ADMIN' \
  nocap "$driver" --netns "$(pn_nspath vm1)" vm-setup "$cfg" --podns "$(pn_nspath vp1)"
expect_fail "teardown without CAP_NET_ADMIN: permission error names the capability" 'EPERM: .*CAP_NET_ADMIN is needed' \
  nocap "$driver" --netns "$WP" worker-teardown "$(pn_nspath p1)" "$cfg"
nosys() { setpriv --inh-caps=-sys_admin --bounding-set=-sys_admin -- "$@"; }
expect_fail "inspect without CAP_SYS_ADMIN cannot enter the pod netns" \
  '^error EPERM: entering the pod network namespace: operation not permitted \(CAP_SYS_ADMIN is needed\)' \
  nosys "$driver" inspect "$(pn_nspath p1)"
ip -n "$(pn_ns p1)" -d link show vxlan1 | grep -q 'vxlan id 555000' && ok "pod 1 tunnel intact after refused calls" ||
  nok "pod 1 tunnel intact after refused calls"
if drv_w worker-teardown "$(pn_nspath p1)" "$cfg"; then ok "teardown pod 1"; else nok "teardown pod 1"; fi

# ---- VM side ----
VM=$(pn_nspath vm1)
pn_addns vp1 && fake_dev vp1 eth0
expect_fail "VM setup: pod interface name already taken in the pod netns" \
  '^error EEXIST: a device named "eth0" already exists in network namespace ".*-vp1"' \
  "$driver" --netns "$VM" vm-setup "$cfg" --podns "$(pn_nspath vp1)"
[ "$(links vp1)" = "eth0-peer@eth0 eth0@eth0-peer lo " ] && ! ip netns exec "$(pn_ns vm1)" nft list tables | grep -q peerpod &&
  ok "VM setup refused without side effects" || nok "VM setup refused without side effects" "$(links vp1)"
ip -n "$(pn_ns vp1)" link del eth0
echo "not a netns" >"$PN_TMP/not-ns"
expect_fail "VM setup: pod netns path exists but is not a namespace" '^error EEXIST: ".*not-ns" exists but is not a network namespace' \
  "$driver" --netns "$VM" vm-setup "$cfg" --podns "$PN_TMP/not-ns"
python3 - "$cfg" "$PN_TMP/ext.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["external-net-via-pod-vm"] = True
json.dump(c, open(sys.argv[2], "w"))
PY
expect_fail "VM setup: external-net-via-pod-vm without a secondary interface" \
  '^error ENOENT: .*external-net-via-pod-vm: the VM has no secondary interface' \
  "$driver" --netns "$VM" vm-setup "$PN_TMP/ext.json" --podns "$(pn_nspath vp1)"
[ "$(links vp1)" = "lo " ] && ok "external-net-via-pod-vm failure undone" || nok "external-net-via-pod-vm failure undone" "$(links vp1)"
# A route whose gateway is unreachable fails half way: everything is undone.
python3 - "$cfg" "$PN_TMP/badroute.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["routes"] = [r for r in c["routes"] if r["gw"]]   # no connected route: the gateway is unreachable
json.dump(c, open(sys.argv[2], "w"))
PY
expect_fail "VM setup: unreachable gateway reported with the kernel's reason" \
  '^error ENETUNREACH: setting up the pod network in ".*-vp1": adding route 0.0.0.0/0 dev eth0: Network is unreachable' \
  "$driver" --netns "$VM" vm-setup "$PN_TMP/badroute.json" --podns "$(pn_nspath vp1)"
[ "$(links vp1)" = "lo " ] && ! ip netns exec "$(pn_ns vm1)" nft list tables | grep -q peerpod &&
  ok "failed VM setup undone (no device, no NOTRACK rules)" || nok "failed VM setup undone" "$(links vp1)"
if "$driver" --netns "$VM" vm-setup "$cfg" --podns "$(pn_nspath vp1)" &&
  "$driver" --netns "$VM" vm-setup "$cfg" --podns "$(pn_nspath vp1)"; then
  ok "VM setup re-run replaces its own stale tunnel"
else
  nok "VM setup re-run replaces its own stale tunnel"
fi
[ "$(ip netns exec "$(pn_ns vm1)" nft list table ip peerpod | grep -c notrack)" = 2 ] &&
  ok "re-run did not duplicate NOTRACK rules" || nok "re-run did not duplicate NOTRACK rules"

# ---- hostile config ----
printf '{"podip":"10.0.0.1/8","interface":"../../x"}' >"$PN_TMP/hostile.json"
expect_fail "hostile config rejected" '^error EINVAL: pod-network: pod-hw-addr: missing' "$driver" parse "$PN_TMP/hostile.json"

finish
