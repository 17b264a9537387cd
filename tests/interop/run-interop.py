#!/usr/bin/env python3
"""ttRPC interop: one client peer runs every scenario against one server peer.

Peers: "go" (containerd/ttrpc 1.1.1 from Debian, tests/interop/go) and "c"
(our library, tests/interop/c-peer.c). Output is TAP, one point per scenario
plus one for a clean server shutdown. Exits 77 (skip) when `go` is missing.

Every process started here is killed by PID on every exit path, and the
temporary directory holding the unix socket is removed.
"""

import argparse
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
from goproc import build_go_peers  # noqa: E402

SCENARIOS = [
    ["basic"],
    ["errors"],
    ["metadata"],
    ["deadline"],
    ["unknown"],
    ["ooo"],
    ["abandon"],
    ["conns", "100", "10"],
    ["inflight", "1000"],
]

children = []  # Popen objects still to be reaped


class Interrupted(Exception):
    pass


def on_signal(signum, frame):
    raise Interrupted(f"signal {signum}")


def kill_children():
    for p in children:
        if p.poll() is None:
            p.kill()
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    children.clear()


def read_line(proc, timeout):
    """First stdout line of proc, waiting at most timeout seconds."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    end = time.monotonic() + timeout
    buf = b""
    while b"\n" not in buf:
        left = end - time.monotonic()
        if left <= 0 or not sel.select(left):
            break
        chunk = os.read(proc.stdout.fileno(), 256)
        if not chunk:
            break
        buf += chunk
    sel.close()
    return buf.split(b"\n", 1)[0].decode(errors="replace")


def start_server(cmd, addr, log):
    proc = subprocess.Popen(cmd + [addr], stdout=subprocess.PIPE, stderr=log)
    children.append(proc)
    line = read_line(proc, 30)
    if not line.startswith("LISTENING "):
        raise RuntimeError(f"server {cmd} did not start (said {line!r}, exit {proc.poll()})")
    return proc, line.split(" ", 1)[1]


def run_client(cmd, addr, scenario, log):
    proc = subprocess.Popen(cmd + [addr] + scenario, stdout=subprocess.PIPE, stderr=log)
    children.append(proc)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        out += b"\n(timed out after 60 s)"
    children.remove(proc)
    return proc.returncode, out.decode(errors="replace").strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--client", choices=["go", "c"], required=True)
    ap.add_argument("--server", choices=["go", "c"], required=True)
    ap.add_argument("--transport", choices=["unix", "tcp"], required=True)
    ap.add_argument("--c-peer", help="path of the c-peer binary")
    ap.add_argument("--go-src", required=True, help="tests/interop/go (a GOPATH entry)")
    ap.add_argument("--out-dir", required=True, help="build dir for Go binaries and cache")
    args = ap.parse_args()

    if shutil.which("go") is None:
        print("1..0 # SKIP go is not installed")
        return 77

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)

    tmp = tempfile.mkdtemp(prefix="caa-interop-")
    log_path = os.path.join(tmp, "peers.log")
    failed = 0
    try:
        goserver, goclient = build_go_peers(args.go_src, args.out_dir)
        peers = {
            "go": {"server": [goserver], "client": [goclient]},
            "c": {"server": [args.c_peer, "server"], "client": [args.c_peer, "client"]},
        }
        if "c" in (args.client, args.server) and not (args.c_peer and os.access(args.c_peer, os.X_OK)):
            raise RuntimeError("c-peer binary missing")

        if args.transport == "unix":
            sock = os.path.join(tmp, "peer.sock")
            addr = "unix:" + sock
        else:
            sock = None
            addr = "tcp:127.0.0.1:0"

        with open(log_path, "wb") as log:
            server, addr = start_server(peers[args.server]["server"], addr, log)
            print(f"# {args.client} client -> {args.server} server at {addr}")
            print(f"1..{len(SCENARIOS) + 1}")
            for i, sc in enumerate(SCENARIOS, 1):
                t0 = time.monotonic()
                rc, out = run_client(peers[args.client]["client"], addr, sc, log)
                dt = time.monotonic() - t0
                ok = rc == 0 and out.startswith("PASS")
                failed += not ok
                first = out.splitlines()[0] if out else f"(no output, exit {rc})"
                print(f"{'ok' if ok else 'not ok'} {i} - {' '.join(sc)}: {first} [{dt:.2f}s]")
                if not ok:
                    for line in out.splitlines()[1:]:
                        print(f"# {line}")
                if server.poll() is not None:
                    raise RuntimeError(f"server exited during {sc[0]} with {server.returncode}")

            # Clean shutdown: SIGTERM, exit 0, socket file gone.
            server.send_signal(signal.SIGTERM)
            try:
                rc = server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                rc = "hung"
            children.remove(server)
            sock_left = sock is not None and os.path.exists(sock)
            ok = rc == 0 and not sock_left
            failed += not ok
            print(f"{'ok' if ok else 'not ok'} {len(SCENARIOS) + 1} - server shutdown: exit {rc}"
                  f"{', socket file left behind' if sock_left else ''}")
    except (RuntimeError, Interrupted) as e:
        print(f"Bail out! {e}")
        failed += 1
    finally:
        kill_children()
        if failed and os.path.exists(log_path):
            with open(log_path, errors="replace") as f:
                for line in f.read().splitlines()[-40:]:
                    print(f"# peer log: {line}")
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
