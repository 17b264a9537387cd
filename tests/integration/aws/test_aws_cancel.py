#!/usr/bin/env python3
"""StopVM while StartVM waits on EC2 (the real daemon, the aws provider, the
fake EC2 endpoint): the create is cancelled at once instead of running to
its end, StartVM answers CANCELLED exactly once, StopVM answers within a
small bound and no instance is left running.

- boot wait: -use-public-ip, the instance stays `pending` for minutes; the
  daemon polls DescribeInstances; StopVM cancels the wait and terminates the
  instance whose id RunInstances returned.
- answer on its way: RunInstances made the instance but its answer is held
  back; StopVM abandons the call, so no id is known: the teardown finds the
  instance by its name and terminates it."""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import test_aws_daemon  # noqa: E402
from aws_harness import Tap, base_args, check, fake_or_skip  # noqa: E402
from caa_harness import sandbox_id, stop_during_start  # noqa: E402

# StopVM must not wait for the provider; generous for a loaded machine, far
# below the waits it cuts short (minutes).
STOP_BOUND_S = 8.0
fake = None


def cancel_case(n, what, fake_cfg, aws_args=None, deleted=r"deleted instance i-[0-9a-f]+"):
    """One StopVM during a start held up at `what` by the fake (fake_cfg)."""
    fake.config(**fake_cfg)
    d = test_aws_daemon.AwsDaemon(aws_args=aws_args)
    d.start()
    sid = sandbox_id(n)
    took, rc, err = stop_during_start(d, sid, r"sandbox=%s creating instance" % sid, "c%d" % n)
    print("# StopVM during %s answered in %.2fs (load %.1f)" % (what, took, os.getloadavg()[0]), flush=True)
    check(rc == 1 and "CANCELLED" in err, "StartVM rc %d: %s" % (rc, err))
    check(took < STOP_BOUND_S, "StopVM waited %.1fs for %s" % (took, what))
    check(len(fake.instances()) == 1, "exactly one instance was made: %s" % fake.instances())
    check(fake.alive() == [], "instance left running: %s" % fake.alive())
    d.wait_log(r"sandbox=%s %s" % (sid, deleted))
    check(d.count_log(r"sandbox=%s cancelling the create" % sid) == 1, "the cancel is logged once")
    check(not os.path.exists(os.path.join(d.pods, sid)), "pod dir left")
    check(d.stop() == 0, "daemon exit")


def main():
    global fake
    fake = fake_or_skip(test_aws_daemon.REAL_DAEMON, "CAA_DAEMON")
    if not fake:
        return 77
    test_aws_daemon.fake = fake  # AwsDaemon's environment points at it
    tap = Tap()
    fake.reset(private_ip_override="127.0.0.1")
    tap.run("StopVM during the boot wait cancels it and terminates the instance", cancel_case, 141,
            "the boot wait", {"pending_ms": 600000}, base_args(**{"-use-public-ip": True, "-aws-running-wait": "10m"}))
    fake.reset(private_ip_override="127.0.0.1")
    tap.run("StopVM during RunInstances finds the instance by name and terminates it", cancel_case, 142,
            "RunInstances", {"answer_delay_ms": {"RunInstances": 120000}}, None,
            r"deleted instance i-[0-9a-f]+ \(found by name\)")
    fake.stop()
    return tap.finish()


if __name__ == "__main__":
    sys.exit(main())
