#!/usr/bin/env python3
"""podvminfo.PodVMInfo/GetInfo: NOT_FOUND without Wait; the instance id after
StartVM; Wait answered when StartVM records the instance; deadline; a
waiting caller that disconnects is dropped."""
import subprocess
import time

from caa_harness import (CTL, Daemon, TtrpcClient, check, get_info_payload, pod_annotations, run_main,
                         sandbox_id)


def main():
    d = Daemon(args=["-test-create-delay", "300ms"], log_level="debug").start()

    rc, _, err = d.ctl("info", "nginx", "default")
    check(rc == 1 and "NOT_FOUND" in err, "GetInfo of an unknown pod: %s" % err)
    rc, _, err = d.ctl("info", "", "default")
    check(rc == 1 and "INVALID_ARGUMENT" in err, "GetInfo without a name: %s" % err)

    # Waiters started before the pod exists.
    waiters = [subprocess.Popen([CTL, "-socket", d.sock, "info", "nginx", "default", "-wait"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    deadline = time.monotonic() + 10
    while d.count_log(r"GetInfo for default/nginx: waiting") < 3:
        check(time.monotonic() < deadline, "waiters did not register:\n" + d.log())
        d.wait_log(r"GetInfo for default/nginx: waiting", timeout=10)
        time.sleep(0.02)

    # A waiter for another pod must not be woken.
    other = subprocess.Popen([CTL, "-socket", d.sock, "info", "nginx", "other-ns", "-wait", "-timeout", "3s"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    sid = sandbox_id(50)
    d.ctl_ok("create", sid, *pod_annotations("nginx", "default"))
    d.ctl_ok("start", sid)
    vmid = d.pod_state(sid)["instance_id"]
    for w in waiters:
        out, err = w.communicate(timeout=10)
        check(w.returncode == 0 and out.decode().strip() == vmid, "waiter got %r %r" % (out, err))

    # Without Wait, now that the instance is known.
    check(d.ctl_ok("info", "nginx", "default").strip() == vmid, "GetInfo after StartVM")

    out, err = other.communicate(timeout=10)
    check(other.returncode == 1 and b"DEADLINE_EXCEEDED" in err, "other-ns waiter: %r" % err)

    # Deadline enforced by the daemon (timeout_nano in the request).
    c = TtrpcClient(d.sock)
    t0 = time.monotonic()
    code, msg, _ = c.call("podvminfo.PodVMInfo", "GetInfo", get_info_payload("ghost", "default", wait=True),
                          timeout_ns=300 * 1000 * 1000)
    took = time.monotonic() - t0
    check(code == 4 and "timed out" in msg, "server deadline: %d %s" % (code, msg))
    check(0.25 < took < 3, "deadline answered after %.2fs" % took)

    # A waiter whose caller disconnects is dropped.
    c.send_request("podvminfo.PodVMInfo", "GetInfo", get_info_payload("ghost2", "default", wait=True))
    d.wait_log(r"GetInfo for default/ghost2: waiting")
    c.close()
    d.wait_log(r"GetInfo for default/ghost2: caller went away")

    # Still serving; a waiter pending at shutdown gets an answer and the daemon exits 0.
    c = TtrpcClient(d.sock)
    c.send_request("podvminfo.PodVMInfo", "GetInfo", get_info_payload("ghost3", "default", wait=True))
    d.wait_log(r"GetInfo for default/ghost3: waiting")
    d.ctl_ok("stop", sid)
    check(d.stop() == 0, "exit status with a waiter pending")
    c.close()


run_main(main)
