#!/usr/bin/env python3
"""Agent path benchmark (run through bench/agent-path/run.sh).

Paths, all ending at the same Go ttRPC server standing in for the kata-agent
(tests/interop goserver -agent, unix socket), all driven by the same Go
client (goclient bench):
  direct   client -> agent socket
  socat    client -> unix socket -> socat -> TCP -> socat -> agent socket
           (two byte relays: the same hops as proxy + forwarder, no ttRPC work)
  caa      client -> worker agent proxy (proxy-host) -> TCP -> agent-protocol-forwarder -> agent socket
  caa-tls  the same with TLS between proxy and forwarder (certificates as the daemon issues them)
  caa-ssh  the same through SSH (secure comms): proxy -> libssh2 direct-tcpip channel -> the
           forwarder's sshd (Debian OpenSSH) -> forwarder on loopback

Workloads: grpc.Health/Check (empty request, 2-byte answer) and
grpc.AgentService/WriteStdin with a 64 KiB payload (the stand-in agent echoes
it, so 64 KiB travel each way), each over 1 connection (latency) and over
16 connections (throughput). Then the adaptor's memory per connected pod.
"""
import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True
SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "integration", "proxy"))
import agentpath as ap  # noqa: E402

HZ = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    """utime+stime+cutime+cstime of pid plus the utime+stime of live descendants, in seconds."""
    def stat(p):
        try:
            with open("/proc/%d/stat" % p) as f:
                s = f.read()
        except OSError:
            return None
        rest = s[s.rindex(")") + 2:].split()
        return int(rest[1]), sum(int(x) for x in rest[11:15]), sum(int(x) for x in rest[11:13])
    total = 0
    own = stat(pid)
    if own:
        total += own[1]
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = stat(int(d))
            if st:
                children.setdefault(st[0], []).append((int(d), st[2]))
    todo = [pid]
    while todo:
        p = todo.pop()
        for c, t in children.get(p, []):
            total += t
            todo.append(c)
    return total / HZ


# --pin: the Go client and server (the endpoints) on ENDPOINT_CPUS, the
# relays on RELAY_CPUS, so relay work does not take CPU from the endpoints.
PIN = {"on": False}
ENDPOINT_CPUS = {0}
RELAY_CPUS = {1}


def pin(pid, cpus):
    """Sets the affinity of every thread of pid (Go starts its threads early)."""
    if not PIN["on"]:
        return
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except OSError:
            pass


def run_bench(goclient, sock, service, method, size, conns, secs, cpu_pids):
    before = sum(proc_cpu(p) for p in cpu_pids)
    pre = (lambda: os.sched_setaffinity(0, ENDPOINT_CPUS)) if PIN["on"] else None
    p = subprocess.run([goclient, "-wait", "5s", "unix:" + sock, "bench", service, method, str(size), str(conns),
                        str(secs)], capture_output=True, timeout=secs + 60, preexec_fn=pre)
    after = sum(proc_cpu(p) for p in cpu_pids)
    out = p.stdout.decode().strip()
    m = re.match(r"PASS bench calls=(\d+) seconds=([\d.]+) rate=(\d+) p50_us=(\d+) p99_us=(\d+)", out)
    if not m:
        raise SystemExit("bench failed on %s: %s %s" % (sock, out, p.stderr.decode()))
    calls = int(m.group(1))
    # CPU includes the 0.3 s warm-up: scale the window to the measured part.
    cpu_us = (after - before) * 1e6 / calls * (secs / (secs + 0.3)) if cpu_pids else None
    return {"rate": int(m.group(3)), "p50": int(m.group(4)), "p99": int(m.group(5)), "cpu": cpu_us}


