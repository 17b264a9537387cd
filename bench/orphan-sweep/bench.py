#!/usr/bin/env python3
"""One orphan sweep over N unknown instances, timed from the daemon's log.

Each run plants N instance files (this node's, no pod knows them) in a fresh
test-provider state dir and starts the test daemon twice on it:
  dry run  - list + classify only (-orphan-sweep-dry-run), time to the summary line
  delete   - list + classify + N deletes (grace 0), time to the summary line
The daemon's own log timestamps (ms) bound each phase: from "orphan sweep: now"
to "orphan sweep: N unknown instance(s)". Nothing leaves the machine; the
temporary directories are removed."""
import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

TS = re.compile(r"^(\S+Z) ")


def stamp(line):
    return datetime.datetime.strptime(TS.match(line).group(1), "%Y-%m-%dT%H:%M:%S.%fZ")


def plant(state, n):
    os.makedirs(state)
    for i in range(n):
        iid = "test-%016x" % (0x100000 + i)
        with open(os.path.join(state, iid + ".json"), "w") as f:
            json.dump({"id": iid, "name": "podvm-orphan-%08x" % i, "ips": ["198.18.0.2"]}, f)


def sweep_once(cmd, n, env=None):
    """Runs the daemon (cmd, with -orphan-sweep-interval and grace set) until
    its first sweep's summary; returns (seconds, deleted) from its log."""
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True, env=env)
    start = end = None
    try:
        for line in p.stderr:
            if "orphan sweep: now" in line:
                start = stamp(line)
            m = re.search(r"orphan sweep: (\d+) unknown instance\(s\); (\d+) deleted", line)
            if m:
                end = stamp(line)
                found, deleted = int(m.group(1)), int(m.group(2))
                break
    finally:
        p.terminate()
        p.wait(30)
    if start is None or end is None:
        raise SystemExit("no sweep summary in the daemon log")
    if found != n:
        raise SystemExit("sweep found %d of %d instances" % (found, n))
    return (end - start).total_seconds(), deleted


def test_daemon_cmd(daemon, root, extra):
    return [daemon, "test", "-socket", os.path.join(root, "s.sock"), "-pods-dir", os.path.join(root, "pods"),
            "-test-state-dir", os.path.join(root, "state"), "-disable-tls", "-log-level", "info",
            "-orphan-sweep-interval", "1h", "-orphan-sweep-grace", "0"] + extra


def report(n, runs, dry, full):
    for name, v in (("list+classify (dry run)", dry), ("list+classify+delete", full)):
        print("%-26s n=%d runs=%d median %.3f s (min %.3f, max %.3f)" %
              (name, n, runs, statistics.median(v), min(v), max(v)))


def main():
    daemon, n, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    dry, full = [], []
    for _ in range(runs):
        root = tempfile.mkdtemp(prefix="caa-orphan-bench-")
        try:
            plant(os.path.join(root, "state"), n)
            t, deleted = sweep_once(test_daemon_cmd(daemon, root, ["-orphan-sweep-dry-run"]), n)
            assert deleted == 0
            dry.append(t)
            t, deleted = sweep_once(test_daemon_cmd(daemon, root, []), n)
            if deleted != n or os.listdir(os.path.join(root, "state")):
                raise SystemExit("deleted %d of %d" % (deleted, n))
            full.append(t)
        finally:
            shutil.rmtree(root, ignore_errors=True)
    report(n, runs, dry, full)


if __name__ == "__main__":
    main()
