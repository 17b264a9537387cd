#!/usr/bin/env python3
"""caa-test-agent behind our agent-protocol-forwarder (plain TCP, loopback).

client -> agent-protocol-forwarder -> caa-test-agent, the path a test pod VM
runs. Checks that the forwarder relays the agent's Rust-encoded replies
(status {code: 0} present) and its errors. The agent's record file shows the
rewrites: CreateSandbox arrives without dns, and CreateContainer arrives with
{network, <pod namespace>} appended to OCI.Linux.Namespaces. As root, the
pod namespace is a real one made here, and the container's process is
checked to run inside it, with a parked WaitProcess that does not hold up
other calls through the relay. Without root, StartContainer must come back
with the agent's NOT_FOUND for the missing namespace.

Usage: test_via_forwarder.py --agent PATH --forwarder PATH. Output is TAP.
"""
import argparse
import json
import os
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ta_client import GRPC_NOT_FOUND, GRPC_UNIMPLEMENTED, Client, decode, get, msg  # noqa: E402
from ta_harness import (SIGTERM_STATUS, Agent, Proc, add_netns, check, expect_err, expect_ok,  # noqa: E402
                        ns_inode_text, process, read_all, run_tap, spec, wait_status)


def last_record(agent, method):
    recs = [r for r in agent.records() if r[1] == method]
    check(recs, "no %s in the record file" % method)
    return recs[-1][2]


def t_health(ctx):
    c = ctx["c"]
    r = expect_ok(c.call("grpc.Health", "Check", b""), "Check through the forwarder")
    check(r.payload == b"\x08\x01", "Check: want SERVING, got %s" % r.payload.hex())
    r = expect_ok(c.call("grpc.Health", "Version", b""), "Version through the forwarder")
    check(get(r.payload, 2, b"").startswith(b"caa-test-agent "), "agent_version %r" % r.payload)
    r = expect_ok(c.agent("SetPolicy", msg((1, "package agent_policy\n"))), "SetPolicy")
    return "empty reply relayed as %s" % (r.body.hex() or "0 bytes")


def t_sandbox(ctx):
    c = ctx["c"]
    expect_ok(c.agent("CreateSandbox", msg((1, "pod-host"), (2, ["nameserver 10.96.0.10", "search svc"]),
                                           (5, "sb-fwd"))), "CreateSandbox")
    got = last_record(ctx["agent"], "CreateSandbox")
    fields = decode(got)
    check(not [v for n, v in fields if n == 2], "dns reached the agent: %s" % got.hex())
    check(get(got, 1) == b"pod-host" and get(got, 5) == b"sb-fwd", "hostname/sandbox_id changed: %s" % got.hex())


def t_container(ctx):
    c, netns = ctx["c"], ctx["netns"]
    script = "readlink /proc/self/ns/net; echo hello; exit 3"
    req = msg((1, "ctr-fwd"), (2, "ctr-fwd"), (6, spec(["/bin/sh", "-c", script])))
    expect_ok(c.agent("CreateContainer", req), "CreateContainer")
    got = last_record(ctx["agent"], "CreateContainer")
    linux = get(get(got, 6, b""), 8, b"")
    namespaces = [(get(ns, 1, b"").decode(), get(ns, 2, b"").decode()) for n, ns in decode(linux) if n == 6]
    check(namespaces and namespaces[-1] == ("network", netns),
          "namespaces at the agent %r, want the pod's %s last" % (namespaces, netns))
    if not ctx["root"]:
        expect_err(c.agent("StartContainer", msg((1, "ctr-fwd"))), GRPC_NOT_FOUND, "network namespace",
                   "StartContainer without the pod namespace")
        return "not root: the agent's NOT_FOUND relayed"
    expect_ok(c.agent("StartContainer", msg((1, "ctr-fwd"))), "StartContainer")
    status = wait_status(c.agent("WaitProcess", msg((1, "ctr-fwd"), (2, "ctr-fwd"))))
    check(status == 3, "exit status %d, want 3" % status)
    out = read_all(c, "ctr-fwd", "ctr-fwd").decode().splitlines()
    check(out == [ns_inode_text(netns), "hello"], "stdout %r, want the pod namespace and hello" % out)


