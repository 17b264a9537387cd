#!/usr/bin/env python3
"""caa-test-agent answers where the Kata shim looks as the kata-agent does.

The semantics come from kata-agent's src/agent/src/rpc.rs (read with the
search tools; nothing of it is copied):
- read_stream(): a read of 0 bytes is Err("read meet eof"), mapped to
  INTERNAL; on a terminal the exit notifier gives Err("eof"). The Go shim's
  copy loop (iostream.go) stops only on an error: an empty data reply makes
  it spin forever after the container's output.
- get_oom_event(): waits on the sandbox's OOM channel; DestroySandbox closes
  it and the call ends with INTERNAL and an empty message. Never
  UNIMPLEMENTED (the shim would log that as an agent failure).
- tty_win_resize(): UNAVAILABLE "no tty" for a process without a terminal,
  UNAVAILABLE for an unknown process, TIOCSWINSZ on the pty master otherwise.
- close_stdin(): INVALID_ARGUMENT for an unknown process; with a terminal
  the pty master is closed and readers end with "eof".
- do_wait_process(): an exec process is removed once WaitProcess returned,
  later calls naming it fail.

The call sequences are the ones a Kata 3.x Go shim makes for `ctr run --rm`
without and with `-t` (containerd-shim-kata-v2: startContainer, ioCopy with
ReadStdout/ReadStderr goroutines, watchOOMEvents, wait, deleteContainer);
they are rendered by hand here since no shim can run on this machine.

Usage: test_kata_semantics.py --agent PATH [--valgrind]. Output is TAP.
"""
import argparse
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ta_client import (GRPC_INTERNAL, GRPC_INVALID_ARGUMENT, GRPC_NOT_FOUND, get, msg)  # noqa: E402
from ta_harness import (VALGRIND, Agent, check, expect_err, expect_ok, is_eof, process, run_tap,  # noqa: E402
                        wait_status)

GRPC_UNAVAILABLE = 14
SIGHUP_STATUS = 128 + 1


def oci(args, terminal=False, rows=0, cols=0):
    """OCI Spec with Process{Terminal, ConsoleSize{Height, Width}, Args, Cwd}."""
    fields = [(1, terminal)]
    if rows or cols:
        fields.append((2, msg((1, rows), (2, cols))))
    fields += [(4, list(args)), (6, "/")]
    return msg((2, msg(*fields)))


def stream_reader(c, cid, eid, method):
    """Sends one ReadStdout/ReadStderr as the shim's copy goroutine does."""
    return c.send("grpc.AgentService", method, msg((1, cid), (2, eid), (3, 32768)))


def drain(c, cid, eid, method, first_sid, timeout=20):
    """What the shim's copy loop collects: data until the first error.

    Returns (data, final Reply). An empty data reply fails: that is the spin."""
    out = b""
    sid = first_sid
    deadline = time.monotonic() + timeout
    while True:
        r = c.wait(sid, max(0.1, deadline - time.monotonic()))
        if r.code != 0:
            return out, r
        data = get(r.payload, 1, b"")
        check(data, "%s answered empty data: the shim's copy loop would spin" % method)
        out += data
        sid = stream_reader(c, cid, eid, method)


def shim_sandbox_start(c, sid):
    """Health, guest details, CreateSandbox, then the OOM watcher's call."""
    expect_ok(c.call("grpc.Health", "Check", b""), "Check")
    expect_ok(c.agent("GetGuestDetails", msg((1, True), (2, True))), "GetGuestDetails")
    expect_ok(c.agent("CreateSandbox", msg((1, "kata-host"), (5, sid))), "CreateSandbox")
    return c.send("grpc.AgentService", "GetOOMEvent", b"")


