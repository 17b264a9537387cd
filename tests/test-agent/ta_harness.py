"""Process handling, request builders and a TAP runner for the test-agent tests.

Every process started through Proc is killed by PID, every network namespace
made through add_netns deleted and every temporary directory removed, on
every exit path (normal, failure, SIGTERM from meson).
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

from ta_client import GRPC_INTERNAL, Client, get, msg

SIGTERM_STATUS = 128 + signal.SIGTERM
SIGKILL_STATUS = 128 + signal.SIGKILL

VALGRIND = ["valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full",
            "--show-leak-kinds=definite,indirect", "--errors-for-leak-kinds=definite,indirect"]

_procs = []
_netns = []
_tmpdirs = []


def cleanup():
    for p in list(_procs):
        p.kill()
    for name in _netns:
        subprocess.run(["ip", "netns", "delete", name], stderr=subprocess.DEVNULL, check=False)
    _netns.clear()
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)
    _tmpdirs.clear()


def _on_sigterm(signum, frame):
    cleanup()
    sys.exit(1)


def tmpdir():
    d = tempfile.mkdtemp(prefix="caa-ta-", dir="/tmp")  # short: unix socket paths
    _tmpdirs.append(d)
    return d


def add_netns(name):
    """Creates /run/netns/<name> (root only); returns its path."""
    _netns.append(name)
    subprocess.run(["ip", "netns", "add", name], check=True)
    return "/run/netns/" + name


class Failed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)


def expect_ok(r, what):
    check(r.code == 0, "%s: %r" % (what, r))
    return r


def expect_err(r, code, text, what):
    check(r.code == code and text in r.message, "%s: want code %d with %r, got %r" % (what, code, text, r))


# ---------------------------------------------------------------- processes

class Proc:
    """A child whose stderr lines are collected and can be waited for."""

    def __init__(self, name, argv):
        self.name = name
        self.lines = []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        _procs.append(self)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stderr:
            with self.cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    @property
    def pid(self):
        return self.proc.pid

    def log(self, n=40):
        with self.cond:
            return "\n".join("  " + x for x in self.lines[-n:])

    def wait_log(self, pattern, timeout=20):
        """The first stderr line matching pattern (a re.Match)."""
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        i = 0
        with self.cond:
            while True:
                while i < len(self.lines):
                    m = rx.search(self.lines[i])
                    if m:
                        return m
                    i += 1
                if self.proc.poll() is not None and not self.reader.is_alive():
                    raise Failed("%s exited (%s) before /%s/:\n%s" % (self.name, self.proc.returncode, pattern,
                                                                       self.log()))
                left = end - time.monotonic()
                if left <= 0:
                    raise Failed("no /%s/ from %s within %ss:\n%s" % (pattern, self.name, timeout, self.log()))
                self.cond.wait(min(left, 0.5))

    def stop(self, timeout=30):
        """SIGTERM, then the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise Failed("%s did not exit within %ss of SIGTERM:\n%s" % (self.name, timeout, self.log()))
        self.reader.join(5)
        if self in _procs:
            _procs.remove(self)
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self in _procs:
            _procs.remove(self)


class Agent(Proc):
    """caa-test-agent on <workdir>/<name>.sock, recording to <name>.record."""

    def __init__(self, binary, workdir, name="agent", extra=(), wrapper=(), record=True):
        self.sock = os.path.join(workdir, name + ".sock")
        self.record = os.path.join(workdir, name + ".record") if record else None
        self.scratch = os.path.join(workdir, name + "-scratch")
        argv = list(wrapper) + [binary, "-socket", self.sock, "-scratch-dir", self.scratch, "-log-level", "debug"]
        if self.record:
            argv += ["-record", self.record]
        super().__init__(name, argv + list(extra))
        self.wait_log(r"listening on ", timeout=60)

    def client(self, journal=None):
        c = Client(self.sock, timeout=30)
        if journal is not None:
            c.sent = journal
        return c

    def records(self):
        """[(service, method, payload bytes, line object)] from the record file."""
        import json
        out = []
        with open(self.record) as f:
            for i, line in enumerate(f.read().splitlines()):
                o = json.loads(line)
                check(set(o) >= {"service", "method", "payload_hex"}, "record line %d fields: %s" % (i + 1, line))
                out.append((o["service"], o["method"], bytes.fromhex(o["payload_hex"]), o))
        return out


