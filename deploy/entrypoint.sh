#!/bin/bash
# Container entrypoint with the contract of upstream's image, so this image is a drop-in for
# upstream's Helm chart (install/charts/peerpods runs /usr/local/bin/entrypoint.sh with the
# ConfigMap peer-pods-cm and the provider Secret as environment):
#   entrypoint.sh [provider [daemon flags...]]     provider defaults to $CLOUD_PROVIDER
# It checks the variables upstream requires for the provider, then execs
#   cloud-api-adaptor <provider> -pods-dir "$PODS_DIR" -socket "$REMOTE_HYPERVISOR_ENDPOINT" ...
# Every other option is read by the daemon itself from the same environment variable names
# (README "Configuration"); only the few that upstream's script turns into flags are
# translated here. `entrypoint.sh version|help` run the daemon's own commands.
set -euo pipefail

DAEMON=${CAA_DAEMON:-cloud-api-adaptor}

CLOUD_PROVIDER=${1:-${CLOUD_PROVIDER:-}}
if [[ $# -gt 0 ]]; then
    shift
fi

usage() {
    cat >&2 <<EOF
Usage:
	CLOUD_PROVIDER=aws|azure|libvirt $0 [flags]
or
	$0 aws|azure|libvirt [flags]

The provider's variables must be set (from peer-pods-cm and the provider secret).
(CLOUD_PROVIDER is currently set to "${CLOUD_PROVIDER}")
EOF
}

# Fails, naming every missing variable (never printing any value).
require() {
    local missing=0 v
    for v in "$@"; do
        if [[ -z "${!v:-}" ]]; then
            echo "\$$v is NOT set" >&2
            missing=1
        fi
    done
    if [[ $missing -ne 0 ]]; then
        exit 1
    fi
}

# Upstream strips the blanks after commas in list values (TAGS, instance sizes).
compact_list() {
    sed -E 's/,[[:space:]]+/,/g; s/^[[:space:]]+//; s/[[:space:]]+$//' <<<"$1"
}

flags=(-pods-dir "${PODS_DIR:-/run/peerpod/pods}" -socket "${REMOTE_HYPERVISOR_ENDPOINT:-/run/peerpod/hypervisor.sock}")

case "$CLOUD_PROVIDER" in
version | help)
    exec "$DAEMON" "$CLOUD_PROVIDER" "$@"
    ;;
aws)
    require AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
    # A launch template name switches to launch-template mode (upstream: -use-lt -aws-lt-name).
    if [[ -n "${PODVM_LAUNCHTEMPLATE_NAME:-}" ]]; then
        flags+=(-use-lt -aws-lt-name "$PODVM_LAUNCHTEMPLATE_NAME")
    fi
    if [[ -n "${TAGS:-}" ]]; then
        flags+=(-tags "$(compact_list "$TAGS")")
    fi
    ;;
azure)
    require AZURE_CLIENT_ID AZURE_TENANT_ID AZURE_SUBSCRIPTION_ID AZURE_RESOURCE_GROUP AZURE_SUBNET_ID AZURE_IMAGE_ID
    if [[ -n "${AZURE_INSTANCE_SIZES:-}" ]]; then
        flags+=(-instance-sizes "$(compact_list "$AZURE_INSTANCE_SIZES")")
    fi
    if [[ -n "${TAGS:-}" ]]; then
        flags+=(-tags "$(compact_list "$TAGS")")
    fi
    ;;
libvirt)
    require LIBVIRT_URI
    flags+=(-data-dir /opt/data-dir)
    ;;
alibabacloud | byom | docker | gcp | ibmcloud | ibmcloud-powervs | vsphere)
    echo "cloud provider \"$CLOUD_PROVIDER\" is not available in this image (aws, azure, libvirt are)" >&2
    exit 1
    ;;
*)
    usage
    exit 1
    ;;
esac

# gnutls is mapped only through Debian's libcurl (libldap, librtmp); the daemon never uses it
# (libcurl speaks OpenSSL, for http/https only). Without this its constructor initialises
# itself and p11-kit: ~0.8 MiB resident for nothing (bench/daemon-rss). The daemon cannot set
# it itself: shared libraries' constructors run before its code, and glibc has not yet set up
# the environment when the executable's preinit functions run.
export GNUTLS_NO_IMPLICIT_INIT=${GNUTLS_NO_IMPLICIT_INIT:-1}

# Log the command as upstream does; its flags hold no secret (credentials stay in the
# environment), and extra arguments are only counted since they might.
echo "+ exec $DAEMON $CLOUD_PROVIDER ${flags[*]} (+$# more arguments)" >&2
exec "$DAEMON" "$CLOUD_PROVIDER" "${flags[@]}" "$@"
