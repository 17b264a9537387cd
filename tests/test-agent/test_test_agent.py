#!/usr/bin/env python3
"""caa-test-agent driven over its unix socket by an independent ttRPC client.

Checks: Health Check/Version (with the kata-agent's Rust success encoding,
status {code: 0} present); CreateSandbox, SetPolicy, GetGuestDetails;
CreateContainer + StartContainer + WaitProcess (status 3) + ReadStdout
("hello\n"); env, cwd and stderr; a sleeping ExecProcess whose WaitProcess
stays parked while other calls complete, then SignalProcess; WriteStdin,
CloseStdin and a long-polling ReadStdout; the built-in pause; CopyFile
(written under the scratch directory, paths outside /run and through
symlinks refused); UNIMPLEMENTED for unknown methods and services;
RemoveContainer killing a running process; calls parked on a connection that
closes; the record file, line by line; shutdown on SIGTERM (socket removed,
processes killed). As root: containers joining a network namespace named in
the OCI spec or given by -pod-netns (inode compared), and a clear error
without CAP_SYS_ADMIN.

Usage: test_test_agent.py --agent PATH [--valgrind]. Output is TAP. Every
process started here is killed by PID and the namespace and temporary
directory are removed on every exit path.
"""
import argparse
import os
import shutil
import signal
import stat
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ta_client import (GRPC_FAILED_PRECONDITION, GRPC_INVALID_ARGUMENT, GRPC_NOT_FOUND,  # noqa: E402
                       GRPC_PERMISSION_DENIED, GRPC_UNIMPLEMENTED, GRPC_UNKNOWN, get, msg)
from ta_harness import (SIGKILL_STATUS, SIGTERM_STATUS, VALGRIND, Agent, add_netns, check,  # noqa: E402
                        create_container, expect_err, expect_ok, ns_inode_text, process, read_all, run_container,
                        run_tap, spec, wait_status)


# ---------------------------------------------------------------- scenarios

def t_health(ctx):
    c = ctx["c"]
    mode = stat.S_IMODE(os.stat(ctx["agent"].sock).st_mode)
    check(mode == 0o600, "socket mode %o, want 600" % mode)
    r = expect_ok(c.call("grpc.Health", "Check", b""), "Check")
    check(r.body.startswith(b"\x0a\x00"), "Check: Response without explicit status 0a 00: %s" % r.body.hex())
    check(r.payload == b"\x08\x01", "Check: want SERVING (08 01), got %s" % r.payload.hex())
    r = expect_ok(c.call("grpc.Health", "Version", b""), "Version")
    ver = get(r.payload, 2, b"").decode()
    check(ver.startswith("caa-test-agent "), "agent_version %r" % ver)
    return ver


def t_sandbox(ctx):
    c = ctx["c"]
    r = expect_ok(c.agent("SetPolicy", msg((1, "package agent_policy\ndefault AllowRequestsFailingPolicy := true\n"))),
                  "SetPolicy")
    check(r.body == b"\x0a\x00", "empty reply must be exactly 0a 00, got %s" % r.body.hex())
    r = expect_ok(c.agent("CreateSandbox", msg((1, "pod-host"), (2, ["nameserver 10.96.0.10"]), (5, "sb-1"))),
                  "CreateSandbox")
    check(r.body == b"\x0a\x00", "CreateSandbox reply %s" % r.body.hex())
    r = expect_ok(c.agent("GetGuestDetails", msg((1, True), (2, True))), "GetGuestDetails")
    check(get(r.payload, 1, 0) > 0, "mem_block_size_bytes missing: %s" % r.payload.hex())
    details = get(r.payload, 2, b"")
    check(get(details, 1, b"").startswith(b"caa-test-agent"), "agent_details.version: %s" % details)


def t_hello(ctx):
    c = ctx["c"]
    run_container(c, "ctr-hello", ["/bin/sh", "-c", "echo hello; exit 3"])
    status = wait_status(c.agent("WaitProcess", msg((1, "ctr-hello"), (2, "ctr-hello"))))
    check(status == 3, "exit status %d, want 3" % status)
    out = read_all(c, "ctr-hello", "ctr-hello")
    check(out == b"hello\n", "stdout %r" % out)
    err = read_all(c, "ctr-hello", "", "ReadStderr")
    check(err == b"", "stderr %r" % err)
    expect_err(c.agent("StartContainer", msg((1, "ctr-hello"))), GRPC_FAILED_PRECONDITION, "already started",
               "second StartContainer")
    expect_err(c.agent("CreateContainer", msg((1, "ctr-hello"), (6, spec(["/bin/true"])))), 6, "already exists",
               "duplicate CreateContainer")


