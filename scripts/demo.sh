#!/usr/bin/env bash
# The local demo: one real VM per pod on libvirt/QEMU (README, "The two commands").
#
# On a fresh Debian 12 machine, as root:
#   1. scripts/install-deps.sh installs the Debian packages (build tools, libvirt daemon, QEMU,
#      OVMF, the pod VM image tools);
#   2. meson + ninja build the programs into build-demo/ (CAA_DEMO_BUILD=DIR to change);
#   3. tests/e2e/demo.py does the rest, printing every step with its wall time: a private mount
#      namespace and a network namespace as the "worker node" with its own virtlogd + libvirtd,
#      an isolated libvirt network (198.18.0.0/24) and dir pool; the pod VM image built and
#      uploaded as podvm-base.qcow2; cloud-api-adaptor started there; a pod network namespace on
#      a bridge (198.19.0.10) and a client one (198.19.0.200); caa-ctl CreateVM, StartVM and the
#      agent health check; busybox httpd started in the VM's pod namespace through the agent
#      socket; an HTTP GET from the client that crosses the VXLAN tunnel; StopVM.
# Everything it starts is stopped and deleted on success, failure, Ctrl-C or SIGTERM; the last
# line is "DEMO OK: ..." or "DEMO FAILED ...". See docs/e2e.md.
#
# Options are passed to demo.py: --keep-logs DIR (copy the daemon and VM console logs),
# --hold-on-failure SECONDS (leave everything running for inspection when a step fails).
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${CAA_DEMO_BUILD:-$root/build-demo}
targets=(adaptor/cloud-api-adaptor providers/caa-provider-libvirt.so adaptor/podnetwork/caa-podnet-worker.so adaptor/ctl/caa-ctl
  agent-protocol/forwarder/agent-protocol-forwarder agent-protocol/process-user-data/process-user-data
  tests/test-agent/caa-test-agent)

if [ "$(id -u)" -ne 0 ]; then
  echo "demo: run as root (it installs packages, starts libvirtd and creates network namespaces)" >&2
  exit 1
fi

state=
child=
prior=()
n=0

# Ctrl-C or SIGTERM: the Python driver (a background job, so the terminal's SIGINT does not
# reach it) gets SIGTERM and cleans up; before it runs there is nothing to clean up.
on_signal() {
  if [ -n "$child" ]; then
    echo "demo: interrupted; cleaning up"
    kill -TERM "$child" 2>/dev/null
  else
    echo "demo: interrupted"
    exit 130
  fi
}
# Last resort if the driver died without cleaning up (SIGKILL): kill what still runs in the
# namespaces it made and remove its temporary directory (localcloud.py reap).
on_exit() {
  if [ -n "$state" ]; then
    [ -s "$state" ] && python3 "$root/tests/e2e/localcloud.py" reap "$state"
    rm -f "$state"
  fi
}
trap on_signal INT TERM
trap on_exit EXIT

step() {
  local title=$1; shift
  n=$((n + 1))
  printf '[%2d] %s\n' "$n" "$title"
  local t0 t1 log
  t0=$(date +%s.%N)
  log=$(mktemp /tmp/caa-demo-step.XXXXXX)
  if ! "$@" >"$log" 2>&1; then
    tail -40 "$log" | sed 's/^/     /'
    rm -f "$log"
    echo "     FAILED"
    echo "DEMO FAILED at step $n: $title"
    exit 1
  fi
  rm -f "$log"
  t1=$(date +%s.%N)
  local dt
  dt=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  echo "     ok ($dt s)"
  prior+=(--prior-step "$dt=$title")
}

build_tree() {
  if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" || return 1
  fi
  ninja -C "$build" "${targets[@]}"
}

step "install dependencies (scripts/install-deps.sh)" "$root/scripts/install-deps.sh"
step "build cloud-api-adaptor, its libvirt provider, caa-ctl, the forwarder, process-user-data and caa-test-agent (meson + ninja into ${build#"$root"/})" build_tree

state=$(mktemp /tmp/caa-demo-state.XXXXXX)
python3 "$root/tests/e2e/demo.py" --build "$build" --state-file "$state" "${prior[@]}" "$@" &
child=$!
while :; do
  wait "$child"
  rc=$?
  kill -0 "$child" 2>/dev/null || break # wait was cut short by a signal: the driver still runs
done
child=
exit "$rc"
