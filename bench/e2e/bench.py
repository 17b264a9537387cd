#!/usr/bin/env python3
"""Where the time between StartVM and a ready agent goes, on the local
libvirt/QEMU (TCG) cloud of tests/e2e (bench/README.md, section e2e).

For each run one pod is created and started; every event is placed on the
host's wall clock:
- daemon log lines (the adaptor's own millisecond timestamps): StartVM,
  "created instance" (the DHCP lease seen), "pod network tunnel ... set up",
  "connecting -> ready";
- the QEMU log of libvirt ("starting up", the moment QEMU is launched);
- the VM's serial console, read while it is written (a 20 ms poll of the
  console log file): firmware starts the UKI, userspace, DHCP bound,
  process-user-data started, forwarder listening;
- caa-ctl: StartVM returned, first Health.Check answered.
The adaptor's CPU time (/proc/<pid>/stat, all threads) and memory (VmRSS,
VmHWM) are read before the first and after the last run.

Usage: bench.py --build BUILD_DIR [--runs N] [--json FILE]
"""
import argparse
import calendar
import json
import os
import re
import statistics
import sys
import threading
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "e2e"))
import localcloud as lc  # noqa: E402

CONSOLE_EVENTS = [
    ("firmware_boot", re.compile(r"BdsDxe: starting Boot")),
    ("userspace", re.compile(r"podvm: userspace started")),
    ("dhcp_bound", re.compile(r"podvm: dhcp: \S+ bound")),
    ("user_data", re.compile(r"podvm: starting process-user-data")),
    ("apf_written", re.compile(r"wrote /run/peerpod/apf.json")),
    ("agent_listening", re.compile(r"\[test-agent\] .* listening on")),
    ("fwd_started", re.compile(r"agent-protocol-forwarder \S+ starting")),
    ("fwd_podnet", re.compile(r"\[forwarder\] pod network set up")),
    ("fwd_listening", re.compile(r"\[forwarder\] listening on port")),
]
DAEMON_EVENTS = [
    ("startvm", re.compile(r"\] sandbox=(\S+) StartVM$")),
    ("lease_seen", re.compile(r"\] sandbox=(\S+) created instance ")),
    ("tunnel_up", re.compile(r"\] sandbox=(\S+) pod network tunnel to .* set up")),
    ("proxy_connected", re.compile(r"\] sandbox=(\S+) agent proxy: connected to")),
    ("ready", re.compile(r"\] sandbox=(\S+) state connecting -> ready")),
]


def parse_ts(text):
    """'2026-11-28T16:19:43.256Z' or '2026-11-28 16:19:43.256+0000' -> epoch seconds."""
    m = re.match(r"(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)\.(\d{3})", text)
    if not m:
        return None
    t = time.strptime(m.group(1) + " " + m.group(2), "%Y-%m-%d %H:%M:%S")
    return calendar.timegm(t) + int(m.group(3)) / 1000.0


