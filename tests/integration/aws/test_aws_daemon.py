#!/usr/bin/env python3
"""The real daemon (cloud-api-adaptor aws) against the fake EC2 endpoint,
driven over its hypervisor socket by caa-ctl: CreateVM/StartVM/StopVM make
and terminate one instance with the pod's name, sandbox id and user-data;
failures before and after RunInstances leave no instance behind; and
-cloud-config-verify stops the start on a missing AMI."""
import base64
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
from aws_harness import AMI, NODE, Tap, base_args, base_env, check, fake_or_skip  # noqa: E402
from caa_harness import Daemon, FakeForwarder, pod_annotations, sandbox_id  # noqa: E402

REAL_DAEMON = os.environ.get("CAA_DAEMON", "")
fake = None


class AwsDaemon(Daemon):
    """The production binary with the aws provider (not the test daemon)."""

    def __init__(self, aws_args=None, extra=(), env=None, forwarder=True, root=None):
        self.fwd = FakeForwarder() if forwarder else None
        super().__init__(root=root, args=list(extra), env=env if env is not None else base_env(fake),
                         forwarder=False, log_level="debug")
        self.aws_args = aws_args if aws_args is not None else base_args()

    def cmdline(self):
        base = [REAL_DAEMON, "aws", "-socket", self.sock, "-pods-dir", self.pods, "-log-level", self.log_level,
                "-disable-tls"]
        if self.fwd:
            base += ["-forwarder-port", str(self.fwd.port)]
        return base + self.aws_args + self.args


def alive():
    return [i for i in fake.instances() if i["state"] not in ("terminated", "shutting-down")]


def t_lifecycle():
    d = AwsDaemon().start()
    sid = sandbox_id(101)
    ann = pod_annotations("nginx", "default", {"io.katacontainers.config.hypervisor.default_vcpus": "2",
                                               "io.katacontainers.config.hypervisor.default_memory": "8192"})
    d.ctl_ok("create", sid, *ann)
    check(fake.instances() == [], "CreateVM must not call RunInstances")
    d.ctl_ok("start", sid, timeout=60)
    inst = alive()
    check(len(inst) == 1, "one instance after StartVM: %s" % inst)
    inst = inst[0]
    st = d.pod_state(sid)
    check(st["state"] == "ready" and st["instance_id"] == inst["id"], "state %s" % st)
    check(st["instance_ips"] == ["127.0.0.1"], "private IP from RunInstances: %s" % st["instance_ips"])
    tags = inst["tags"]
    check(tags["Name"] == st["instance_name"] and tags["caa.sandbox-id"] == sid and tags["caa.node"] == NODE,
          "tags %s" % tags)
    check(inst["client_token"] == st["idempotency_key"], "the pod's idempotency key is the client token")
    ud = base64.b64decode(inst["user_data"])
    check(ud.startswith(b"#cloud-config"), "user-data is the pod's cloud-config: %r" % ud[:40])
    check(inst["type"] == "m6a.large" and inst["image"] == AMI, "instance %s" % inst)
    d.ctl_ok("stop", sid, timeout=60)
    check(alive() == [], "StopVM must terminate the instance: %s" % alive())
    check(d.stop() == 0, "daemon exit")
    check(fake.state()["sig_failures"] == 0, "every request was signed correctly")


def t_failure_before_instance():
    fake.config(capacity=["m6a.large"])
    d = AwsDaemon().start()
    sid = sandbox_id(102)
    d.ctl_ok("create", sid, *pod_annotations("web", "default"))
    rc, _, err = d.ctl("start", sid, timeout=60)
    check(rc != 0 and "InsufficientInstanceCapacity" in err, "StartVM error: %s" % err)
    check(alive() == [], "nothing created: %s" % alive())
    d.ctl("stop", sid, timeout=60)
    check(d.stop() == 0, "daemon exit")


