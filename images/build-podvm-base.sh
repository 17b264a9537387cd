#!/usr/bin/env bash
# Builds podvm-base.qcow2, the pod VM image for the local libvirt provider, from Debian packages
# only and as a normal user (no loop mounts, no chroot, no root). See docs/podvm-image.md.
#
#   GPT disk ── EFI system partition (FAT, mtools) ── \EFI\BOOT\BOOTX64.EFI
#   BOOTX64.EFI = unified kernel image: systemd-stub + Debian kernel + command line + initramfs
#   initramfs   = the whole root file system: busybox-static, kernel modules, boot scripts,
#                 process-user-data, kata-agent and agent-protocol-forwarder (or placeholders)
#
# Usage: images/build-podvm-base.sh [options] OUTPUT_DIR
#   --forwarder PATH          agent-protocol-forwarder binary       (env PODVM_FORWARDER)
#   --process-user-data PATH  process-user-data binary              (env PODVM_PROCESS_USER_DATA)
#   --agent PATH              kata-agent or a test agent            (env PODVM_AGENT)
#   --agent-args ARGS         agent arguments                       (env PODVM_AGENT_ARGS, default "")
#   --forwarder-args ARGS     forwarder arguments                   (env PODVM_FORWARDER_ARGS,
#                             default "-pod-namespace /run/netns/podns -kata-agent-socket /run/kata-containers/agent.sock")
#   --pud-args ARGS           extra process-user-data arguments     (env PODVM_PUD_ARGS, default "")
#   --extra-bin PATH[:DEST]   add a host binary and its libraries (repeatable; env PODVM_EXTRA_BINS,
#                             space separated); DEST defaults to /usr/local/bin/<name>
#   --kernel PATH             kernel (default: newest /boot/vmlinuz-*; env PODVM_KERNEL); its
#                             modules come from /lib/modules/<version>
#   --cmdline TEXT            kernel command line (env PODVM_CMDLINE)
#   --disk-size MIB           virtual size of the qcow2 (default: just large enough)
#   --initramfs-compression gzip|zstd  (env PODVM_INITRAMFS_COMPRESSION, default gzip)
#   --debug-shell             also start a root shell on ttyS0 (never for production)
#   --name FILE               output file name (default podvm-base.qcow2)
# A binary that is not given or does not exist is replaced by a placeholder that logs
# "podvm: missing <name>" at boot, so the boot path can be tested without it.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
start_s=$(date +%s.%N)

die() {
    echo "build-podvm-base: error: $*" >&2
    exit 1
}
note() { echo "build-podvm-base: $*"; }

usage() {
    sed -n '/^# Usage:/,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
    exit "${1:-0}"
}

forwarder=${PODVM_FORWARDER:-}
pud=${PODVM_PROCESS_USER_DATA:-}
agent=${PODVM_AGENT:-}
agent_args=${PODVM_AGENT_ARGS:-}
forwarder_args=${PODVM_FORWARDER_ARGS:--pod-namespace /run/netns/podns -kata-agent-socket /run/kata-containers/agent.sock}
pud_args=${PODVM_PUD_ARGS:-}
read -r -a extra_bins <<<"${PODVM_EXTRA_BINS:-}"
kernel=${PODVM_KERNEL:-}
cmdline=${PODVM_CMDLINE:-console=ttyS0,115200 panic=-1 quiet}
disk_size_mib=
debug_shell=0
compression=${PODVM_INITRAMFS_COMPRESSION:-gzip}
name=podvm-base.qcow2
outdir=

while [ $# -gt 0 ]; do
    case $1 in
    --forwarder) forwarder=${2?}; shift ;;
    --process-user-data) pud=${2?}; shift ;;
    --agent) agent=${2?}; shift ;;
    --agent-args) agent_args=${2?}; shift ;;
    --forwarder-args) forwarder_args=${2?}; shift ;;
    --pud-args) pud_args=${2?}; shift ;;
    --extra-bin) extra_bins+=("${2?}"); shift ;;
    --kernel) kernel=${2?}; shift ;;
    --cmdline) cmdline=${2?}; shift ;;
    --disk-size) disk_size_mib=${2?}; shift ;;
    --debug-shell) debug_shell=1 ;;
    --initramfs-compression) compression=${2?}; shift ;;
    --name) name=${2?}; shift ;;
    -h | --help) usage 0 ;;
    -*) echo "unknown option $1" >&2; usage 2 >&2 ;;
    *) [ -z "$outdir" ] || die "only one OUTPUT_DIR"; outdir=$1 ;;
    esac
    shift
