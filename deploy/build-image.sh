#!/usr/bin/env bash
# Builds the cloud-api-adaptor container image without any container registry: a root filesystem
# from Debian packages (mmdebstrap, from Debian's archive) holding exactly the libraries the
# built daemon and provider modules link, plus the installed programs and deploy/entrypoint.sh,
# imported as an OCI image with podman. deploy/Containerfile does the same where a registry
# (debian:bookworm) is reachable. Run as root.
#
#   deploy/build-image.sh [-B builddir] [-t tag] [-o image.oci.tar] [-c cachedir] [-v variant]
#
#   -B  an existing meson build directory to install from (default: a fresh release build in a
#       temporary directory)
#   -t  image name (default localhost/cloud-api-adaptor-c:<version>)
#   -o  also write the image as an OCI archive (podman load / skopeo copy it anywhere)
#   -c  keep the Debian root filesystem here and reuse it while the package set is unchanged
#       (and the downloaded packages, for the next package set)
#   -v  mmdebstrap variant: extract (default: libraries and bash only, no package manager)
#       or essential (adds dpkg/apt and the Essential set)
# Environment: PODMAN (default "podman"; e.g. "podman --root DIR --storage-driver vfs"),
#   DEBIAN_MIRROR (default http://deb.debian.org/debian), DEBIAN_SECURITY_MIRROR.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build="" tag="" oci="" cache="" variant=extract
while getopts "B:t:o:c:v:h" opt; do
  case $opt in
    B) build=$(cd "$OPTARG" && pwd) ;;
    t) tag=$OPTARG ;;
    o) oci=$OPTARG ;;
    c) cache=$OPTARG ;;
    v) variant=$OPTARG ;;
    *) sed -n '2,20p' "$0" >&2; exit 2 ;;
  esac
done
case $variant in extract | essential) ;; *) echo "build-image: unknown variant $variant" >&2; exit 2 ;; esac
if [ "$(id -u)" -ne 0 ]; then
  echo "build-image: run as root (mmdebstrap root mode, podman storage)" >&2
  exit 1
fi
PODMAN=${PODMAN:-podman}
for tool in mmdebstrap "${PODMAN%% *}" meson ldd dpkg-query; do
  command -v "$tool" >/dev/null || { echo "build-image: $tool missing (scripts/install-deps.sh)" >&2; exit 1; }
done
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

work=$(mktemp -d /tmp/caa-image.XXXXXX)
trap 'rm -rf "$work"' EXIT

if [ -z "$build" ]; then
  build=$work/build
  meson setup "$build" "$src" -Dtests=false -Dbuildtype=release >"$work/setup.log" || { cat "$work/setup.log"; exit 1; }
  ninja -C "$build" >"$work/ninja.log" || { tail -40 "$work/ninja.log"; exit 1; }
fi

# 1. What goes in: the daemon, caa-ctl and the provider modules at their installed paths (the
#    daemon finds its modules only in the compiled-in directory). The pod-VM programs stay out.
staging=$work/staging
meson install -C "$build" --no-rebuild --destdir "$staging" >"$work/install.log" || { cat "$work/install.log"; exit 1; }
daemon=$(find "$staging" -path '*/bin/cloud-api-adaptor' -type f | head -1)
[ -n "$daemon" ] || { echo "build-image: the build installs no cloud-api-adaptor" >&2; exit 1; }
find "$staging" \( -name process-user-data -o -name agent-protocol-forwarder \) -type f -delete
install -D -m 0755 "$src/deploy/entrypoint.sh" "$staging/usr/local/bin/entrypoint.sh"
install -d -m 0755 "$staging/opt/data-dir"
version=$("$daemon" version 2>&1 | awk 'NR==1 {print $NF}')
tag=${tag:-localhost/cloud-api-adaptor-c:$version}

# 2. Which Debian packages: the owners of every library the ELF files load.
elves=$(find "$staging" -type f \( -perm -u+x -o -name '*.so' \) -exec sh -c 'head -c4 "$1" | grep -q ELF' _ {} \; -print)
libs=$(for f in $elves; do ldd "$f"; done)
if grep -q 'not found' <<<"$libs"; then
  grep 'not found' <<<"$libs" | sort -u >&2
  exit 1
fi
# One dpkg-query for all (it takes a second per call): each library under its own path, its
# resolved path, and both with and without /usr (merged /usr: dpkg knows only one of them).
candidates=$(awk '/=> \// {print $3}' <<<"$libs" | sort -u | while read -r lib; do
  real=$(readlink -f "$lib")
  printf '%s %s\n' "$lib" "$lib" "$lib" "$real" "$lib" "${real#/usr}" "$lib" "/usr$lib" "$lib" "/usr${real#/usr}"
done)
owners=$(dpkg-query -S $(awk '{print $2}' <<<"$candidates" | sort -u) 2>/dev/null || true)
packages=()
for lib in $(awk '{print $1}' <<<"$candidates" | sort -u); do
  owner=""
  for path in $(awk -v l="$lib" '$1 == l {print $2}' <<<"$candidates"); do
    owner=$(awk -v p="$path" '{ split($0, a, ": "); if (a[2] == p) { sub(/[:,].*/, "", a[1]); print a[1]; exit } }' \
      <<<"$owners")
    [ -n "$owner" ] && break
  done
  [ -n "$owner" ] || { echo "build-image: no Debian package owns $lib" >&2; exit 1; }
  packages+=("$owner")
