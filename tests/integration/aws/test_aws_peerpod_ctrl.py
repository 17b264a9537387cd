#!/usr/bin/env python3
"""peerpod-ctrl with the real aws provider module against the fake EC2 endpoint and the fake Kubernetes
API server: of three PeerPods, the orphan's instance is terminated, the live one's stays running, and an
orphan whose instance no longer exists is released all the same (gone counts as success). Instances are
counted in the fake EC2 before and after: zero orphans, zero wrong deletions."""
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "support"))
from aws_harness import Driver, Fake, Skip, Tap, base_args, base_env, check  # noqa: E402
from kube_fake import FakeKube  # noqa: E402

CTRL = os.environ.get("CAA_PEERPOD_CTRL_BIN", "")


def api(kube, method, path, body=None):
    ctx = ssl.create_default_context(cafile=kube.certs["ca"])
    req = urllib.request.Request(kube.url + path, data=json.dumps(body).encode() if body is not None else None,
                                 method=method, headers={"Authorization": "Bearer t1",
                                                         "Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
        return json.loads(r.read() or b"null")


def peerpod(kube, name, iid, delete):
    path = "/apis/confidentialcontainers.org/v1alpha1/namespaces/default/peerpods"
    api(kube, "POST", path, {"apiVersion": "confidentialcontainers.org/v1alpha1", "kind": "PeerPod",
                             "metadata": {"name": name, "finalizers": ["peer.pod/finalizer"]},
                             "spec": {"cloudProvider": "aws", "instanceID": iid}})
    if delete:
        api(kube, "DELETE", f"{path}/{name}")


def alive(fake):
    return sorted(i["id"] for i in fake.instances() if i["state"] not in ("terminated", "shutting-down"))


def t_collects_only_the_orphan(fake):
    d = Driver(fake)
    ids = []
    for n, sid in (("podvm-live-1111aaaa", "1111aaaa2222bbbb"), ("podvm-orphan-3333cccc", "3333cccc4444dddd")):
        r = d.cmd(f"create {n} {sid} key={sid}-0000-4000-8000-000000000000 userdata=#cloud-config")
        check(r["status"] == 0, "create: %s" % r)
        ids.append(r["instance"]["id"])
    d.close()
    live, orphan = ids
    check(alive(fake) == sorted(ids), "before: %s" % alive(fake))
    tmp = tempfile.mkdtemp(prefix="caa-aws-ctrl-", dir="/tmp")
    proc = None
    try:
        with FakeKube(token="t1", tls=True) as kube:
            peerpod(kube, "live-resource-aaaaa", live, delete=False)
            peerpod(kube, "orphan-resource-bbbbb", orphan, delete=True)
            peerpod(kube, "gone-resource-ccccc", "i-0ffffffffffffffff", delete=True)
            cfg = kube.kubeconfig(os.path.join(tmp, "kubeconfig"))
            log = open(os.path.join(tmp, "ctrl.log"), "w+")
            proc = subprocess.Popen([CTRL, "aws", *base_args(), "-kubeconfig", cfg, "-resync-period", "500ms",
                                     "-metrics-bind-address", "0", "-health-probe-bind-address", "0",
                                     "-log-level", "debug"], stderr=log, env=base_env(fake))
            deadline = time.time() + 60
            names = None
            while time.time() < deadline:
                names = sorted(o["metadata"]["name"] for o in kube.objects("peerpods"))
                if names == ["live-resource-aaaaa"]:
                    break
                time.sleep(0.2)
            log.seek(0)
            check(names == ["live-resource-aaaaa"], "PeerPods left: %s\n%s" % (names, log.read()[-3000:]))
            check(alive(fake) == [live], "after: alive %s (live %s, orphan %s)" % (alive(fake), live, orphan))
            proc.send_signal(signal.SIGTERM)
            check(proc.wait(30) == 0, "peerpod-ctrl exit code %s" % proc.returncode)
            proc = None
    finally:
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    if not CTRL or not os.path.exists(CTRL):
        print("1..0 # SKIP CAA_PEERPOD_CTRL_BIN not built")
        return 77
    try:
        fake = Fake()
    except Skip as e:
        print("1..0 # SKIP %s" % e)
        return 77
    tap = Tap()
    fake.reset(private_ip_override="127.0.0.1")
    tap.run("peerpod-ctrl aws: the orphan's instance terminated, the live one kept, a gone one released",
            t_collects_only_the_orphan, fake)
    fake.stop()
    return tap.finish()


if __name__ == "__main__":
    sys.exit(main())
