#!/usr/bin/env python3
"""A recovered ready pod whose VM's forwarder answers only long after the
daemon restarted: the agent proxy keeps reconnecting in the background (the
same backoff as a fresh start, cycle after cycle of -proxy-timeout), the pod
stays ready, GetInfo and the log say it is reconnecting, and once the
forwarder is up the agent socket works again without a StopVM."""
from caa_harness import Daemon, FakeForwarder, check, free_port, pod_annotations, run_main, sandbox_id, tmpdir

PROXY_TIMEOUT = "1s"


def daemon(root, port):
    return Daemon(root=root, forwarder=False, args=["-test-ip", "127.0.0.1", "-disable-tls", "-forwarder-port",
                                                    str(port), "-proxy-timeout", PROXY_TIMEOUT])


def info(d):
    """(instance id, agent link state) from GetInfo."""
    rc, out, err = d.ctl("info", "late", "default")
    check(rc == 0, "GetInfo failed: %s" % err)
    state = ""
    for line in err.splitlines():
        if line.startswith("agent connection: "):
            state = line[len("agent connection: "):]
    return out.strip(), state


def main():
    root = tmpdir()
    port = free_port()
    fwd = FakeForwarder(port=port)
    d = daemon(root, port).start()
    sid = sandbox_id(150)
    d.ctl_ok("create", sid, *pod_annotations("late"))
    d.ctl_ok("start", sid)
    vmid, state = info(d)
    check(vmid and state == "connected", "a fresh pod is connected: %r %r" % (vmid, state))
    check(d.stop() == 0, "exit status")  # the VM is kept for the next daemon
    fwd.close()  # the forwarder is away while the daemon restarts

    d = daemon(root, port).start()
    # Past the first cycle (the proxy timeout) and two more: still trying, still ready.
    d.wait_log(r"sandbox=%s agent proxy has not reconnected to the pod VM %s yet" % (sid, vmid), timeout=15)
    for _ in range(3):
        d.wait_log(r"sandbox=%s agent proxy: no connection to 127\.0\.0\.1:%d for .*; still reconnecting"
                   % (sid, port), timeout=15, start=len(d.log().splitlines()))
    check(d.pod_state(sid)["state"] == "ready", "the pod stays ready: %s" % d.pod_state(sid))
    got, state = info(d)
    check(got == vmid and state == "reconnecting", "GetInfo while reconnecting: %r %r" % (got, state))
    d.wait_log(r"GetInfo for default/late: instance %s, agent proxy reconnecting" % vmid)
    rc, _, err = d.ctl("check", sid)
    check(rc == 1 and "UNAVAILABLE" in err, "no agent yet: %s" % err)

    # The forwarder comes up late: the proxy gets there by itself.
    fwd = FakeForwarder(port=port)
    try:
        d.wait_log(r"sandbox=%s agent proxy: reconnected to 127\.0\.0\.1:%d" % (sid, port), timeout=15)
        got, state = info(d)
        check(state == "connected", "GetInfo after the forwarder came up: %r" % state)
        d.ctl_ok("check", sid)
        check(("grpc.Health", "Check") in fwd.requests, "the forwarder was reached")
        d.ctl_ok("stop", sid)
        check(d.instances() == [], "StopVM deleted the instance: %r" % d.instances())
        check(d.stop() == 0, "exit status")
    finally:
        fwd.close()
    print("ok: a recovered pod reconnects in the background until its forwarder answers")


if __name__ == "__main__":
    run_main(main)
