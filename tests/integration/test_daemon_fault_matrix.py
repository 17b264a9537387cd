#!/usr/bin/env python3
"""Fault matrix: SIGKILL the daemon at every failpoint of the pod lifecycle
(after each persisted transition and around each provider call,
adaptor/failpoint.h), start a new daemon, drive what the shim does next
(CreateVM again when the pod dir has no state, StartVM when the pod is still
`created`, then StopVM), and count what is left: instances in the test
provider's cloud, pod dirs and sockets under the pods dir. Every cell must be
zero. Prints the matrix.

These cells make no pod network (no network namespace). The cells with one
(netns devices, tc filters, NOTRACK rules counted as well) are in
test_daemon_fault_matrix_libvirt.py, for the test provider and for libvirt;
the AWS and Azure tests run this Matrix against their fakes."""
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


def killed(d, fp):
    """Waits for the armed daemon to kill itself at fp."""
    d.wait_log(r"failpoint %s: killing the daemon" % fp, timeout=30)
    rc = d.proc.wait(20)
    d.kill()
    check(rc == -signal.SIGKILL, "%s: exit %r, not SIGKILL" % (fp, rc))


def local_leftovers(d):
    """Pod dirs and sockets under the pods dir."""
    if not os.path.isdir(d.pods):
        return 0, 0
    pods = [e for e in os.listdir(d.pods) if e != ".tls"]
    socks = []
    for _, _, files in os.walk(d.pods):
        socks += [f for f in files if f.endswith(".ttrpc") or f.endswith(".sock")]
    return len(pods), len(socks)


def stop_vm(d, sid):
    rc, _, err = d.ctl("stop", sid, timeout=90)
    # A StopVM resumed at start may have finished first: the pod is then unknown.
    if rc != 0 and "does not exist" not in err:
        fail("StopVM %s: %s\n%s" % (sid, err, d.log()))


def as_counts(value, name):
    """A counter's answer: a bare number is one column called name."""
    return value if isinstance(value, dict) else {name: value}