def t_env_cwd(ctx):
    c = ctx["c"]
    run_container(c, "ctr-env", ["/bin/sh", "-c", 'echo "$FOO"; pwd; echo oops >&2'],
                  env=["FOO=bar baz", "PATH=/usr/bin:/bin"], cwd="/tmp")
    check(wait_status(c.agent("WaitProcess", msg((1, "ctr-env")))) == 0, "exit status")
    out = read_all(c, "ctr-env")
    check(out == b"bar baz\n/tmp\n", "stdout %r" % out)
    err = read_all(c, "ctr-env", method="ReadStderr")
    check(err == b"oops\n", "stderr %r" % err)


def t_exec_no_blocking(ctx):
    c = ctx["c"]
    run_container(c, "ctr-long", ["/bin/sh", "-c", "read line; echo got $line"])
    expect_ok(c.agent("ExecProcess", msg((1, "ctr-long"), (2, "exec-sleep"), (4, process(["/bin/sleep", "60"])))),
              "ExecProcess")
    sid_wait = c.send("grpc.AgentService", "WaitProcess", msg((1, "ctr-long"), (2, "exec-sleep")))
    sid_read = c.send("grpc.AgentService", "ReadStdout", msg((1, "ctr-long"), (2, "ctr-long"), (3, 1024)))
    t0 = time.monotonic()
    r = expect_ok(c.call("grpc.Health", "Check", b""), "Check while WaitProcess is parked")
    check(r.payload == b"\x08\x01", "Check answer")
    check(c.poll(sid_wait) is None, "WaitProcess answered while the process sleeps")
    check(c.poll(sid_read) is None, "ReadStdout answered before there was output")
    check(time.monotonic() - t0 < 5, "Check took %.1fs" % (time.monotonic() - t0))
    # stdin of the container's process feeds the parked ReadStdout
    r = expect_ok(c.agent("WriteStdin", msg((1, "ctr-long"), (2, "ctr-long"), (3, b"world\n"))), "WriteStdin")
    check(get(r.payload, 1, 0) == 6, "WriteStdin len %r" % r.payload)
    r = expect_ok(c.wait(sid_read), "parked ReadStdout")
    check(get(r.payload, 1, b"") == b"got world\n", "ReadStdout %r" % r.payload)
    check(wait_status(c.agent("WaitProcess", msg((1, "ctr-long")))) == 0, "ctr-long exit")
    check(c.poll(sid_wait) is None, "WaitProcess of the sleeper answered early")
    expect_ok(c.agent("SignalProcess", msg((1, "ctr-long"), (2, "exec-sleep"), (3, int(signal.SIGTERM)))),
              "SignalProcess")
    status = wait_status(c.wait(sid_wait))
    check(status == SIGTERM_STATUS, "sleeper status %d, want %d" % (status, SIGTERM_STATUS))
    # CloseStdin: cat sees EOF and exits
    expect_ok(c.agent("ExecProcess", msg((1, "ctr-long"), (2, "exec-cat"), (4, process(["/bin/cat"])))),
              "ExecProcess cat")
    expect_ok(c.agent("WriteStdin", msg((1, "ctr-long"), (2, "exec-cat"), (3, b"abc"))), "WriteStdin cat")
    expect_ok(c.agent("CloseStdin", msg((1, "ctr-long"), (2, "exec-cat"))), "CloseStdin")
    check(wait_status(c.agent("WaitProcess", msg((1, "ctr-long"), (2, "exec-cat")))) == 0, "cat exit")
    out = read_all(c, "ctr-long", "exec-cat")
    check(out == b"abc", "cat stdout %r" % out)
    expect_err(c.agent("WriteStdin", msg((1, "ctr-long"), (2, "exec-cat"), (3, b"x"))), GRPC_FAILED_PRECONDITION,
               "closed", "WriteStdin after CloseStdin")
    expect_err(c.agent("ExecProcess", msg((1, "ctr-long"), (2, "exec-cat"), (4, process(["/bin/true"])))), 6,
               "already exists", "duplicate exec id")
    expect_err(c.agent("WaitProcess", msg((1, "ctr-long"), (2, "exec-none"))), GRPC_NOT_FOUND, "not found",
               "unknown exec id")
    expect_err(c.agent("ExecProcess", msg((1, "ctr-long"), (2, "exec-x"), (4, process(["/nonexistent/x"])))),
               GRPC_NOT_FOUND, "/nonexistent/x", "exec of a missing program")


