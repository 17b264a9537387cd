#!/usr/bin/env python3
"""StopVM while StartVM waits on ARM (the real daemon, the azure provider,
the fake ARM endpoint): the create is cancelled at once, StartVM answers
CANCELLED exactly once, StopVM answers within a small bound, no VM is left.

- provisioning wait: the VM's long-running operation never ends; StopVM
  cancels the polls and deletes the VM.
- answer on its way: the PUT made the VM but its answer is held back; StopVM
  abandons the call and deletes the VM by its ARM id (known from the name)."""
import os
import time

from caa_harness import FakeForwarder, check, run_main, sandbox_id, stop_during_start
from test_daemon_azure import REAL_DAEMON, SECRET, AzureDaemon, Fake, wait_vms

# StopVM must not wait for the provider; generous for a loaded machine, far
# below the waits it cuts short (the create timeout, minutes).
STOP_BOUND_S = 8.0


def cancel_case(fake, fwd, n, what, fake_cfg):
    fake.config(**fake_cfg)
    d = AzureDaemon(fake, fwd, env={"AZURE_CLIENT_SECRET": SECRET}, log_level="debug").start()
    sid = sandbox_id(n)
    took, rc, err = stop_during_start(d, sid, r"sandbox=%s creating instance" % sid, "c%d" % n)
    print("# StopVM during %s answered in %.2fs (load %.1f)" % (what, took, os.getloadavg()[0]), flush=True)
    check(rc == 1 and "CANCELLED" in err, "StartVM rc %d: %s" % (rc, err))
    check(took < STOP_BOUND_S, "StopVM waited %.1fs for %s" % (took, what))
    check(len(fake.state()["puts"]) == 1, "one PUT was sent")
    check(wait_vms(fake, 0), "VM left: %s" % list(fake.state()["vms"]))
    check(d.count_log(r"sandbox=%s cancelling the create" % sid) == 1, "the cancel is logged once")
    check(d.count_log(r"sandbox=%s deleted instance /subscriptions/" % sid) == 1, "the VM was deleted by id")
    check(not os.path.exists(os.path.join(d.pods, sid)), "pod dir left")
    check(d.stop() == 0, "daemon exit")
    fake.call("/_fake/reset", {})


def main():
    fake = Fake()
    fwd = FakeForwarder()
    try:
        cancel_case(fake, fwd, 151, "the provisioning wait", {"private_ip_fixed": "127.0.0.1", "lro_result": "never"})
        t0 = time.monotonic()
        cancel_case(fake, fwd, 152, "the PUT", {"private_ip_fixed": "127.0.0.1", "answer_delay_ms": {"PUT": 120000}})
        check(time.monotonic() - t0 < 60, "the held-back PUT answer was waited for")
    finally:
        fwd.close()
        fake.close()


if __name__ == "__main__":
    run_main(main)
