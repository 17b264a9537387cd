#!/usr/bin/env bash
# The daemon binaries and the provider modules together:
#  - neither binary links a cloud provider's libraries;
#  - `help` lists every module present, `<provider> -help` loads the module
#    and shows its flags;
#  - an unknown or path-like provider name is a clear usage error;
#  - a module with a wrong ABI or a world-writable one is refused;
#  - the module logs with the level and format given to the daemon.
#
#   test-registry-daemon.sh DAEMON TEST-DAEMON BAD-ABI-MODULE MODULE-DIR INSTALLED-MODULE-DIR [PROVIDER...]
#
# The refused modules are copied into MODULE-DIR (the build tree's one: the
# daemon takes modules from nowhere else) under names unique to this run and
# removed on exit.
set -euo pipefail

daemon=$1 test_daemon=$2 bad_abi=$3 moddir=$4 installed_moddir=$5
shift 5
providers=("$@")

tmp=$(mktemp -d /tmp/caa-test-registry-daemon.XXXXXX)
tag=t$$
copies=("$moddir/caa-provider-$tag-abi.so" "$moddir/caa-provider-$tag-ww.so")
cleanup() {
    rm -f "${copies[@]}"
    rm -rf "$tmp"
}
trap cleanup EXIT

failures=0 passes=0
ok() { passes=$((passes + 1)); echo "ok - $1"; }
not_ok() { failures=$((failures + 1)); echo "not ok - $1"; sed 's/^/# /' "$tmp/out" "$tmp/err" 2>/dev/null | head -20; }
# run NAME EXPECTED-RC CMD...: output in $tmp/out and $tmp/err
run() {
    local name=$1 want=$2
    shift 2
    local rc=0
    "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
    if [ "$rc" != "$want" ]; then
        echo "# exit code $rc, want $want" >>"$tmp/err"
        return 1
    fi
}
has() { grep -qF -- "$2" "$tmp/$1"; }

# 1. The binaries link no provider library (libvirt, libisofs, libxml2): they
# map a provider's libraries only by loading its module. libcurl is the
# daemon's own now (its Kubernetes API client, docs/kube-client.md).
for bin in "$daemon" "$test_daemon"; do
    needed=$(readelf -d "$bin" | awk '/NEEDED/ { print $5 }')
    if echo "$needed" | grep -qE 'libvirt|libisofs|libxml2'; then
        echo "$needed" >"$tmp/out"
        not_ok "$(basename "$bin") links no provider library"
    else
        ok "$(basename "$bin") links no provider library"
    fi
done

# 2. help lists every module (and the test binary its static test provider too).
if run help 0 "$daemon" help; then
    missing=
    for p in "${providers[@]}"; do grep -qE "^Providers:.* $p( |$)" "$tmp/out" || missing="$missing $p"; done
    if [ -z "$missing" ]; then ok "help lists the modules: ${providers[*]}"; else not_ok "help misses:$missing"; fi
else
    not_ok "help"
fi
if run test-help 0 "$test_daemon" -help && grep -qE "^Providers: test( |$)" "$tmp/out"; then
    ok "test daemon help lists the static test provider first"
else
    not_ok "test daemon help lists the static test provider first"
fi

# 3. <provider> -help loads the module and shows its options.
for p in "${providers[@]}"; do
    case $p in
    libvirt) flag=-uri ;;
    aws) flag=-aws-region ;;
    azure) flag=-subscriptionid ;;
    *) flag= ;;
    esac
    if run "$p-help" 0 "$daemon" "$p" -help && has out "$p options:" && { [ -z "$flag" ] || has out "  $flag "; }; then
        ok "$p -help loads the module and shows its flags ($flag)"
    else
        not_ok "$p -help loads the module and shows its flags ($flag)"
    fi
done
if [[ " ${providers[*]} " == *" libvirt "* ]]; then
    if run test-libvirt-help 0 "$test_daemon" libvirt -help && has out "  -uri "; then
        ok "the test daemon loads the libvirt module too"
    else
        not_ok "the test daemon loads the libvirt module too"
    fi
fi

# 4. Unknown and path-like names: usage error listing what is available.
for name in nosuchcloud ../../tmp/x /tmp/x LIBVIRT; do
    if run "unknown $name" 2 "$daemon" "$name" && has err "unknown provider \"$name\" (available:" &&
        { [ ${#providers[@]} -eq 0 ] || has err "${providers[0]}"; }; then
        ok "unknown provider \"$name\": exit 2, lists the available ones"
    else
        not_ok "unknown provider \"$name\": exit 2, lists the available ones"
    fi
done

# Outside the build tree the same binary looks only in the installed directory.
cp "$daemon" "$tmp/cloud-api-adaptor"
if run outside-build-tree 2 "$tmp/cloud-api-adaptor" nosuchcloud &&
    has err "provider modules are in $installed_moddir)"; then
    ok "a copy outside the build tree looks only in $installed_moddir"
else
    not_ok "a copy outside the build tree looks only in $installed_moddir"
fi

# 5. A module built for another ABI is refused before use.
install -m 0755 "$bad_abi" "$moddir/caa-provider-$tag-abi.so"
if run bad-abi 1 "$daemon" "$tag-abi" -help && has err "was built for provider ABI 1002, this daemon needs ABI 2" &&
    ! has out "Usage"; then
    ok "a module with a wrong ABI version is refused"
else
    not_ok "a module with a wrong ABI version is refused"
fi

# 6. A world-writable module is refused before it is loaded.
if [ ${#providers[@]} -gt 0 ]; then
    install -m 0757 "$moddir/caa-provider-${providers[0]}.so" "$moddir/caa-provider-$tag-ww.so"
    if run world-writable 1 "$daemon" "$tag-ww" -help && has err "group- or world-writable (0757)"; then
        ok "a world-writable module is refused"
    else
        not_ok "a world-writable module is refused"
    fi
fi

# 7. The libvirt module logs with the daemon's level and format: start it on
# the test driver with a pool that does not exist, so -cloud-config-verify
# ends it after the provider's init (which logs the host at debug level).
if [[ " ${providers[*]} " == *" libvirt "* ]]; then
    lv() {
        "$daemon" libvirt -uri test:///default -pool-name caa-no-such-pool -cloud-config-verify \
            -socket "$tmp/hv.sock" -pods-dir "$tmp/pods" "$@"
    }
    if run lv-debug 1 lv -log-level debug && has err "debug [provider/libvirt] libvirt host: arch" &&
        has err "no storage pool with matching name 'caa-no-such-pool'"; then
        ok "libvirt module: debug lines at -log-level debug"
    else
        not_ok "libvirt module: debug lines at -log-level debug"
    fi
    if run lv-info 1 lv -log-level info && ! has err "[provider/libvirt]" &&
        has err "caa-no-such-pool"; then
        ok "libvirt module: no debug lines at -log-level info"
    else
        not_ok "libvirt module: no debug lines at -log-level info"
    fi
    if run lv-json 1 lv -log-level debug -log-format json &&
        has err '"level":"debug","component":"provider/libvirt","msg":"libvirt host: arch'; then
        ok "libvirt module: JSON lines at -log-format json"
    else
        not_ok "libvirt module: JSON lines at -log-format json"
    fi
fi

echo "1..$((passes + failures))"
echo "# $passes passed, $failures failed"
[ "$failures" -eq 0 ]
