#!/usr/bin/env python3
"""A ready pod's VM disappears from the cloud while the daemon is down: the
next daemon reports it, marks the pod failed (the other pod, whose VM exists,
stays ready), and StopVM cleans up what is left."""
import os
import signal

from caa_harness import Daemon, check, pod_annotations, run_main, sandbox_id, tmpdir


def main():
    root = tmpdir()
    d = Daemon(root=root).start()
    gone, kept = sandbox_id(80), sandbox_id(81)
    for sid, name in ((gone, "gone"), (kept, "kept")):
        d.ctl_ok("create", sid, *pod_annotations(name))
        d.ctl_ok("start", sid)
    gone_id = d.pod_state(gone)["instance_id"]
    d.stop(signal.SIGKILL)
    for suffix in (".json", ".user-data"):
        path = os.path.join(d.state, gone_id + suffix)
        if os.path.exists(path):
            os.unlink(path)

    d = Daemon(root=root).start()
    d.wait_log(r"sandbox=%s the pod VM %s is gone from the cloud" % (gone, gone_id))
    d.wait_log(r"sandbox=%s state ready -> failed" % gone)
    st = d.pod_state(gone)
    check(st["state"] == "failed" and st["instance_id"] is None, "gone pod failed, no instance: %r" % st)
    check(d.pod_state(kept)["state"] == "ready", "the pod whose VM exists stays ready")
    check(d.count_log(r"is gone from the cloud") == 1, "only the gone VM reported")
    for sid in (gone, kept):
        d.ctl_ok("stop", sid)
        check(not os.path.exists(os.path.join(d.pods, sid)), "pod dir removed")
    check(d.instances() == [], "no instance left: %r" % d.instances())
    check(d.stop() == 0, "exit status")
    print("ok: a VM gone while the daemon was down is reported and its pod failed; StopVM cleans up")


if __name__ == "__main__":
    run_main(main)
