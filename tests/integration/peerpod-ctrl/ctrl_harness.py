"""Shared pieces of the peerpod-ctrl integration tests: the fake API server's PeerPods, a running controller
(metrics, logs, stop), and a per-test fixture with a fresh fake API server.

A test module supplies how its controller is started (binary, provider and provider flags) through
Fixture.ctrl_argv; everything else is the same for the test provider and real provider modules."""
import json
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

from kube_fake import FakeKube
from free_port import free_port

FINALIZER = "peer.pod/finalizer"
PEERPODS = "/apis/confidentialcontainers.org/v1alpha1"


def api(kube, method, path, body=None):
    ctx = ssl.create_default_context(cafile=kube.certs["ca"])
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(kube.url + path, data=data, method=method,
                                 headers={"Authorization": f"Bearer {kube.token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
        return json.loads(r.read() or b"null")


def add_peerpod(kube, name, iid, provider="test", delete=False, ns="default", owner=None):
    """A PeerPod as the daemon makes it, owned by Pod `owner` (default: its own name)."""
    owner = owner or name
    obj = {"apiVersion": "confidentialcontainers.org/v1alpha1", "kind": "PeerPod",
           "metadata": {"name": name, "namespace": ns, "finalizers": [FINALIZER],
                        "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": owner, "uid": f"uid-{owner}"}]},
           "spec": {"cloudProvider": provider, "instanceID": iid}}
    api(kube, "POST", f"{PEERPODS}/namespaces/{ns}/peerpods", obj)
    if delete:  # the Pod is gone: garbage collection deletes the PeerPod, the finalizer holds it
        api(kube, "DELETE", f"{PEERPODS}/namespaces/{ns}/peerpods/{name}")


def peerpods(kube):
    return {o["metadata"]["name"]: o for o in kube.objects("peerpods")}


def wait_for(pred, timeout=20, what="condition", logs=None):
    """Polls pred; on timeout fails with what (and the tail of logs(), e.g. a controller's log)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}" + (f"\n{logs()[-3000:]}" if logs else ""))


def watches(kube):
    """Watch requests that ended (the fake logs a request when it ends)."""
    return [r for r in kube.requests() if r["verb"] == "watch" and "peerpods" in r["path"]]


def watch_rv(req):
    return int(urllib.parse.parse_qs(req["query"])["resourceVersion"][0])


def expire_the_watch(kube, ctrl):
    """While the controller's watch is held off (503), the store moves on and is compacted past its
    resourceVersion: the resumed watch gets an ERROR 410 event and the controller must list again."""
    kube.fault(r"peerpods\?.*watch=1", status=503, count=-1)
    held = ctrl.metric("peerpod_ctrl_watch_restarts_total")
    wait_for(lambda: ctrl.metric("peerpod_ctrl_watch_restarts_total") > held, what="the watch held off")
    api(kube, "POST", "/api/v1/namespaces/default/configmaps",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bump"}})
    kube.compact()
    kube.clear_faults()
    wait_for(lambda: ctrl.metric('peerpod_ctrl_lists_total{result="ok"}') >= 2, what="a list after 410")


# The watch cases list once (a resync period of an hour), so only the watch can react in time.
NO_RESYNC = ("-resync-period", "1h")
ELECTION = ("-leader-elect", "-leader-election-namespace", "default", "-leader-election-lease-duration", "3s",
            "-leader-election-renew-deadline", "2s", "-leader-election-retry-period", "300ms")


class Ctrl:
    def __init__(self, fx, *args, name="ctrl"):
        self.metrics_port = free_port()
        self.log_path = os.path.join(fx.dir, f"{name}-{self.metrics_port}.log")
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen(
            [*fx.ctrl_argv(), "-kubeconfig", fx.kubeconfig,
             "-metrics-bind-address", f"127.0.0.1:{self.metrics_port}", "-health-probe-bind-address", "0",
             "-resync-period", "500ms", "-retry-backoff", "200ms", "-retry-backoff-max", "1s",
             "-log-level", "debug", *args], stderr=self.log, env=fx.ctrl_env())

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            out = {}
            for line in r.read().decode().splitlines():
                if line and not line.startswith("#"):
                    k, v = line.rsplit(" ", 1)
                    out[k] = float(v)
            return out

    def metric(self, key):
        try:
            return self.metrics().get(key, 0)
        except OSError:
            return 0

    def logs(self):
        self.log.seek(0)
        return self.log.read()

    def kill(self):
        """SIGKILL: a crash, nothing finished or released."""
        self.proc.kill()
        self.proc.wait()
        self.log.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=20)
        self.log.close()
        assert rc == 0, f"peerpod-ctrl exited {rc}: {open(self.log_path).read()[-2000:]}"


class Fixture:
    """A fresh fake API server and temporary directory per test; subclasses add the cloud side."""

    def __init__(self, fake_args=()):
        self.dir = tempfile.mkdtemp(prefix="caa-peerpod-ctrl-")
        self.ctrls = []
        self.kube = None
        try:
            self.kube = FakeKube(token="t1", tls=True, extra_args=fake_args)
            self.kube.start()
            self.kubeconfig = self.kube.kubeconfig(os.path.join(self.dir, "kubeconfig"))
        except BaseException:
            self.close()
            raise

    def ctrl_argv(self):
        raise NotImplementedError

    def ctrl_env(self):
        """The controller's environment (None: this process's)."""
        return None

    def ctrl(self, *args, name="ctrl"):
        c = Ctrl(self, *args, name=name)
        self.ctrls.append(c)
        return c

    def close(self):
        try:
            for c in self.ctrls:
                if c.proc.poll() is None:
                    c.proc.kill()
                    c.proc.wait()
        finally:
            if self.kube:
                self.kube.stop()
            shutil.rmtree(self.dir, ignore_errors=True)


def fixture_runner(make_fixture):
    """Decorator factory: the test runs with a fresh fixture made by make_fixture(fake_args), closed after."""

    def with_fake_args(*fake_args):
        def wrap(fn):
            def run(_):
                fx = make_fixture(fake_args)
                try:
                    fn(fx)
                finally:
                    fx.close()
            run.__name__ = fn.__name__
            return run
        return wrap

    return with_fake_args
