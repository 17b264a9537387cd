#!/usr/bin/python3
"""The daemon with Kubernetes on, under valgrind: node resource advertised and removed, CreateVM
with pull secrets (a good and a bad secret), a 429 and a 503 retried, PeerPod created and
released, a call still in flight at shutdown; no memory errors, no leaks, clean exit."""
import json
import os
import shutil
import signal
import sys

from caa_harness import SANITIZED, check, pod_annotations, run_main, sandbox_id
from kube_daemon import FakeKube, KubeDaemon, capacity, tmpdir
from test_daemon_kube_secrets import NS, b64, secret, seed

VALGRIND = ["valgrind", "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
            "--show-leak-kinds=definite,indirect", "--track-fds=no", "--quiet"]


def main():
    good = secret("good", ".dockerconfigjson", b64(json.dumps({"auths": {"r.example": {"username": "u",
                                                                                         "password": "p"}}})))
    bad = secret("bad", ".dockerconfigjson", "***")
    with FakeKube(token="t1", tls=True, seed=seed(["good"], [], [good, bad])) as kube:
        kube.fault(path="/api/v1/nodes/", status=429, retry_after=0, count=1)
        d = KubeDaemon(kube.kubeconfig(os.path.join(tmpdir(), "kc")), env={"CLOUD_PROVIDER": "libvirt"},
                       wrapper=VALGRIND).start(timeout=60)
        d.wait_log(r"advertised", timeout=60)
        sid = sandbox_id(70)
        kube.fault(path="/serviceaccounts/", status=503, count=1)
        d.ctl_ok("create", sid, *pod_annotations("web", NS, {"io.kubernetes.cri.sandbox-uid": "u-1"}), timeout=60)
        d.ctl_ok("start", sid, timeout=60)
        d.wait_log(r"created PeerPod", timeout=60)
        d.ctl_ok("stop", sid, timeout=60)
        d.wait_log(r"released PeerPod", timeout=60)
        # A bad secret: the error path.
        pod = [o for o in kube.objects("pods") if o["metadata"]["name"] == "web"][0]
        pod["spec"]["imagePullSecrets"] = [{"name": "bad"}]
        kube.put_objects([pod])
        rc, _, err = d.ctl("create", sandbox_id(71), *pod_annotations("web", NS), timeout=60)
        check(rc != 0 and "INVALID_ARGUMENT" in err, "bad secret: %s" % err)
        # A CreateVM still waiting for the API server when the daemon stops.
        kube.fault(path="/pods/web", status=0, delay=5, count=1)
        import subprocess
        from caa_harness import CTL
        pending = subprocess.Popen([CTL, "-socket", d.sock, "create", sandbox_id(72), *pod_annotations("web", NS)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        d.wait_log(r"sandbox=%s CreateVM" % sandbox_id(72), timeout=30)
        rc = d.stop(signal.SIGTERM, timeout=90)
        pending.wait(30)
        check(rc == 0, "daemon under valgrind exited %d (99 = valgrind found errors):\n%s" % (rc, d.log()))
        check(capacity(kube)[0] is None, "node resource removed")


if __name__ == "__main__":
    if SANITIZED or not shutil.which("valgrind"):
        print("SKIP: sanitized build or no valgrind")
        sys.exit(77)
    run_main(main)
