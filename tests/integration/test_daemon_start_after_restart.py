#!/usr/bin/env python3
"""CreateVM, then the daemon is killed with SIGKILL before StartVM: the next
daemon starts the pod with the size and boot data of its CreateVM (read back
from start-request.json), and a second pod created before the kill is stopped
without a VM ever being made. A damaged start request refuses StartVM (never a
VM without boot data) and StopVM still removes the pod."""
import json
import os
import signal
import stat

from caa_harness import Daemon, check, pod_annotations, run_main, sandbox_id, tmpdir

SIZE = {
    "io.katacontainers.config.hypervisor.default_vcpus": "3",
    "io.katacontainers.config.hypervisor.default_memory": "3072",
}


def main():
    root = tmpdir()
    d = Daemon(root=root).start()
    started, stopped, damaged = sandbox_id(60), sandbox_id(61), sandbox_id(62)
    d.ctl_ok("create", started, *pod_annotations("web", extra=SIZE))
    d.ctl_ok("create", stopped, *pod_annotations("idle"))
    d.ctl_ok("create", damaged, *pod_annotations("broken"))
    req_path = os.path.join(d.pods, started, "start-request.json")
    st = os.lstat(req_path)
    check(stat.S_IMODE(st.st_mode) == 0o600, "start-request.json is 0600")
    with open(req_path) as f:
        req = json.load(f)
    check(req["vcpus"] == 3 and req["memory_mib"] == 3072, "size persisted: %r" % req)
    check("#cloud-config" not in open(req_path).read(), "user-data stored encoded")
    with open(os.path.join(d.pods, damaged, "start-request.json"), "w") as f:
        f.write('{"version": 1, "sandbox_id": ')

    d.stop(signal.SIGKILL)
    check(d.instances() == [], "no instance before StartVM")

    d = Daemon(root=root).start()
    d.ctl_ok("start", started)
    insts = d.instances()
    check(len(insts) == 1, "one instance after StartVM: %r" % insts)
    inst = d.instance(insts[0])
    check(inst["vcpus"] == 3 and inst["memory_mib"] == 3072, "the CreateVM size: %r" % inst)
    ud = d.user_data(insts[0])
    check(ud.startswith(b"#cloud-config"), "the CreateVM boot data reached the VM")
    check(d.pod_state(started)["state"] == "ready", "pod ready")

    rc, _, err = d.ctl("start", damaged)
    check(rc != 0 and "request is lost" in err, "a damaged start request refuses StartVM: %d %s" % (rc, err))
    check(d.count_log(r"cannot be started: its start request is lost") == 1, "logged once")
    check(len(d.instances()) == 1, "no VM for the damaged pod")

    for sid in (started, stopped, damaged):
        d.ctl_ok("stop", sid)
        check(not os.path.exists(os.path.join(d.pods, sid)), "pod dir of %s removed" % sid[-4:])
    check(d.instances() == [], "no instance left: %r" % d.instances())
    check(d.stop() == 0, "exit status")
    check(os.listdir(d.pods) == [], "pods dir empty: %r" % os.listdir(d.pods))
    print("ok: StartVM after SIGKILL used the persisted request; every pod stopped, nothing left")


if __name__ == "__main__":
    run_main(main)
