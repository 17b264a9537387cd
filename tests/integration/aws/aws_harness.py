"""Helpers for the AWS provider tests: the fake EC2/STS/IMDS endpoint
(fake-aws.mjs, run with the pinned official SDK from
tests/unit/aws/oracle/) and the provider driver (aws-provider-driver).
Processes are killed by PID on exit, also on failure. TAP output."""
import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SRC_ROOT = os.environ.get("CAA_SOURCE_ROOT", os.path.abspath(os.path.join(HERE, "..", "..", "..")))
BUILD = os.environ.get("CAA_BUILD_ROOT", ".")
DRIVER = os.environ.get("CAA_AWS_DRIVER", "")

STATIC_AK = "AKIDFAKESTATIC"
STATIC_SK = "fake-static-secret"
AMI = "ami-0123456789abcdef0"
AMI2 = "ami-0fedcba9876543210"
SUBNET = "subnet-0123456789abcdef0"
SG1, SG2 = "sg-0123456789abcdef0", "sg-0fedcba9876543210"
NODE = "worker-node-1"

_procs = []
_tmpdirs = []


def _cleanup():
    for p in list(_procs):
        if p.poll() is None:
            p.kill()
            p.wait()
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))


def tmpdir():
    d = tempfile.mkdtemp(prefix="caa-aws-", dir="/tmp")
    _tmpdirs.append(d)
    return d


class Skip(Exception):
    pass


def setup_node():
    r = subprocess.run([os.path.join(SRC_ROOT, "tests", "unit", "aws", "oracle", "setup-node.sh"),
                        os.path.join(BUILD, "aws-node"), os.path.join(HERE, "fake-aws.mjs")],
                       capture_output=True, text=True)
    if r.returncode == 77:
        raise Skip("node/npm not installed")
    if r.returncode != 0:
        raise RuntimeError("installing the SDK for the fake endpoint failed:\n" + r.stderr)
    return r.stdout.strip()


class Fake:
    """The fake endpoint, one process for a whole test file."""

    def __init__(self):
        node_dir = setup_node()
        d = tmpdir()
        port_file = os.path.join(d, "port")
        self.log_path = os.path.join(d, "fake.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(["node", os.path.join(node_dir, "fake-aws.mjs"), "--port-file", port_file],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        _procs.append(self.proc)
        deadline = time.monotonic() + 30
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("fake endpoint did not start:\n" + open(self.log_path).read())
            time.sleep(0.05)
        self.port = int(open(port_file).read())
        self.url = "http://127.0.0.1:%d" % self.port

    def _post(self, path, obj):
        req = urllib.request.Request(self.url + path, data=json.dumps(obj).encode(), method="POST",
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def config(self, **cfg):
        return self._post("/_fake/config", cfg)

    def reset(self, **cfg):
        self._post("/_fake/reset", {})
        if cfg:
            self.config(**cfg)

    def add_address(self, **a):
        return self._post("/_fake/address", a)

    def add_eni(self, **a):
        """An ENI made outside the adaptor: tags (pairs), attached when instance_id is given. Returns {id}."""
        return self._post("/_fake/eni", a)

    def plant(self, count, tags, sandbox_tag):
        """count running instances with tags (pairs), each with its own value under sandbox_tag."""
        return self._post("/_fake/plant", {"count": count, "tags": tags, "sandbox_tag": sandbox_tag})

    def imds_revoke(self):
        return self._post("/_fake/imds-revoke", {})

    def state(self):
        with urllib.request.urlopen(self.url + "/_fake/state", timeout=10) as r:
            return json.loads(r.read())

    def instances(self):
        return self.state()["instances"]

    def alive(self):
        return [i for i in self.instances() if i["state"] not in ("terminated", "shutting-down")]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def fake_or_skip(binary, what):
    """The fake endpoint, or None after printing the TAP skip line (binary not
    built, node/npm missing): the test file then exits 77."""
    if not binary or not os.path.exists(binary):
        print("1..0 # SKIP %s not built" % what)
        return None
    try:
        return Fake()
    except Skip as e:
        print("1..0 # SKIP %s" % e)
        return None


def base_env(fake, **extra):
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("AWS_") or k in ("PODVM_AMI_ID", "TAGS", "NODE_NAME", "DISABLECVM", "USE_PUBLIC_IP"):
            del env[k]
    env.update({
        "AWS_ENDPOINT_URL_EC2": fake.url + "/",
        "AWS_ENDPOINT_URL_STS": fake.url + "/",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT": fake.url,
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
        "AWS_CONFIG_FILE": "/nonexistent/config",
    })
    env.update({k: v for k, v in extra.items() if v is not None})
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
    return env


def base_args(**over):
    args = {"-aws-region": "us-east-1", "-imageid": AMI, "-subnetid": SUBNET, "-securitygroupids": SG1 + "," + SG2,
            "-keyname": "caa-key", "-aws-node-name": NODE, "-aws-access-key-id": STATIC_AK,
            "-aws-secret-key": STATIC_SK}
    args.update(over)
    out = []
    for k, v in args.items():
        if v is None:
            continue
        out.append(k if v is True else "%s=%s" % (k, v))
    return out


class Driver:
    """aws-provider-driver: the provider's ops table on a libuv loop."""

    def __init__(self, fake, args=None, env=None, expect_ready=True):
        self.stderr_lines = []
        self.proc = subprocess.Popen([DRIVER] + (args if args is not None else base_args()),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env if env is not None else base_env(fake))
        _procs.append(self.proc)
        self.reader = threading.Thread(target=self._read_err, daemon=True)
        self.reader.start()
        self.first = self._line(30)
        if expect_ready and not self.first.get("ready"):
            raise AssertionError("driver did not start: %s\n%s" % (self.first, self.stderr()))

    def _read_err(self):
        for line in self.proc.stderr:
            self.stderr_lines.append(line)

    def stderr(self):
        return "".join(self.stderr_lines)

    def _line(self, timeout):
        result = {}

        def rd():
            result["line"] = self.proc.stdout.readline()

        t = threading.Thread(target=rd, daemon=True)
        t.start()
        t.join(timeout)
        if t.is_alive():
            raise AssertionError("driver gave no answer within %ss\n%s" % (timeout, self.stderr()))
        line = result.get("line", "")
        if not line:
            self.proc.wait(10)
            raise AssertionError("driver exited (%s)\n%s" % (self.proc.returncode, self.stderr()))
        return json.loads(line)

    def cmd(self, line, timeout=60):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self._line(timeout)

    def close(self, timeout=30, expect=0):
        """Quits; the exit status must be `expect` (ASan leak reports and
        leaked libuv handles make it non-zero)."""
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        rc = self.proc.wait(timeout)
        self.reader.join(5)
        if expect is not None and rc != expect:
            raise AssertionError("driver exit status %s, expected %s\n%s" % (rc, expect, self.stderr()[-4000:]))
        return rc


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def run(self, name, fn, *a):
        self.n += 1
        try:
            fn(*a)
            print("ok %d - %s" % (self.n, name), flush=True)
        except Skip as e:
            print("ok %d - %s # SKIP %s" % (self.n, name, e), flush=True)
        except Exception as e:  # noqa: BLE001 - report every failure as TAP
            self.failed += 1
            print("not ok %d - %s" % (self.n, name), flush=True)
            for line in ("%s: %s" % (type(e).__name__, e)).splitlines():
                print("# " + line, flush=True)

    def finish(self):
        print("1..%d" % self.n, flush=True)
        return 1 if self.failed else 0


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)
