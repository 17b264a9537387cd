#!/usr/bin/python3
"""bench/daemon-rss: the daemon's memory idle and with N pods created, per
variant (provider) and per build (e.g. before/after, measured in one run).
Method and results: bench/daemon-rss/README.md."""
import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path[:0] = [os.path.join(SRC, "tests", "integration"), os.path.join(SRC, "tests", "support"),
                os.path.join(SRC, "tests", "integration", "aws")]

import ttrpc_wire as tw  # noqa: E402
from free_port import free_port  # noqa: E402

SVC = "hypervisor.Hypervisor"
AZURE_FAKE = os.path.join(SRC, "tests", "integration", "azure", "fake_arm.py")


def sandbox(i):
    return "sb%062d" % i


def create_payload(i):
    ann = {"io.kubernetes.cri.sandbox-name": "pod-%d" % i, "io.kubernetes.cri.sandbox-namespace": "bench"}
    body = tw.field(1, sandbox(i))
    for k, v in ann.items():
        body += tw.field(2, tw.field(1, k) + tw.field(2, v))
    return body


def memory(pid):
    """KiB figures from /proc: status (VmRSS, VmHWM, RssAnon, RssFile), smaps_rollup (Pss)."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
                out[k] = int(v.split()[0])
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Pss:"):
                out["Pss"] = int(line.split()[1])
    objs = set()
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and ".so" in parts[5]:
                objs.add(parts[5])
    out["objects"] = len(objs)
    return out


def top_mappings(pid, n):
    rss, anon, name = {}, {}, None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            first = line.split(" ", 1)[0]
            if "-" in first and ":" not in first:
                parts = line.split()
                name = os.path.basename(parts[5]) if len(parts) >= 6 else "[anon]"
            elif line.startswith("Rss:"):
                rss[name] = rss.get(name, 0) + int(line.split()[1])
            elif line.startswith("Anonymous:"):
                anon[name] = anon.get(name, 0) + int(line.split()[1])
    return sorted(((v, anon.get(k, 0), k) for k, v in rss.items()), reverse=True)[:n]


class Fakes:
    """The AWS (official SDK) and Azure fakes, started when a variant needs them."""

    def __init__(self, build):
        self.build = build
        self.aws = None
        self.azure = None
        self.azure_url = None

    def aws_fake(self):
        if not self.aws:
            os.environ["CAA_BUILD_ROOT"] = self.build
            import aws_harness
            self.aws_harness = aws_harness
            self.aws = aws_harness.Fake()
        return self.aws

    def azure_fake(self):
        if not self.azure:
            self.azure = subprocess.Popen([sys.executable, AZURE_FAKE], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            self.azure_url = "http://127.0.0.1:%d" % int(self.azure.stdout.readline().split()[1])
        return self.azure_url

    def close(self):
        if self.aws:
            self.aws.stop()
        if self.azure:
            self.azure.stdin.close()
            self.azure.wait(10)


def command(variant, build, work, fakes):
    """(argv, env) of the daemon for a variant."""
    env = dict(os.environ)
    shipped = os.path.join(build, "adaptor", "cloud-api-adaptor")
    test = os.path.join(build, "tests", "support", "cloud-api-adaptor-test")
    if variant == "test":
        return [test, "test", "-test-state-dir", work + "/inst"], env
    if variant == "test-notls":
        return [test, "test", "-test-state-dir", work + "/inst", "-disable-tls"], env
    if variant == "all-linked":
        return [os.path.join(build, "bench", "daemon-rss", "cloud-api-adaptor-all-linked"), "test",
                "-test-state-dir", work + "/inst"], env
    if variant == "libvirt":
        return [shipped, "libvirt", "-uri", "test:///default", "-pool-name", "default-pool"], env
    if variant == "aws":
        fake = fakes.aws_fake()
        h = fakes.aws_harness
        return [shipped, "aws"] + h.base_args(), h.base_env(fake)
    if variant == "azure":
        url = fakes.azure_fake()
        sub = "/subscriptions/sub-1/resourceGroups/rg-1/providers"
        env["AZURE_CLIENT_SECRET"] = "s3cr3t-value"
        return [shipped, "azure", "-clientid", "client-1", "-tenantid", "tenant-1", "-subscriptionid", "sub-1",
                "-region", "eastus", "-resourcegroup", "rg-1",
                "-subnetid", sub + "/Microsoft.Network/virtualNetworks/vnet/subnets/default",
                "-imageid", sub + "/Microsoft.Compute/images/podvm", "-authority-host", url,
                "-resource-manager-endpoint", url, "-node-name", "worker-7"], env
    raise SystemExit("unknown variant %s" % variant)


def row(label, variant, point, m):
    print("%-7s %-10s %-14s VmRSS %6d  VmHWM %6d  RssAnon %6d  RssFile %6d  Pss %6d  %3d objects  %d threads"
          % (label, variant, point, m["VmRSS"], m["VmHWM"], m["RssAnon"], m["RssFile"], m["Pss"], m["objects"],
             m["Threads"]), flush=True)


def measure(label, build, variant, checkpoints, fakes, top):
    work = tempfile.mkdtemp(prefix="caa-rss.", dir="/dev/shm")
    sock = work + "/hv.sock"
    argv, env = command(variant, build, work, fakes)
    argv += ["-socket", sock, "-pods-dir", work + "/pods", "-log-level", "warn"]
    log = open(work + ".log", "w")
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while not os.path.exists(sock):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("%s %s did not start:\n%s" % (label, variant, open(work + ".log").read()))
            time.sleep(0.01)
        cli = tw.Client(sock, timeout=60)
        r = cli.wait(cli.send(SVC, "Version", tw.field(1, "0.0.0")))
        assert r.code == 0, r
        time.sleep(1)  # start-up work that runs on the loop (orphan sweep) settles
        idle = memory(proc.pid)
        row(label, variant, "idle", idle)
        for rss, anon, name in top_mappings(proc.pid, top):
            print("%-7s %-10s   %6d KiB (anon %4d)  %s" % (label, variant, rss, anon, name))
        done, t0 = 0, time.monotonic()
        for n in checkpoints:
            while done < n:
                done += 1
                r = cli.wait(cli.send(SVC, "CreateVM", create_payload(done)))
                if r.code != 0:
                    raise SystemExit("CreateVM %d: %d %s" % (done, r.code, r.message))
            m = memory(proc.pid)
            row(label, variant, "%d pods" % n, m)
            print("%-7s %-10s   per pod: %.2f KiB anonymous, %.2f KiB VmRSS; %.2f ms per CreateVM"
                  % (label, variant, (m["RssAnon"] - idle["RssAnon"]) / n, (m["VmRSS"] - idle["VmRSS"]) / n,
                     (time.monotonic() - t0) * 1000 / n), flush=True)
        cli.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        subprocess.run(["rm", "-rf", work, work + ".log"])


def measure_ready(label, build, variant, n):
    """N pods created and started: each keeps an agent proxy with one connection
    (TLS, or plain with -disable-tls) to a real agent-protocol-forwarder in
    front of the stand-in kata-agent. The daemon runs -tls-skip-verify so one
    forwarder (with the first pod's apf.json) serves every pod. The cost of a
    connected pod is the anonymous memory over the same N pods only created."""
    from agent_helpers import Child
    tls = variant == "ready"
    work = tempfile.mkdtemp(prefix="caa-rss.", dir="/dev/shm")
    sock = work + "/hv.sock"
    port = free_port()
    argv = [os.path.join(build, "tests", "support", "cloud-api-adaptor-test"), "test", "-test-state-dir",
            work + "/inst", "-test-ip", "127.0.0.1", "-forwarder-port", str(port), "-proxy-timeout", "60s",
            "-socket", sock, "-pods-dir", work + "/pods", "-log-level", "warn"]
    argv.append("-tls-skip-verify" if tls else "-disable-tls")
    log = open(work + ".log", "w")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    helpers = []
    try:
        while not os.path.exists(sock):
            if proc.poll() is not None:
                raise SystemExit("%s %s did not start:\n%s" % (label, variant, open(work + ".log").read()))
            time.sleep(0.01)
        cli = tw.Client(sock, timeout=120)
        for i in range(1, n + 1):
            r = cli.wait(cli.send(SVC, "CreateVM", create_payload(i)))
            if r.code != 0:
                raise SystemExit("CreateVM %d: %d %s" % (i, r.code, r.message))
        created = memory(proc.pid)
        row(label, variant, "%d created" % n, created)
        agent_sock = work + "/agent.sock"
        agent = Child([os.path.join(build, "tests", "test-agent", "caa-test-agent"), "-socket", agent_sock])
        helpers.append(agent)
        agent.wait_line("listening on")
        fwd = [os.path.join(build, "agent-protocol", "forwarder", "agent-protocol-forwarder"), "-config",
               os.path.join(work, "pods", sandbox(1), "apf.json"), "-listen", "127.0.0.1:%d" % port,
               "-kata-agent-socket", agent_sock, "-pod-namespace", "/run/netns/caa-rss-unused", "-log-level",
               "info"]
        if not tls:
            fwd.append("-disable-tls")
        helpers.append(Child(fwd))
        helpers[-1].wait_line("listening on port %d" % port)
        for i in range(1, n + 1):
            r = cli.wait(cli.send(SVC, "StartVM", tw.field(1, sandbox(i))), timeout=120)
            if r.code != 0:
                raise SystemExit("StartVM %d: %d %s" % (i, r.code, r.message))
        ready = memory(proc.pid)
        row(label, variant, "%d connected" % n, ready)
        print("%-7s %-10s   per connected pod over a created one: %.2f KiB anonymous"
              % (label, variant, (ready["RssAnon"] - created["RssAnon"]) / n), flush=True)
        cli.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for h in helpers:
            h.stop()
        log.close()
        subprocess.run(["rm", "-rf", work, work + ".log"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", action="append", required=True, help="LABEL=DIR, measured in the order given")
    ap.add_argument("--variants", default="test test-notls aws azure libvirt")
    ap.add_argument("--pods", default="1000 10000", help="checkpoints (cumulative CreateVM count)")
    ap.add_argument("--top", type=int, default=12, help="largest mappings listed at idle")
    ap.add_argument("--ready", type=int, default=1000,
                    help="pods started (connected) in the ready and ready-notls variants")
    a = ap.parse_args()
    builds = [b.split("=", 1) for b in a.build]
    checkpoints = sorted(int(x) for x in a.pods.split())
    fakes = Fakes(os.path.abspath(builds[-1][1]))
    try:
        for v in a.variants.split():
            for label, build in builds:
                if v in ("ready", "ready-notls"):
                    measure_ready(label, os.path.abspath(build), v, a.ready)
                else:
                    measure(label, os.path.abspath(build), v, checkpoints, fakes, a.top)
    finally:
        fakes.close()


if __name__ == "__main__":
    main()
