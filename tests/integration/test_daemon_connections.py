#!/usr/bin/env python3
"""10,000 connections opened and dropped (some mid-frame, some with garbage)
while another client keeps getting answers; no file descriptors leak."""
import os
import socket
import struct
import time

from caa_harness import Daemon, TtrpcClient, check, run_main, version_payload

N = 10000


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def main():
    d = Daemon().start()
    steady = TtrpcClient(d.sock)
    code, msg, _ = steady.call("hypervisor.Hypervisor", "Version", version_payload())
    check(code == 0, "Version: %d %s" % (code, msg))
    base_fds = fd_count(d.pid)

    answers = 0
    t0 = time.monotonic()
    for i in range(N):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(d.sock)
        kind = i % 4
        if kind == 1:
            # Half a frame header, then gone.
            s.sendall(b"\x00\x00\x00")
        elif kind == 2:
            # A Request frame announcing more bytes than it sends.
            s.sendall(struct.pack(">IIBB", 100, 1, 1, 0) + b"\x0a\x15hyper")
        elif kind == 3:
            # Garbage (an oversized length).
            s.sendall(b"\xff" * 32)
        s.close()
        if i % 200 == 0:
            code, msg, out = steady.call("hypervisor.Hypervisor", "Version", version_payload())
            check(code == 0, "steady client got %d %s after %d connections" % (code, msg, i))
            answers += 1
    took = time.monotonic() - t0
    code, _, _ = steady.call("hypervisor.Hypervisor", "Version", version_payload())
    check(code == 0, "steady client after the storm")
    check(answers == N // 200, "steady client answers %d" % answers)

    # The daemon closes every dropped connection; allow it a moment to notice the last ones.
    deadline = time.monotonic() + 10
    while fd_count(d.pid) > base_fds and time.monotonic() < deadline:
        steady.call("hypervisor.Hypervisor", "Version", version_payload())
        time.sleep(0.05)
    check(fd_count(d.pid) <= base_fds, "fd leak: %d open, %d before" % (fd_count(d.pid), base_fds))

    # A fresh client still works, unknown methods get UNIMPLEMENTED.
    c2 = TtrpcClient(d.sock)
    code, msg, _ = c2.call("hypervisor.Hypervisor", "Nope")
    check(code == 12, "unknown method: %d %s" % (code, msg))
    c2.close()
    steady.close()
    check(d.stop() == 0, "exit status")
    print("# %d connections in %.2fs" % (N, took))


run_main(main)