def t_failure_after_instance():
    """The agent never answers: the daemon gives up and deletes the instance."""
    d = AwsDaemon(forwarder=False, extra=["-forwarder-port", "1", "-proxy-timeout", "2s"])
    d.start()
    sid = sandbox_id(103)
    d.ctl_ok("create", sid, *pod_annotations("db", "default"))
    rc, _, err = d.ctl("start", sid, timeout=90)
    check(rc != 0, "StartVM must fail without an agent")
    check(len(fake.instances()) == 1, "the instance had been created: %s" % fake.instances())
    deadline = time.monotonic() + 20
    while alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    check(alive() == [], "instance left behind after a failed StartVM: %s" % alive())
    d.ctl("stop", sid, timeout=60)
    check(d.stop() == 0, "daemon exit")


def t_verify_fails_start():
    d = AwsDaemon(aws_args=base_args(**{"-imageid": "ami-0000000000000dead"}), extra=["-cloud-config-verify"])
    d.start(wait=False)
    rc = d.proc.wait(30)
    d.reader.join(5)
    check(rc == 1, "daemon exit status %s" % rc)
    check("InvalidAMIID.NotFound" in d.log(), "log names the AWS error:\n%s" % d.log())


def t_secrets_not_logged():
    d = AwsDaemon().start()
    sid = sandbox_id(104)
    d.ctl_ok("create", sid, *pod_annotations("s", "default"))
    d.ctl_ok("start", sid, timeout=60)
    d.ctl_ok("stop", sid, timeout=60)
    d.stop()
    log = d.log()
    check("fake-static-secret" not in log, "secret key in the daemon log")
    check("aws-secret-key" in log, "the effective configuration is logged (masked)")
    check(alive() == [], "instances left: %s" % alive())


def t_orphan_sweep():
    """Pod dirs wiped while their VMs run (a node reboot emptying /run): the
    next daemon's sweep terminates this node's orphan and never another
    node's instance."""
    import shutil
    theirs = AwsDaemon(aws_args=base_args(**{"-aws-node-name": "other-node"}),
                       extra=["-orphan-sweep-interval", "0"]).start()
    theirs.ctl_ok("create", sandbox_id(111), *pod_annotations("theirs", "default"))
    theirs.ctl_ok("start", sandbox_id(111), timeout=60)
    theirs.kill()
    d = AwsDaemon(extra=["-orphan-sweep-interval", "0"]).start()
    root = d.root
    d.ctl_ok("create", sandbox_id(112), *pod_annotations("mine", "default"))
    d.ctl_ok("start", sandbox_id(112), timeout=60)
    d.kill()
    check(len(alive()) == 2, "two instances running: %s" % alive())
    shutil.rmtree(d.pods)

    d2 = AwsDaemon(extra=["-orphan-sweep-interval", "1h", "-orphan-sweep-grace", "0"], root=root).start()
    d2.wait_log(r"orphan sweep: 1 unknown instance\(s\); 1 deleted", timeout=30)
    left = alive()
    check(len(left) == 1 and left[0]["tags"]["caa.node"] == "other-node", "only the other node's VM is left: %s" % left)
    check(d2.stop() == 0, "exit status")


def t_fault_matrix():
    """SIGKILL at each lifecycle step against the fake EC2 (test_daemon_fault_matrix.py): zero leftovers."""
    if os.environ.get("CAA_FAILPOINTS") != "true":
        return  # not compiled in (release build)
    from test_daemon_fault_matrix import Matrix

    # Bystanders that no cell may delete: another node's pod VM and an instance without our tags.
    fake.plant(1, [["caa.node", "other-node"]], "caa.sandbox-id")
    fake.plant(1, [], "owner-ref")
    bystanders = {i["id"] for i in alive()}

    def counts(_d):
        ids = {i["id"] for i in alive()}
        return {"instances": len(ids - bystanders), "wrongly deleted": len(bystanders - ids)}

    m = Matrix(lambda root, fp: AwsDaemon(root=root, env=base_env(fake, CAA_FAILPOINT=fp)), counts, 400)
    for fp in ("state:provisioning", "provider:before-create", "provider:create-answered", "instance:recorded",
               "state:ready"):
        m.start_cell(fp)
    for fp in ("state:stopping", "provider:before-delete", "instance:cleared", "state:gone"):
        m.stop_cell(fp)
    bad = m.report("aws (fake EC2)")
    check(not bad, "leftovers in %d cell(s): %r" % (len(bad), bad))


