#!/usr/bin/env python3
"""StartVM against the cloud fakes with realistic delays, and the adaptor's
share of it (bench/README.md, section "startvm-cloud").

The shipped daemon (`cloud-api-adaptor aws|azure`, TLS on) creates the pod VM
in the fake cloud (tests/integration/aws/fake-aws.mjs or
tests/integration/azure/fake_arm.py on 127.0.0.1, each API call answered after
a per-call latency). The bench plays the pod VM: when the fake has made the
instance, it takes the cloud-config the daemon sent as user-data (as the fake
recorded it), reads apf.json out of it as process-user-data would, and after
the modelled boot time starts the real agent-protocol-forwarder (TLS) on the
VM's private address (a 127.x loopback address the fake hands out), with
caa-test-agent behind it as the kata-agent.

Per run: caa-ctl create, caa-ctl start (timed), caa-ctl check (one agent
call through the pod's agent socket), caa-ctl stop. Every step on one wall
clock: the daemon's log stamps, the fake's request timeline (arrival and
answer of each call), the forwarder's "listening" stamp, caa-ctl's return.

Shares: the cloud's part of StartVM is the union of the API calls in flight,
the cloud's own waits (Azure provisioning until its operation says
Succeeded) and the VM's boot until the forwarder listens. Everything else
between caa-ctl start and its return is the adaptor's: its own work and its
noticing lags (a poll that comes after the cloud is done, the agent proxy's
retry after the forwarder listens), listed per gap.
"""
import argparse
import base64
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone

import yaml

SRC = os.environ["CAA_SOURCE_ROOT"]
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
sys.path.insert(0, os.path.join(SRC, "tests", "integration", "aws"))
sys.path.insert(0, os.path.join(SRC, "tests", "integration", "azure"))
sys.path.insert(0, os.path.join(SRC, "tests", "integration", "proxy"))
import agentpath as ap  # noqa: E402
import aws_harness  # noqa: E402
from caa_harness import Daemon, free_port, pod_annotations, sandbox_id  # noqa: E402
from test_daemon_azure import SECRET as AZURE_SECRET  # noqa: E402
from test_daemon_azure import Fake as AzureFake  # noqa: E402

FORWARDER = os.environ["CAA_FORWARDER"]
TEST_AGENT = os.environ["CAA_TEST_AGENT"]
CTL = os.environ["CAA_CTL"]
STAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z ")
AZ_SUBNET = "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Network/virtualNetworks/vnet/subnets/default"
AZ_IMAGE = "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Compute/images/podvm"


def stamp(line):
    """The millisecond wall-clock stamp at the start of a log line (UTC), as epoch seconds."""
    m = STAMP.search(line)
    if not m:
        return None
    return datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc).timestamp()


def cpu_s(pid):
    """CPU time of all threads of pid (schedstat, ns precision)."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:
            pass  # a thread that ended meanwhile
    return total / 1e9


def apf_from_user_data(b64):
    """apf.json out of the pod's cloud-config (the file process-user-data writes)."""
    doc = yaml.safe_load(base64.b64decode(b64))
    for f in doc.get("write_files") or []:
        if f.get("path") == "/run/peerpod/apf.json":
            return f["content"]
    raise RuntimeError("no /run/peerpod/apf.json in the user-data")


class Cloud:
    """What differs between the clouds: the fake, the daemon's flags, how a
    new VM, its user-data and the request timeline are read."""

    name = None

    def vm_address(self, run):
        # A loopback address of its own per run, so a forwarder never meets the last run's sockets.
        return "127.77.%d.%d" % (self.index, run + 2)


class Aws(Cloud):
    name = "aws"
    index = 1

    def __init__(self, args):
        self.fake = aws_harness.Fake()
        self.args = args

    def configure(self, ip, shift=0.0):
        self.fake.reset(latency_ms=self.args.latency_ms, pending_ms=int(self.args.pending * 1000),
                        private_ip_override=ip, timeline=True)

    def daemon_cmd(self, daemon, d):
        return [daemon, "aws", "-socket", d.sock, "-pods-dir", d.pods, "-log-level", "info"] + aws_harness.base_args()

    def env(self):
        return aws_harness.base_env(self.fake)

    def new_vm(self):
        """(created epoch s, user-data base64) of the first instance, or None."""
        inst = [i for i in self.fake.instances() if i.get("created_ms")]
        if not inst:
            return None
        return inst[0]["created_ms"] / 1000.0, inst[0]["user_data"], []

    def calls(self):
        return [(e["in_ms"] / 1000.0, e["out_ms"] / 1000.0, e["action"]) for e in self.fake.state()["timeline"]
                if e["out_ms"] is not None]

    def close(self):
        self.fake.stop()