def t_ctr_run_plain(ctx):
    """ctr run --rm (no terminal): output, then both streams end with the error."""
    c = ctx["c"]
    oom = shim_sandbox_start(c, "sb-plain")
    cid = "ctr-plain"
    expect_ok(c.agent("CreateContainer", msg((1, cid), (2, cid), (6, oci(
        ["/bin/sh", "-c", "echo out-line; echo err-line >&2; exit 4"])))), "CreateContainer")
    expect_ok(c.agent("StartContainer", msg((1, cid))), "StartContainer")
    out_sid = stream_reader(c, cid, "", "ReadStdout")
    err_sid = stream_reader(c, cid, "", "ReadStderr")
    wait_sid = c.send("grpc.AgentService", "WaitProcess", msg((1, cid)))
    out, r_out = drain(c, cid, "", "ReadStdout", out_sid)
    err, r_err = drain(c, cid, "", "ReadStderr", err_sid)
    check(out == b"out-line\n" and err == b"err-line\n", "output %r / %r" % (out, err))
    for name, r in (("ReadStdout", r_out), ("ReadStderr", r_err)):
        check(r.code == GRPC_INTERNAL and r.message == "read meet eof",
              "%s at end of stream: code %d %r, want INTERNAL 'read meet eof'" % (name, r.code, r.message))
    check(wait_status(c.wait(wait_sid)) == 4, "exit status")
    # TtyWinResize on a process without a terminal, CloseStdin on an unknown one
    expect_err(c.agent("TtyWinResize", msg((1, cid), (2, ""), (3, 40), (4, 120))), GRPC_UNAVAILABLE, "no tty",
               "TtyWinResize without a terminal")
    expect_err(c.agent("TtyWinResize", msg((1, "ctr-none"), (2, ""), (3, 40), (4, 120))), GRPC_UNAVAILABLE,
               "not found", "TtyWinResize of an unknown container")
    expect_err(c.agent("CloseStdin", msg((1, "ctr-none"))), GRPC_INVALID_ARGUMENT, "not found",
               "CloseStdin of an unknown container")
    check(c.poll(oom) is None, "GetOOMEvent answered while the sandbox lives")
    expect_ok(c.agent("RemoveContainer", msg((1, cid))), "RemoveContainer")
    expect_ok(c.agent("DestroySandbox", b""), "DestroySandbox")
    r = c.wait(oom)
    check(r.code == GRPC_INTERNAL and r.message == "",
          "GetOOMEvent at sandbox end: code %d %r, want INTERNAL ''" % (r.code, r.message))


def t_exec_forgotten(ctx):
    """An exec process: its streams end with the error, WaitProcess answers,
    and after that (output read) the exec id is gone as in the kata-agent."""
    c = ctx["c"]
    cid = "ctr-exec"
    expect_ok(c.agent("CreateContainer", msg((1, cid), (2, cid), (6, oci(["/bin/sleep", "60"])))),
              "CreateContainer")
    expect_ok(c.agent("StartContainer", msg((1, cid))), "StartContainer")
    eid = "exec-1"
    expect_ok(c.agent("ExecProcess", msg((1, cid), (2, eid), (4, process(["/bin/sh", "-c", "echo x; exit 2"])))),
              "ExecProcess")
    # the shim's copy goroutines are reading before it waits
    out_sid = stream_reader(c, cid, eid, "ReadStdout")
    err_sid = stream_reader(c, cid, eid, "ReadStderr")
    check(wait_status(c.agent("WaitProcess", msg((1, cid), (2, eid)))) == 2, "exec status")
    # output written before the exit is still delivered after WaitProcess
    out, r = drain(c, cid, eid, "ReadStdout", out_sid)
    check(out == b"x\n" and is_eof(r), "exec stdout %r, end %r" % (out, r))
    _, r = drain(c, cid, eid, "ReadStderr", err_sid)
    check(is_eof(r), "exec stderr end %r" % r)
    expect_err(c.agent("WaitProcess", msg((1, cid), (2, eid))), GRPC_NOT_FOUND, "not found",
               "WaitProcess of an exec already waited for")
    # the exec id can be used again, as the kata-agent allows
    expect_ok(c.agent("ExecProcess", msg((1, cid), (2, eid), (4, process(["/bin/true"])))), "ExecProcess again")
    check(wait_status(c.agent("WaitProcess", msg((1, cid), (2, eid)))) == 0, "second exec status")
    expect_ok(c.agent("RemoveContainer", msg((1, cid))), "RemoveContainer")


