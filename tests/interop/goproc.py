#!/usr/bin/env python3
"""Builds the Go ttRPC test peers (goserver, goclient) into a build directory.

GOPATH mode against Debian's packaged sources, fully offline:
GOPATH=<tests/interop/go>:/usr/share/gocode, GO111MODULE=off, GOPROXY=off,
GOCACHE inside the build directory. Nothing is written to the source tree.
Concurrent callers (parallel meson tests) serialise on a lock file; go's own
staleness check makes a rebuild of unchanged sources cheap.

CLI: goproc.py <go-src-dir> <out-dir>   prints the two binary paths.
"""

import fcntl
import os
import subprocess
import sys

PEERS = ("goserver", "goclient")


def build_go_peers(go_src, out_dir):
    go_src = os.path.abspath(go_src)
    out_dir = os.path.abspath(out_dir)
    bin_dir = os.path.join(out_dir, "go-bin")
    os.makedirs(bin_dir, exist_ok=True)
    env = dict(os.environ)
    env.update({
        "GOPATH": f"{go_src}:/usr/share/gocode",
        "GO111MODULE": "off",
        "GOPROXY": "off",
        "GOFLAGS": "",
        "GOCACHE": os.path.join(out_dir, "go-cache"),
        "CGO_ENABLED": "0",
    })
    paths = []
    with open(os.path.join(out_dir, "go-build.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for name in PEERS:
            path = os.path.join(bin_dir, name)
            r = subprocess.run(["go", "build", "-o", path, f"caa-interop/{name}"],
                               env=env, cwd=bin_dir, capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError(f"go build {name} failed:\n{r.stderr}")
            paths.append(path)
    return paths


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: goproc.py <go-src-dir> <out-dir>", file=sys.stderr)
        sys.exit(2)
    try:
        print("\n".join(build_go_peers(sys.argv[1], sys.argv[2])))
    except RuntimeError as e:
        print(e, file=sys.stderr)
        sys.exit(1)
