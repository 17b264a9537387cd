#!/usr/bin/env bash
# Installs every Debian package needed to build and test the project (Debian 12).
# Idempotent: packages already present are skipped by apt-get. Run as root.
set -euo pipefail

build_pkgs=(
  build-essential meson ninja-build pkg-config clang clang-format libclang-rt-14-dev
  libuv1-dev libcurl4-openssl-dev libssl-dev libjansson-dev libvirt-dev libssh2-1-dev
  libprotobuf-c-dev protobuf-c-compiler protobuf-compiler libxml2-dev libnl-3-dev libnl-route-3-dev
  libyaml-dev libisofs-dev zlib1g-dev libcmocka-dev
  libnftables-dev
)
test_pkgs=(
  valgrind python3 python3-yaml iproute2 socat netcat-openbsd procps
  golang-go golang-github-containerd-ttrpc-dev golang-google-protobuf-dev golang-github-gogo-protobuf-dev
  nftables util-linux iperf3 openssl
  openssh-client openssh-server python3-jwt python3-cryptography
  libvirt-clients libxml2-utils genisoimage
  e2fsprogs mount
  nodejs
  libvirt-daemon-system libvirt-daemon libvirt-daemon-driver-qemu dnsmasq-base
  gdb
)
# Pod VM image (images/build-podvm-base.sh) and its QEMU boot test (meson suite image).
image_pkgs=(
  linux-image-amd64 busybox-static systemd-boot-efi mtools fdisk binutils kmod qemu-utils
  qemu-system-x86 ovmf genisoimage
)
# Kubernetes: official clients that keep the fake API server honest (tests/integration/kube-fake),
# and the container image built without a registry (tests/image-container, deploy/build-image.sh).
# podman runs images with runc: Debian's default crun refuses hybrid cgroup hosts (docs/kubernetes.md).
# python3-prometheus-client parses /metrics in tests/integration/kube; python3-jsonpatch applies the
# webhook's patches in tests/integration/webhook.
kube_pkgs=(python3-kubernetes python3-jsonpatch python3-prometheus-client python3-yaml openssl mmdebstrap podman runc uidmap)
# kubectl: Debian's kubernetes-client, unless another kubectl (it would conflict) is installed.
if ! command -v kubectl >/dev/null 2>&1; then
  kube_pkgs+=(kubernetes-client)
fi

missing=()
for p in "${build_pkgs[@]}" "${test_pkgs[@]}" "${image_pkgs[@]}" "${kube_pkgs[@]}" "$@"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages (run as root): ${missing[*]}" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