class Paths:
    def __init__(self, goserver, tmp):
        self.tmp = tmp
        self.agent_sock = os.path.join(tmp, "agent.sock")
        self.agent = ap.start_agent(goserver, self.agent_sock)
        pin(self.agent.pid, ENDPOINT_CPUS)
        self.paths = {"direct": (self.agent_sock, [])}

    def add_socat(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        sock = os.path.join(self.tmp, "socat.sock")
        far = subprocess.Popen(["socat", "TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork,nodelay" % port,
                                "UNIX-CONNECT:" + self.agent_sock], stderr=subprocess.DEVNULL)
        near = subprocess.Popen(["socat", "UNIX-LISTEN:%s,fork" % sock,
                                 "TCP:127.0.0.1:%d,nodelay" % port], stderr=subprocess.DEVNULL)
        self.socats = [far, near]
        for p in self.socats:
            pin(p.pid, RELAY_CPUS)  # the per-connection children inherit it
        for _ in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        self.paths["socat"] = (sock, [far.pid, near.pid])

    def add_caa(self, name, tls, bindir=None, ssh=False):
        """bindir: a directory with other agent-protocol-forwarder and proxy-host binaries (a "before" build)."""
        d = os.path.join(self.tmp, name)
        os.mkdir(d)
        apf = os.path.join(d, "apf.json")
        saved = ap.FORWARDER, ap.PROXY_HOST
        if bindir:
            ap.FORWARDER = os.path.join(bindir, "agent-protocol-forwarder")
            ap.PROXY_HOST = os.path.join(bindir, "proxy-host")
        sock = os.path.join(d, "pod.sock")
        try:
            fwd, proxy = start_link(self.agent_sock, d, tls, ssh, sock, 1)
        finally:
            ap.FORWARDER, ap.PROXY_HOST = saved
        self.paths[name] = (sock, [proxy.pid, fwd.pid])
        pin(proxy.pid, RELAY_CPUS)
        pin(fwd.pid, RELAY_CPUS)
        return fwd, proxy

    def stop(self):
        for p in getattr(self, "socats", []):
            p.terminate()
            p.wait()


def start_link(agent_sock, d, tls, ssh, sock, pods):
    """A forwarder and a proxy-host with pods proxies, linked by plain TCP, TLS or SSH."""
    apf = os.path.join(d, "apf.json")
    extra, ssh_port, fwd_port = [], None, 0
    if ssh:
        ap.gen_ssh(d)
        extra, ssh_port = ap.ssh_forwarder_flags(d)
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        fwd_port = s.getsockname()[1]  # sshd's permitopen needs the port before the forwarder listens
        s.close()
    elif tls:
        ap.gen_tls(d, "podvm-bench")
    else:
        ap.write_apf(apf)
    fwd = ap.start_forwarder(agent_sock, apf, port=fwd_port, tls=tls, extra=extra + ["-log-level", "info"])
    proxy = ap.start_proxy(sock, fwd.port, pods=pods, tls_dir=d if tls else None, server_name="podvm-bench",
                           extra=["-log-level", "info"], ssh_dir=d if ssh else None, ssh_port=ssh_port)
    return fwd, proxy


def link_name(tls, ssh):
    return "SSH" if ssh else "TLS" if tls else "plain TCP"


def memory(tmp, goserver_agent_sock, tls, pods, bindir=None, ssh=False):
    d = os.path.join(tmp, "mem-%s%s" % ("ssh" if ssh else "tls" if tls else "tcp", "-before" if bindir else ""))
    os.mkdir(d)
    apf = os.path.join(d, "apf.json")
    saved = ap.FORWARDER, ap.PROXY_HOST
    if bindir:
        ap.FORWARDER = os.path.join(bindir, "agent-protocol-forwarder")
        ap.PROXY_HOST = os.path.join(bindir, "proxy-host")
    try:
        base = os.path.join(d, "p")
        fwd, proxy = start_link(goserver_agent_sock, d, tls, ssh, base, pods)
        # CPU spent until every pod's link is up (handshakes, plus the process start-up).
        connect_cpu = (proc_cpu(proxy.pid), proc_cpu(fwd.pid))
    finally:
        ap.FORWARDER, ap.PROXY_HOST = saved
    m = proxy.wait_line(r"^BASELINE rss_kb=(\d+) heap_bytes=(\d+)", stdout=True)
    rss0, heap0 = int(m.group(1)), int(m.group(2))
    st = ap.proxy_stats(proxy)
    rss1, heap1 = int(st["rss_kb"]), int(st["heap_bytes"])
    # One shim connection per pod, each used once (Health/Check), kept open.
    conns = []
    body = ap.request_body("grpc.Health", "Check")
    for i in range(pods):
        s = socket.socket(socket.AF_UNIX)
        s.connect("%s.%d" % (base, i))
        s.sendall(ap.frame(1, 1, body))
        f = ap.recv_frame(s)
        assert f and f[1] == 2, "no answer from pod %d" % i
        conns.append(s)
    st = ap.proxy_stats(proxy)
    rss2, heap2 = int(st["rss_kb"]), int(st["heap_bytes"])
    assert st["shim"] == str(pods) and st["connected"] == str(pods), st
    for s in conns:
        s.close()
    proxy.stop()
    fwd.stop()
    return {
        "rss_pod": (rss1 - rss0) * 1024 / pods, "heap_pod": (heap1 - heap0) / pods,
        "rss_shim": (rss2 - rss0) * 1024 / pods, "heap_shim": (heap2 - heap0) / pods,
        "rss0": rss0,
        "cpu_worker_pod": connect_cpu[0] * 1e3 / pods, "cpu_vm_pod": connect_cpu[1] * 1e3 / pods,
    }


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--goserver", required=True)
    a.add_argument("--goclient", required=True)
    a.add_argument("--secs", type=int, default=5)
    a.add_argument("--runs", type=int, default=3)
    a.add_argument("--conns", type=int, default=16)
    a.add_argument("--pods", type=int, default=100)
    a.add_argument("--before", help="directory with the binaries of a build to compare against (paths "
                   "caa-before, caa-tls-before)")
    a.add_argument("--no-socat", action="store_true")
    a.add_argument("--no-ssh", action="store_true", help="leave out the secure comms (SSH) path")
    a.add_argument("--loads", default="1234", help="which workloads (1: Check x1, 2: Check xC, "
                   "3: WriteStdin x1, 4: WriteStdin xC)")
    a.add_argument("--no-memory", action="store_true")
    a.add_argument("--pin", action="store_true", help="Go client and server on CPU 0, relays on CPU 1")
    args = a.parse_args()
    PIN["on"] = args.pin and os.cpu_count() >= 2

    tmp = ap.tmpdir()
    paths = Paths(args.goserver, tmp)
    order = ["direct"]
    if not args.no_socat:
        paths.add_socat()
        order.append("socat")
    if args.before:
        paths.add_caa("caa-before", tls=False, bindir=args.before)
        order.append("caa-before")
    paths.add_caa("caa", tls=False)
    order.append("caa")
    if args.before:
        paths.add_caa("caa-tls-before", tls=True, bindir=args.before)
        order.append("caa-tls-before")
    paths.add_caa("caa-tls", tls=True)
    order.append("caa-tls")
    if not args.no_ssh:
        paths.add_caa("caa-ssh", tls=False, ssh=True)
        order.append("caa-ssh")
    loads = [("Health.Check", "grpc.Health", "Check", 0, 1),
             ("Health.Check", "grpc.Health", "Check", 0, args.conns),
             ("WriteStdin 64 KiB", "grpc.AgentService", "WriteStdin", 65536, 1),
             ("WriteStdin 64 KiB", "grpc.AgentService", "WriteStdin", 65536, args.conns)]
    loads = [l for i, l in enumerate(loads) if str(i + 1) in args.loads]
    results = {}
    for run in range(args.runs):
        for load in loads:
            for name in order:  # paths alternate within a run
                sock, pids = paths.paths[name]
                r = run_bench(args.goclient, sock, load[1], load[2], load[3], load[4], args.secs, pids)
                results.setdefault((load[0], load[4], name), []).append(r)
                print("# run %d %s x%d %s: %s" % (run + 1, load[0], load[4], name, r), flush=True)
    paths.stop()

    print()
    print("| call | conns | path | calls/s (median) | min | max | p50 µs | p99 µs | relay CPU µs/call |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for load in loads:
        for name in order:
            rs = results[(load[0], load[4], name)]
            rates = [r["rate"] for r in rs]
            cpu = [r["cpu"] for r in rs if r["cpu"] is not None]
            print("| %s | %d | %s | %d | %d | %d | %d | %d | %s |" % (
                load[0], load[4], name, statistics.median(rates), min(rates), max(rates),
                statistics.median(r["p50"] for r in rs), statistics.median(r["p99"] for r in rs),
                "%.1f" % statistics.median(cpu) if cpu else "-"))

    if args.no_memory:
        paths.agent.stop(signal.SIGTERM)
        return
    print()
    print("| link | pods | RSS per pod (connected) | heap per pod | RSS per pod (+1 shim conn) | heap per pod (+1 shim conn) "
          "| connect CPU per pod, worker | connect CPU per pod, VM side |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    links = [(False, False), (True, False)] + ([] if args.no_ssh else [(False, True)])
    for tls, ssh in links:
        for bindir in ([args.before] if args.before and not ssh else []) + [None]:
            m = memory(tmp, paths.agent_sock, tls, args.pods, bindir, ssh=ssh)
            print("| %s%s | %d | %.1f KiB | %.1f KiB | %.1f KiB | %.1f KiB | %.2f ms | %.2f ms |" % (
                link_name(tls, ssh), " (before)" if bindir else "", args.pods, m["rss_pod"] / 1024,
                m["heap_pod"] / 1024, m["rss_shim"] / 1024, m["heap_shim"] / 1024, m["cpu_worker_pod"],
                m["cpu_vm_pod"]), flush=True)
    paths.agent.stop(signal.SIGTERM)


if __name__ == "__main__":
    main()
