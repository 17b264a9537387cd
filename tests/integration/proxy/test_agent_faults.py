#!/usr/bin/env python3
"""Faults on the agent path (worker proxy + forwarder).

- forwarder killed mid-call: calls in flight end at once with UNAVAILABLE;
  calls made while it is gone wait; after a restart on the same port they
  go through, the proxy reconnected by itself;
- a proxy whose reconnect window (proxy timeout) ran out fails calls at
  once with UNAVAILABLE and recovers when the forwarder is back;
- forwarder started before the kata-agent socket exists (directory there:
  inotify; directory missing: retries): it waits, then serves;
- truncated frames from the shim, from the forwarder and from the agent;
  an oversize Response from upstream;
- 4 MiB: a Request of exactly the maximum passes, one byte more is
  RESOURCE_EXHAUSTED and the connection keeps working;
- TLS with the wrong server name, and a proxy that never reaches its
  forwarder: clear failures within the proxy timeout; a refused port is
  retried fast (5 ms doubling to 25 ms).
"""
import hashlib
import os
import signal
import socket
import threading
import time

from agentpath import (GRPC, Driver, Failed, Tap, check, frame, gen_tls, go_peers, msg, proxy_stats,
                       recv_frame, request_body, response_status, skip_without_go, start_agent, start_forwarder,
                       start_proxy, tmpdir, write_apf)
from fakepeer import FakePeer

MAX = 4 << 20
ECHO = ("caa.interop.Test", "Echo")


def fill(n):
    return bytes((i * 131 + 7) & 0xFF for i in range(n))


