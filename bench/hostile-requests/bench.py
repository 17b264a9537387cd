#!/usr/bin/env python3
"""Loop time of the worst request each handler of the daemon can be sent
(method and results: bench/hostile-requests/README.md).

For each case the request is sent R times, each on a fresh connection; the
round trip is the daemon's loop time for it plus the transport (the daemon
is single-threaded: the whole request is read, decoded and answered on its
one loop). Meanwhile another client sends Version every 10 ms and records
how long each waits: what every other caller sees."""
import argparse
import os
import socket
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
import adversary as adv  # noqa: E402
from caa_harness import Daemon, pb_bytes, sandbox_id  # noqa: E402

HV, INFO = "hypervisor.Hypervisor", "podvminfo.PodVMInfo"
NAME, NS = "io.kubernetes.cri.sandbox-name", "io.kubernetes.cri.sandbox-namespace"
MAX = adv.MAX_MESSAGE - 64  # room for the ttRPC envelope


def entry(k, v):
    return pb_bytes(2, pb_bytes(1, k) + pb_bytes(2, v))


def fill_entries(head, make, limit):
    out, i = bytearray(head), 0
    while True:
        e = make(i)
        if len(out) + len(e) > limit:
            return bytes(out), i
        out += e
        i += 1


def cases():
    head = pb_bytes(1, sandbox_id(1)) + entry(NAME, "nginx") + entry(NS, "default")
    small, n_small = fill_entries(head, lambda i: entry("k%d" % i, "v"), MAX)
    # Accepted: the most annotations allowed (4096), 256 KiB of keys and values in total.
    budget = 256 * 1024 - len(NAME) - 5 - len(NS) - 7
    count = 4096 - 2
    per = budget // count
    at_limit = head + b"".join(entry("k%05d" % i, "v" * (per - 6)) for i in range(count))
    one_byte = head + b"".join(entry(chr(97 + i % 26), "") for i in range(budget))
    big_value = head + entry("k", "v" * (MAX - len(head) - 16))
    return [
        ("CreateVM, 4 MiB of small annotations (%d)" % n_small, HV, "CreateVM", small, False),
        ("CreateVM, one 4 MiB annotation value", HV, "CreateVM", big_value, False),
        ("CreateVM, 256 KiB in %d annotations (accepted)" % (count + 2), HV, "CreateVM", at_limit, True),
        ("CreateVM, 256 KiB in %d one-byte annotations" % budget, HV, "CreateVM", one_byte, False),
        ("StartVM, 4 MiB id", HV, "StartVM", pb_bytes(1, "a" * (MAX - 8)), False),
        ("StopVM, 4 MiB id", HV, "StopVM", pb_bytes(1, "a" * (MAX - 8)), False),
        ("GetInfo, 2 MiB name and namespace", INFO, "GetInfo",
         pb_bytes(1, "n" * (MAX // 2 - 8)) + pb_bytes(2, "d" * (MAX // 2 - 8)), False),
        ("CreateVM, 4 MiB of garbage", HV, "CreateVM", bytes((i * 131 + 7) & 0xFF for i in range(MAX)), False),
        ("Version (baseline)", HV, "Version", pb_bytes(1, "0.0.0"), False),
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-r", "--reps", type=int, default=20)
    args = ap.parse_args()
    d = Daemon().start()

    def connect():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(d.sock)
        return s

    print("| request | payload bytes | answer | round trip median ms | max ms | Version waits max ms |")
    print("|---|---:|---|---:|---:|---:|")
    for name, svc, method, payload, accepted in cases():
        rts, waits, stop = [], [], threading.Event()

        def measure():
            while not stop.is_set():
                waits.append(adv.call(connect, HV, "Version", pb_bytes(1, "0.0.0"))[2])
                time.sleep(0.01)
        t = threading.Thread(target=measure)
        t.start()
        code = None
        for _ in range(args.reps):
            code, msg, dt = adv.call(connect, svc, method, payload, timeout=60)
            rts.append(dt)
            if accepted and code == 0:
                adv.call(connect, HV, "StopVM", pb_bytes(1, sandbox_id(1)), timeout=60)
        stop.set()
        t.join()
        print("| %s | %d | %s | %.1f | %.1f | %.1f |" % (
            name, len(payload), adv_code(code), statistics.median(rts) * 1000, max(rts) * 1000,
            max(waits) * 1000 if waits else 0))
    d.stop()


def adv_code(code):
    return {0: "OK", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 5: "NOT_FOUND"}.get(code, str(code))


main()
