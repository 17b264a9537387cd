#!/usr/bin/env python3
"""The daemon's agent path end to end, on loopback:

caa-ctl (as the shim) -> daemon (test provider, VM IP 127.0.0.1) -> agent
proxy on <pods-dir>/<id>/agent.ttrpc -> agent-protocol-forwarder (our
forwarder with the apf.json the daemon wrote for the pod) -> caa-test-agent
(tests/test-agent, the stand-in kata-agent; it records every request).

- plain TCP (-disable-tls) and TLS (built-in CA, per-pod server certificate,
  generated client certificate): StartVM waits while no forwarder listens and
  returns only after the Health check through the forwarder passed;
  `caa-ctl check` through the agent socket answers SERVING; StopVM removes the
  socket and the instance;
- a forwarder that never comes up: StartVM fails within a short
  -proxy-timeout and no instance is left;
- TLS with the wrong server certificate (another pod's apf.json): the name
  check refuses it and StartVM fails the same way.
"""
import os
import subprocess
import sys
import time

from agent_helpers import Child, _kill_all, free_port, health_checks, start_agent
from caa_harness import CTL, Daemon, check, fail, pod_annotations, run_main, sandbox_id, tmpdir

FORWARDER = os.environ.get("CAA_FORWARDER", "")
TEST_AGENT = os.environ.get("CAA_TEST_AGENT", "")

def start_forwarder(apf, port, agent_sock, tls):
    argv = [FORWARDER, "-config", apf, "-listen", "127.0.0.1:%d" % port, "-kata-agent-socket", agent_sock,
            "-pod-namespace", "/run/netns/podns-caa-it-unused", "-log-level", "debug"]
    if not tls:
        argv.append("-disable-tls")
    f = Child(argv)
    f.wait_line("listening on port %d" % port)
    return f


def start_vm_async(d, sid):
    return subprocess.Popen([CTL, "-socket", d.sock, "-pods-dir", d.pods, "start", sid], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def scenario_ready(tls):
    what = "TLS" if tls else "plain TCP"
    root = tmpdir()
    port = free_port()
    args = ["-test-ip", "127.0.0.1", "-forwarder-port", str(port), "-proxy-timeout", "60s"]
    if not tls:
        args.append("-disable-tls")
    d = Daemon(root=root, forwarder=False, args=args, log_level="debug").start()
    agent_sock = os.path.join(root, "kata-agent.sock")
    record = os.path.join(root, "agent-requests")
    agent = start_agent(agent_sock, record)

    sid = sandbox_id(10 if tls else 11)
    sock = d.ctl_ok("create", sid, *pod_annotations("e2e", "default")).strip()
    apf = os.path.join(d.pods, sid, "apf.json")
    start = start_vm_async(d, sid)
    try:
        # No forwarder yet: the proxy listens and keeps dialling; StartVM waits.
        d.wait_log(r"sandbox=%s agent proxy: connecting to 127\.0\.0\.1:%d \(%s\)" % (sid, port, what))
        d.wait_log(r"sandbox=%s agent proxy: .*connection refused" % sid)
        check(start.poll() is None, "%s: StartVM returned before the forwarder was up" % what)
        check(d.pod_state(sid)["state"] == "connecting", "%s: state while connecting: %s" % (what, d.pod_state(sid)))
        check(health_checks(record) == 0, "the agent saw a call before the forwarder existed")

        fwd = start_forwarder(apf, port, agent_sock, tls)
        out, err = start.communicate(timeout=30)
    finally:
        if start.poll() is None:
            start.kill()
            start.wait()
    check(start.returncode == 0, "%s: StartVM failed: %s\n--- daemon:\n%s" % (what, err.decode(), d.log()))
    check(d.pod_state(sid)["state"] == "ready", "%s: state after StartVM" % what)
    check(health_checks(record) >= 1, "%s: StartVM returned without a Health check reaching the agent" % what)
    d.wait_log(r"sandbox=%s agent proxy: connected to 127\.0\.0\.1:%d" % (sid, port))
    if tls:
        fwd.wait_line("TLS")

    # The shim's view: the agent socket answers, through proxy + forwarder.
    n = health_checks(record)
    check(d.ctl_ok("check", sid).strip() == "SERVING", "%s: check through the agent socket" % what)
    check(health_checks(record) == n + 1, "%s: caa-ctl check did not reach the agent" % what)

    # StopVM tears the proxy down with the instance.
    d.ctl_ok("stop", sid)
    check(not os.path.exists(sock), "%s: agent socket left after StopVM" % what)
    check(d.instances() == [], "%s: instance left after StopVM" % what)
    rc, _, err = d.ctl("check", "-agent-socket", sock)
    check(rc == 1, "%s: the agent socket still answers after StopVM" % what)
    check(d.stop() == 0, "%s: exit status" % what)
    check("PRIVATE KEY" not in d.log(), "%s: key material in the daemon log" % what)
    fwd.stop()
    agent.stop()


def scenario_never_up():
    port = free_port()
    d = Daemon(forwarder=False, args=["-test-ip", "127.0.0.1", "-forwarder-port", str(port), "-disable-tls",
                                      "-proxy-timeout", "1500ms"]).start()
    sid = sandbox_id(12)
    sock = d.ctl_ok("create", sid, *pod_annotations("lost", "default")).strip()
    t0 = time.monotonic()
    rc, _, err = d.ctl("start", sid)
    took = time.monotonic() - t0
    check(rc == 1 and "UNAVAILABLE" in err and "no connection to the agent-protocol-forwarder" in err,
          "StartVM without a forwarder: rc %d: %s" % (rc, err))
    check(1.4 <= took < 6.0, "StartVM without a forwarder took %.2fs (proxy timeout 1.5s)" % took)
    check(d.instances() == [], "instance left after a failed StartVM: %s" % d.instances())
    st = d.pod_state(sid)
    check(st["state"] == "failed" and st["instance_id"] is None, "state after the failed start: %s" % st)
    check(not os.path.exists(sock), "agent socket left after a failed StartVM")
    d.ctl_ok("stop", sid)
    check(d.stop() == 0, "exit status")


def scenario_wrong_certificate():
    root = tmpdir()
    port = free_port()
    d = Daemon(root=root, forwarder=False,
               args=["-test-ip", "127.0.0.1", "-forwarder-port", str(port), "-proxy-timeout", "3s"]).start()
    agent_sock = os.path.join(root, "kata-agent.sock")
    agent = start_agent(agent_sock)
    a, b = sandbox_id(13), sandbox_id(14)
    d.ctl_ok("create", a, *pod_annotations("alpha", "default"))
    d.ctl_ok("create", b, *pod_annotations("beta", "default"))
    # The forwarder holds pod b's certificate; pod a's proxy must refuse it.
    fwd = start_forwarder(os.path.join(d.pods, b, "apf.json"), port, agent_sock, True)
    rc, _, err = d.ctl("start", a)
    check(rc == 1 and "hostname mismatch" in err, "StartVM against another pod's certificate: rc %d: %s" % (rc, err))
    check(d.instances() == [], "instance left after the refused certificate")
    d.ctl_ok("stop", a)
    d.ctl_ok("stop", b)
    check(d.stop() == 0, "exit status")
    fwd.stop()
    agent.stop()


def main():
    if not FORWARDER or not TEST_AGENT:
        print("SKIP: needs the forwarder (CAA_FORWARDER) and caa-test-agent (CAA_TEST_AGENT)")
        sys.exit(77)
    try:
        scenario_never_up()
        scenario_ready(tls=False)
        scenario_ready(tls=True)
        scenario_wrong_certificate()
    finally:
        _kill_all()


run_main(main)
