#!/usr/bin/env python3
"""Provider failures never leak an instance: create failure, failure after
creating (partial instance), an instance without IP, delete failure (the pod
is kept so StopVM can retry, also from a restarted daemon)."""
import os

from caa_harness import Daemon, check, pod_annotations, run_main, tmpdir, sandbox_id


def main():
    root = tmpdir()

    # 1. Create fails: nothing created, StartVM answers UNKNOWN with the provider's message.
    d = Daemon(root=root, args=["-test-fail-create"]).start()
    sid = sandbox_id(10)
    d.ctl_ok("create", sid, *pod_annotations())
    rc, _, err = d.ctl("start", sid)
    check(rc == 1 and "UNKNOWN" in err and "create failed (as configured)" in err, "fail-create: %s" % err)
    check(d.instances() == [], "instances after a failed create: %s" % d.instances())
    check(d.pod_state(sid)["state"] == "failed", "state after a failed create")
    d.ctl_ok("stop", sid)
    check(not os.path.exists(os.path.join(d.pods, sid)), "pod dir left after StopVM")
    check(d.stop() == 0, "exit status")

    # 2. The create makes an instance and then fails: the daemon deletes it.
    d = Daemon(root=root, args=["-test-fail-after-create"]).start()
    sid = sandbox_id(11)
    d.ctl_ok("create", sid, *pod_annotations())
    rc, _, err = d.ctl("start", sid)
    check(rc == 1 and "failed after creating" in err, "fail-after-create: %s" % err)
    check(d.instances() == [], "partial instance leaked: %s" % d.instances())
    st = d.pod_state(sid)
    check(st["state"] == "failed" and st["instance_id"] is None, "state after cleanup: %s" % st)
    d.wait_log(r"sandbox=%s .*deleted instance test-" % sid)
    d.ctl_ok("stop", sid)
    check(d.stop() == 0, "exit status")

    # 3. An instance without an IP address is useless: deleted, StartVM fails.
    d = Daemon(root=root, args=["-test-ip="]).start()
    sid = sandbox_id(12)
    d.ctl_ok("create", sid, *pod_annotations())
    rc, _, err = d.ctl("start", sid)
    check(rc == 1 and "has no IP address" in err, "no-IP start: %s" % err)
    check(d.instances() == [], "instance without IP leaked: %s" % d.instances())
    d.ctl_ok("stop", sid)
    check(d.stop() == 0, "exit status")

    # 4. Delete fails: StopVM reports it and keeps the pod with its instance id.
    d = Daemon(root=root, args=["-test-fail-delete"]).start()
    sid = sandbox_id(13)
    d.ctl_ok("create", sid, *pod_annotations())
    d.ctl_ok("start", sid)
    check(len(d.instances()) == 1, "one instance")
    rc, _, err = d.ctl("stop", sid)
    check(rc == 1 and "stopping VM" in err and "delete of test-" in err, "fail-delete StopVM: %s" % err)
    st = d.pod_state(sid)
    check(st["state"] == "failed" and st["instance_id"], "state after failed delete: %s" % st)
    check(d.stop() == 0, "exit status")

    # A daemon without the fault, on the same directories, retries and succeeds.
    d = Daemon(root=root).start()
    d.wait_log(r"sandbox=%s recovered pod default/nginx: state failed" % sid)
    d.ctl_ok("stop", sid)
    check(d.instances() == [], "instance left after the retried StopVM: %s" % d.instances())
    check(not os.path.exists(os.path.join(d.pods, sid)), "pod dir left")
    check(d.stop() == 0, "exit status")


run_main(main)
