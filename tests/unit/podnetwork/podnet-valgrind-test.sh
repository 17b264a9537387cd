#!/usr/bin/env bash
# The pod network calls (inspect, worker setup/teardown, VM setup/teardown, a
# refused setup) under valgrind memcheck: no invalid access, no uninitialised
# value reaching a syscall, no leak. TAP output. Needs root and valgrind.
#   usage: podnet-valgrind-test.sh PODNET_DRIVER
set -u
driver=${1:-${PODNET_DRIVER:-}}
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP needs root"; exit 77; }
command -v valgrind >/dev/null || { echo "1..0 # SKIP valgrind missing"; exit 77; }
[ -x "$driver" ] || { echo "Bail out! driver not found: $driver"; exit 1; }
# Sanitizer builds cannot run under valgrind (they cover the same ground).
ldd "$driver" | grep -q 'libasan\|libubsan' && { echo "1..0 # SKIP sanitizer build"; exit 77; }

. "$here/podnet-fixture.sh"
pn_init "caa-pnv-$$"

n=0 failed=0
vg() {  # WHAT WANT_RC ARGS...: runs the driver under memcheck
  local what=$1 want=$2 out rc; shift 2
  out=$(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
    --suppressions="$here/libnftables.supp" "$driver" "$@" 2>&1 >"$PN_TMP/out")
  rc=$?
  n=$((n + 1))
  if [ $rc = "$want" ]; then echo "ok $n - $what"; else
    failed=$((failed + 1)); echo "not ok $n - $what (rc $rc, want $want)"; sed 's/^/# /' <<<"$out" | head -40
  fi
}

if ! { pn_worker && pn_pod 1 && pn_vm 1; }; then echo "Bail out! fixture"; exit 1; fi
W=$(pn_nspath w) V=$(pn_nspath vm1) cfg=$PN_TMP/pod1.json
vg "inspect" 0 --netns "$W" inspect "$(pn_nspath p1)"
cp "$PN_TMP/out" "$cfg"
vg "worker setup" 0 --netns "$W" worker-setup "$(pn_nspath p1)" "$cfg" 198.18.0.2
vg "worker setup refused (vxlan1 exists)" 1 --netns "$W" worker-setup "$(pn_nspath p1)" "$cfg" 198.18.0.2
vg "VM setup (creates the pod netns)" 0 --netns "$V" vm-setup "$cfg" --podns "$(pn_nspath vp1)"
vg "VM setup again (replaces its stale tunnel)" 0 --netns "$V" vm-setup "$cfg" --podns "$(pn_nspath vp1)"
vg "worker teardown" 0 --netns "$W" worker-teardown "$(pn_nspath p1)" "$cfg"
vg "VM teardown" 0 --netns "$V" vm-teardown "$cfg" --podns "$(pn_nspath vp1)"
vg "inspect of a missing netns" 1 --netns "$W" inspect "$(pn_nspath nope)"
echo "1..$n"
[ $failed -eq 0 ]
