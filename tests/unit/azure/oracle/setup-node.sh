#!/usr/bin/env bash
# Installs the pinned Azure SDK oracle (package.json + package-lock.json
# beside this script) with `npm ci` into <dir>, once per lockfile, copies
# oracle.js there (require() resolves from the script's folder) and prints
# <dir>. Exit 77 (skip) when node or npm is missing; 1 when the install fails.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="${1:?usage: setup-node.sh <install-dir>}"
command -v node >/dev/null && command -v npm >/dev/null || { echo "node/npm not installed" >&2; exit 77; }
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
stamp="$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)"
if [ ! -f "$dir/.stamp" ] || [ "$(cat "$dir/.stamp")" != "$stamp" ] || [ ! -d "$dir/node_modules" ]; then
  cp "$here/package.json" "$here/package-lock.json" "$dir/"
  rm -rf "$dir/node_modules"
  if ! (cd "$dir" && npm ci --no-audit --no-fund --prefer-offline --loglevel=error >&2); then
    echo "setup-node.sh: npm ci failed in $dir" >&2
    exit 1
  fi
  echo "$stamp" > "$dir/.stamp"
fi
cp "$here/oracle.js" "$dir/"
echo "$dir"
