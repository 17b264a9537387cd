"""Shared helpers for the agent path tests.

The chain under test:
    goclient (Go containerd/ttrpc, raw bytes)
      -> proxy-host (worker-side agent proxy, adaptor/proxy/) on a unix socket
      -> agent-protocol-forwarder (TCP, TLS optional)
      -> goserver -agent (Go ttRPC server standing in for the kata-agent; records requests)

Every process is started here, killed by PID on exit (also on failure or
SIGTERM from meson) and its temporary directory removed. Output is TAP.
"""
import atexit
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True

SRC = os.environ.get("CAA_SOURCE_ROOT", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..")))
sys.path.insert(0, os.path.join(SRC, "tests", "interop"))
from goproc import build_go_peers  # noqa: E402

sys.path.insert(0, os.path.join(SRC, "tests", "support"))
import ttrpc_wire as tw  # noqa: E402

FORWARDER = os.environ.get("CAA_FORWARDER", "")
PROXY_HOST = os.environ.get("CAA_PROXY_HOST", "")
GO_OUT = os.environ.get("CAA_GO_OUT", "")
SANITIZED = os.environ.get("CAA_SANITIZED", "") not in ("", "0", "none")

GRPC = {"OK": 0, "CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4,
        "RESOURCE_EXHAUSTED": 8, "UNIMPLEMENTED": 12, "INTERNAL": 13, "UNAVAILABLE": 14}

AGENT_METHODS = [
    "CreateContainer", "StartContainer", "RemoveContainer", "ExecProcess", "SignalProcess",
    "WaitProcess", "UpdateContainer", "UpdateEphemeralMounts", "StatsContainer", "PauseContainer",
    "ResumeContainer", "RemoveStaleVirtiofsShareMounts", "GetDiagnosticData", "WriteStdin",
    "ReadStdout", "ReadStderr", "CloseStdin", "TtyWinResize", "UpdateInterface", "UpdateRoutes",
    "ListInterfaces", "ListRoutes", "AddARPNeighbors", "GetIPTables", "SetIPTables", "GetMetrics",
    "MemAgentMemcgSet", "MemAgentCompactSet", "CreateSandbox", "DestroySandbox", "OnlineCPUMem",
    "ReseedRandomDev", "GetGuestDetails", "MemHotplugByProbe", "SetGuestDateTime", "CopyFile",
    "GetOOMEvent", "AddSwap", "AddSwapPath", "GetVolumeStats", "ResizeVolume", "SetPolicy",
]
assert len(AGENT_METHODS) == 42

_procs = []
_tmpdirs = []


def _cleanup():
    for p in list(_procs):
        p.kill()
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))