def main():
    skip_without_go()
    tap = Tap(14)
    d = tmpdir()
    goserver, goclient = go_peers()
    agent_sock = os.path.join(d, "agent.sock")
    apf = os.path.join(d, "apf.json")
    write_apf(apf)
    sock1 = os.path.join(d, "p1.sock")  # proxy timeout 20 s
    sock2 = os.path.join(d, "p2.sock")  # proxy timeout 1 s
    c = {}

    def setup():
        c["agent"] = start_agent(goserver, agent_sock)
        c["fwd"] = start_forwarder(agent_sock, apf)
        c["port"] = c["fwd"].port
        c["p1"] = start_proxy(sock1, c["port"], timeout="20s")
        c["p2"] = start_proxy(sock2, c["port"], timeout="1s")
    if not tap.run("chain up (two pods on one forwarder)", setup):
        tap.exit()

    # ------------------------------------------------------------ forwarder killed mid-call
    def killed_mid_call():
        drv = Driver(goclient, sock1)
        ids = [drv.call("grpc.AgentService", "WaitProcess", msg((1, "block-kill-%d" % i))) for i in range(5)]
        ids += [drv.call("caa.interop.Test", "Sleep", b"30000:long-%d" % i) for i in range(5)]
        deadline = time.monotonic() + 10
        while int(proxy_stats(c["p1"])["inflight"]) < 10:
            check(time.monotonic() < deadline, "calls never reached the forwarder")
            time.sleep(0.05)
        t_kill = time.monotonic()
        c["fwd"].kill()
        worst = 0
        for cid in ids:
            r = drv.result(cid, timeout=10)
            check(r["code"] == GRPC["UNAVAILABLE"], "in-flight call %s ended %s" % (cid, r))
            worst = max(worst, r["t"] - t_kill)
        check(worst < 1.0, "in-flight calls took %.2f s to fail" % worst)
        c["drv1"] = drv
        return "10 in-flight calls UNAVAILABLE within %.0f ms of the kill" % (worst * 1000)
    ok = tap.run("forwarder killed mid-call: in-flight calls fail at once with UNAVAILABLE", killed_mid_call)

    def reconnect():
        drv = c["drv1"]
        waiting = drv.call(*ECHO, b"sent-while-down", timeout_ms=20000)
        # p2 (1 s window) gives up meanwhile.
        c["p2"].wait_line(r"gave up reconnecting", timeout=10)
        time.sleep(0.3)
        check(not drv.done(waiting), "call made while the forwarder was down did not wait")
        t0 = time.monotonic()
        c["fwd"] = start_forwarder(agent_sock, apf, port=c["port"])
        r = drv.result(waiting, timeout=20)
        check(r["code"] == 0 and r["data"] == b"sent-while-down", "waiting call ended %s" % r)
        dt = r["t"] - t0
        new = drv.call(*ECHO, b"after", timeout_ms=5000)
        check(drv.result(new)["code"] == 0, "new call failed")
        st = proxy_stats(c["p1"])
        check(st["connects"] == "2", "proxy connects %s" % st["connects"])
        drv.close()
        return "waiting call answered %.0f ms after the forwarder restart" % (dt * 1000)
    if ok:
        tap.run("calls made while it is down wait; restart: proxy reconnects transparently", reconnect)
    else:
        tap.ok(False, "reconnect (skipped: previous step failed)")

    def gave_up():
        drv = Driver(goclient, sock2)
        # p2 gave up before the restart: the first call fails at once and
        # starts a new connection attempt.
        t = drv.call(*ECHO, b"x", timeout_ms=5000)
        r = drv.result(t)
        check(r["code"] == GRPC["UNAVAILABLE"] and r["ms"] < 200, "call to a given-up proxy: %s" % r)
        deadline = time.monotonic() + 10
        while True:
            t = drv.call(*ECHO, b"again", timeout_ms=5000)
            r = drv.result(t)
            if r["code"] == 0:
                break
            check(time.monotonic() < deadline, "proxy never recovered: %s" % r)
            time.sleep(0.2)
        drv.close()
        return "UNAVAILABLE in %d ms while down, recovered after the restart" % r["ms"]
    tap.run("proxy past its reconnect window: UNAVAILABLE at once, recovers later", gave_up)

    # ------------------------------------------------------------ agent socket late
    def agent_late(subdir):
        base = os.path.join(d, subdir)
        if subdir == "late-dir":
            os.mkdir(base)
        late_sock = os.path.join(base, "agent.sock")
        fwd = start_forwarder(late_sock, apf, wait=False)
        fwd.wait_line(r"waiting for the kata-agent")
        time.sleep(0.5)
        check(not any("listening on port" in x for x in fwd.lines), "forwarder listened without an agent")
        if subdir != "late-dir":
            os.mkdir(base)
        t0 = time.monotonic()
        agent = start_agent(goserver, late_sock)
        port = int(fwd.wait_line(r"listening on port (\d+)", timeout=10).group(1))
        dt = time.monotonic() - t0
        proxy = start_proxy(os.path.join(d, subdir + ".sock"), port)
        drv = Driver(goclient, os.path.join(d, subdir + ".sock"))
        r = drv.result(drv.call(*ECHO, b"late", timeout_ms=5000))
        check(r["code"] == 0, "call through the late agent: %s" % r)
        drv.close()
        check(proxy.stop() == 0, "proxy exit")
        check(fwd.stop() == 0, "forwarder exit")
        agent.stop()
        return "served %.0f ms after the agent socket appeared" % (dt * 1000)
    tap.run("agent socket missing at start (directory present): waits, then serves",
            lambda: agent_late("late-dir"))
    tap.run("agent directory missing at start: waits, then serves", lambda: agent_late("late-nodir"))

    # ------------------------------------------------------------ truncated frames
    def truncated_from_shim():
        s1 = socket.socket(socket.AF_UNIX)
        s1.connect(sock1)
        s1.sendall(frame(1, 1, b"\x0a" * 20, length=100))  # dies mid-frame
        s1.close()
        s2 = socket.socket(socket.AF_UNIX)
        s2.connect(sock1)
        s2.sendall(frame(1, 1, b"\x0a\x05", length=1000))  # stalls mid-frame
        s3 = socket.socket(socket.AF_UNIX)
        s3.connect(sock1)
        s3.sendall(b"\x00\x00\x00")  # stalls mid-header
        drv = Driver(goclient, sock1)
        ids = [drv.call(*ECHO, b"while-stalled-%d" % i, timeout_ms=5000) for i in range(20)]
        for cid in ids:
            check(drv.result(cid)["code"] == 0, "call failed while a shim connection stalled")
        # The stalled connection still works once its frame completes.
        body = request_body("caa.interop.Test", "Echo", b"late-bytes")
        s2.close()
        s4 = socket.socket(socket.AF_UNIX)
        s4.connect(sock1)
        s4.sendall(frame(1, 1, body)[:15])
        time.sleep(0.05)
        s4.sendall(frame(1, 1, body)[15:])
        f = recv_frame(s4)
        check(f is not None and f[0] == 1 and f[1] == 2, "no answer after a frame sent in pieces")
        code, _, payload = response_status(f[3])
        check(code == 0 and payload == b"late-bytes", "answer %s %s" % (code, payload))
        s3.close()
        s4.close()
        drv.close()
    tap.run("truncated/stalled frames from a shim connection hurt nobody else", truncated_from_shim)

    def truncated_from_forwarder():
        fake = FakePeer()
        p = start_proxy(os.path.join(d, "fake.sock"), fake.port, timeout="10s")
        drv = Driver(goclient, os.path.join(d, "fake.sock"))
        r = drv.result(drv.call("grpc.AgentService", "Huge", b"", timeout_ms=5000))
        check(r["code"] == GRPC["RESOURCE_EXHAUSTED"] and "exceed maximum message size" in r["msg"],
              "oversize Response relayed as %s" % r)
        r = drv.result(drv.call(*ECHO, b"same-conn", timeout_ms=5000))
        check(r["code"] == 0 and fake.accepted == 1, "connection not kept after the oversize Response")
        r = drv.result(drv.call("grpc.AgentService", "Truncate", b"", timeout_ms=5000))
        check(r["code"] == GRPC["UNAVAILABLE"], "truncated Response relayed as %s" % r)
        r = drv.result(drv.call(*ECHO, b"after-truncation", timeout_ms=5000))
        check(r["code"] == 0 and r["data"] == b"after-truncation", "no recovery: %s" % r)
        check(fake.accepted == 2, "proxy connected %d times" % fake.accepted)
        drv.close()
        check(p.stop() == 0, "proxy exit")
        fake.close()
    tap.run("from the forwarder: oversize Response -> RESOURCE_EXHAUSTED, truncated -> UNAVAILABLE + reconnect",
            truncated_from_forwarder)

    def truncated_from_agent():
        fake_sock = os.path.join(d, "fake-agent.sock")
        fake = FakePeer(unix_path=fake_sock)
        fwd = start_forwarder(fake_sock, apf)
        p = start_proxy(os.path.join(d, "fa.sock"), fwd.port)
        drv = Driver(goclient, os.path.join(d, "fa.sock"))
        r = drv.result(drv.call("grpc.AgentService", "Truncate", b"", timeout_ms=5000))
        check(r["code"] == GRPC["UNAVAILABLE"] and "kata-agent" in r["msg"], "truncated agent answer: %s" % r)
        r = drv.result(drv.call(*ECHO, b"after", timeout_ms=5000))
        check(r["code"] == 0 and r["data"] == b"after", "no recovery: %s" % r)
        check(fake.accepted == 2, "forwarder connected to the agent %d times" % fake.accepted)
        st = proxy_stats(p)
        check(st["connects"] == "1", "worker link should have survived: %s" % st)
        drv.close()
        check(p.stop() == 0 and fwd.stop() == 0, "exit status")
        fake.close()
    tap.run("from the kata-agent: truncated Response -> UNAVAILABLE, forwarder reconnects to the agent",
            truncated_from_agent)

    # ------------------------------------------------------------ 4 MiB
    def max_size():
        drv = Driver(goclient, sock1)
        # Request body = service (19) + method (12) + payload tag and length (5) + payload;
        # no deadline (timeout_nano would add bytes).
        n = MAX - (2 + len("grpc.AgentService")) - (2 + len("WriteStdin")) - 5
        r = drv.result(drv.call("grpc.AgentService", "WriteStdin", data="fill:%d" % n), 30)
        want = "sha256:" + hashlib.sha256(fill(n)).hexdigest()
        check(r["code"] == 0 and r["data"] == want, "maximum-size call: %s" % {k: r[k] for k in ("code", "msg")})
        r = drv.result(drv.call("grpc.AgentService", "WriteStdin", data="fill:%d" % (n + 1)), 30)
        check(r["code"] == GRPC["RESOURCE_EXHAUSTED"], "one byte more: %s" % {k: r[k] for k in ("code", "msg")})
        r = drv.result(drv.call(*ECHO, b"still-here", timeout_ms=5000))
        check(r["code"] == 0 and r["data"] == b"still-here", "connection broken after the oversize request")
        drv.close()
        return "%d-byte payload (4 MiB frame) relayed, +1 byte refused" % n
    tap.run("4 MiB: maximum passes, one byte more RESOURCE_EXHAUSTED, connection keeps working", max_size)

    # ------------------------------------------------------------ refused connections
    def tls_mismatch():
        tdir = os.path.join(d, "tls")
        os.mkdir(tdir)
        tapf = gen_tls(tdir, "podvm-right")
        fwd = start_forwarder(agent_sock, tapf, tls=True)
        good = start_proxy(os.path.join(d, "tls-ok.sock"), fwd.port, tls_dir=tdir, server_name="podvm-right")
        check(good.stop() == 0, "good TLS proxy exit")
        bad = start_proxy(os.path.join(d, "tls-bad.sock"), fwd.port, tls_dir=tdir, server_name="podvm-wrong",
                          timeout="1s", wait=False)
        m = bad.wait_line(r"^FAILED 0 (.*)", stdout=True, timeout=10)
        check("TLS" in m.group(1), "failure does not say TLS: %s" % m.group(1))
        rc = bad.wait_exit()
        check(rc == 1, "failed proxy exited %s, want 1" % rc)
        plain = start_proxy(os.path.join(d, "tls-plain.sock"), fwd.port, timeout="1s", wait=False)
        plain.wait_line(r"^FAILED 0 ", stdout=True, timeout=10)
        check(plain.wait_exit() == 1, "plain proxy exit status")
        fwd.wait_line(r"TLS handshake with .* failed")
        check(fwd.stop() == 0, "TLS forwarder exit")
        return m.group(1)[:120]
    tap.run("TLS: right name connects, wrong name and plain TCP fail with a TLS reason", tls_mismatch)

    def tls_handshake_deadline():
        tdir = os.path.join(d, "tls-deadline")
        os.mkdir(tdir)
        tapf = gen_tls(tdir, "podvm-right")
        fwd = start_forwarder(agent_sock, tapf, tls=True, extra=["-tls-handshake-timeout", "1500ms"])
        # Connects and sends nothing (slow-loris): dropped at the deadline.
        idle = socket.create_connection(("127.0.0.1", fwd.port), timeout=10)
        t0 = time.monotonic()
        # The close is timed where it happens (a thread blocked on it), not
        # after the normal client's call below, which may take long on a
        # loaded machine or under sanitizers.
        closed = {}

        def wait_close():
            try:
                closed["data"] = idle.recv(1)
            except ConnectionResetError:
                closed["data"] = b""
            except OSError as e:
                closed["data"] = repr(e).encode()
            closed["t"] = time.monotonic()
        waiter = threading.Thread(target=wait_close, daemon=True)
        waiter.start()
        # Meanwhile a normal client completes its handshake and is served.
        good = start_proxy(os.path.join(d, "tls-deadline-ok.sock"), fwd.port, tls_dir=tdir,
                           server_name="podvm-right")
        drv = Driver(goclient, os.path.join(d, "tls-deadline-ok.sock"))
        r = drv.result(drv.call(*ECHO, b"during-slow-loris", timeout_ms=5000))
        check(r["code"] == 0 and r["data"] == b"during-slow-loris", "normal client while a handshake hangs")
        waiter.join(timeout=15)
        check("t" in closed, "the idle client was never closed")
        data = closed["data"]
        took = closed["t"] - t0
        idle.close()
        check(data == b"", "the idle client got data instead of a close: %r" % data)
        check(1.0 < took < 6, "idle client closed after %.1fs, want about 1.5s" % took)
        fwd.wait_line(r"TLS handshake with .* not complete after 1500 ms")
        # The established session outlives the deadline.
        time.sleep(0.5)  # nothing to wait for: the point is that time passes beyond the deadline
        r = drv.result(drv.call(*ECHO, b"after-deadline", timeout_ms=5000))
        check(r["code"] == 0 and r["data"] == b"after-deadline", "established session cut by the deadline")
        drv.close()
        check(good.stop() == 0, "good TLS proxy exit")
        check(fwd.stop() == 0, "TLS forwarder exit")
        return "idle client dropped after %.1fs" % took
    tap.run("TLS: a client that never completes the handshake is dropped at -tls-handshake-timeout", tls_handshake_deadline)

    def nobody_home():
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens there now
        p = start_proxy(os.path.join(d, "nobody.sock"), port, timeout="1500ms", wait=False)
        m = p.wait_line(r"^FAILED 0 (.*)", stdout=True, timeout=10)
        # From the proxy's start (its BASELINE line, printed just before the
        # pods start) to its failure: process start-up, slow under
        # sanitizers, is not part of the proxy timeout.
        with p.cond:
            t_start = next(t for line, t in zip(p.out, p.out_t) if line.startswith("BASELINE "))
            t_fail = next(t for line, t in zip(p.out, p.out_t) if line.startswith("FAILED 0 "))
        dt = t_fail - t_start
        st = p.wait_line(r"^STATS (.*)", stdout=True)
        stats = dict(kv.split("=", 1) for kv in st.group(1).split())
        rc = p.wait_exit()
        check(rc == 1, "proxy exited %s, want 1" % rc)
        check(1.4 < dt < 3.5, "gave up after %.2f s" % dt)
        check("within 1.5 s" in m.group(1) and "refused" in m.group(1), "message: %s" % m.group(1))
        # Refused: attempts at 0, 5, 15, 35, 60 ms (5 ms, doubling), then every 25 ms
        # up to the 1.5 s deadline, about 62; fewer when the machine is loaded.
        check(10 <= int(stats["dial_failures"]) <= 64, "attempts %s" % stats["dial_failures"])
        check(not os.path.exists(os.path.join(d, "nobody.sock")), "socket left behind")
        return "%s attempts, gave up after %.2f s: %s" % (stats["dial_failures"], dt, m.group(1))
    tap.run("no forwarder (refused): fast retries (5 ms doubling, 25 ms cap) then a clear failure at the proxy timeout", nobody_home)

    def shutdown():
        for name in ("p1", "p2"):
            check(c[name].stop() == 0, "%s exit:\n%s" % (name, c[name].tail()))
        check(c["fwd"].stop() == 0, "forwarder exit")
        c["agent"].stop()
        check(not os.path.exists(sock1) and not os.path.exists(sock2), "sockets left behind")
    tap.run("clean shutdown", shutdown)
    tap.exit()


if __name__ == "__main__":
    try:
        main()
    except Failed as e:
        print("Bail out! %s" % e)
        raise SystemExit(1)
