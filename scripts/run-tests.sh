#!/usr/bin/env bash
# The project's test command: installs dependencies, checks formatting, then
# builds and runs every meson test suite in three setups (plain build with
# warnings as errors, ASan+UBSan, valgrind for the suites marked for it).
# Prints "N passed, N failed" last. Exit status is non-zero on any failure.
#
# Environment:
#   CAA_TEST_SETUPS   space-separated subset of "plain asan valgrind" (default: all)
#   CAA_TEST_SUITES   meson suites to run (default: all)
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

"$root/scripts/install-deps.sh" || { echo "install-deps failed"; echo "0 passed, 1 failed"; exit 1; }

setups=${CAA_TEST_SETUPS:-plain asan valgrind}
suites=${CAA_TEST_SUITES:-}
passed=0
failed=0
skipped=0

count_results() {
  # Tallies meson's testlog.json: OK/EXPECTEDFAIL pass; SKIP skipped; others fail.
  python3 - "$1" <<'PY'
import json, sys
p = f = s = 0
for line in open(sys.argv[1]):
    line = line.strip()
    if not line:
        continue
    r = json.loads(line).get("result", "")
    if r in ("OK", "EXPECTEDFAIL"):
        p += 1
    elif r == "SKIP":
        s += 1
    else:
        f += 1
print(p, f, s)
PY
}

record() {
  local name=$1 ok=$2
  if [ "$ok" = 0 ]; then passed=$((passed + 1)); echo "PASS: $name"; else failed=$((failed + 1)); echo "FAIL: $name"; fi
}

# The libvirt smoke test starts its own libvirtd in a namespace it creates
# (tests/unit/providers/libvirt-qemu-smoke.sh); the test command runs it.
export CAA_LIBVIRT_SMOKE=${CAA_LIBVIRT_SMOKE:-1}

# Formatting: every tracked C file must match .clang-format.
if git ls-files -z '*.c' '*.h' | xargs -0 -r clang-format --dry-run --Werror >/tmp/caa-format.log 2>&1; then
  record clang-format 0
else
  head -40 /tmp/caa-format.log
  record clang-format 1
fi

run_setup() {
  local setup=$1 dir=$2; shift 2
  local suite_args=()
  for s in $suites; do suite_args+=(--suite "$s"); done
  echo "== $setup: configure and build ($dir)"
  if ! { [ -f "$dir/build.ninja" ] || meson setup "$dir" -Dwerror=true "$@" >"$dir.setup.log" 2>&1; }; then
    cat "$dir.setup.log"; record "$setup-build" 1; return
  fi
  if ! ninja -C "$dir" >"$dir.ninja.log" 2>&1; then
    tail -60 "$dir.ninja.log"; record "$setup-build" 1; return
  fi
  local extra=()
  case $setup in
    valgrind) extra=(--setup valgrind --suite valgrind) ;;
    # The end-to-end VM boots (several minutes each) run once, in the plain setup.
    asan) [ -z "$suites" ] && extra=(--no-suite e2e --no-suite libvirt-smoke) ;;
  esac
  echo "== $setup: test"
  meson test -C "$dir" --no-rebuild --print-errorlogs "${suite_args[@]}" "${extra[@]}" >"$dir.test.log" 2>&1
  grep -E '^ *[0-9]+/[0-9]+ ' "$dir.test.log" | sed "s/^/[$setup] /"
  grep -E -A30 '^=+ [0-9]+/[0-9]+ ' "$dir.test.log" | grep -v '^ *$' | head -200 || true
  local log="$dir/meson-logs/testlog.json"
  [ "$setup" = valgrind ] && log="$dir/meson-logs/testlog-valgrind.json"
  local p=0 f=0 s=0
  if [ -s "$log" ]; then
    read -r p f s < <(count_results "$log")
  else
    echo "no test log at $log"; f=1
  fi
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
}

mkdir -p "$root/build-tests"
for setup in $setups; do
  case $setup in
    plain) run_setup plain "$root/build-tests/plain" ;;
    asan) run_setup asan "$root/build-tests/asan" -Db_sanitize=address,undefined -Db_lundef=false ;;
    valgrind) run_setup valgrind "$root/build-tests/plain" ;;
    *) echo "unknown setup $setup"; failed=$((failed + 1)) ;;
  esac
done

echo "skipped: $skipped"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