done
packages+=(bash coreutils ca-certificates)
pkglist=$(printf '%s\n' "${packages[@]}" | sort -u | paste -sd, -)

# 3. The root filesystem from Debian's archive (bookworm with its updates and security fixes).
sources=("deb $mirror bookworm main" "deb $mirror bookworm-updates main" "deb $security bookworm-security main")
key=$(printf '%s\n' "$variant" "$pkglist" "${sources[@]}" | sha256sum | cut -c1-16)
rootfs=$work/rootfs.tar
if [ -n "$cache" ] && [ -s "$cache/rootfs-$key.tar" ]; then
  cp "$cache/rootfs-$key.tar" "$rootfs"
  echo "build-image: Debian root filesystem from the cache ($cache/rootfs-$key.tar)"
else
  echo "build-image: mmdebstrap $variant with $pkglist"
  # With a cache directory the downloaded packages are kept there too (mmdebstrap's documented
  # sync-in/sync-out of /var/cache/apt/archives), so a changed package set downloads only what
  # is new; they are removed from the tree before it is packed.
  debhooks=()
  last_hook=customize # the extract variant stops after its extract hooks
  [ "$variant" = extract ] && last_hook=extract
  if [ -n "$cache" ]; then
    mkdir -p "$cache/debs"
    debhooks=(--skip=essential/unlink
      --setup-hook='mkdir -p "$1/var/cache/apt/archives"'
      --setup-hook="sync-in $(printf '%q' "$cache/debs") /var/cache/apt/archives"
      --$last_hook-hook="sync-out /var/cache/apt/archives $(printf '%q' "$cache/debs")"
      --$last_hook-hook='rm -f "$1"/var/cache/apt/archives/*.deb')
  fi
  mmdebstrap --quiet --mode=root --variant="$variant" --include="$pkglist" "${debhooks[@]}" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' bookworm "$rootfs" "${sources[@]}"
  if [ -n "$cache" ]; then
    mkdir -p "$cache"
    cp "$rootfs" "$cache/rootfs-$key.tar.part" && mv "$cache/rootfs-$key.tar.part" "$cache/rootfs-$key.tar"
  fi
fi

# The extract variant runs no maintainer scripts, so the CA bundle that ca-certificates' postinst
# would build (the daemon's TLS trust store) is assembled here from the same package's files.
if ! tar -tf "$rootfs" ./etc/ssl/certs/ca-certificates.crt >/dev/null 2>&1; then
  mkdir -p "$work/ca" "$staging/etc/ssl/certs"
  tar -xf "$rootfs" -C "$work/ca" --wildcards './usr/share/ca-certificates/mozilla/*.crt'
  cat "$work"/ca/usr/share/ca-certificates/mozilla/*.crt >"$staging/etc/ssl/certs/ca-certificates.crt"
fi

# 4. One layer: the Debian tree with our files appended (owned by root: the module loader
#    refuses a module directory that is not), imported as an OCI image.
#    A path may appear only once in a layer, so directories the Debian tree already has
#    (/usr/local/bin, ...) are not added again; a file of ours that Debian ships is an error.
tar -tf "$rootfs" | sed -e 's,/$,,' -e 's,^\([^.]\),./\1,' | sort -u >"$work/debian.list"
(cd "$staging" && find . -mindepth 1 | sort) >"$work/ours.list"
clash=$(comm -12 "$work/ours.list" "$work/debian.list" | while read -r p; do [ -d "$staging/$p" ] || echo "$p"; done)
[ -z "$clash" ] || { echo "build-image: Debian already ships $clash" >&2; exit 1; }
comm -23 "$work/ours.list" "$work/debian.list" >"$work/append.list"
tar --append -f "$rootfs" --owner=0 --group=0 --no-recursion -C "$staging" -T "$work/append.list"
$PODMAN import \
  --change 'ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "LABEL org.opencontainers.image.title=cloud-api-adaptor-c org.opencontainers.image.version=$version" \
  --message "cloud-api-adaptor $version on Debian bookworm ($variant)" \
  "$rootfs" "$tag" >/dev/null
if [ -n "$oci" ]; then
  rm -f "$oci"
  $PODMAN save --format oci-archive -o "$oci" "$tag"
fi
echo "build-image: $tag"