class ConsoleWatch(threading.Thread):
    """First host-clock arrival time of each console event."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path = path
        self.seen = {}
        self.stop = threading.Event()

    def run(self):
        pos, buf = 0, ""
        while not self.stop.is_set():
            try:
                with open(self.path, errors="replace") as f:
                    f.seek(pos)
                    data = f.read()
                    pos = f.tell()
            except OSError:
                data = ""
            if data:
                t = time.time()
                buf += data
                *lines, buf = buf.split("\n")
                for line in lines:
                    for name, rx in CONSOLE_EVENTS:
                        if name not in self.seen and rx.search(line):
                            self.seen[name] = t
            self.stop.wait(0.02)


DIAL_FAILED = re.compile(r"\] sandbox=(\S+) agent proxy: dial: ")


def daemon_events(log_text, sid):
    out = {}
    fails = []
    for line in log_text.splitlines():
        for name, rx in DAEMON_EVENTS:
            m = rx.search(line)
            if m and m.group(1) == sid and name not in out:
                out[name] = parse_ts(line)
        m = DIAL_FAILED.search(line)
        if m and m.group(1) == sid and "ready" not in out:
            fails.append(parse_ts(line))
    if len(fails) >= 2:
        # The successful attempt started one retry delay after the last refused one
        # (the delay is the spacing of the last two: the backoff had reached its cap).
        out["last_dial_failed"] = fails[-1]
        out["next_dial"] = fails[-1] + (fails[-1] - fails[-2])
    return out


def qemu_start(path):
    for line in lc._read(path).splitlines():
        if "starting up" in line:
            return parse_ts(line)
    return None


def one_run(cloud, caa, n):
    sid = lc.new_sandbox_id()
    pod = cloud.pod_netns("b%d" % n, "%s.%d" % (lc.POD_NET, 50 + n))
    caa.ctl("create", sid, *lc.pod_annotations("bench%d" % n), "-netns", pod.path)
    inst = caa.state(sid)["instance_name"]
    watch = ConsoleWatch(cloud.console_log(inst))
    watch.start()
    ev = {"call_start": time.time()}
    caa.ctl("start", sid, "-timeout", "600s")
    ev["call_done"] = time.time()
    out = caa.ctl("check", sid, timeout=60).stdout.strip()
    ev["check_done"] = time.time()
    if out != "SERVING":
        raise lc.E2EError("Health.Check: %r" % out)
    time.sleep(0.1)
    watch.stop.set()
    watch.join()
    ev.update({k: v for k, v in watch.seen.items()})
    ev.update(daemon_events(caa.log_text(), sid))
    ev["qemu_start"] = qemu_start(cloud.qemu_log(inst))
    t0 = time.time()
    caa.ctl("stop", sid)
    ev["stop_s"] = time.time() - t0
    missing = [k for k in ("startvm", "qemu_start", "user_data", "fwd_listening", "lease_seen", "tunnel_up",
                           "ready") if not ev.get(k)]
    if missing:
        raise lc.E2EError("run %d: events not found: %s" % (n, missing))
    return ev


def splits(ev):
    d = lambda a, b: ev[b] - ev[a]
    return {
        "provider create (StartVM -> QEMU launched)": d("startvm", "qemu_start"),
        "VM boot to user-data (QEMU -> process-user-data)": d("qemu_start", "user_data"),
        "user-data -> forwarder listening": d("user_data", "fwd_listening"),
        "forwarder listening -> agent ready (proxy dial + TLS)": d("fwd_listening", "ready"),
        "  forwarder listening -> next dial attempt (retry timer)":
            d("fwd_listening", "next_dial") if ev.get("next_dial") else 0,
        "  that attempt -> ready (TCP, TLS, Health.Check via the VM)": d("next_dial", "ready") if ev.get("next_dial") else 0,
        "first Health.Check (ready -> answer at caa-ctl)": d("ready", "check_done"),
        "StartVM -> agent ready (daemon log)": d("startvm", "ready"),
        "StartVM call -> Health.Check answered (client)": d("call_start", "check_done"),
        "  DHCP bound -> lease seen by the adaptor": d("dhcp_bound", "lease_seen") if ev.get("dhcp_bound") else 0,
        "  lease seen -> tunnel up": d("lease_seen", "tunnel_up"),
        "  tunnel up before forwarder listening by": d("tunnel_up", "fwd_listening"),
        "  QEMU -> firmware starts the UKI": d("qemu_start", "firmware_boot") if ev.get("firmware_boot") else 0,
        "  QEMU -> userspace": d("qemu_start", "userspace") if ev.get("userspace") else 0,
        "StopVM": ev["stop_s"],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    reason = lc.check_machine()
    if reason:
        print("bench/e2e: cannot run: %s" % reason)
        return 1
    lc.enter_private_mounts()
    lc.signals_raise()
    build = lc.Build(args.build)
    cloud = lc.Cloud(log=print)
    results = []
    try:
        cloud.start()
        image, _ = lc.build_image(build, os.path.join(build.root, "e2e-podvm"))
        cloud.upload_image(image)
        caa = lc.Adaptor(cloud, build, flags=["-ip-wait", "300s"]).start()
        # The daemon log must carry the events at info level; debug adds the dial retries.
        u0 = caa.usage()
        w0 = time.time()
        for n in range(1, args.runs + 1):
            ev = one_run(cloud, caa, n)
            results.append(splits(ev))
            print("run %d: StartVM -> ready %.1f s" % (n, results[-1]["StartVM -> agent ready (daemon log)"]),
                  flush=True)
        wall = time.time() - w0
        u1 = caa.usage()
    finally:
        cloud.close()
    cpu = (u1["utime"] + u1["stime"]) - (u0["utime"] + u0["stime"])
    keys = list(results[0])
    print("\n%-58s %s" % ("step (seconds)", "  ".join("run%-4d" % (i + 1) for i in range(len(results))) + " median"))
    for k in keys:
        vals = [r[k] for r in results]
        print("%-58s %s %6.2f" % (k, "  ".join("%7.2f" % v for v in vals), statistics.median(vals)))
    total = [r["StartVM call -> Health.Check answered (client)"] for r in results]
    create = [r["provider create (StartVM -> QEMU launched)"] for r in results]
    check = [r["first Health.Check (ready -> answer at caa-ctl)"] for r in results]
    dial = [r["forwarder listening -> agent ready (proxy dial + TLS)"] for r in results]
    wait = [r["  forwarder listening -> next dial attempt (retry timer)"] for r in results]
    print("\nadaptor's share of the critical path (StartVM call -> first Health.Check answered):")
    print("  A = provider create + forwarder listening -> ready + first check")
    print("  B = provider create + retry-timer wait + first check (without the TCP/TLS/Check exchange,")
    print("      whose other end is the TCG VM)")
    for i in range(len(results)):
        a = create[i] + dial[i] + check[i]
        b = create[i] + wait[i] + check[i]
        print("  run %d: A %.2f s = %.2f %%, B %.2f s = %.2f %% of %.1f s"
              % (i + 1, a, 100 * a / total[i], b, 100 * b / total[i], total[i]))
    med = statistics.median
    print("  median: A %.2f %%, B %.2f %%" % (med([100 * (c + d + k) / t for c, d, k, t in zip(create, dial, check, total)]),
                                         med([100 * (c + w + k) / t for c, w, k, t in zip(create, wait, check, total)])))
    print("adaptor CPU over %d runs: %.2f s user+system in %.1f s wall = %.2f %% of one core"
          % (len(results), cpu, wall, 100 * cpu / wall))
    print("adaptor memory: VmRSS %d KiB before, %d KiB after; VmHWM %d KiB"
          % (u0["rss_kib"], u1["rss_kib"], u1["hwm_kib"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": results, "cpu_s": cpu, "wall_s": wall, "usage_before": u0, "usage_after": u1}, f,
                      indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
