#!/usr/bin/env python3
"""Readiness lag of the worker agent proxy (bench/README.md, "agent-ready").

Per run: proxy-host (the daemon's agent proxy, TLS, identities from
proxy-host gen-tls) dials a loopback port where nothing listens, so each SYN
is refused as by a booting VM whose network is up. After the boot delay the
real agent-protocol-forwarder starts on that port (TLS, a Go ttRPC server as
the kata-agent behind it). Lag = the proxy's "connected" log time - the
forwarder's "listening" log time (both ms wall-clock stamps), i.e. retry
timer wait + TCP + TLS handshake + Health.Check. Also reported: the refused
dials and the proxy's CPU time while it waited (/proc/<pid>/task/*/schedstat).

--dropped (run.sh -D, in a network namespace of the bench's own): the SYNs to
the port are dropped by an nftables rule, as a VPC drops them before the VM's
network is up, until the forwarder starts; "refused" then counts the proxy's
fresh SYNs (redials) instead."""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from datetime import datetime

SRC = os.environ["CAA_SOURCE_ROOT"]
sys.path.insert(0, os.path.join(SRC, "tests", "integration", "proxy"))
import agentpath as ap  # noqa: E402

sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
from caa_harness import free_port  # noqa: E402

STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z ")


def stamp(line):
    return datetime.strptime(STAMP.match(line).group(1), "%Y-%m-%dT%H:%M:%S.%f").timestamp()


def cpu_s(pid):
    """CPU time of all threads in seconds, from schedstat (ns; precise, unlike the
    tick-sampled utime/stime for a process that wakes briefly many times a second)."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
            total += int(f.read().split()[0])
    return total / 1e9


NFT_TABLE = ("ip", "caa_agent_ready")


def drop_syns(port):
    """Drops the SYNs to port from now on (this namespace only)."""
    chain = "{ type filter hook input priority 0 ; }"
    for cmd in (["add", "table", *NFT_TABLE], ["add", "chain", *NFT_TABLE, "in", chain],
                ["add", "rule", *NFT_TABLE, "in", "tcp", "dport", str(port), "drop"]):
        subprocess.run(["nft", *cmd], check=True)


def answer_syns():
    subprocess.run(["nft", "delete", "table", *NFT_TABLE], check=True)


def one_run(proxy_bin, tmp, tls_dir, apf, agent_sock, boot_s, dropped):
    port = free_port()
    syns_dropped = False
    if dropped:
        drop_syns(port)
        syns_dropped = True
    try:
        ap.PROXY_HOST = proxy_bin
        sock = os.path.join(tmp, "proxy.sock")
        # Info level, as the daemon runs: no log line per refused dial.
        proxy = ap.start_proxy(sock, port, timeout="120s", tls_dir=tls_dir, wait=False,
                               extra=("-log-level", "info"))
        try:
            proxy.wait_line(r"^BASELINE ", stdout=True)
            time.sleep(0.5)  # the proxies' start-up (TLS identity) is not waiting
            cpu0 = cpu_s(proxy.pid)
            time.sleep(boot_s - 0.5)
            cpu_wait = cpu_s(proxy.pid) - cpu0
            if syns_dropped:
                answer_syns()  # the VM's network is up as its forwarder starts
                syns_dropped = False
            fwd = ap.start_forwarder(agent_sock, apf, port=port, tls=True)
            try:
                proxy.wait_line(r"^READY 0", stdout=True, timeout=30)
                listening = stamp(fwd.wait_line(r"listening on port").string)
                connected = stamp(proxy.wait_line(r"agent proxy: connected to").string)
                stats = ap.proxy_stats(proxy)
                # A proxy without redials (before) reports none.
                refused = int(stats.get("redials", 0) if dropped else stats["dial_failures"])
            finally:
                fwd.stop()
        finally:
            proxy.stop()
    finally:
        if syns_dropped:
            answer_syns()
    return {"lag_ms": (connected - listening) * 1000, "refused": refused, "waited_s": boot_s,
            "cpu_ms_per_s": cpu_wait * 1000 / (boot_s - 0.5)}


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--goserver", required=True)
    a.add_argument("--runs", type=int, default=10)
    a.add_argument("--boot", type=float, default=3.0)
    a.add_argument("--before", help="proxy-host of another build")
    a.add_argument("--dropped", action="store_true", help="SYNs dropped (not refused) until the forwarder starts")
    args = a.parse_args()

    proxies = [("after", ap.PROXY_HOST)]
    if args.before:
        proxies.insert(0, ("before", args.before))
    tmp = ap.tmpdir()
    tls_dir = os.path.join(tmp, "tls")
    os.mkdir(tls_dir)
    apf = ap.gen_tls(tls_dir)
    agent_sock = os.path.join(tmp, "agent.sock")
    agent = ap.start_agent(args.goserver, agent_sock)
    res = {name: [] for name, _ in proxies}
    what = "fresh SYNs" if args.dropped else "refused dials"
    try:
        for i in range(args.runs):
            # A different phase of the retry timer in each run.
            boot = args.boot + (i * 0.377) % 1.0
            for name, binary in proxies:
                res[name].append(one_run(binary, tmp, tls_dir, apf, agent_sock, boot, args.dropped))
                r = res[name][-1]
                print("# run %d %-6s boot %.2f s: lag %.0f ms, %d %s, proxy CPU %.2f ms/s" %
                      (i + 1, name, boot, r["lag_ms"], r["refused"], what, r["cpu_ms_per_s"]), flush=True)
    finally:
        agent.stop()

    print("\n| proxy | runs | lag p50 ms | lag max ms | lag mean ms | %s per s waited | proxy CPU while waiting, ms per s |"
          % what)
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, _ in proxies:
        rs = res[name]
        lags = [r["lag_ms"] for r in rs]
        print("| %s | %d | %.0f | %.0f | %.0f | %.1f | %.2f |" % (
            name, len(rs), statistics.median(lags), max(lags), statistics.mean(lags),
            statistics.median(r["refused"] / r["waited_s"] for r in rs),
            statistics.median(r["cpu_ms_per_s"] for r in rs)))


if __name__ == "__main__":
    main()
