#!/usr/bin/env bash
# Smoke test of the libvirt provider against a real libvirtd + QEMU (TCG),
# booting nothing. Opt-in (CAA_LIBVIRT_SMOKE=1) because it starts its own
# libvirtd, whose socket /run/libvirt is shared with any other libvirtd on the
# machine. Needs root. libvirtd runs inside a network namespace made here, so
# its bridge and DHCP server never touch the host's interfaces.
# Usage: libvirt-qemu-smoke.sh PATH-TO-libvirt-smoke
set -uo pipefail
smoke=$1
skip() { echo "SKIP: $*"; exit 77; }
[ "${CAA_LIBVIRT_SMOKE:-}" = 1 ] || skip "set CAA_LIBVIRT_SMOKE=1 to run"
[ "$(id -u)" = 0 ] || skip "needs root"
for b in /usr/sbin/libvirtd /usr/sbin/virtlogd virsh qemu-system-x86_64 ip; do
  command -v "$b" >/dev/null || skip "$b not installed"
done
[ -S /run/libvirt/libvirt-sock ] && skip "another libvirtd is running"

tag=caalv$$
ns=$tag
pooldir=/var/lib/libvirt/images/$tag
run=/run/$tag
V="virsh -q -c qemu:///system"
libvirtd_pid= virtlogd_pid=

stop_daemons() {
  [ -n "$libvirtd_pid" ] && kill "$libvirtd_pid" 2>/dev/null && while kill -0 "$libvirtd_pid" 2>/dev/null; do sleep 0.1; done
  libvirtd_pid=
}
cleanup() {
  for d in $($V list --all --name 2>/dev/null | grep '^podvm-smoke-'); do $V destroy "$d" >/dev/null 2>&1; $V undefine --nvram "$d" >/dev/null 2>&1; done
  $V pool-destroy "$tag" >/dev/null 2>&1; $V pool-undefine "$tag" >/dev/null 2>&1
  $V net-destroy "$tag" >/dev/null 2>&1
  stop_daemons
  [ -n "$virtlogd_pid" ] && kill "$virtlogd_pid" 2>/dev/null
  ip netns del "$ns" 2>/dev/null
  rm -rf "$pooldir" "$run"
  rm -f /var/log/libvirt/qemu/podvm-smoke-*
}
trap cleanup EXIT

start_libvirtd() {
  ip netns exec "$ns" /usr/sbin/libvirtd -d -p "$run/libvirtd.pid" || return 1
  libvirtd_pid=$(cat "$run/libvirtd.pid")
  # Ready when it answers (the first start probes QEMU for several seconds).
  for _ in $(seq 300); do $V version >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

mkdir -p "$run" "$pooldir"
ip netns add "$ns" && ip -n "$ns" link set lo up || { echo "Bail out! netns"; exit 1; }
ip netns exec "$ns" /usr/sbin/virtlogd -d -p "$run/virtlogd.pid" && virtlogd_pid=$(cat "$run/virtlogd.pid")
start_libvirtd || { echo "Bail out! libvirtd did not start"; exit 1; }

$V pool-define-as "$tag" dir --target "$pooldir" >/dev/null && $V pool-start "$tag" >/dev/null &&
  $V vol-create-as "$tag" podvm-base.qcow2 64M --format qcow2 >/dev/null || { echo "Bail out! pool"; exit 1; }
cat > "$run/net.xml" <<NET
<network><name>$tag</name><bridge name='${tag:0:12}br' stp='off'/>
  <ip address='198.18.77.1' netmask='255.255.255.0'><dhcp><range start='198.18.77.100' end='198.18.77.200'/></dhcp></ip>
</network>
NET
$V net-create "$run/net.xml" >/dev/null || { echo "Bail out! network"; exit 1; }

"$smoke" qemu:///system "$tag" "$tag"
rc=$?

# Reconnect: libvirtd restarts between two calls of one provider.
mkfifo "$run/in"
"$smoke" qemu:///system reconnect <"$run/in" >"$run/out" 2>&1 &
smoke_pid=$!
exec 3>"$run/in"
for _ in $(seq 300); do grep -q '^# READY' "$run/out" && break; sleep 0.1; done
stop_daemons
start_libvirtd || echo "# libvirtd restart failed"
echo go >&3
exec 3>&-
wait "$smoke_pid" || rc=1
cat "$run/out"
exit $rc