def t_cloud_faults():
    """A cloud fault at each EC2 call of StartVM/StopVM (throttling, 500,
    truncated or cut answers, no answer, an answer lost after the call was
    done): the shim's StartVM may fail, its StopVM (retried once, as the shim
    does) must leave no instance and no pod dir."""
    faults = {
        "throttled": lambda a: {"throttle": {a: 1}},
        "500": lambda a: {"fail": {a: {"status": 500, "code": "InternalError"}}},
        "truncated": lambda a: {"hostile": {a: {"mode": "truncated"}}},
        "reset": lambda a: {"hostile": {a: {"mode": "reset"}}},
        # With -aws-request-timeout 2s: the request never answered, and done but its answer lost.
        "timeout": lambda a: {"hostile": {a: {"mode": "silence"}}},
        "answer lost": lambda a: {"hostile": {a: {"mode": "late"}}},
    }
    rows = []
    n = 500
    for action in ("RunInstances", "DescribeInstances", "TerminateInstances"):
        for fault, cfg in faults.items():
            n += 1
            fake.reset(private_ip_override="127.0.0.1")
            fake.config(**cfg(action))
            d = AwsDaemon(aws_args=base_args(**{"-aws-request-timeout": "2s"}),
                          extra=["-orphan-sweep-interval", "0"]).start()
            sid = sandbox_id(n)
            d.ctl_ok("create", sid, *pod_annotations("cf", "default"))
            rc_start, _, _ = d.ctl("start", sid, timeout=90)
            rc, _, _ = d.ctl("stop", sid, timeout=90)
            if rc != 0:
                rc, _, _ = d.ctl("stop", sid, timeout=90)
            deadline = time.monotonic() + 20
            while alive() and time.monotonic() < deadline:
                time.sleep(0.2)
            pods = [e for e in os.listdir(d.pods) if e != ".tls"] if os.path.isdir(d.pods) else []
            rows.append((action, fault, "ok" if rc_start == 0 else "failed", "ok" if rc == 0 else "failed",
                         len(alive()), len(pods)))
            d.stop()
    print("# %-20s %-12s %-8s %-8s %9s %8s" % ("EC2 call", "fault", "StartVM", "StopVM", "instances", "pod dirs"))
    for r in rows:
        print("# %-20s %-12s %-8s %-8s %9d %8d" % r)
    bad = [r for r in rows if r[3] != "ok" or r[4] or r[5]]
    check(not bad, "cells with leftovers or a failing StopVM: %r" % bad)


TESTS = [
    ("CreateVM/StartVM/StopVM make and terminate one instance", t_lifecycle),
    ("StartVM failing at RunInstances leaves nothing", t_failure_before_instance),
    ("StartVM failing after RunInstances deletes the instance", t_failure_after_instance),
    ("-cloud-config-verify with a missing AMI stops the start", t_verify_fails_start),
    ("secrets stay out of the daemon log", t_secrets_not_logged),
    ("the orphan sweep terminates this node's orphans only", t_orphan_sweep),
    ("SIGKILL at every lifecycle step leaves nothing (fault matrix)", t_fault_matrix),
    ("a cloud fault at each EC2 call leaves nothing", t_cloud_faults),
]


def main():
    global fake
    fake = fake_or_skip(REAL_DAEMON, "CAA_DAEMON")
    if fake is None:
        return 77
    tap = Tap()
    for name, fn in TESTS:
        fake.reset(private_ip_override="127.0.0.1")
        tap.run(name, fn)
    fake.stop()
    return tap.finish()


if __name__ == "__main__":
    sys.exit(main())
