#!/usr/bin/env python3
"""Orphan sweep through the real daemon and the test provider: an instance
no pod knows (its pod dir was wiped) is deleted at start and by the periodic
run, a pod's instance never; within the grace period and in a dry run nothing
is deleted."""
import json
import os

from caa_harness import Daemon, check, pod_annotations, run_main, sandbox_id, tmpdir


def plant(d, n, name):
    """An instance as if an earlier daemon created it and its pod state was lost."""
    os.makedirs(d.state, exist_ok=True)
    iid = "test-%016x" % (0xC0 + n)
    with open(os.path.join(d.state, iid + ".json"), "w") as f:
        json.dump({"id": iid, "name": name, "ips": ["127.0.0.1"]}, f)
    return iid + ".json"


def main():
    root = tmpdir()
    # Dry run: found and logged, kept.
    d = Daemon(root=root, args=["-orphan-sweep-interval", "1h", "-orphan-sweep-grace", "0",
                                "-orphan-sweep-dry-run"])
    orphan = plant(d, 1, "podvm-wiped-5a5a0001")
    d.start()
    d.wait_log(r"orphan sweep: instance %s \(podvm-wiped-5a5a0001\) belongs to no pod; dry run" % orphan[:-5])
    d.wait_log(r"orphan sweep: 1 unknown instance\(s\); 0 deleted, 0 failed so far \(dry run\)")
    check(d.instances() == [orphan], "dry run kept it: %r" % d.instances())
    check(d.stop() == 0, "exit status")

    # Default grace (10 min): seen, not deleted.
    d = Daemon(root=root)
    d.start()
    d.wait_log(r"orphan sweep: instance %s .*deleted if still so in 600 s" % orphan[:-5])
    check(d.instances() == [orphan], "grace kept it")
    check(d.stop() == 0, "exit status")

    # Grace 0, every second: the orphan goes at start, a pod's instance stays,
    # and an orphan appearing later goes with the periodic run.
    d = Daemon(root=root, args=["-orphan-sweep-interval", "1s", "-orphan-sweep-grace", "0"])
    d.start()
    d.wait_log(r"orphan sweep: deleted instance %s" % orphan[:-5])
    sid = sandbox_id(70)
    d.ctl_ok("create", sid, *pod_annotations("keep"))
    d.ctl_ok("start", sid)
    mine = d.instances()
    check(len(mine) == 1 and mine[0] != orphan, "the pod's instance: %r" % mine)
    late = plant(d, 2, "podvm-wiped-5a5a0002")
    d.wait_log(r"orphan sweep: deleted instance %s" % late[:-5], timeout=15)
    d.wait_log(r"orphan sweep: 0 unknown instance\(s\)", timeout=15,
               start=len(d.log().splitlines()))
    check(d.instances() == mine, "only the pod's instance is left: %r" % d.instances())
    check(d.count_log(r"orphan sweep: deleted instance %s" % mine[0][:-5]) == 0, "the pod's instance untouched")
    d.ctl_ok("stop", sid)
    check(d.instances() == [], "nothing left: %r" % d.instances())
    check(d.stop() == 0, "exit status")
    print("ok: orphans deleted at start and periodically; dry run and grace keep them; pods' VMs untouched")


if __name__ == "__main__":
    run_main(main)
