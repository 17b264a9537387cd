#!/usr/bin/env python3
"""The real daemon (cloud-api-adaptor azure) against the fake Azure endpoint,
driven with caa-ctl: CreateVM / StartVM / StopVM create and delete a VM with
the ownership tags and the pod's user data; a failed VM operation, a quota
error and a daemon shutdown during a create leave no VM behind (or, for the
shutdown, a recorded id that the next StopVM deletes). The pod VM's
forwarder is the harness's FakeForwarder on 127.0.0.1 (plain TCP)."""
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

from caa_harness import Daemon, FakeForwarder, check, pod_annotations, run_main, sandbox_id

REAL_DAEMON = os.environ.get("CAA_DAEMON", "")
FAKE = os.path.join(os.environ.get("CAA_SOURCE_ROOT", "."), "tests", "integration", "azure", "fake_arm.py")
SECRET = "s3cr3t-value"


class Fake:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, FAKE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        self.url = "http://127.0.0.1:%d" % int(self.proc.stdout.readline().split()[1])

    def call(self, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method="POST" if data is not None else "GET")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def config(self, **kw):
        self.call("/_fake/config", kw)

    def state(self):
        return self.call("/_fake/state")

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


class AzureDaemon(Daemon):
    def __init__(self, fake, forwarder, **kw):
        super().__init__(**kw)
        self.fake = fake
        self.forwarder_port = forwarder.port

    def cmdline(self):
        f = self.fake.url
        return [REAL_DAEMON, "azure", "-socket", self.sock, "-pods-dir", self.pods, "-log-level", self.log_level,
                "-disable-tls", "-forwarder-port", str(self.forwarder_port), "-proxy-timeout", "10s",
                "-clientid", "client-1", "-tenantid", "tenant-1", "-subscriptionid", "sub-1",
                "-region", "eastus", "-resourcegroup", "rg-1",
                "-subnetid", "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Network/virtualNetworks/"
                "vnet/subnets/default",
                "-imageid", "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Compute/images/podvm",
                "-authority-host", f, "-resource-manager-endpoint", f, "-node-name", "worker-7",
                "-poll-interval", "20ms", "-retry-max-delay", "100ms", "-tags", "owner=it"] + self.args


