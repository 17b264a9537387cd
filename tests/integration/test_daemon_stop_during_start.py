#!/usr/bin/env python3
"""StopVM while StartVM is in flight: the start answers CANCELLED, the
instance the in-flight create returns is deleted, StopVM answers after that.
Also: a StartVM caller that goes away gets its instance deleted."""
import os
import subprocess
import time

from agent_helpers import free_port
from caa_harness import CTL, Daemon, check, pod_annotations, run_main, sandbox_id, tmpdir


def main():
    d = Daemon(args=["-test-create-delay", "1500ms"]).start()

    sid = sandbox_id(20)
    d.ctl_ok("create", sid, *pod_annotations())
    start = subprocess.Popen([CTL, "-socket", d.sock, "start", sid], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    d.wait_log(r"sandbox=%s creating instance" % sid)
    t0 = time.monotonic()
    out = d.ctl_ok("stop", sid)
    took = time.monotonic() - t0
    check(out.strip() == "stopped " + sid, "stop output")
    sout, serr = start.communicate(timeout=30)
    check(start.returncode == 1 and b"CANCELLED" in serr, "StartVM during StopVM: rc %d %s" % (start.returncode, serr))
    # StopVM answered only after the create returned and its instance was deleted.
    check(took > 0.8, "StopVM answered before the in-flight create finished (%.2fs)" % took)
    check(d.instances() == [], "instance leaked: %s" % d.instances())
    check(not os.path.exists(os.path.join(d.pods, sid)), "pod dir left")
    d.wait_log(r"sandbox=%s deleted instance" % sid)

    # The caller gives up (client deadline, connection closed) during the create.
    sid = sandbox_id(21)
    d.ctl_ok("create", sid, *pod_annotations("p2"))
    rc, _, err = d.ctl("-timeout", "300ms", "start", sid)
    check(rc == 1 and "DEADLINE_EXCEEDED" in err, "client deadline: %s" % err)
    d.wait_log(r"sandbox=%s .*caller went away" % sid)
    d.wait_log(r"sandbox=%s deleted instance" % sid, timeout=15)
    d.wait_log(r"sandbox=%s StartVM failed" % sid)
    check(d.instances() == [], "instance of an abandoned StartVM leaked: %s" % d.instances())
    check(d.pod_state(sid)["state"] == "failed", "abandoned start leaves the pod failed")
    d.ctl_ok("stop", sid)

    # Two StopVM calls for the same pod both answer once the teardown is done.
    sid = sandbox_id(22)
    d.ctl_ok("create", sid, *pod_annotations("p3"))
    start = subprocess.Popen([CTL, "-socket", d.sock, "start", sid], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    d.wait_log(r"sandbox=%s creating instance" % sid)
    stops = [subprocess.Popen([CTL, "-socket", d.sock, "stop", sid], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for _ in range(2)]
    for s in stops:
        s.communicate(timeout=30)
        check(s.returncode == 0, "concurrent StopVM failed")
    start.wait(30)
    check(d.instances() == [], "instance leaked: %s" % d.instances())

    check(d.stop() == 0, "exit status")

    connecting_scenarios()


def connecting_scenarios():
    """The agent proxy is still dialling a forwarder that never answers (60 s
    proxy timeout): StopVM, a departing caller and SIGTERM cut it short."""
    root = tmpdir()
    args = ["-test-ip", "127.0.0.1", "-forwarder-port", str(free_port()), "-disable-tls", "-proxy-timeout", "60s"]
    d = Daemon(root=root, forwarder=False, args=args).start()

    sid = sandbox_id(23)
    d.ctl_ok("create", sid, *pod_annotations("c1"))
    start = subprocess.Popen([CTL, "-socket", d.sock, "start", sid], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    d.wait_log(r"sandbox=%s agent proxy: connecting" % sid)
    t0 = time.monotonic()
    d.ctl_ok("stop", sid)
    took = time.monotonic() - t0
    _, serr = start.communicate(timeout=30)
    check(start.returncode == 1 and b"CANCELLED" in serr, "StartVM cut by StopVM: %s" % serr)
    check(took < 5, "StopVM waited %.1fs for the connecting proxy" % took)
    check(d.instances() == [] and not os.path.exists(os.path.join(d.pods, sid)), "leftovers after StopVM")

    sid = sandbox_id(24)
    d.ctl_ok("create", sid, *pod_annotations("c2"))
    t0 = time.monotonic()
    rc, _, err = d.ctl("-timeout", "1s", "start", sid)
    check(rc == 1 and "DEADLINE_EXCEEDED" in err, "client deadline while connecting: %s" % err)
    d.wait_log(r"sandbox=%s deleted instance" % sid, timeout=10)
    check(time.monotonic() - t0 < 8, "the abandoned start was not cut short")
    check(d.instances() == [] and d.pod_state(sid)["state"] == "failed", "abandoned connecting start")
    d.ctl_ok("stop", sid)

    # SIGTERM: the daemon leaves at once, the VM is kept for the next daemon.
    sid = sandbox_id(25)
    d.ctl_ok("create", sid, *pod_annotations("c3"))
    start = subprocess.Popen([CTL, "-socket", d.sock, "start", sid], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    d.wait_log(r"sandbox=%s agent proxy: connecting" % sid)
    t0 = time.monotonic()
    check(d.stop() == 0, "exit status after SIGTERM while connecting")
    check(time.monotonic() - t0 < 5, "shutdown waited for the connecting proxy")
    _, serr = start.communicate(timeout=30)
    check(start.returncode == 1 and b"UNAVAILABLE" in serr, "StartVM at shutdown: %s" % serr)
    st = d.pod_state(sid)
    check(st["instance_id"] and len(d.instances()) == 1, "the instance must be kept and recorded: %s" % st)
    d = Daemon(root=root, forwarder=False, args=args).start()
    d.ctl_ok("stop", sid)
    check(d.instances() == [], "the next daemon's StopVM must delete the instance")
    check(d.stop() == 0, "exit status")


run_main(main)