def t_bulk(ctx):
    c = ctx["c"]
    data = os.urandom(2 << 20)  # twice the agent's per-stream buffer
    piece = 64 << 10
    run_container(c, "ctr-bulk", ["/bin/cat"])
    # Pipelined, as the shim does: cat blocks on a full stdout until we read.
    sids = [c.send("grpc.AgentService", "WriteStdin", msg((1, "ctr-bulk"), (3, data[i:i + piece])))
            for i in range(0, len(data), piece)]
    sid_close = c.send("grpc.AgentService", "CloseStdin", msg((1, "ctr-bulk")))
    out = read_all(c, "ctr-bulk", chunk=piece)
    check(out == data, "cat returned %d bytes, %d written (equal: %s)" % (len(out), len(data), out == data))
    for sid in sids:
        check(get(expect_ok(c.wait(sid), "WriteStdin").payload, 1, 0) == piece, "WriteStdin len")
    expect_ok(c.wait(sid_close), "CloseStdin")
    check(wait_status(c.agent("WaitProcess", msg((1, "ctr-bulk")))) == 0, "cat exit")
    return "%d bytes each way" % len(data)


def t_pause(ctx):
    c = ctx["c"]
    run_container(c, "ctr-pause", ["/pause"])
    sid = c.send("grpc.AgentService", "WaitProcess", msg((1, "ctr-pause")))
    check(c.poll(sid, 0.2) is None, "pause exited on its own")
    expect_ok(c.agent("SignalProcess", msg((1, "ctr-pause"), (3, int(signal.SIGTERM)))), "SignalProcess pause")
    status = wait_status(c.wait(sid))
    check(status == 0, "pause status %d, want 0 (exit on SIGTERM)" % status)
    expect_ok(c.agent("RemoveContainer", msg((1, "ctr-pause"))), "RemoveContainer pause")


def copy_req(path, data=b"", mode=0o100644, offset=0, size=None):
    return msg((1, path), (2, len(data) if size is None else size), (3, mode), (4, 0o755), (7, offset), (8, data))


def t_copy_file(ctx):
    c, scratch = ctx["c"], ctx["agent"].scratch
    path = "/run/kata-containers/shared/containers/ctr-x-hostname"
    expect_ok(c.agent("CopyFile", copy_req(path, b"pod-", size=8)), "CopyFile chunk 1")
    expect_ok(c.agent("CopyFile", copy_req(path, b"host", offset=4, size=8)), "CopyFile chunk 2")
    dest = scratch + path
    with open(dest, "rb") as f:
        check(f.read() == b"pod-host", "copied contents")
    check(stat.S_IMODE(os.stat(dest).st_mode) == 0o644, "copied mode")
    for bad, why in (("/etc/caa-ta-passwd", "not under /run"), ("/run/../etc/caa-ta-x", "'..'"),
                     ("run/x", "not absolute"), ("/run", "not under /run"), ("/run/", "names nothing")):
        expect_err(c.agent("CopyFile", copy_req(bad, b"x")), GRPC_INVALID_ARGUMENT, why, "CopyFile " + bad)
    check(not os.path.exists("/etc/caa-ta-passwd"), "file written outside /run")
    # a symlink may be copied, but nothing is written through it
    outside = os.path.join(ctx["tmp"], "outside")
    os.mkdir(outside)
    expect_ok(c.agent("CopyFile", copy_req("/run/link", outside.encode(), mode=0o120777)), "CopyFile symlink")
    check(os.readlink(scratch + "/run/link") == outside, "symlink target")
    r = c.agent("CopyFile", copy_req("/run/link/escape", b"x"))
    check(r.code != 0, "write through a symlink accepted")
    check(os.listdir(outside) == [], "file written through a symlink")
    expect_ok(c.agent("CopyFile", copy_req("/run/dir-only", mode=0o040700)), "CopyFile directory")
    check(stat.S_ISDIR(os.lstat(scratch + "/run/dir-only").st_mode), "directory created")


def t_unimplemented(ctx):
    c = ctx["c"]
    expect_err(c.agent("StatsContainer", msg((1, "ctr-hello"))), GRPC_UNIMPLEMENTED, "method StatsContainer",
               "StatsContainer")
    expect_err(c.call("grpc.Image", "PullImage", msg((1, "busybox"))), GRPC_UNIMPLEMENTED, "service grpc.Image",
               "grpc.Image")
    expect_err(c.agent("CreateContainer", b"\xff"), GRPC_UNKNOWN, "cannot decode", "undecodable payload")
    expect_err(c.agent("StartContainer", msg((1, "ctr-none"))), GRPC_NOT_FOUND, "not found", "unknown container")