done
[ -n "$outdir" ] || usage 2 >&2
case $name in */* | '') die "--name must be a plain file name" ;; esac
[ -z "$disk_size_mib" ] || [[ $disk_size_mib =~ ^[0-9]+$ ]] || die "--disk-size takes MiB"
case $compression in gzip | zstd) ;; *) die "--initramfs-compression takes gzip or zstd" ;; esac

# ---- tools -----------------------------------------------------------------------------------
# tool:package; scripts/install-deps.sh (image_pkgs) installs all of them.
tools=(objcopy:binutils objdump:binutils mformat:mtools mmd:mtools mcopy:mtools sfdisk:fdisk
    qemu-img:qemu-utils modinfo:kmod python3:python3 "$compression:$compression" ldd:libc-bin readelf:binutils)
missing=()
for t in "${tools[@]}"; do
    command -v "${t%%:*}" >/dev/null 2>&1 || missing+=("${t%%:*} (package ${t#*:})")
done
stub=/usr/lib/systemd/boot/efi/linuxx64.efi.stub
[ -r "$stub" ] || missing+=("$stub (package systemd-boot-efi)")
busybox=/bin/busybox
if [ ! -x "$busybox" ] || readelf -l "$busybox" 2>/dev/null | grep -q 'program interpreter'; then
    missing+=("static $busybox (package busybox-static)")
fi
if [ -z "$kernel" ]; then
    kernel=$(find /boot -maxdepth 1 -name 'vmlinuz-*' 2>/dev/null | sort -V | tail -n 1 || true)
    [ -n "$kernel" ] || missing+=("/boot/vmlinuz-* (package linux-image-amd64)")
fi
if [ ${#missing[@]} -gt 0 ]; then
    printf 'build-podvm-base: missing tool: %s\n' "${missing[@]}" >&2
    die "install them with scripts/install-deps.sh (run as root)"
fi
[ -r "$kernel" ] || die "kernel $kernel is not readable"
kver=${kernel##*/vmlinuz-}
[ -d "/lib/modules/$kver/kernel" ] || die "no modules for $kver in /lib/modules/$kver"

# ---- work directory (rebuilt from scratch every run) ----------------------------------------
outdir=$(realpath -m "$outdir")
srcroot=$(cd "$here/.." && pwd)
case "$outdir/" in
"$srcroot"/*)
    # Inside the work tree only ignored directories (build dirs) are fine.
    if git -C "$srcroot" rev-parse --git-dir >/dev/null 2>&1; then
        git -C "$srcroot" check-ignore -q "$outdir/" ||
            die "OUTPUT_DIR $outdir is inside the source tree; use a build directory"
    else
        case "$outdir/" in "$srcroot"/build*/*) ;; *) die "OUTPUT_DIR is inside the source tree" ;; esac
    fi
    ;;
esac
mkdir -p "$outdir"
parts="$outdir/${name%.qcow2}.parts"
rm -rf "$parts"
mkdir -p "$parts/gen"
tmp_out=
cleanup() {
    local rc=$?
    [ -z "$tmp_out" ] || rm -f "$tmp_out"
    rm -rf "$parts/gen/raw"
    [ $rc -eq 0 ] || echo "build-podvm-base: failed; partial output in $parts" >&2
}
trap cleanup EXIT

spec="$parts/initramfs.spec"
gen="$parts/gen"
: >"$spec"
declare -A have_dir=() have_entry=()