class Matrix:
    """One cell per failpoint. new_daemon(root, failpoint or None) returns a
    Daemon (not started) on root; instances(d) counts what is left in the cloud
    (a number, or a dict of column -> count); host(d), if given, counts what is
    left on the worker the same way; create_args go to every CreateVM. With
    proof, each StopVM cell first checks that the counters see its ready pod
    (so a zero afterwards means removed, not unseen)."""

    def __init__(self, new_daemon, instances, first_id, host=None, create_args=(), proof=False):
        self.new_daemon = new_daemon
        self.instances = instances
        self.host = host
        self.create_args = list(create_args)
        self.proof = proof
        self.next_id = first_id
        self.rows = []
        self.fault_rows = []

    def _sid(self):
        self.next_id += 1
        return sandbox_id(self.next_id)

    def _counts(self, d):
        cloud = as_counts(self.instances(d), "instances")
        return cloud, self.host(d) if self.host else {}

    def _finish(self, phase, fp, calls, d, known_gap=None):
        cloud, host = self._counts(d)
        left = dict(cloud, **host)
        left["pod dirs"], left["sockets"] = local_leftovers(d)
        check(d.stop() == 0, "exit status")
        self.rows.append((phase, fp, calls, left, known_gap))
        return left

    def _create(self, d, sid, ok=False):
        # A pod name per cell: instance names differ even though sandbox ids share their first 8 digits.
        args = ("create", sid, *pod_annotations("fm%d" % self.next_id), *self.create_args)
        return d.ctl_ok(*args) if ok else d.ctl(*args)

    def start_cell(self, fp, via=None, known_gap=None):
        """Killed during CreateVM/StartVM; the next daemon gets what the shim
        sends next. via(d, fp), if given, arms another killer than the
        failpoint (after the daemon started) and returns a wait for its kill.
        A known_gap cell (its reason) is printed, not counted as bad; the
        caller checks it. Returns the counts."""
        root = tmpdir()
        sid = self._sid()
        d = self.new_daemon(root, None if via else fp).start()
        wait_killed = via(d, fp) if via else (lambda: killed(d, fp))
        rc, _, _ = self._create(d, sid)
        if rc == 0:
            d.ctl("start", sid, timeout=90)
        wait_killed()
        d = self.new_daemon(root, None).start()
        calls = []
        if not os.path.exists(os.path.join(d.pods, sid, "state.json")):
            self._create(d, sid, ok=True)
            calls.append("CreateVM")
        if d.pod_state(sid)["state"] == "created":
            d.ctl_ok("start", sid, timeout=90)
            calls.append("StartVM")
        stop_vm(d, sid)
        calls.append("StopVM")
        return self._finish("StartVM", fp, calls, d, known_gap)

    def stop_cell(self, fp, via=None):
        """A ready pod; killed during its StopVM; the shim retries StopVM."""
        root = tmpdir()
        sid = self._sid()
        d = self.new_daemon(root, None).start()
        self._create(d, sid, ok=True)
        d.ctl_ok("start", sid, timeout=90)
        check(d.stop() == 0, "exit status")
        if self.proof:
            cloud, host = self._counts(d)
            check(any(cloud.values()) and (not self.host or any(host.values())),
                  "%s: the counters do not see the ready pod: %r %r" % (fp, cloud, host))
        d = self.new_daemon(root, None if via else fp).start()
        wait_killed = via(d, fp) if via else (lambda: killed(d, fp))
        d.ctl("stop", sid, timeout=90)
        wait_killed()
        d = self.new_daemon(root, None).start()
        stop_vm(d, sid)
        self._finish("StopVM", fp, ["StopVM"], d)

    def fault_cell(self, call, fault, inject, undo=None, before_stop=None, known_gap=None):
        """A cloud fault at one provider call: inject(sid) arms it after
        CreateVM (before_stop(sid) after StartVM); StartVM may fail; StopVM
        (retried once, as the shim does) must succeed; undo() disarms it
        before counting what is left. A known_gap cell (its reason) is printed
        but not counted as bad; the caller checks it; returns the counts."""
        d = self.new_daemon(tmpdir(), None).start()
        sid = self._sid()
        self._create(d, sid, ok=True)
        try:
            if inject:
                inject(sid)
            rc_start, _, _ = d.ctl("start", sid, timeout=120)
            if before_stop:
                before_stop(sid)
            rc, _, err = d.ctl("stop", sid, timeout=120)
            if rc != 0:
                rc, _, err = d.ctl("stop", sid, timeout=120)
        finally:
            if undo:
                undo()
        cloud, host = self._counts(d)
        left = dict(cloud, **host)
        left["pod dirs"], left["sockets"] = local_leftovers(d)
        check(d.stop() == 0, "exit status")
        self.fault_rows.append((call, fault, "ok" if rc_start == 0 else "failed", "ok" if rc == 0 else err.strip(),
                                left, known_gap))
        return left

    def report_faults(self, title):
        """Prints the cloud-fault cells; returns those with a failed StopVM or leftovers."""
        print("# %s: cloud faults" % title)
        cols = list(self.fault_rows[0][4]) if self.fault_rows else []
        print("# %-22s %-28s %-7s %-7s " % ("call", "fault", "StartVM", "StopVM") +
              " ".join("%*s" % (max(len(c), 3), c) for c in cols))
        for call, fault, start, stop, left, gap in self.fault_rows:
            print("# %-22s %-28s %-7s %-7s " % (call, fault, start, stop if stop == "ok" else "failed") +
                  " ".join("%*d" % (max(len(c), 3), left[c]) for c in cols) + ("  known gap: " + gap if gap else ""))
        return [r for r in self.fault_rows if not r[5] and (r[3] != "ok" or any(r[4].values()))]

    def report(self, title):
        """Prints the matrix; returns the cells with leftovers."""
        print("# %s" % title)
        cols = list(self.rows[0][3]) if self.rows else []
        print("# %-8s %-32s %-26s " % ("phase", "SIGKILL at", "next daemon") +
              " ".join("%*s" % (max(len(c), 3), c) for c in cols))
        for phase, fp, calls, left, gap in self.rows:
            print("# %-8s %-32s %-26s " % (phase, fp, ",".join(calls)) +
                  " ".join("%*d" % (max(len(c), 3), left[c]) for c in cols) + ("  known gap: " + gap if gap else ""))
        return [r for r in self.rows if not r[4] and any(r[3].values())]


def main():
    if os.environ.get("CAA_FAILPOINTS") != "true":
        print("SKIP: failpoints are not compiled in (-Dfailpoints=false or a release build)")
        sys.exit(77)
    m = Matrix(lambda root, fp: Daemon(root=root, env={"CAA_FAILPOINT": fp} if fp else None),
               lambda d: len(d.instances()), 200)
    for fp in START_POINTS:
        m.start_cell(fp)
    for fp in STOP_POINTS:
        m.stop_cell(fp)
    bad = m.report("test provider")
    check(not bad, "leftovers in %d cell(s): %r" % (len(bad), bad))
    print("ok: %d cells, zero leftovers" % len(m.rows))


if __name__ == "__main__":
    run_main(main)