class Azure(Cloud):
    name = "azure"
    index = 2

    def __init__(self, args):
        self.fake = AzureFake()
        self.args = args

    def configure(self, ip, shift=0.0):
        cfg = {"latency_ms": self.args.latency_ms, "provision_ms": int((self.args.provision + shift) * 1000),
               "private_ip_fixed": ip, "timeline": True, "retry_after": self.args.retry_after}
        # Not a reset: that would also forget the daemon's token.
        self.fake.config(**cfg)
        self.seen = set(self.fake.state()["vms"])

    def daemon_cmd(self, daemon, d):
        f = self.fake.url
        return [daemon, "azure", "-socket", d.sock, "-pods-dir", d.pods, "-log-level", "info",
                "-clientid", "client-1", "-tenantid", "tenant-1", "-subscriptionid", "sub-1", "-region", "eastus",
                "-resourcegroup", "rg-1", "-subnetid", AZ_SUBNET, "-imageid", AZ_IMAGE, "-authority-host", f,
                "-resource-manager-endpoint", f, "-node-name", "worker-7"]

    def env(self):
        return {"AZURE_CLIENT_SECRET": AZURE_SECRET}

    def new_vm(self):
        st = self.fake.state()
        new = [v for n, v in st["vms"].items() if n not in self.seen]
        if not new or not st["puts"]:
            return None
        vm = new[0]
        # The cloud's own wait: provisioning from the PUT until the operation may say Succeeded.
        waits = [(vm["created"], vm["ready_at"], "provisioning")]
        return vm["created"], st["puts"][-1]["properties"]["userData"], waits

    def calls(self):
        out = []
        for t_in, t_out, method, path, status in self.fake.state()["timeline"]:
            what = "token" if "/oauth2/" in path else "poll" if "/operations/" in path else \
                "NIC GET" if "networkInterfaces" in path else "VM " + method if "virtualMachines/" in path else method
            out.append((t_in, t_out, what))
        return out

    def close(self):
        self.fake.close()


class CloudDaemon(Daemon):
    """The shipped daemon with a cloud provider module, TLS on (the default)."""

    def __init__(self, cloud, binary, port, root):
        super().__init__(root=root, forwarder=False, env=cloud.env(), log_level="info")
        self.cloud, self.binary, self.port = cloud, binary, port

    def cmdline(self):
        return self.cloud.daemon_cmd(self.binary, self) + ["-forwarder-port", str(self.port), "-proxy-timeout",
                                                            "300s"] + self.cloud.args.daemon_args.split()


def log_time(d, pattern, sid):
    rx = re.compile(r"sandbox=%s %s" % (sid, pattern))
    for line in d.log().splitlines():
        if rx.search(line):
            return stamp(line)
    return None


class VmPlayer(threading.Thread):
    """The pod VM: waits for the instance in the fake, then starts the
    forwarder at created + boot on the VM's address, with the apf.json taken
    from the user-data the fake received."""

    def __init__(self, cloud, ip, port, boot, agent_sock, tmp):
        super().__init__(daemon=True)
        self.cloud, self.ip, self.port, self.boot = cloud, ip, port, boot
        self.agent_sock, self.tmp = agent_sock, tmp
        self.created = None
        self.waits = []
        self.fwd = None
        self.error = None
        self.stop = threading.Event()

    def run(self):
        try:
            while not self.stop.is_set():
                vm = self.cloud.new_vm()
                if vm:
                    break
                time.sleep(0.02)
            else:
                return
            self.created, user_data, self.waits = vm
            apf = os.path.join(self.tmp, "apf-%s.json" % self.ip)
            with open(apf, "w") as f:
                f.write(apf_from_user_data(user_data))
            left = self.created + self.boot - time.time()
            if self.stop.wait(max(0.0, left)):
                return
            self.fwd = ap.Proc("agent-protocol-forwarder", [
                FORWARDER, "-config", apf, "-listen", "%s:%d" % (self.ip, self.port), "-kata-agent-socket",
                self.agent_sock, "-pod-namespace", "/run/netns/podns-bench-unused", "-log-level", "info"])
        except Exception as e:  # noqa: BLE001 - reported by the run
            self.error = e

    def listening(self):
        return stamp(self.fwd.wait_line(r"listening on port").string)

    def close(self):
        self.stop.set()
        self.join(10)
        if self.fwd:
            self.fwd.kill()