def wait_vms(fake, n, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if len(fake.state()["vms"]) == n:
            return True
        time.sleep(0.05)
    return False


# Cloud faults, each once at one ARM call: (name, hostile entry without match/method).
ARM_FAULTS = [
    ("429", {"status": 429, "headers": {"Retry-After": "0"},
             "body": '{"error": {"code": "TooManyRequests", "message": "retry later"}}'}),
    ("500", {"status": 500, "body": '{"error": {"code": "InternalServerError", "message": "try again"}}'}),
    ("timeout", {"delay_ms": 4000}),  # the daemon runs with -request-timeout 2s
    ("truncated", {"truncate": True}),  # the real answer with half its body (a consistent Content-Length)
    ("cut", {"cut": True}),  # half the real answer, then the connection closes
]
# The ARM calls of StartVM and StopVM: (name, method, path part, armed before StopVM).
ARM_CALLS = [
    ("VM PUT", "PUT", "/virtualMachines/", False),
    ("create poll", "GET", "/operations/", False),
    ("VM GET", "GET", "/virtualMachines/podvm-", False),
    ("NIC GET", "GET", "/networkInterfaces/", False),
    ("VM DELETE", "DELETE", "/virtualMachines/", True),
    ("delete poll", "GET", "/operations/", True),
]


def cloud_faults(fake, fwd, env, vms_left):
    """A cloud fault at each ARM call of StartVM/StopVM, in the fault matrix's
    table: StartVM may fail, StopVM (retried once) must leave no VM."""
    from test_daemon_fault_matrix import Matrix

    def new_daemon(root, _fp):
        return AzureDaemon(fake, fwd, root=root, args=["-orphan-sweep-interval", "0", "-request-timeout", "2s"],
                           env=env)

    m = Matrix(new_daemon, vms_left, 600)
    for call, method, part, at_stop in ARM_CALLS:
        for fault, entry in ARM_FAULTS:
            def arm(_sid, entry=entry, method=method, part=part):
                fake.config(hostile=dict(entry, match=part, method=method, count=1))
            m.fault_cell(call, fault, None if at_stop else arm, lambda: fake.config(hostile=None),
                         before_stop=arm if at_stop else None)
    bad = m.report_faults("azure (fake ARM)")
    check(not bad, "cloud-fault cells with a failed StopVM or leftovers: %r" % bad)


def main():
    if not REAL_DAEMON:
        print("CAA_DAEMON not set")
        sys.exit(77)
    fake = Fake()
    fwd = FakeForwarder()
    try:
        fake.config(private_ip_fixed="127.0.0.1")
        # The secret comes from the environment, as in the upstream DaemonSet.
        d = AzureDaemon(fake, fwd, env={"AZURE_CLIENT_SECRET": SECRET}).start()

        # The happy path.
        sid = sandbox_id(1)
        d.ctl_ok("create", sid, *pod_annotations("nginx", "default"))
        check(fake.state()["vms"] == {}, "CreateVM must not create a VM")
        out = d.ctl_ok("start", sid, timeout=60)
        check(out.strip() == "started " + sid, "start output %r" % out)
        st = fake.state()
        name = "podvm-nginx-" + sid[:8]
        check(list(st["vms"]) == [name], "one VM named %s: %s" % (name, list(st["vms"])))
        tags = st["vms"][name]["tags"]
        check(tags == {"owner": "it", "caa-node": "worker-7", "caa-sandbox-id": sid}, "tags %s" % tags)
        ud = base64.b64decode(st["puts"][0]["properties"]["userData"]).decode()
        check(ud.startswith("#cloud-config\n") and "/run/peerpod/apf.json" in ud, "user data is the cloud-config")
        ps = d.pod_state(sid)
        check(ps["state"] == "ready", "pod state %s" % ps["state"])
        check(ps["instance_id"] == "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Compute/"
              "virtualMachines/" + name, "instance id %s" % ps["instance_id"])
        check(ps["instance_ips"] == ["127.0.0.1"], "instance ips %s" % ps["instance_ips"])
        check(("grpc.Health", "Check") in fwd.requests, "the daemon reached the forwarder")
        d.ctl_ok("stop", sid, timeout=60)
        check(wait_vms(fake, 0), "StopVM deletes the VM: %s" % fake.state()["vms"])
        log = d.log()
        check(SECRET not in log, "the client secret must not be logged")
        check("tok-" not in log, "tokens must not be logged")

        # The VM operation fails: StartVM fails with the ARM error, no VM is left.
        fake.config(lro_result="Failed")
        sid = sandbox_id(2)
        d.ctl_ok("create", sid, *pod_annotations("web", "default"))
        rc, _, err = d.ctl("start", sid, timeout=60)
        check(rc != 0, "StartVM must fail")
        check("OSProvisioningTimedOut" in err, "error names the ARM code: %s" % err)
        check(wait_vms(fake, 0), "failed VM deleted: %s" % fake.state()["vms"])
        d.ctl("stop", sid, timeout=60)

        # Quota.
        fake.config(lro_result="Succeeded", put_error={
            "status": 409, "code": "OperationNotAllowed",
            "message": "Operation could not be completed as it results in exceeding approved "
                       "standardDCASv5Family Cores quota."})
        sid = sandbox_id(3)
        d.ctl_ok("create", sid, *pod_annotations("db", "default"))
        rc, _, err = d.ctl("start", sid, timeout=60)
        check(rc != 0 and "quota" in err, "quota error is clear: %s" % err)
        check(fake.state()["vms"] == {}, "no VM after a quota error")
        d.ctl("stop", sid, timeout=60)

        # A daemon killed (SIGKILL) while a create is in flight: the next
        # daemon's StopVM finds the VM by name among the VMs tagged for this
        # node (list_instances) and deletes it. (SIGTERM cancels the create,
        # and the provider reports the VM's id, which the state file keeps.)
        fake.config(put_error=None, lro_result="never")
        sid = sandbox_id(4)
        d.ctl_ok("create", sid, *pod_annotations("slow", "default"))
        starter = subprocess.Popen([os.environ["CAA_CTL"], "-socket", d.sock, "start", sid],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        check(wait_vms(fake, 1), "the slow VM was PUT")
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait(timeout=30)
        starter.wait(timeout=30)
        d2 = AzureDaemon(fake, fwd, root=d.root, env={"AZURE_CLIENT_SECRET": SECRET}).start()
        d2.ctl("stop", sid, timeout=60)
        check(wait_vms(fake, 0), "StopVM after restart deletes the VM: %s" % fake.state()["vms"])
        check(d2.count_log(r"looking for instance podvm-slow-") == 1, "found through list_instances")
        d2.stop()

        # Orphan sweep: pod dirs wiped while the VMs run (a node reboot emptying
        # /run). The next daemon deletes this node's VM and never another node's.
        fake.config(lro_result="Succeeded")
        env = {"AZURE_CLIENT_SECRET": SECRET}
        other = AzureDaemon(fake, fwd, args=["-node-name", "worker-8", "-orphan-sweep-interval", "0"],
                            env=env).start()
        other.ctl_ok("create", sandbox_id(5), *pod_annotations("theirs", "default"))
        other.ctl_ok("start", sandbox_id(5), timeout=60)
        other.kill()
        d3 = AzureDaemon(fake, fwd, args=["-orphan-sweep-interval", "0"], env=env).start()
        d3.ctl_ok("create", sandbox_id(6), *pod_annotations("mine", "default"))
        d3.ctl_ok("start", sandbox_id(6), timeout=60)
        d3.kill()
        shutil.rmtree(d3.pods)
        check(wait_vms(fake, 2), "two VMs run: %s" % list(fake.state()["vms"]))
        d4 = AzureDaemon(fake, fwd, root=d3.root, args=["-orphan-sweep-interval", "1h", "-orphan-sweep-grace", "0"],
                         env=env).start()
        d4.wait_log(r"orphan sweep: 1 unknown instance\(s\); 1 deleted", timeout=30)
        check(wait_vms(fake, 1), "one VM left: %s" % list(fake.state()["vms"]))
        left = list(fake.state()["vms"].values())[0]
        check(left["tags"]["caa-node"] == "worker-8", "the other node's VM is kept: %s" % left["tags"])
        d4.stop()

        # Fault matrix (test_daemon_fault_matrix.py): SIGKILL at each lifecycle
        # step, the next daemon gets the shim's next call, nothing is left.
        if os.environ.get("CAA_FAILPOINTS") == "true":
            from test_daemon_fault_matrix import Matrix

            # Bystanders no cell may delete: the other node's VM from above and a VM without our tags.
            fake.call("/_fake/plant", {"count": 1, "prefix": "not-ours-", "tags": {}, "sandbox_tag": "owner-ref"})
            bystanders = set(fake.state()["vms"])
            base = len(bystanders)

            def new_daemon(root, fp):
                e = dict(env, CAA_FAILPOINT=fp) if fp else env
                return AzureDaemon(fake, fwd, root=root, args=["-orphan-sweep-interval", "0"], env=e)

            def vms_left(d):
                wait_vms(fake, base)
                names = set(fake.state()["vms"])
                return {"instances": len(names - bystanders), "wrongly deleted": len(bystanders - names)}

            m = Matrix(new_daemon, vms_left, 500)
            for fp in ("state:provisioning", "provider:before-create", "provider:create-answered",
                       "instance:recorded", "state:ready"):
                m.start_cell(fp)
            for fp in ("state:stopping", "provider:before-delete", "instance:cleared", "state:gone"):
                m.stop_cell(fp)
            bad = m.report("azure (fake ARM)")
            check(not bad, "leftovers in %d cell(s): %r" % (len(bad), bad))
            cloud_faults(fake, fwd, env, vms_left)
    finally:
        fwd.close()
        fake.close()


if __name__ == "__main__":
    run_main(main)
