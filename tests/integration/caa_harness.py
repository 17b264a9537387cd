"""Shared helpers for the daemon integration tests.

Starts the test daemon (cloud-api-adaptor-test, provider "test") on a
temporary socket, pods dir and instance dir; drives it with caa-ctl or with
the shared ttRPC client (tests/support/ttrpc_wire.py); kills it by PID on exit, also on failure.
"""
import atexit
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import ttrpc_wire as tw  # noqa: E402
from free_port import free_port  # noqa: E402,F401  (re-exported: the tests import it from here)

# The protobuf helpers' older names, kept for the tests written against them;
# ttrpc_wire holds the one implementation.
pb_bytes = tw.field
pb_varint = tw.field
pb_parse = tw.parse
_varint = tw.varint

DAEMON = os.environ.get("CAA_TEST_DAEMON", "")
CTL = os.environ.get("CAA_CTL", "")
SANITIZED = os.environ.get("CAA_SANITIZED", "") not in ("", "0", "none")

_daemons = []
_tmpdirs = []


def _cleanup():
    for d in list(_daemons):
        d.kill()
    for t in _tmpdirs:
        shutil.rmtree(t, ignore_errors=True)


atexit.register(_cleanup)
# meson stops a test that runs too long with SIGTERM: still clean up.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))


def fail(msg):
    raise AssertionError(msg)


def check(cond, msg):
    if not cond:
        fail(msg)


def tmpdir():
    # Short paths: unix socket paths are limited to 107 bytes.
    d = tempfile.mkdtemp(prefix="caa-it-", dir="/tmp")
    _tmpdirs.append(d)
    return d