def t_ctr_run_tty(ctx):
    """ctr run -t --rm: pty with the OCI console size, TtyWinResize, stdin
    through the terminal, controlling terminal, output ends with an error."""
    c = ctx["c"]
    oom = shim_sandbox_start(c, "sb-tty")
    cid = "ctr-tty"
    script = "stty size; read x; stty size; echo ctty > /dev/tty && echo got:$x; exit 7"
    expect_ok(c.agent("CreateContainer", msg((1, cid), (2, cid), (6, oci(["/bin/sh", "-c", script], True, 24, 80)))),
              "CreateContainer terminal")
    expect_ok(c.agent("StartContainer", msg((1, cid))), "StartContainer")
    out_sid = stream_reader(c, cid, "", "ReadStdout")
    wait_sid = c.send("grpc.AgentService", "WaitProcess", msg((1, cid)))
    # the shim resizes before stdin flows (ctr sends the console size)
    time.sleep(0.3)
    expect_ok(c.agent("TtyWinResize", msg((1, cid), (2, ""), (3, 30), (4, 100))), "TtyWinResize")
    expect_ok(c.agent("WriteStdin", msg((1, cid), (2, ""), (3, b"hello\n"))), "WriteStdin")
    out, r = drain(c, cid, "", "ReadStdout", out_sid)
    text = out.replace(b"\r\n", b"\n").decode(errors="replace")
    check("24 80\n" in text, "console size from the OCI spec not applied: %r" % text)
    check("30 100\n" in text, "TtyWinResize not applied: %r" % text)
    check("ctty\n" in text and "got:hello\n" in text, "controlling terminal or stdin: %r" % text)
    check(r.code == GRPC_INTERNAL and "eof" in r.message, "end of the terminal stream: %r" % r)
    check(wait_status(c.wait(wait_sid)) == 7, "exit status")
    expect_ok(c.agent("RemoveContainer", msg((1, cid))), "RemoveContainer")
    expect_ok(c.agent("DestroySandbox", b""), "DestroySandbox")
    check(c.wait(oom).code == GRPC_INTERNAL, "GetOOMEvent at sandbox end")


def t_tty_close_stdin(ctx):
    """CloseStdin on a terminal closes the pty master: readers end with
    "eof" and the process gets the hangup."""
    c = ctx["c"]
    cid = "ctr-tty-cat"
    expect_ok(c.agent("CreateContainer", msg((1, cid), (2, cid), (6, oci(["/bin/cat"], True)))), "CreateContainer")
    expect_ok(c.agent("StartContainer", msg((1, cid))), "StartContainer")
    wait_sid = c.send("grpc.AgentService", "WaitProcess", msg((1, cid)))
    expect_ok(c.agent("WriteStdin", msg((1, cid), (2, ""), (3, b"ping\n"))), "WriteStdin")
    out = b""
    while out.count(b"ping") < 2:  # the terminal's echo and cat's copy
        r = expect_ok(c.agent("ReadStdout", msg((1, cid), (3, 1024))), "ReadStdout")
        out += get(r.payload, 1, b"")
    parked = stream_reader(c, cid, "", "ReadStdout")
    check(c.poll(parked, 0.3) is None, "ReadStdout answered with nothing to read")
    expect_ok(c.agent("CloseStdin", msg((1, cid))), "CloseStdin")
    r = c.wait(parked)
    check(r.code == GRPC_INTERNAL and r.message == "eof", "parked read after CloseStdin: %r" % r)
    status = wait_status(c.wait(wait_sid))
    check(status == SIGHUP_STATUS, "status %d after the hangup, want %d" % (status, SIGHUP_STATUS))
    expect_ok(c.agent("RemoveContainer", msg((1, cid))), "RemoveContainer")


def t_oom_on_disconnect(ctx):
    """A held GetOOMEvent does not block other calls and goes with its connection."""
    c2 = ctx["agent"].client()
    c2.send("grpc.AgentService", "GetOOMEvent", b"")
    expect_ok(c2.call("grpc.Health", "Check", b""), "Check beside a held GetOOMEvent")
    c2.close()
    expect_ok(ctx["c"].call("grpc.Health", "Check", b""), "Check after the connection closed")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", required=True)
    ap.add_argument("--valgrind", action="store_true", help="run the agent under valgrind memcheck")
    opts = ap.parse_args()
    scenarios = [
        ("ctr run without terminal: eof errors, OOM watcher held to sandbox end", t_ctr_run_plain),
        ("exec: eof errors, forgotten after WaitProcess and its output", t_exec_forgotten),
        ("ctr run -t: console size, TtyWinResize, controlling tty, eof error", t_ctr_run_tty),
        ("CloseStdin on a terminal ends readers with eof and hangs up", t_tty_close_stdin),
        ("GetOOMEvent held without blocking, dropped with its connection", t_oom_on_disconnect),
    ]

    def setup(ctx):
        ctx["agent"] = Agent(opts.agent, ctx["tmp"], record=False, wrapper=VALGRIND if opts.valgrind else ())
        ctx["c"] = ctx["agent"].client()

    return run_tap(scenarios, setup, logs=lambda ctx: [ctx["agent"]] if "agent" in ctx else [])


if __name__ == "__main__":
    sys.exit(main())