sq() { # shell-quote $1 for the generated config
    printf "'%s'" "${1//\'/\'\\\'\'}"
}
spec_dir() { # spec_dir /path (creates parents too)
    local d=$1
    [ "$d" != / ] && [ -z "${have_dir[$d]:-}" ] || return 0
    spec_dir "$(dirname "$d")"
    have_dir[$d]=1
    echo "dir $d 0755 0 0" >>"$spec"
}
spec_add() { # spec_add KIND DEST "rest of line"
    local dest=$2
    if [ -n "${have_entry[$dest]:-}" ]; then
        return 0
    fi
    have_entry[$dest]=1
    spec_dir "$(dirname "$dest")"
    echo "$1 $dest $3" >>"$spec"
}
spec_file() { # spec_file SOURCE DEST MODE
    [[ $1 != *[[:space:]]* ]] || die "path with white space: $1"
    spec_add file "$2" "$1 $3 0 0"
}
spec_gen() { # spec_gen DEST MODE < content
    local f
    f="$gen/$(echo "$1" | tr / _)"
    cat >"$f"
    spec_file "$f" "$1" "$2"
}
spec_elf() { # spec_elf SOURCE DEST: an executable plus the shared libraries it needs
    local src=$1 dest=$2 line lib
    spec_file "$src" "$dest" 0755
    readelf -l "$src" 2>/dev/null | grep -q 'program interpreter' || return 0
    while read -r line; do
        case $line in
        *'=> not found'*) die "$src needs ${line%% *}, which is not installed" ;;
        *'=> /'*) lib=${line#*=> } ;;
        /*) lib=$line ;;
        *) continue ;;
        esac
        lib=${lib%% (*}
        spec_file "$lib" "$lib" 0755
    done < <(ldd "$src")
}

# ---- base tree -------------------------------------------------------------------------------
for d in /bin /sbin /usr/bin /usr/sbin /usr/local/bin /lib /etc /root /proc /sys /dev /run /tmp \
    /media/cidata /var/log /mnt; do
    spec_dir "$d"
done
echo "nod /dev/console 0600 0 0 c 5 1" >>"$spec"
spec_file "$busybox" /bin/busybox 0755
while read -r applet; do
    case $applet in linuxrc | '') continue ;; esac
    spec_add slink "/$applet" "/bin/busybox 0777 0 0"
done < <("$busybox" --list-full)
spec_file "$here/podvm-base/rootfs/init" /init 0755
for f in rc.sysinit rc.shutdown svc udhcpc.script; do
    spec_file "$here/podvm-base/rootfs/etc/podvm/$f" "/etc/podvm/$f" 0755
done

version=unknown
commit_time=0
if git -C "$here" rev-parse --short HEAD >/dev/null 2>&1; then
    version=$(git -C "$here" rev-parse --short HEAD)
    commit_time=$(git -C "$here" log -1 --format=%ct)
fi
# Fixed timestamps (cpio, PE header, FAT entries) make the image reproducible.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$commit_time}
spec_gen /etc/os-release 0644 <<EOF
ID=podvm-base
NAME="peer-pods test pod VM (busybox)"
PRETTY_NAME="peer-pods test pod VM (busybox, kernel $kver)"
VERSION_ID=$version
EOF
spec_gen /etc/passwd 0644 <<'EOF'
root:x:0:0:root:/root:/bin/sh
sshd:x:100:65534::/run/sshd:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
spec_gen /etc/group 0644 <<'EOF'
root:x:0:
tty:x:5:
nogroup:x:65534:
EOF
spec_gen /etc/hosts 0644 <<'EOF'
127.0.0.1 localhost podvm
::1 localhost ip6-localhost
EOF
# Same agent configuration as upstream's image, for use with a real kata-agent
# (--agent-args "--config /etc/agent-config.toml").
spec_gen /etc/agent-config.toml 0644 <<'EOF'
server_addr = "unix:///run/kata-containers/agent.sock"
guest_components_procs = "none"
EOF
{
    echo "::sysinit:/etc/podvm/rc.sysinit"
    echo "::wait:/etc/podvm/svc process-user-data"
    echo "::respawn:/etc/podvm/svc kata-agent"
    echo "::respawn:/etc/podvm/svc agent-protocol-forwarder"
    [ "$debug_shell" = 0 ] || echo "ttyS0::askfirst:-/bin/sh"
    echo "::ctrlaltdel:/sbin/reboot"
    echo "::shutdown:/etc/podvm/rc.shutdown"
} | spec_gen /etc/inittab 0644
{
    echo "PODVM_VERSION=$(sq "$version")"
    echo "PODVM_AGENT_ARGS=$(sq "$agent_args")"
    echo "PODVM_FORWARDER_ARGS=$(sq "$forwarder_args")"
    echo "PODVM_PUD_ARGS=$(sq "$pud_args")"
    echo "PODVM_CIDATA_TIMEOUT=10"
} | spec_gen /etc/podvm/podvm.conf 0644

# ---- the three pod VM programs (or placeholders) ---------------------------------------------
manifest="$parts/manifest.txt"
{
    echo "image: $name"
    echo "version: $version"
    echo "kernel: $kernel ($kver)"
    echo "cmdline: $cmdline"
} >"$manifest"
add_program() { # add_program NAME PATH
    local pname=$1 src=$2
    if [ -n "$src" ] && [ -f "$src" ] && [ -x "$src" ]; then
        spec_elf "$src" "/usr/local/bin/$pname"
        echo "program: $pname = $src" >>"$manifest"
        note "$pname: $src"
        return
    fi
    [ -z "$src" ] || note "warning: $pname binary $src does not exist; using a placeholder"
    note "$pname: PLACEHOLDER (logs 'missing $pname' at boot)"
    echo "program: $pname = PLACEHOLDER" >>"$manifest"
    # Placeholders block instead of exiting so that init does not respawn them in a loop.
    spec_gen "/usr/local/bin/$pname" 0755 <<EOF
#!/bin/sh
# PLACEHOLDER written by images/build-podvm-base.sh: no $pname binary was given at build time.
echo "podvm: missing $pname (placeholder)"
[ "$pname" = process-user-data ] && exit 1
while :; do sleep 3600; done
EOF
}
add_program process-user-data "$pud"
add_program kata-agent "$agent"
add_program agent-protocol-forwarder "$forwarder"
# Secure comms: the forwarder runs the host's OpenSSH sshd (openssh-server) when apf.json has
# "sc": true (docs/secure-comms.md); rc.sysinit makes its /run/sshd. Optional for the image.
if [ -x /usr/sbin/sshd ]; then
    spec_elf /usr/sbin/sshd /usr/sbin/sshd
    echo "program: sshd = /usr/sbin/sshd" >>"$manifest"
    note "sshd: /usr/sbin/sshd (secure comms)"
else
    note "sshd: not installed on the build host; secure comms will not work in this image"
fi
for eb in "${extra_bins[@]}"; do
    src=${eb%%:*}
    dest=${eb#*:}
    [ "$dest" != "$eb" ] || dest=/usr/local/bin/$(basename "$src")
    [ -f "$src" ] || die "extra binary $src does not exist"
    spec_elf "$src" "$dest"
    echo "extra: $dest = $src" >>"$manifest"
done

# ---- kernel modules in dependency order --------------------------------------------------------
mapfile -t wanted < <(grep -v '^\s*\(#\|$\)' "$here/podvm-base/modules.list")
declare -A mod_state=()
order=()
visit_module() { # visit_module NAME [optional]: depth-first, dependencies and soft "pre:" deps first
    local m=${1//-/_} opt=${2:-} file dep soft provider
    case ${mod_state[$m]:-} in done) return ;; visiting) die "module dependency cycle at $m" ;; esac
    mod_state[$m]=visiting
    file=$(modinfo -k "$kver" -F filename "$m" 2>/dev/null | head -n 1) || true
    [ -n "$file" ] || die "module $m not found for kernel $kver"
    if [ "$file" != "(builtin)" ]; then
        for dep in $(modinfo -k "$kver" -F depends "$m" | tr , ' '); do
            visit_module "$dep" "$opt"
        done
        # A soft dependency names an alias (e.g. crct10dif) that several modules provide; any of
        # them may fail to load on a given CPU, so they are optional.
        soft=$(modinfo -k "$kver" -F softdep "$m" | sed -n 's/.*pre:\([^:]*\)\( post:.*\)\{0,1\}$/\1/p')
        for dep in $soft; do
            for provider in $(modinfo -k "$kver" -F name "$dep"); do visit_module "$provider" optional; done
        done
        case $file in
        /lib/modules/"$kver"/*) ;;
        *) die "unexpected module path $file" ;;
        esac
        order+=("${opt:+?}$file")
    fi
    mod_state[$m]="done"
}
for m in "${wanted[@]}"; do visit_module "$m"; done
: >"$gen/modules.order"
for f in "${order[@]}"; do
    mark=
    [ "${f#\?}" = "$f" ] || { mark='?'; f=${f#\?}; }
    dest=${f%.xz}
    dest=${dest%.zst}
    case $f in
    *.ko) spec_file "$f" "$dest" 0644 ;;
    *.ko.xz) xz -dc "$f" >"$gen/$(basename "$dest")" && spec_file "$gen/$(basename "$dest")" "$dest" 0644 ;;
    *.ko.zst) zstd -qdc "$f" >"$gen/$(basename "$dest")" && spec_file "$gen/$(basename "$dest")" "$dest" 0644 ;;
    *) die "unsupported module file $f" ;;
    esac
    echo "$mark$dest" >>"$gen/modules.order"
done
spec_file "$gen/modules.order" /etc/podvm/modules.order 0644
echo "modules: ${#order[@]} (${wanted[*]})" >>"$manifest"

# ---- initramfs --------------------------------------------------------------------------------
python3 "$here/tools/mkcpio.py" "$spec" "$gen/initramfs.cpio"
case $compression in
gzip) initramfs="$parts/initramfs.cpio.gz" && gzip -n -6 -c "$gen/initramfs.cpio" >"$initramfs" ;;
zstd) initramfs="$parts/initramfs.cpio.zst" && zstd -q -19 -c "$gen/initramfs.cpio" >"$initramfs" ;;
esac
echo "initramfs-uncompressed: $(stat -c %s "$gen/initramfs.cpio") bytes" >>"$manifest"
rm -f "$gen/initramfs.cpio"

# ---- unified kernel image ---------------------------------------------------------------------
printf '%s' "$cmdline" >"$parts/cmdline"
spec_osrel="$gen/_etc_os-release"
# Sections go after the stub's last section, each aligned to the PE section alignment;
# .linux comes last because the kernel may grow in place while it decompresses.
align=$((16#$(objdump -p "$stub" | awk '$1 == "SectionAlignment" { print $2 }')))
next=0
while read -r idx _ size vma _; do
    [[ $idx =~ ^[0-9]+$ ]] || continue
    end=$((16#$vma + 16#$size))
    [ $end -le $next ] || next=$end
done < <(objdump -h "$stub")
if [ "$next" -eq 0 ] || [ "$align" -eq 0 ]; then die "cannot read the section layout of $stub"; fi
objcopy_args=()
add_section() { # add_section NAME FILE
    next=$(((next + align - 1) / align * align))
    objcopy_args+=(--add-section "$1=$2" --change-section-vma "$1=$(printf '0x%x' "$next")")
    next=$((next + $(stat -c %s "$2")))
}
add_section .osrel "$spec_osrel"
add_section .cmdline "$parts/cmdline"
add_section .initrd "$initramfs"
add_section .linux "$kernel"
uki="$parts/${name%.qcow2}.efi"
objcopy "${objcopy_args[@]}" "$stub" "$uki"
python3 "$here/tools/pe-fix-timestamp.py" "$uki"
for s in .osrel .cmdline .initrd .linux; do
    objdump -h "$uki" | grep -q " $s " || die "UKI lacks section $s"
done

# ---- EFI system partition and GPT disk --------------------------------------------------------
mib=$((1024 * 1024))
uki_mib=$((($(stat -c %s "$uki") + mib - 1) / mib))
esp_mib=$((uki_mib + 8))
[ $esp_mib -ge 48 ] || esp_mib=48 # FAT32 needs >= 65525 clusters (~33 MiB with 512-byte clusters)
esp="$gen/raw/esp.img"
mkdir -p "$gen/raw"
truncate -s $((esp_mib * mib)) "$esp"
mformat -i "$esp" -F -T $((esp_mib * 2048)) -h 64 -s 32 -v PODVM-ESP -N 50d0be5e ::
mmd -i "$esp" ::/EFI ::/EFI/BOOT
mcopy -i "$esp" "$uki" ::/EFI/BOOT/BOOTX64.EFI

disk_mib=$((esp_mib + 2)) # 1 MiB before (primary GPT, alignment), 1 MiB after (backup GPT)
if [ -n "$disk_size_mib" ]; then
    [ "$disk_size_mib" -ge "$disk_mib" ] || die "--disk-size must be at least $disk_mib MiB"
    disk_mib=$disk_size_mib
fi
raw="$gen/raw/disk.raw"
truncate -s $((disk_mib * mib)) "$raw"
sfdisk --quiet --no-reread --no-tell-kernel "$raw" <<EOF
label: gpt
label-id: 6E0C1A35-2B7D-4F43-9C1E-7A3D5B0F1E01
unit: sectors
first-lba: 2048
start=2048, size=$((esp_mib * 2048)), type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=6E0C1A35-2B7D-4F43-9C1E-7A3D5B0F1E02, name="ESP"
EOF
dd if="$esp" of="$raw" bs=1M seek=1 conv=notrunc,sparse status=none

tmp_out="$outdir/.$name.tmp"
qemu-img convert -q -f raw -O qcow2 "$raw" "$tmp_out"
mv -f "$tmp_out" "$outdir/$name"
tmp_out=
rm -rf "$gen/raw"

{
    echo "initramfs: $(stat -c %s "$initramfs") bytes $compression"
    echo "uki: $(stat -c %s "$uki") bytes"
    echo "esp: ${esp_mib} MiB FAT32, disk: ${disk_mib} MiB GPT"
    echo "qcow2: $(stat -c %s "$outdir/$name") bytes, sha256 $(sha256sum "$outdir/$name" | cut -d' ' -f1)"
} >>"$manifest"
note "wrote $outdir/$name ($(awk -v s="$start_s" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }') s)"
note "parts and manifest in $parts"
