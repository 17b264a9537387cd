#!/usr/bin/env python3
"""StartVM honours the request's ttRPC deadline (timeout_nano) even when the
caller keeps its connection open: the start is cancelled at the deadline,
the reply is DEADLINE_EXCEEDED, and everything created so far is deleted.

The request is what the Kata shim sends (remote.go StartVM: a context with
timeout max(hypervisor timeout, 60 s) becomes timeout_nano on the one
request; the shim's connection stays open until it returns). The deadline
here is shortened so the test runs quickly; no shim runs on this machine.
"""
import time

from caa_harness import (Daemon, TtrpcClient, check, free_port, pb_bytes, pod_annotations, run_main, sandbox_id,
                         tmpdir)

DEADLINE_EXCEEDED = 4


def start_with_deadline(d, sid, deadline_s):
    """StartVM with timeout_nano on a connection that stays open; (code, msg, seconds)."""
    c = TtrpcClient(d.sock, timeout=30)
    try:
        t0 = time.monotonic()
        code, msg, _ = c.call("hypervisor.Hypervisor", "StartVM", pb_bytes(1, sid),
                              timeout_ns=int(deadline_s * 1e9))
        return code, msg, time.monotonic() - t0
    finally:
        c.close()


def main():
    # The provider create takes 1.5 s; the deadline is 0.3 s.
    d = Daemon(args=["-test-create-delay", "1500ms"]).start()
    sid = sandbox_id(40)
    d.ctl_ok("create", sid, *pod_annotations("deadline1"))
    code, msg, took = start_with_deadline(d, sid, 0.3)
    check(code == DEADLINE_EXCEEDED and "deadline" in msg, "StartVM past its deadline: code %d %r" % (code, msg))
    # The reply comes once the in-flight create returned and its instance was deleted.
    check(took < 10, "StartVM answered after %.1fs" % took)
    d.wait_log(r"sandbox=%s StartVM: the request's deadline passed" % sid)
    d.wait_log(r"sandbox=%s deleted instance" % sid, timeout=15)
    check(d.instances() == [], "instance of a start past its deadline leaked: %s" % d.instances())
    check(d.pod_state(sid)["state"] == "failed", "a start past its deadline leaves the pod failed")
    d.ctl_ok("stop", sid)

    # A deadline longer than the start changes nothing.
    sid = sandbox_id(41)
    d.ctl_ok("create", sid, *pod_annotations("deadline2"))
    code, msg, _ = start_with_deadline(d, sid, 20)
    check(code == 0, "StartVM within its deadline: code %d %r" % (code, msg))
    d.ctl_ok("stop", sid)
    check(d.stop() == 0, "exit status")

    # The agent proxy dials a forwarder that never answers (60 s proxy
    # timeout): the deadline stops the dialling at once.
    args = ["-test-ip", "127.0.0.1", "-forwarder-port", str(free_port()), "-disable-tls", "-proxy-timeout", "60s"]
    d = Daemon(root=tmpdir(), forwarder=False, args=args).start()
    sid = sandbox_id(42)
    d.ctl_ok("create", sid, *pod_annotations("deadline3"))
    code, msg, took = start_with_deadline(d, sid, 1.0)
    check(code == DEADLINE_EXCEEDED, "StartVM while connecting: code %d %r" % (code, msg))
    check(took < 10, "the connecting proxy was not stopped at the deadline (%.1fs)" % took)
    d.wait_log(r"sandbox=%s deleted instance" % sid, timeout=15)
    check(d.instances() == [], "instance leaked: %s" % d.instances())
    d.ctl_ok("stop", sid)
    check(d.stop() == 0, "exit status")


if __name__ == "__main__":
    run_main(main)