def t_remove_running(ctx):
    c = ctx["c"]
    run_container(c, "ctr-rm", ["/bin/sh", "-c", "echo $$; exec sleep 60"])
    r = expect_ok(c.agent("ReadStdout", msg((1, "ctr-rm"), (3, 64))), "ReadStdout pid")
    pid = int(get(r.payload, 1, b"").strip())
    check(os.path.exists("/proc/%d" % pid), "container process not running")
    sid = c.send("grpc.AgentService", "WaitProcess", msg((1, "ctr-rm")))
    expect_ok(c.agent("RemoveContainer", msg((1, "ctr-rm"))), "RemoveContainer")
    status = wait_status(c.wait(sid))
    check(status == SIGKILL_STATUS, "status after removal %d, want %d" % (status, SIGKILL_STATUS))
    check(not os.path.exists("/proc/%d" % pid), "process %d still exists" % pid)
    expect_err(c.agent("WaitProcess", msg((1, "ctr-rm"))), GRPC_NOT_FOUND, "not found", "removed container")


def t_disconnect(ctx):
    c2 = ctx["agent"].client(ctx["journal"])
    run_container(c2, "ctr-gone", ["/bin/sleep", "60"])
    c2.send("grpc.AgentService", "WaitProcess", msg((1, "ctr-gone")))
    c2.send("grpc.AgentService", "ReadStdout", msg((1, "ctr-gone"), (3, 10)))
    c2.send("grpc.AgentService", "ReadStderr", msg((1, "ctr-gone"), (3, 10)))
    expect_ok(c2.call("grpc.Health", "Check", b""), "Check after parking calls")  # they have arrived
    c2.close()
    c = ctx["c"]
    expect_ok(c.call("grpc.Health", "Check", b""), "Check after a connection with parked calls closed")
    expect_ok(c.agent("RemoveContainer", msg((1, "ctr-gone"))), "RemoveContainer ctr-gone")
    ctx["agent"].wait_log(r"ctr-gone.*exited with status %d" % SIGKILL_STATUS)


def t_own_netns(ctx):
    c = ctx["c"]
    run_container(c, "ctr-ns0", ["/bin/readlink", "/proc/self/ns/net"])
    check(wait_status(c.agent("WaitProcess", msg((1, "ctr-ns0")))) == 0, "readlink exit")
    out = read_all(c, "ctr-ns0").decode().strip()
    want = os.readlink("/proc/%d/ns/net" % ctx["agent"].proc.pid)
    check(out == want, "namespace %s, want the agent's %s" % (out, want))


def t_netns(ctx):
    if os.geteuid() != 0:
        return "SKIP not root"
    c = ctx["c"]
    path = add_netns("caa-ta-%d" % os.getpid())
    want = ns_inode_text(path)
    run_container(c, "ctr-ns", ["/bin/sh", "-c", "readlink /proc/self/ns/net; ip -o link show"], netns=path)
    check(wait_status(c.agent("WaitProcess", msg((1, "ctr-ns")))) == 0, "container in netns: exit status")
    out = read_all(c, "ctr-ns").decode().splitlines()
    check(out and out[0] == want, "container namespace %r, want %s" % (out[:1], want))
    links = [l.split(":")[1].strip() for l in out[1:]]
    check(links == ["lo"], "links inside the new namespace: %r" % links)
    expect_ok(c.agent("ExecProcess", msg((1, "ctr-ns"), (2, "exec-ns"),
                                         (4, process(["/bin/readlink", "/proc/self/ns/net"])))), "ExecProcess netns")
    check(wait_status(c.agent("WaitProcess", msg((1, "ctr-ns"), (2, "exec-ns")))) == 0, "exec in netns")
    out = read_all(c, "ctr-ns", "exec-ns").decode().strip()
    check(out == want, "exec namespace %s, want %s" % (out, want))
    # the agent itself stayed where it was
    check(os.readlink("/proc/%d/ns/net" % ctx["agent"].proc.pid) == os.readlink("/proc/self/ns/net"),
          "agent left its network namespace")
    expect_ok(create_container(c, "ctr-ns-missing", ["/bin/true"], netns="/run/netns/caa-ta-missing-%d" % os.getpid()),
              "CreateContainer (namespace checked at start)")
    expect_err(c.agent("StartContainer", msg((1, "ctr-ns-missing"))), GRPC_NOT_FOUND, "network namespace",
               "StartContainer with a missing namespace")

    # -pod-netns: a spec without a network namespace joins the pod's
    pod = Agent(ctx["binary"], ctx["tmp"], "agent-podns", extra=["-pod-netns", path], wrapper=ctx["wrapper"],
                record=False)
    pc = pod.client([])
    run_container(pc, "ctr-podns", ["/bin/readlink", "/proc/self/ns/net"])
    check(wait_status(pc.agent("WaitProcess", msg((1, "ctr-podns")))) == 0, "pod-netns exit")
    out = read_all(pc, "ctr-podns").decode().strip()
    check(out == want, "-pod-netns container namespace %s, want %s" % (out, want))
    pc.close()
    check(pod.stop() == 0, "agent with -pod-netns: exit status")

    # without CAP_SYS_ADMIN joining fails, and says why
    weak = Agent(ctx["binary"], ctx["tmp"], "agent-nocap", record=False,
                 wrapper=["setpriv", "--inh-caps=-sys_admin", "--bounding-set=-sys_admin"] + ctx["wrapper"])
    wc = weak.client([])
    expect_ok(create_container(wc, "ctr-nocap", ["/bin/true"], netns=path), "CreateContainer without the cap")
    expect_err(wc.agent("StartContainer", msg((1, "ctr-nocap"))), GRPC_PERMISSION_DENIED, "CAP_SYS_ADMIN",
               "StartContainer without CAP_SYS_ADMIN")
    expect_ok(wc.call("grpc.Health", "Check", b""), "agent without the cap still serves")
    wc.close()
    check(weak.stop() == 0, "agent without the cap: exit status")


