"""Helpers for the daemon's Kubernetes tests: the test daemon (caa_harness) pointed at the fake API
server (tests/support/kube_fake.py) through a kubeconfig, and its probe endpoint."""
import json
import os

from caa_harness import Daemon, check, free_port, probe_get, probe_metrics, tmpdir  # noqa: F401 (re-exported)
from kube_fake import FakeKube

NODE = "worker-%d" % os.getpid()
POD_UID = "0b7f5c4e-6c5d-4d57-9d55-%012d" % os.getpid()
RESOURCE = "kata.peerpods.io/vm"
OWNER = "kata.peerpods.io/caa-owner"


def node_seed(name=NODE, annotations=None):
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "annotations": annotations or {}},
            "status": {"capacity": {"cpu": "2", "memory": "4Gi"}}}


class KubeDaemon(Daemon):
    """The test daemon with a kubeconfig and a probe port of its own."""

    def __init__(self, kubeconfig, args=(), env=None, pod_uid=POD_UID, node=NODE, **kw):
        self.probe_port = free_port()
        e = {"NODE_NAME": node, "POD_UID": pod_uid}
        for k in ("KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "KUBECONFIG"):
            os.environ.pop(k, None)
        if env:
            e.update(env)
        super().__init__(args=["-kubeconfig", kubeconfig, "-probe-port", str(self.probe_port), *args], env=e, **kw)

    def probe(self, path):
        """(status, body) of GET path on the probe endpoint."""
        return probe_get(self.probe_port, path)

    def metrics(self):
        return probe_metrics(self.probe_port)


def capacity(kube, name=NODE):
    for n in kube.objects("nodes"):
        if n["metadata"]["name"] == name:
            return n.get("status", {}).get("capacity", {}).get(RESOURCE), n["metadata"].get("annotations", {})
    return None, {}


def kube_requests(kube, method=None, contains=""):
    return [r for r in kube.requests() if (not method or r.get("method") == method) and contains in r.get("path", "")]


def write(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def kubeconfig_token_file(kube, dirname, token):
    """A kubeconfig whose user reads its token from a file (rotatable); returns (kubeconfig, token file)."""
    token_file = write(os.path.join(dirname, "token"), token + "\n")
    path = os.path.join(dirname, "kubeconfig")
    kube.kubeconfig(path)
    with open(path) as f:
        cfg = json.load(f)
    cfg["users"][0]["user"] = {"tokenFile": token_file}
    write(path, json.dumps(cfg))
    return path, token_file


__all__ = ["FakeKube", "KubeDaemon", "capacity", "kube_requests", "kubeconfig_token_file", "node_seed",
           "tmpdir", "write", "free_port", "NODE", "POD_UID", "RESOURCE", "OWNER"]