def t_parked(ctx):
    if not ctx["root"]:
        return "SKIP not root (no pod namespace to start processes in)"
    c = ctx["c"]
    expect_ok(c.agent("ExecProcess", msg((1, "ctr-fwd"), (2, "exec-sleep"), (4, process(["/bin/sleep", "60"])))),
              "ExecProcess")
    sid = c.send("grpc.AgentService", "WaitProcess", msg((1, "ctr-fwd"), (2, "exec-sleep")))
    t0 = time.monotonic()
    expect_ok(c.call("grpc.Health", "Check", b""), "Check while WaitProcess is parked")
    check(c.poll(sid) is None, "WaitProcess answered while the process sleeps")
    check(time.monotonic() - t0 < 5, "Check took %.1fs" % (time.monotonic() - t0))
    expect_ok(c.agent("SignalProcess", msg((1, "ctr-fwd"), (2, "exec-sleep"), (3, int(signal.SIGTERM)))),
              "SignalProcess")
    status = wait_status(c.wait(sid))
    check(status == SIGTERM_STATUS, "status %d, want %d" % (status, SIGTERM_STATUS))


def t_errors(ctx):
    c = ctx["c"]
    expect_err(c.agent("StatsContainer", msg((1, "ctr-fwd"))), GRPC_UNIMPLEMENTED, "StatsContainer",
               "StatsContainer through the forwarder")
    expect_err(c.agent("WaitProcess", msg((1, "ctr-none"))), GRPC_NOT_FOUND, "ctr-none", "unknown container")
    expect_ok(c.agent("RemoveContainer", msg((1, "ctr-fwd"))), "RemoveContainer")
    expect_ok(c.agent("DestroySandbox", b""), "DestroySandbox")


def t_shutdown(ctx):
    ctx["c"].close()
    rc = ctx["fwd"].stop()
    check(rc == 0, "forwarder exit status %d:\n%s" % (rc, ctx["fwd"].log()))
    rc = ctx["agent"].stop()
    check(rc == 0, "agent exit status %d:\n%s" % (rc, ctx["agent"].log()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", required=True)
    ap.add_argument("--forwarder", required=True)
    opts = ap.parse_args()

    def setup(ctx):
        tmp = ctx["tmp"]
        ctx["root"] = os.geteuid() == 0
        ctx["netns"] = (add_netns("caa-ta-fwd-%d" % os.getpid()) if ctx["root"]
                        else "/run/netns/caa-ta-fwd-missing-%d" % os.getpid())
        ctx["agent"] = Agent(opts.agent, tmp)
        apf = os.path.join(tmp, "apf.json")
        with open(apf, "w") as f:
            json.dump({"pod-name": "test-agent-pod"}, f)
        ctx["fwd"] = Proc("agent-protocol-forwarder",
                          [opts.forwarder, "-config", apf, "-listen", "127.0.0.1:0", "-disable-tls",
                           "-kata-agent-socket", ctx["agent"].sock, "-pod-namespace", ctx["netns"],
                           "-log-level", "debug"])
        port = int(ctx["fwd"].wait_log(r"listening on port (\d+)", timeout=60).group(1))
        ctx["c"] = Client(("127.0.0.1", port), timeout=30)

    scenarios = [
        ("Health Check, Version and an empty reply through the forwarder", t_health),
        ("CreateSandbox reaches the agent without dns", t_sandbox),
        ("CreateContainer gets the pod namespace; the process runs in it", t_container),
        ("a parked WaitProcess does not hold up other calls through the relay", t_parked),
        ("agent errors come back through the forwarder", t_errors),
        ("forwarder and agent exit 0 on SIGTERM", t_shutdown),
    ]
    return run_tap(scenarios, setup, logs=lambda ctx: [ctx[k] for k in ("agent", "fwd") if k in ctx])


if __name__ == "__main__":
    sys.exit(main())
