#!/usr/bin/env bash
# Daemon memory (bench/daemon-rss/README.md): VmRSS, VmHWM, RssAnon, RssFile,
# Pss and the shared objects mapped, idle (after start-up and one Version
# call) and after N CreateVM, for each variant:
#   test        tests/support/cloud-api-adaptor-test test: the daemon core with
#               the statically registered test provider
#   test-notls  the same with -disable-tls
#   aws         adaptor/cloud-api-adaptor aws against the fake EC2 endpoint
#               (tests/integration/aws, the pinned official AWS SDK; node)
#   azure       adaptor/cloud-api-adaptor azure against the fake ARM endpoint
#               (tests/integration/azure/fake_arm.py)
#   libvirt     adaptor/cloud-api-adaptor libvirt -uri test:///default
#   all-linked  bench/daemon-rss/cloud-api-adaptor-all-linked test: every
#               provider linked in, as before provider modules
#   ready       the test daemon (TLS, -tls-skip-verify) with -r pods created,
#               then started: each holds a TLS connection to a real
#               agent-protocol-forwarder (in front of caa-test-agent)
#   ready-notls the same over plain TCP
# With -B, every variant is measured with the binaries of a second build dir
# too (e.g. the commit before a change), one after the other in the same run.
#
#   bench/daemon-rss/run.sh -b <build-dir> [-B <before-build-dir>] [-n "1000 10000"] [-r 1000] [-v "variants"]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=build
before=
pods="1000 10000"
ready=1000
variants="test test-notls aws azure libvirt ready ready-notls"
while getopts "b:B:n:r:v:" opt; do
  case $opt in
    b) build=$OPTARG ;;
    B) before=$OPTARG ;;
    n) pods=$OPTARG ;;
    r) ready=$OPTARG ;;
    v) variants=$OPTARG ;;
    *) echo "usage: $0 -b build-dir [-B before-build-dir] [-n pods] [-v variants]" >&2; exit 2 ;;
  esac
done
targets="tests/support/cloud-api-adaptor-test adaptor/cloud-api-adaptor adaptor/ctl/caa-ctl
  providers/caa-provider-libvirt.so providers/caa-provider-aws.so providers/caa-provider-azure.so
  agent-protocol/forwarder/agent-protocol-forwarder tests/test-agent/caa-test-agent"
case " $variants " in *" all-linked "*) targets="$targets bench/daemon-rss/cloud-api-adaptor-all-linked" ;; esac
builds=()
if [ -n "$before" ]; then
  # shellcheck disable=SC2086
  ninja -C "$before" $targets >/dev/null
  builds+=(--build "before=$before")
fi
# The pod network module exists only from the change that made it.
# shellcheck disable=SC2086
ninja -C "$build" $targets adaptor/podnetwork/caa-podnet-worker.so >/dev/null
builds+=(--build "after=$build")

echo "# $(date -u +%FT%TZ) load average: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 "$here/rss_bench.py" "${builds[@]}" --variants "$variants" --pods "$pods" --ready "$ready"
echo "# $(date -u +%FT%TZ) load average: $(cut -d' ' -f1-3 /proc/loadavg)"
