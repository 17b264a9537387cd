"""Helpers shared by the agent-path integration tests: child processes whose
output is collected (forwarder, caa-test-agent), free loopback ports, and the
Health checks the test agent recorded."""
import json
import os
import subprocess
import threading
import time

from caa_harness import fail, free_port  # noqa: F401 (re-exported for the agent tests)

TEST_AGENT = os.environ.get("CAA_TEST_AGENT", "")

_procs = []
_children = []


def _kill_all():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            p.wait()


class Child:
    """A helper process whose output lines are collected."""

    def __init__(self, argv):
        self.lines = []
        self.cond = threading.Condition()
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        _procs.append(self.p)
        _children.append(self)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.p.stdout:
            with self.cond:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_line(self, needle, timeout=20):
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                if any(needle in l for l in self.lines):
                    return
                if self.p.poll() is not None:
                    fail("%s exited before printing %r:\n%s" % (self.p.args[0], needle, "\n".join(self.lines)))
                left = end - time.monotonic()
                if left <= 0:
                    fail("%s: no %r within %ss:\n%s" % (self.p.args[0], needle, timeout, "\n".join(self.lines)))
                self.cond.wait(min(left, 0.5))

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def start_agent(sock, record=None):
    argv = [TEST_AGENT, "-socket", sock] + (["-record", record] if record else [])
    a = Child(argv)
    a.wait_line("listening on")
    return a


def health_checks(record):
    """grpc.Health/Check requests the agent received (its -record file)."""
    if not os.path.exists(record):
        return 0
    with open(record) as f:
        calls = [json.loads(l) for l in f if l.strip()]
    return sum(1 for c in calls if (c["service"], c["method"]) == ("grpc.Health", "Check"))
