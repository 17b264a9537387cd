#!/usr/bin/env python3
"""peerpod-ctrl with the real azure provider module against the fake Azure endpoint (fake_arm.py) and the
fake Kubernetes API server. Two VMs are made by the real daemon (cloud-api-adaptor azure, caa-ctl create +
start), which is then killed (SIGKILL: a lost node, nothing released). Of three PeerPods, the orphan's VM
is deleted, the live one's kept, and an orphan whose VM no longer exists is released all the same (gone
counts as success). VMs are counted in the fake before and after: zero orphans, zero wrong deletions."""
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.environ.get("CAA_SOURCE_ROOT", "."), "tests", "support"))
from caa_harness import FakeForwarder, check, pod_annotations, run_main, sandbox_id, tmpdir  # noqa: E402
from kube_fake import FakeKube  # noqa: E402
from test_daemon_azure import AzureDaemon, Fake  # noqa: E402

CTRL = os.environ.get("CAA_PEERPOD_CTRL_BIN", "")
VM_PREFIX = "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Compute/virtualMachines/"


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
                             "spec": {"cloudProvider": "azure", "instanceID": iid}})
    if delete:
        api(kube, "DELETE", f"{path}/{name}")


def ctrl_args(fake):
    """The daemon's azure provider flags (AzureDaemon.cmdline) without the daemon's own."""
    f = fake.url
    return ["-clientid", "client-1", "-tenantid", "tenant-1", "-subscriptionid", "sub-1", "-region", "eastus",
            "-resourcegroup", "rg-1",
            "-subnetid", "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Network/virtualNetworks/"
            "vnet/subnets/default",
            "-imageid", "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Compute/images/podvm",
            "-authority-host", f, "-resource-manager-endpoint", f, "-poll-interval", "20ms",
            "-retry-max-delay", "100ms"]


def main():
    if not CTRL or not os.path.exists(CTRL):
        print("peerpod-ctrl not built")
        sys.exit(77)
    fake = Fake()
    fwd = FakeForwarder()
    proc = None
    tmp = tmpdir()
    try:
        fake.config(private_ip_fixed="127.0.0.1")
        env = {"AZURE_CLIENT_SECRET": "s3cr3t-value"}
        d = AzureDaemon(fake, fwd, env=env).start()
        names = []
        for i, pod in ((1, "live"), (2, "orphan")):
            sid = sandbox_id(i)
            d.ctl_ok("create", sid, *pod_annotations(pod, "default"))
            d.ctl_ok("start", sid, timeout=60)
            names.append(f"podvm-{pod}-{sid[:8]}")
        d.kill()  # the node is lost: the daemon releases nothing
        live, orphan = names
        check(sorted(fake.state()["vms"]) == sorted(names), "before: %s" % list(fake.state()["vms"]))
        with FakeKube(token="t1", tls=True) as kube:
            peerpod(kube, "live-resource-aaaaa", VM_PREFIX + live, delete=False)
            peerpod(kube, "orphan-resource-bbbbb", VM_PREFIX + orphan, delete=True)
            peerpod(kube, "gone-resource-ccccc", VM_PREFIX + "podvm-gone-0000aaaa", delete=True)
            cfg = kube.kubeconfig(os.path.join(tmp, "kubeconfig"))
            log = open(os.path.join(tmp, "ctrl.log"), "w+")
            proc = subprocess.Popen([CTRL, "azure", *ctrl_args(fake), "-kubeconfig", cfg,
                                     "-metrics-bind-address", "0", "-health-probe-bind-address", "0",
                                     "-log-level", "debug"], stderr=log, env=dict(os.environ, **env))
            deadline = time.time() + 60
            left = None
            while time.time() < deadline:
                left = sorted(o["metadata"]["name"] for o in kube.objects("peerpods"))
                if left == ["live-resource-aaaaa"]:
                    break
                time.sleep(0.2)
            log.seek(0)
            text = log.read()
            check(left == ["live-resource-aaaaa"], "PeerPods left: %s\n%s" % (left, text[-3000:]))
            check(sorted(fake.state()["vms"]) == [live], "after: VMs %s (live %s, orphan %s)" % (
                list(fake.state()["vms"]), live, orphan))
            check("s3cr3t-value" not in text, "the client secret must not be logged")
            proc.send_signal(signal.SIGTERM)
            check(proc.wait(30) == 0, "peerpod-ctrl exit code %s" % proc.returncode)
            proc = None
        print("ok: peerpod-ctrl azure deleted the orphan's VM only (%d VM before, 1 after)" % len(names))
    finally:
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait()
        fwd.close()
        fake.close()


if __name__ == "__main__":
    run_main(main)