# ---------------------------------------------------------------- requests

def process(args, env=(), cwd=""):
    return msg((4, list(args)), (5, list(env)), (6, cwd))


def spec(args, env=(), cwd="", netns=None):
    s = msg((2, process(args, env, cwd)))
    if netns is not None:
        ns = [msg((1, "ipc"), (2, "")), msg((1, "network"), (2, netns)), msg((1, "mount"), (2, ""))]
        s += msg((8, msg((6, ns))))
    return s


def create_container(c, cid, args, env=(), cwd="", netns=None):
    return c.agent("CreateContainer", msg((1, cid), (2, cid), (6, spec(args, env, cwd, netns))))


def run_container(c, cid, args, env=(), cwd="", netns=None):
    expect_ok(create_container(c, cid, args, env, cwd, netns), "CreateContainer " + cid)
    expect_ok(c.agent("StartContainer", msg((1, cid))), "StartContainer " + cid)


def wait_status(reply):
    expect_ok(reply, "WaitProcess")
    return get(reply.payload, 1, 0)


def is_eof(r):
    """The kata-agent's end of stream: INTERNAL "read meet eof" (pipes) or "eof" (terminal)."""
    return r.code == GRPC_INTERNAL and r.message in ("read meet eof", "eof")


def read_all(c, cid, eid="", method="ReadStdout", chunk=4096):
    """Stream contents up to the end-of-stream error; an empty data reply is a failure."""
    out = b""
    while True:
        r = c.agent(method, msg((1, cid), (2, eid), (3, chunk)))
        if is_eof(r):
            return out
        expect_ok(r, method)
        data = get(r.payload, 1, b"")
        check(len(data) <= chunk, "%s returned more than len %d" % (method, chunk))
        check(data, "%s answered empty data instead of the end-of-stream error" % method)
        out += data


def ns_inode_text(path):
    return "net:[%d]" % os.stat(path).st_ino


# ---------------------------------------------------------------- TAP

def run_tap(scenarios, setup, logs=lambda ctx: []):
    """Runs setup(ctx) then each (name, fn(ctx)) as one TAP point.

    fn returns None, a note, or "SKIP <why>". setup raising Failed bails out.
    logs(ctx) names the Procs whose last lines are shown for a failed point.
    Returns the exit status for meson.
    """
    signal.signal(signal.SIGTERM, _on_sigterm)
    print("1..%d" % len(scenarios), flush=True)
    failed = 0
    ctx = {"tmp": tmpdir()}
    try:
        setup(ctx)
        for i, (name, fn) in enumerate(scenarios, 1):
            try:
                res = fn(ctx)
                if isinstance(res, str) and res.startswith("SKIP"):
                    print("ok %d - %s # %s" % (i, name, res), flush=True)
                else:
                    print("ok %d - %s%s" % (i, name, (": " + res) if res else ""), flush=True)
            except Exception as e:  # noqa: BLE001 - every failure becomes a TAP point
                failed += 1
                print("not ok %d - %s" % (i, name), flush=True)
                detail = str(e) if isinstance(e, Failed) else traceback.format_exc()
                for line in detail.splitlines():
                    print("# " + line)
                for p in logs(ctx):
                    print("# %s:" % p.name)
                    for line in p.log(15).splitlines():
                        print("# " + line)
    except Failed as e:
        print("Bail out! %s" % str(e).replace("\n", " | "), flush=True)
        failed += 1
    finally:
        cleanup()
    return 1 if failed else 0