def t_record(ctx):
    got = [(svc, method, payload) for svc, method, payload, _ in ctx["agent"].records()]
    want = list(ctx["journal"])
    check(len(got) == len(want), "record has %d lines, %d requests were sent" % (len(got), len(want)))
    for i, (g, w) in enumerate(zip(got, want)):
        check(g == w, "record line %d: %r, sent %r" % (i + 1, g, w))
    return "%d requests" % len(got)


def t_shutdown(ctx):
    c = ctx["c"]
    run_container(c, "ctr-left", ["/bin/sh", "-c", "echo $$; exec sleep 60"])
    r = expect_ok(c.agent("ReadStdout", msg((1, "ctr-left"), (3, 64))), "ReadStdout pid")
    pid = int(get(r.payload, 1, b"").strip())
    c.send("grpc.AgentService", "WaitProcess", msg((1, "ctr-left")))
    agent = ctx["agent"]
    rc = agent.stop()
    check(rc == 0, "exit status %d after SIGTERM:\n%s" % (rc, agent.log()))
    check(not os.path.exists(agent.sock), "socket file left behind")
    check(not os.path.exists("/proc/%d" % pid), "container process %d survived the agent" % pid)
    c.close()

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", required=True)
    ap.add_argument("--valgrind", action="store_true", help="run the agent under valgrind memcheck")
    opts = ap.parse_args()
    wrapper = []
    if opts.valgrind:
        if shutil.which("valgrind") is None:
            print("1..0 # SKIP valgrind not installed")
            return 77
        wrapper = VALGRIND

    scenarios = [
        ("Health Check SERVING, Version, Rust success encoding, socket 0600", t_health),
        ("SetPolicy, CreateSandbox, GetGuestDetails", t_sandbox),
        ("container echo hello; exit 3: WaitProcess 3, ReadStdout hello", t_hello),
        ("container env, cwd and stderr", t_env_cwd),
        ("sleeping ExecProcess does not block other calls; stdin, signals", t_exec_no_blocking),
        ("2 MiB through stdin and stdout with back-pressure", t_bulk),
        ("built-in pause stands in for a missing /pause", t_pause),
        ("CopyFile under the scratch dir; outside /run and symlinks refused", t_copy_file),
        ("unknown method and service: UNIMPLEMENTED", t_unimplemented),
        ("RemoveContainer kills a running process, WaitProcess answered", t_remove_running),
        ("calls parked on a closed connection are dropped", t_disconnect),
        ("container without a namespace runs in the agent's", t_own_netns),
        ("network namespaces from the OCI spec and -pod-netns (root)", t_netns),
        ("record file holds every request as sent", t_record),
        ("SIGTERM: exit 0, socket removed, processes killed", t_shutdown),
    ]

    def setup(ctx):
        ctx.update(binary=opts.agent, wrapper=wrapper, journal=[])
        ctx["agent"] = Agent(opts.agent, ctx["tmp"], wrapper=wrapper)
        ctx["c"] = ctx["agent"].client(ctx["journal"])

    return run_tap(scenarios, setup, logs=lambda ctx: [ctx["agent"]] if "agent" in ctx else [])


if __name__ == "__main__":
    sys.exit(main())
