#!/usr/bin/env bash
# Static checks of the production image recipe (images/production), which CI never builds:
#  1. the systemd units pass `systemd-analyze verify` in a scratch root that has the host's
#     unit tree and stand-ins for the binaries they run;
#  2. the units keep upstream's boot order (process-user-data -> kata-agent -> forwarder.path);
#  3. if mkosi is installed, `mkosi summary` parses mkosi.conf with the wrapper's extra trees.
# Exit 77 (skip) without systemd-analyze.
set -euo pipefail

src=${CAA_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
recipe="$src/images/production"
units="$recipe/mkosi.extra/etc/systemd/system"
command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze not installed"; exit 77; }
[ -d /usr/lib/systemd/system ] || { echo "SKIP: no host systemd unit tree"; exit 77; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
check() { # check NAME COMMAND...
    local name=$1
    shift
    if "$@" >"$tmp/out" 2>&1; then
        pass=$((pass + 1))
        echo "ok - $name"
    else
        fail=$((fail + 1))
        echo "not ok - $name"
        sed 's/^/#   /' "$tmp/out"
    fi
}

root="$tmp/root"
mkdir -p "$root/usr/lib/systemd" "$root/usr/bin" "$root/usr/local/bin"
cp -a "$recipe/mkosi.extra/." "$root/"
cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
for b in kata-agent agent-protocol-forwarder process-user-data azure-ready; do
    printf '#!/bin/sh\n' >"$root/usr/local/bin/$b"
    chmod 755 "$root/usr/local/bin/$b"
done
for b in mkdir ip; do
    printf '#!/bin/sh\n' >"$root/usr/bin/$b"
    chmod 755 "$root/usr/bin/$b"
done

verify() {
    local out
    out=$(cd "$root/etc/systemd/system" && systemd-analyze verify --man=no --root="$root" \
        process-user-data.service kata-agent.service agent-protocol-forwarder.path \
        agent-protocol-forwarder.service netns@podns.service azure-ready.service 2>&1)
    echo "$out"
    [ -z "$out" ]
}
check "systemd-analyze verify of the pod VM units" verify

order() {
    grep -qx 'After=network-online.target' "$units/process-user-data.service" &&
        grep -q '^After=.*process-user-data.service' "$units/kata-agent.service" &&
        grep -qx 'BindsTo=netns@podns.service' "$units/kata-agent.service" &&
        grep -qx 'PathExists=/run/kata-containers/agent.sock' "$units/agent-protocol-forwarder.path" &&
        grep -q '^ExecStart=.*-kata-agent-socket /run/kata-containers/agent.sock' \
            "$units/agent-protocol-forwarder.service" &&
        grep -q 'agent-protocol-forwarder.path' "$recipe/mkosi.postinst"
}
check "boot order process-user-data -> kata-agent -> forwarder" order

if command -v mkosi >/dev/null; then
    summary() {
        mkdir -p "$tmp/stage"
        (cd "$recipe" && mkosi --extra-tree="$recipe/mkosi.extra,$tmp/stage" --output="$tmp/podvm.raw" summary) \
            >"$tmp/summary" 2>&1 || { cat "$tmp/summary"; return 1; }
        grep -q 'Output Format: gpt_squashfs' "$tmp/summary" &&
            grep -q 'Verity: yes' "$tmp/summary" &&
            grep -q 'Unified Kernel Images: yes' "$tmp/summary" &&
            grep -q "Kernel Command Line: console=ttyS0,115200 systemd.volatile=state" "$tmp/summary" &&
            grep -q "$tmp/stage" "$tmp/summary"
    }
    check "mkosi summary parses the recipe" summary
else
    echo "ok - mkosi summary # SKIP mkosi not installed"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