class Daemon:
    """The test daemon. By default its pod VMs are 127.0.0.1 and a FakeForwarder
    (plain TCP, -disable-tls) answers the agent proxy, so StartVM completes at
    once; forwarder=False leaves VM IP, port and TLS to the test's args."""

    def __init__(self, root=None, args=(), env=None, wrapper=(), log_level="info", socket_path=None,
                 forwarder=True):
        self.root = root or tmpdir()
        self.sock = socket_path or os.path.join(self.root, "run", "hypervisor.sock")
        self.pods = os.path.join(self.root, "pods")
        self.state = os.path.join(self.root, "instances")
        self.args = list(args)
        self.env = env
        self.wrapper = list(wrapper)
        self.log_level = log_level
        self.forwarder = FakeForwarder() if forwarder else None
        self.proc = None
        self.lines = []
        self.cond = threading.Condition()
        self.reader = None

    def cmdline(self):
        base = [DAEMON, "test", "-socket", self.sock, "-pods-dir", self.pods, "-test-state-dir", self.state,
                "-log-level", self.log_level]
        if self.forwarder:
            # Before the test's args: a later flag wins.
            base += ["-test-ip", "127.0.0.1", "-disable-tls", "-forwarder-port", str(self.forwarder.port)]
        return self.wrapper + base + self.args

    def start(self, wait=True, timeout=20):
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        self.lines = []
        self.proc = subprocess.Popen(self.cmdline(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=env)
        _daemons.append(self)
        self.reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self.reader.start()
        if wait:
            self.wait_log(r"serving hypervisor\.Hypervisor", timeout)
        return self

    def _read(self, proc):
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    @property
    def pid(self):
        return self.proc.pid

    def log(self):
        with self.cond:
            return "\n".join(self.lines)

    def wait_log(self, pattern, timeout=10, start=0):
        """Waits for a log line matching pattern (regex); returns it."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            i = start
            while True:
                while i < len(self.lines):
                    if rx.search(self.lines[i]):
                        return self.lines[i]
                    i += 1
                if self.proc.poll() is not None and not self.reader.is_alive():
                    fail("daemon exited (%s) before logging /%s/:\n%s" % (self.proc.returncode, pattern, self.log()))
                left = deadline - time.monotonic()
                if left <= 0:
                    fail("no log line /%s/ within %ss:\n%s" % (pattern, timeout, self.log()))
                self.cond.wait(min(left, 0.5))

    def count_log(self, pattern):
        rx = re.compile(pattern)
        with self.cond:
            return sum(1 for line in self.lines if rx.search(line))

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signals the daemon and returns its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            fail("daemon did not exit within %ss after signal %d:\n%s" % (timeout, sig, self.log()))
        self.reader.join(5)
        if self in _daemons:
            _daemons.remove(self)
        return rc

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self in _daemons:
            _daemons.remove(self)

    def user_data(self, instance_file):
        """The user-data the test provider received for an instance (<id>.json -> <id>.user-data)."""
        with open(os.path.join(self.state, instance_file[:-len(".json")] + ".user-data"), "rb") as f:
            return f.read()

    def apf(self, sid):
        with open(os.path.join(self.pods, sid, "apf.json")) as f:
            return json.load(f)

    def ctl(self, *args, timeout=60):
        return ctl(self.sock, self.pods, *args, timeout=timeout)

    def ctl_ok(self, *args, timeout=60):
        rc, out, err = self.ctl(*args, timeout=timeout)
        if rc != 0:
            fail("caa-ctl %s failed (%d): %s\n--- daemon log:\n%s" % (" ".join(args), rc, err, self.log()))
        return out

    def instances(self):
        """Instance files the test provider holds (leak check from outside)."""
        if not os.path.isdir(self.state):
            return []
        return sorted(f for f in os.listdir(self.state) if f.endswith(".json"))

    def instance(self, name):
        with open(os.path.join(self.state, name)) as f:
            return json.load(f)

    def pod_state(self, sid):
        with open(os.path.join(self.pods, sid, "state.json")) as f:
            return json.load(f)


def ctl(sock, pods, *args, timeout=60):
    p = subprocess.run([CTL, "-socket", sock, "-pods-dir", pods] + list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def pod_annotations(name="nginx", namespace="default", extra=None):
    ann = {"io.kubernetes.cri.sandbox-name": name, "io.kubernetes.cri.sandbox-namespace": namespace}
    if extra:
        ann.update(extra)
    args = []
    for k, v in ann.items():
        args += ["-a", "%s=%s" % (k, v)]
    return args


def probe_get(port, path):
    """(status, body) of GET path on a daemon's probe endpoint (127.0.0.1:port)."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def probe_metrics(port):
    """/metrics parsed by prometheus_client: {(sample name, sorted labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    status, text = probe_get(port, "/metrics")
    check(status == 200, "/metrics answered %d" % status)
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def stop_during_start(d, sid, started_pattern, pod="nginx"):
    """CreateVM sid, StartVM it in the background, wait for started_pattern in
    the daemon's log, then StopVM. Returns (StopVM seconds, StartVM exit
    status, StartVM stderr); prints the daemon's last log lines on failure."""
    d.ctl_ok("create", sid, *pod_annotations(pod))
    start = subprocess.Popen([CTL, "-socket", d.sock, "start", sid], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    try:
        d.wait_log(started_pattern, timeout=30)
        time.sleep(0.5)  # well inside the step
        t0 = time.monotonic()
        out = d.ctl_ok("stop", sid, timeout=60)
        took = time.monotonic() - t0
        check(out.strip() == "stopped " + sid, "StopVM output %r" % out)
        _, err = start.communicate(timeout=30)
    except Exception:
        print("\n".join("# " + line for line in d.log().splitlines()[-40:]), flush=True)
        raise
    finally:
        if start.poll() is None:
            start.kill()
            start.wait()
    return took, start.returncode, err.decode()



def sandbox_id(n):
    return ("%064x" % (0x5A5A0000 + n))[-64:]


# ---------------------------------------------------------------- a minimal ttRPC client

class TtrpcClient(tw.Client):
    """The shared client with this harness's call shape: (code, message, payload)."""

    def send_request(self, service, method, payload=b"", timeout_ns=0):
        return self.send(service, method, payload, timeout_ns)

    def recv_response(self):
        """(stream id, code, message, payload) of the next Response."""
        r = self.next_reply()
        return r.sid, r.code, r.message, r.payload

    def call(self, service, method, payload=b"", timeout_ns=0):
        sid = self.send_request(service, method, payload, timeout_ns)
        rsid, code, msg, out = self.recv_response()
        check(rsid == sid, "response for stream %d, expected %d" % (rsid, sid))
        return code, msg, out


def version_payload():
    return tw.field(1, "0.0.0")


def get_info_payload(pod, ns, wait=False):
    return tw.msg((1, pod), (2, ns)) + (tw.field(3, 1) if wait else b"")


def run_main(fn):
    """Runs a test body; prints a TAP-like verdict; exit 0 on success, 77 on skip."""
    if not DAEMON or not CTL:
        print("CAA_TEST_DAEMON / CAA_CTL not set")
        sys.exit(77)
    try:
        fn()
    except AssertionError as e:
        print("FAIL: %s" % e)
        _cleanup()
        sys.exit(1)
    _cleanup()
    print("PASS")
    sys.exit(0)


def _service_method(request_body):
    return (tw.get(request_body, 1, b"").decode(), tw.get(request_body, 2, b"").decode())


class FakeHealthAgent:
    """Serves grpc.Health/Check on a unix socket (answers `status`) in a thread."""

    def __init__(self, path, status=1):
        self.path = path
        self.status = status
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.bind(path)
        self.s.listen(4)
        self.requests = []
        self.t = threading.Thread(target=self._serve, daemon=True)
        self.t.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.s.accept()
            except OSError:
                return
            with conn:
                hdr = conn.recv(10, socket.MSG_WAITALL)
                if len(hdr) < 10:
                    continue
                length, sid, _typ, _flags = tw.HEADER.unpack(hdr)
                body = conn.recv(length, socket.MSG_WAITALL) if length else b""
                self.requests.append(_service_method(body))
                payload = tw.field(1, self.status) if self.status else b""
                resp = tw.field(2, payload) if payload else b""
                conn.sendall(tw.frame(sid, tw.MSG_RESPONSE, resp))

    def close(self):
        self.s.close()
        os.unlink(self.path)


class FakeForwarder:
    """Stands in for the agent-protocol-forwarder of every pod VM (127.0.0.1,
    plain TCP): answers grpc.Health/Check SERVING and every other request with
    an empty OK, on any number of connections and requests."""

    def __init__(self, host="127.0.0.1", port=0):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.s.bind((host, port))
        self.s.listen(16)
        self.port = self.s.getsockname()[1]
        self.requests = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.s.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        with conn:
            while True:
                try:
                    hdr = conn.recv(10, socket.MSG_WAITALL)
                    if len(hdr) < 10:
                        return
                    length, sid, typ, _flags = tw.HEADER.unpack(hdr)
                    body = conn.recv(length, socket.MSG_WAITALL) if length else b""
                except OSError:
                    return
                if typ != tw.MSG_REQUEST:
                    continue
                call = _service_method(body)
                with self.lock:
                    self.requests.append(call)
                payload = tw.field(1, 1) if call == ("grpc.Health", "Check") else b""
                resp = tw.field(2, payload) if payload else b""
                try:
                    conn.sendall(tw.frame(sid, tw.MSG_RESPONSE, resp))
                except OSError:
                    return

    def close(self):
        # shutdown wakes the blocked accept(): a close alone would leave the
        # port listening (and answering) until the next connection.
        try:
            self.s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.s.close()


if __name__ == "__main__":
    # fake-forwarder HOST PORT: a FakeForwarder as its own process (for tests
    # that need it inside a network namespace); serves until stdin closes.
    if len(sys.argv) != 4 or sys.argv[1] != "fake-forwarder":
        print("usage: caa_harness.py fake-forwarder HOST PORT", file=sys.stderr)
        sys.exit(2)
    fwd = FakeForwarder(sys.argv[2], int(sys.argv[3]))
    print("LISTENING %d" % fwd.port, flush=True)
    sys.stdin.read()