class Failed(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failed(msg)


def tmpdir():
    d = tempfile.mkdtemp(prefix="caa-ap-", dir="/tmp")  # short: unix socket paths
    _tmpdirs.append(d)
    return d


def go_peers():
    out = GO_OUT or os.path.join(tmpdir(), "go")
    return build_go_peers(os.path.join(SRC, "tests", "interop", "go"), out)


def skip_without_go():
    if shutil.which("go") is None:
        print("1..0 # SKIP go is not installed")
        sys.exit(77)


# ---------------------------------------------------------------- processes

class Proc:
    """A child whose stderr (and optionally stdout) lines are collected."""

    def __init__(self, name, argv, stdin=False, capture_stdout=False, env=None):
        self.name = name
        self.argv = argv
        self.lines = []
        self.out = []
        self.out_t = []  # arrival time of each stdout line
        self.cond = threading.Condition()
        e = dict(os.environ)
        if env:
            e.update(env)
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                     stdout=subprocess.PIPE if capture_stdout else subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=e)
        _procs.append(self)
        self.readers = [threading.Thread(target=self._read, args=(self.proc.stderr, self.lines), daemon=True)]
        if capture_stdout:
            self.readers.append(threading.Thread(target=self._read, args=(self.proc.stdout, self.out), daemon=True))
        for t in self.readers:
            t.start()

    def _read(self, stream, into):
        for raw in stream:
            with self.cond:
                into.append(raw.decode("utf-8", "replace").rstrip("\n"))
                if into is self.out:
                    self.out_t.append(time.monotonic())
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    @property
    def pid(self):
        return self.proc.pid

    def log(self):
        with self.cond:
            return "\n".join(self.lines)

    def wait_line(self, pattern, timeout=20, stdout=False, start=0):
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        buf = self.out if stdout else self.lines
        with self.cond:
            i = start
            while True:
                while i < len(buf):
                    m = rx.search(buf[i])
                    if m:
                        return m
                    i += 1
                if self.proc.poll() is not None and not any(t.is_alive() for t in self.readers):
                    raise Failed("%s exited (%s) before /%s/:\n%s" % (self.name, self.proc.returncode,
                                                                       pattern, self.tail()))
                left = end - time.monotonic()
                if left <= 0:
                    raise Failed("%s: no /%s/ within %ss:\n%s" % (self.name, pattern, timeout, self.tail()))
                self.cond.wait(min(left, 0.5))

    def tail(self, n=30):
        with self.cond:
            return "\n".join(["  " + x for x in (self.out[-n:] + self.lines[-n:])])

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise Failed("%s did not exit within %ss after signal %d:\n%s" % (self.name, timeout, sig, self.tail()))
        for t in self.readers:
            t.join(5)
        if self in _procs:
            _procs.remove(self)
        return rc

    def wait_exit(self, timeout=20):
        """Waits for a process that exits by itself (no signal sent); returns its status."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise Failed("%s did not exit within %ss:\n%s" % (self.name, timeout, self.tail()))
        for t in self.readers:
            t.join(5)
        if self in _procs:
            _procs.remove(self)
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self in _procs:
            _procs.remove(self)


def start_agent(goserver, sock, record=None):
    argv = [goserver, "-agent"] + (["-record", record] if record else []) + ["unix:" + sock]
    p = Proc("kata-agent (goserver)", argv, capture_stdout=True)
    p.wait_line(r"^LISTENING ", stdout=True)
    return p


def write_apf(path, obj=None):
    import json
    with open(path, "w") as f:
        json.dump(obj if obj is not None else {"pod-name": "test"}, f)


def start_forwarder(agent_sock, apf, port=0, tls=False, netns="/run/netns/podns-test", extra=(), wait=True):
    argv = [FORWARDER, "-config", apf, "-listen", "127.0.0.1:%d" % port, "-kata-agent-socket", agent_sock,
            "-pod-namespace", netns, "-log-level", "debug"]
    if not tls:
        argv.append("-disable-tls")
    argv += list(extra)
    p = Proc("agent-protocol-forwarder", argv)
    p.port = None
    if wait:
        p.port = int(p.wait_line(r"listening on port (\d+)").group(1))
    return p


def start_proxy(sock, port, gpus=0, pods=1, timeout="20s", tls_dir=None, server_name="podvm-test", wait=True,
                extra=()):
    argv = [PROXY_HOST, "run", "-socket", sock, "-host", "127.0.0.1", "-port", str(port), "-gpus", str(gpus),
            "-pods", str(pods), "-timeout", timeout, "-log-level", "debug"]
    if tls_dir:
        argv += ["-ca-cert-file", os.path.join(tls_dir, "ca.crt"), "-cert-file", os.path.join(tls_dir, "client.crt"),
                 "-cert-key", os.path.join(tls_dir, "client.key"), "-server-name", server_name]
    argv += list(extra)
    p = Proc("proxy-host", argv, capture_stdout=True)
    if wait:
        p.wait_line(r"^ALL-READY", stdout=True, timeout=60)
    return p


def gen_tls(directory, server_name="podvm-test"):
    subprocess.run([PROXY_HOST, "gen-tls", directory, server_name], check=True)
    return os.path.join(directory, "apf.json")


def proxy_stats(proxy):
    n = len(proxy.out)
    proxy.proc.send_signal(signal.SIGUSR1)
    m = proxy.wait_line(r"^STATS (.*)", stdout=True, start=n)
    return dict(kv.split("=", 1) for kv in m.group(1).split())


# ---------------------------------------------------------------- goclient drive

class Driver:
    """goclient's drive scenario: calls steered line by line from here."""

    def __init__(self, goclient, sock, wait="5s"):
        self.p = Proc("goclient drive", [goclient, "-wait", wait, "unix:" + sock, "drive"], stdin=True,
                      capture_stdout=True)
        self.seen = 0
        self.results = {}
        self.n = 0

    def send(self, line):
        self.p.proc.stdin.write((line + "\n").encode())
        self.p.proc.stdin.flush()

    def conn(self, n):
        self.send("conn %d" % n)

    def call(self, service, method, payload=b"", timeout_ms=0, cid=None, data=None):
        self.n += 1
        cid = cid or "c%d" % self.n
        if data is None:
            data = payload.hex() if payload else "-"
        self.send("call %s %s %s %d %s" % (cid, service, method, timeout_ms, data))
        return cid

    def _collect(self):
        with self.p.cond:
            while self.seen < len(self.p.out):
                line = self.p.out[self.seen]
                t = self.p.out_t[self.seen]
                self.seen += 1
                m = re.match(r'^DONE (\S+) (-?\d+) (\d+) (\d+) (\S+) (.*)$', line)
                if m:
                    data = m.group(5)
                    self.results[m.group(1)] = {
                        "code": int(m.group(2)), "ms": int(m.group(3)), "len": int(m.group(4)),
                        "data": data if data.startswith("sha256:") else (b"" if data == "-" else bytes.fromhex(data)),
                        "msg": m.group(6), "t": t}
                elif line.startswith("FAIL"):
                    raise Failed("goclient: " + line)

    def result(self, cid, timeout=20):
        end = time.monotonic() + timeout
        while True:
            self._collect()
            if cid in self.results:
                return self.results[cid]
            left = end - time.monotonic()
            if left <= 0:
                raise Failed("call %s did not finish within %ss\n%s" % (cid, timeout, self.p.tail()))
            with self.p.cond:
                if self.p.proc.poll() is not None:
                    self._collect()
                    if cid in self.results:
                        return self.results[cid]
                    raise Failed("goclient exited (%s)\n%s" % (self.p.proc.returncode, self.p.tail()))
                self.p.cond.wait(min(left, 0.2))

    def done(self, cid):
        self._collect()
        return cid in self.results

    def close(self):
        try:
            self.p.proc.stdin.close()
        except BrokenPipeError:
            pass
        self.p.stop(timeout=30)


