#!/usr/bin/env python3
"""SIGTERM does not wait for provider operations in flight: a create that
would take 60 s is cancelled, the daemon exits 0 at once, removes its socket
and keeps the pod's state file (`provisioning` with its idempotency key), so
a restarted daemon's StopVM finds any VM by name and succeeds. Run with the
test provider both calling back with -ECANCELED and dropping the callbacks."""
import os
import signal
import subprocess
import time

from caa_harness import CTL, Daemon, check, pod_annotations, run_main, sandbox_id, tmpdir


def scenario(n, extra):
    root = tmpdir()
    d = Daemon(root=root, args=["-test-create-delay", "60s"] + extra).start()
    sid = sandbox_id(n)
    d.ctl_ok("create", sid, *pod_annotations("shut%d" % n))
    start = subprocess.Popen([CTL, "-socket", d.sock, "start", sid], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    d.wait_log(r"sandbox=%s creating instance" % sid)
    t0 = time.monotonic()
    rc = d.stop(signal.SIGTERM, timeout=10)
    took = time.monotonic() - t0
    check(rc == 0, "exit status after SIGTERM with a create in flight: %d\n%s" % (rc, d.log()))
    check(took < 3, "shutdown took %.1fs with a 60 s create in flight" % took)
    check(not os.path.exists(d.sock), "socket left after shutdown")
    _, serr = start.communicate(timeout=10)
    check(start.returncode == 1 and b"UNAVAILABLE" in serr, "StartVM at shutdown: %s" % serr)
    st = d.pod_state(sid)
    check(st["state"] == "provisioning" and st["idempotency_key"] and not st.get("instance_id"),
          "state file must stay provisioning with its key: %s" % st)
    check(d.instances() == [], "the cancelled create made an instance: %s" % d.instances())

    # The next daemon looks the VM up by name and stops the pod.
    d = Daemon(root=root).start()
    d.ctl_ok("stop", sid)
    check(d.instances() == [], "instance left after StopVM: %s" % d.instances())
    check(not os.path.exists(os.path.join(d.pods, sid)), "pod dir left after StopVM")
    check(d.stop() == 0, "exit status of the second daemon")


def main():
    scenario(40, [])
    scenario(41, ["-test-drop-on-teardown"])


run_main(main)