def union_within(intervals, lo, hi):
    """Length of the union of intervals, clipped to [lo, hi], and the gaps left uncovered."""
    iv = sorted((max(a, lo), min(b, hi), what) for a, b, what in intervals if b > lo and a < hi)
    covered, gaps, cur = 0.0, [], lo
    for a, b, _ in iv:
        if a > cur:
            gaps.append((cur, a))
        if b > cur:
            covered += b - max(a, cur)
            cur = b
    if cur < hi:
        gaps.append((cur, hi))
    return covered, gaps


def ctl(d, *args, timeout=120):
    return subprocess.run([CTL, "-socket", d.sock, "-pods-dir", d.pods] + list(args), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


def one_run(cloud, d, n, rnd, args, agent_sock, tmp):
    # Each run moves the cloud's waits by a different part of --phase, so they
    # fall at every phase of the adaptor's polls and retries.
    shift = (rnd * 0.377) % 1.0 * args.phase
    boot = args.boot + shift
    ip = cloud.vm_address(n)
    cloud.configure(ip, shift)
    sid = sandbox_id(7000 + n)
    r = ctl(d, "create", sid, *pod_annotations("bench-%d" % n, "default"))
    if r.returncode != 0:
        raise RuntimeError("create: %s" % r.stderr)
    vm = VmPlayer(cloud, ip, d.port, boot, agent_sock, tmp)
    vm.start()
    try:
        cpu0 = cpu_s(d.pid)
        t0 = time.time()
        r = ctl(d, "start", sid, timeout=boot + 120)
        t_ret = time.time()
        cpu = cpu_s(d.pid) - cpu0
        if r.returncode != 0:
            raise RuntimeError("start: %s\n%s" % (r.stderr, d.log()[-3000:]))
        if vm.error:
            raise vm.error
        c = ctl(d, "check", sid)
        t_check = time.time()
        if c.returncode != 0 or c.stdout.strip() != "SERVING":
            raise RuntimeError("check: %s %s" % (c.stdout, c.stderr))
        listening = vm.listening()
        calls = [c for c in cloud.calls() if c[1] > t0 and c[0] < t_ret]
    finally:
        ctl(d, "stop", sid)
        vm.close()
    connected = log_time(d, r"agent proxy: connected to", sid)
    dialing = log_time(d, r"agent proxy: connecting to", sid)
    startvm = log_time(d, r"StartVM$", sid)
    created_log = log_time(d, r"created instance", sid)
    cloud_iv = [(a, b, what) for a, b, what in calls] + vm.waits + [(vm.created, listening, "boot")]
    covered, gaps = union_within(cloud_iv, t0, t_ret)
    wall = t_ret - t0
    events = sorted([(a, "call " + w) for a, _, w in calls] + [(connected, "proxy connected"),
                                                              (t_ret, "StartVM returned")])
    named = []
    for a, b in gaps:
        end = next((w for t, w in events if t >= b - 0.0005), "?")
        named.append((b - a, "before " + end))
    prov_end = max((b for _, b, w in vm.waits), default=None)
    return {
        "wall": wall, "cloud": covered, "adaptor": wall - covered, "cpu": cpu, "gaps": named,
        "calls": [(w, b - a) for a, b, w in calls], "api": sum(b - a for a, b, _ in calls),
        # The proxy's own lag: from the later of its first dial and the forwarder listening.
        "boot": listening - vm.created, "proxy_lag": connected - max(listening, dialing),
        "ctl_to_startvm": startvm - t0 if startvm else None,
        "ip_known": created_log - t0 if created_log else None, "listening": listening - t0,
        "first_call": calls[0][0] - t0 if calls else None,
        "provisioned": prov_end - t0 if prov_end else None, "check": t_check - t_ret,
    }


def summarize(cloud, label, runs, load):
    med = lambda k: statistics.median(r[k] for r in runs)  # noqa: E731
    share = [100 * r["adaptor"] / r["wall"] for r in runs]
    print("\n### %s, %s: %d runs, load average %s" % (cloud, label, len(runs), load))
    print("| run | StartVM wall s | cloud s (API + waits + boot) | adaptor s | adaptor share | API calls s |"
          " proxy lag ms | daemon CPU ms | agent call ms |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for i, r in enumerate(runs):
        print("| %d | %.3f | %.3f | %.3f | %.2f %% | %.3f | %.1f | %.1f | %.1f |" % (
            i + 1, r["wall"], r["cloud"], r["adaptor"], share[i], r["api"], 1000 * r["proxy_lag"],
            1000 * r["cpu"], 1000 * r["check"]))
    print("| median | %.3f | %.3f | %.3f | **%.2f %%** | %.3f | %.1f | %.1f | %.1f |" % (
        med("wall"), med("cloud"), med("adaptor"), statistics.median(share), med("api"),
        1000 * med("proxy_lag"), 1000 * med("cpu"), 1000 * med("check")))
    # The adaptor's time per gap kind, median over the runs (0 where a run had no such gap).
    kinds = sorted({w for r in runs for _, w in r["gaps"]})
    print("\nadaptor's time by what ended it (ms, median; per run):")
    for k in kinds:
        per = [sum(g for g, w in r["gaps"] if w == k) * 1000 for r in runs]
        print("  %-32s %8.1f   %s" % (k, statistics.median(per), " ".join("%.1f" % x for x in per)))
    print("timeline (s after caa-ctl start, median): first call %.3f, provisioned %s, IP known (daemon log) %s,"
          " forwarder listening %.3f, StartVM returned %.3f" % (
              med("first_call"), "%.3f" % med("provisioned") if runs[0]["provisioned"] else "-",
              "%.3f" % med("ip_known") if runs[0]["ip_known"] else "-", med("listening"), med("wall")))
    calls = {}
    for r in runs:
        for w, t in r["calls"]:
            calls.setdefault(w, []).append(t)
    print("calls per run: %s" % ", ".join("%s x%.1f (%.0f ms median)" % (w, len(ts) / len(runs),
                                                                          1000 * statistics.median(ts))
                                          for w, ts in sorted(calls.items())))
    return {"wall": med("wall"), "share": statistics.median(share)}


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--cloud", choices=["aws", "azure"], action="append")
    a.add_argument("--runs", type=int, default=5)
    a.add_argument("--latency-ms", type=int, default=150)
    a.add_argument("--boot", type=float, default=25.0, help="seconds from create until the forwarder listens")
    a.add_argument("--phase", type=float, default=2.0,
                   help="each run delays boot and provisioning by a different part of this many seconds")
    a.add_argument("--pending", type=float, default=12.0, help="aws: pending -> running, seconds")
    a.add_argument("--provision", type=float, default=20.0, help="azure: PUT until the operation is done, seconds")
    a.add_argument("--retry-after", default=None, help="azure: Retry-After on operation answers (none: no header)")
    a.add_argument("--daemon", action="append", required=True, help="LABEL=PATH of a cloud-api-adaptor binary")
    a.add_argument("--daemon-args", default="", help="more daemon flags (space-separated), for every build")
    args = a.parse_args()
    daemons = [x.split("=", 1) for x in args.daemon]
    tmp = ap.tmpdir()
    agent_sock = os.path.join(tmp, "agent.sock")
    agent = ap.Proc("caa-test-agent", [TEST_AGENT, "-socket", agent_sock])
    agent.wait_line(r"listening on")
    results = {}
    try:
        for name in args.cloud or ["aws", "azure"]:
            cloud = Aws(args) if name == "aws" else Azure(args)
            try:
                runs = {label: [] for label, _ in daemons}
                load = [os.getloadavg()[0]]
                cloud.configure(cloud.vm_address(0))
                ds = []
                try:
                    for label, binary in daemons:
                        ds.append((label, CloudDaemon(cloud, binary, free_port(), ap.tmpdir()).start(timeout=60)))
                    time.sleep(2)  # the daemons' start-up calls (token, size list, images) are done
                    # The builds take turns, run by run, so both see the same load.
                    for n in range(args.runs):
                        for k, (label, d) in enumerate(ds):
                            r = one_run(cloud, d, n * len(ds) + k, n, args, agent_sock, tmp)
                            runs[label].append(r)
                            load.append(os.getloadavg()[0])
                            print("# %s %s run %d: StartVM %.3f s, adaptor %.3f s (%.2f %%), gaps %s" % (
                                name, label, n + 1, r["wall"], r["adaptor"], 100 * r["adaptor"] / r["wall"],
                                ", ".join("%.0f ms %s" % (1000 * g, w) for g, w in r["gaps"])), flush=True)
                finally:
                    for _, d in ds:
                        d.stop()
                span = "%.1f-%.1f" % (min(load), max(load))
                for label, _ in daemons:
                    results[(name, label)] = summarize(name, label, runs[label], span)
            finally:
                cloud.close()
    finally:
        agent.kill()
    print("\n" + json.dumps({"%s/%s" % k: v for k, v in results.items()}))


if __name__ == "__main__":
    main()
