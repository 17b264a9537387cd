#!/usr/bin/env bash
# Builds the production pod VM image (docs/podvm-image.md, "Production image") with mkosi 14.
# NOT built or tested by this project's CI. Needs root (mkosi uses loop devices and
# systemd-nspawn), network access to the Debian mirror, and: mkosi squashfs-tools qemu-utils.
#
# Usage: images/production/build-production.sh --kata-agent PATH --forwarder PATH \
#            --process-user-data PATH --azure-ready PATH OUTPUT_DIR
# Output: OUTPUT_DIR/podvm.raw (GPT: ESP with the UKI, squashfs root, verity) and podvm.qcow2.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() {
    echo "build-production: error: $*" >&2
    exit 1
}

agent='' forwarder='' pud='' ready='' outdir=''
while [ $# -gt 0 ]; do
    case $1 in
    --kata-agent) agent=${2?}; shift ;;
    --forwarder) forwarder=${2?}; shift ;;
    --process-user-data) pud=${2?}; shift ;;
    --azure-ready) ready=${2?}; shift ;;
    -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) outdir=$1 ;;
    esac
    shift
done
[ -n "$outdir" ] || die "OUTPUT_DIR missing (see --help)"
for f in "$agent" "$forwarder" "$pud" "$ready"; do
    [ -n "$f" ] && [ -x "$f" ] && continue
    die "--kata-agent, --forwarder, --process-user-data and --azure-ready must name executables"
done
for t in mkosi mksquashfs qemu-img; do
    command -v "$t" >/dev/null || die "$t is not installed"
done
[ "$(id -u)" = 0 ] || die "mkosi needs root"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
install -D -m 0755 "$agent" "$stage/usr/local/bin/kata-agent"
install -D -m 0755 "$forwarder" "$stage/usr/local/bin/agent-protocol-forwarder"
install -D -m 0755 "$pud" "$stage/usr/local/bin/process-user-data"
install -D -m 0755 "$ready" "$stage/usr/local/bin/azure-ready"

mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
cd "$here"
mkosi --force --extra-tree="$here/mkosi.extra,$stage" --output="$outdir/podvm.raw" build
qemu-img convert -f raw -O qcow2 "$outdir/podvm.raw" "$outdir/podvm.qcow2"
echo "build-production: wrote $outdir/podvm.qcow2"
