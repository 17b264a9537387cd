#!/usr/bin/env python3
"""Fault matrix: SIGKILL the daemon at every failpoint of the pod lifecycle
(after each persisted transition and around each provider call,
adaptor/failpoint.h), start a new daemon, drive what the shim does next
(CreateVM again when the pod dir has no state, StartVM when the pod is still
`created`, then StopVM), and count what is left: instances in the test
provider's cloud, pod dirs and sockets under the pods dir. Every cell must be
zero. Prints the matrix.

The test daemon makes no pod network (no network namespace), so netns devices
and NOTRACK rules are not part of this matrix (test_daemon_podnetwork.py covers
the network teardown of recovered pods)."""
import os
import signal
import sys

from caa_harness import Daemon, check, fail, pod_annotations, run_main, sandbox_id, tmpdir

START_POINTS = [
    "create:start-request-saved",
    "state:provisioning",
    "provider:before-create",
    "provider:create-answered",
    "instance:recorded",
    "state:booting",
    "hook:network-ready",
    "state:connecting",
    "state:ready",
]
STOP_POINTS = [
    "state:stopping",
    "provider:before-delete",
    "instance:cleared",
    "state:gone",
]


def armed(root, fp):
    return Daemon(root=root, env={"CAA_FAILPOINT": fp})


def killed(d, fp):
    """Waits for the armed daemon to kill itself at fp."""
    d.wait_log(r"failpoint %s: killing the daemon" % fp, timeout=20)
    rc = d.proc.wait(20)
    d.kill()
    check(rc == -signal.SIGKILL, "%s: exit %r, not SIGKILL" % (fp, rc))


def leftovers(d):
    pods = [e for e in os.listdir(d.pods) if e != ".tls"] if os.path.isdir(d.pods) else []
    socks = []
    for dirpath, _, files in os.walk(d.pods) if os.path.isdir(d.pods) else []:
        socks += [f for f in files if f.endswith(".ttrpc") or f.endswith(".sock")]
    return len(d.instances()), len(pods), len(socks)


def stop_vm(d, sid):
    rc, _, err = d.ctl("stop", sid)
    # A StopVM resumed at start may have finished first: the pod is then unknown.
    if rc != 0 and "does not exist" not in err:
        fail("StopVM %s: %s\n%s" % (sid, err, d.log()))


def start_cell(fp, n):
    root = tmpdir()
    sid = sandbox_id(200 + n)
    d = armed(root, fp).start()
    rc, _, _ = d.ctl("create", sid, *pod_annotations("fm"))
    if rc == 0:
        d.ctl("start", sid)
    killed(d, fp)

    d = Daemon(root=root).start()
    calls = []
    if not os.path.exists(os.path.join(d.pods, sid, "state.json")):
        d.ctl_ok("create", sid, *pod_annotations("fm"))
        calls.append("CreateVM")
    if d.pod_state(sid)["state"] == "created":
        d.ctl_ok("start", sid)
        calls.append("StartVM")
    stop_vm(d, sid)
    calls.append("StopVM")
    left = leftovers(d)
    check(d.stop() == 0, "exit status")
    return calls, left


def stop_cell(fp, n):
    root = tmpdir()
    sid = sandbox_id(300 + n)
    d = Daemon(root=root).start()
    d.ctl_ok("create", sid, *pod_annotations("fm"))
    d.ctl_ok("start", sid)
    check(d.stop() == 0, "exit status")
    d = armed(root, fp).start()
    d.ctl("stop", sid)
    killed(d, fp)

    d = Daemon(root=root).start()
    stop_vm(d, sid)
    left = leftovers(d)
    check(d.stop() == 0, "exit status")
    return ["StopVM"], left


def main():
    if os.environ.get("CAA_FAILPOINTS") != "true":
        print("SKIP: failpoints are not compiled in (-Dfailpoints=false or a release build)")
        sys.exit(77)
    rows = []
    for n, fp in enumerate(START_POINTS):
        calls, left = start_cell(fp, n)
        rows.append(("StartVM", fp, calls, left))
    for n, fp in enumerate(STOP_POINTS):
        calls, left = stop_cell(fp, n)
        rows.append(("StopVM", fp, calls, left))

    print("%-8s %-28s %-26s %9s %8s %7s" % ("phase", "SIGKILL at", "next daemon", "instances", "pod dirs",
                                           "sockets"))
    for phase, fp, calls, left in rows:
        print("%-8s %-28s %-26s %9d %8d %7d" % (phase, fp, ",".join(calls), *left))
    bad = [r for r in rows if any(r[3])]
    check(not bad, "leftovers in %d cell(s): %r" % (len(bad), bad))
    print("ok: %d cells, zero leftovers" % len(rows))


if __name__ == "__main__":
    run_main(main)