def run_scenario(goclient, sock, *args, timeout=120):
    p = subprocess.run([goclient, "-wait", "5s", "unix:" + sock] + list(args), capture_output=True,
                       timeout=timeout)
    out = p.stdout.decode(errors="replace").strip()
    return p.returncode == 0 and out.startswith("PASS"), out


# ---------------------------------------------------------------- protobuf and raw ttRPC frames
# The shared test client (tests/support/ttrpc_wire.py); decode() here keeps
# the wire type: [(field number, wire type, value)].

varint = tw.varint
field = tw.field
msg = tw.msg
read_varint = tw.read_varint
decode = tw.decode_wt
fields_of = tw.fields_of
one = tw.get
frame = tw.frame
request_body = tw.request_body
recv_frame = tw.recv_frame
recv_exact = tw.recv_exact
response_status = tw.response_status


# ---------------------------------------------------------------- TAP

class Tap:
    def __init__(self, plan):
        self.n = 0
        self.failed = 0
        print("1..%d" % plan, flush=True)

    def ok(self, cond, desc, detail=None):
        self.n += 1
        print("%s %d - %s" % ("ok" if cond else "not ok", self.n, desc), flush=True)
        if not cond:
            self.failed += 1
            if detail:
                for line in str(detail).splitlines():
                    print("# " + line)
        return cond

    def run(self, desc, fn):
        try:
            r = fn()
            return self.ok(True, desc + (": " + r if isinstance(r, str) else ""))
        except Failed as e:
            return self.ok(False, desc, e)
        except Exception as e:  # noqa: BLE001 - report any crash as a failed point
            import traceback
            return self.ok(False, desc, traceback.format_exc() + str(e))

    def exit(self):
        _cleanup()
        sys.exit(1 if self.failed else 0)
