#!/usr/bin/env python3
"""Concurrency through worker proxy + forwarder (one pod, one forwarder link).

- the ttRPC interop scenarios of goclient run through the chain: echo sizes,
  every status code, metadata, deadlines, unknown service/method, out-of-order
  answers, abandoned connections, 100 shim connections x 10 calls, 1,000 calls
  in flight on one connection (answered out of order);
- calls without deadline that the agent holds (WaitProcess, ReadStdout,
  ReadStderr) stay open while 300 other calls on other shim connections
  complete, and finish when the agent releases them;
- all of that went over one forwarder connection (the proxy never redialled).
"""
import os
import signal
import subprocess
import time

from agentpath import (FORWARDER, Driver, Tap, check, go_peers, msg, proxy_stats, run_scenario, skip_without_go, start_agent,
                       start_forwarder, start_proxy, tmpdir, write_apf)

SCENARIOS = [
    ["basic"], ["errors"], ["metadata"], ["deadline"], ["unknown"], ["ooo"], ["abandon"],
    ["conns", "100", "10"], ["inflight", "1000"],
]


def main():
    skip_without_go()
    tap = Tap(1 + len(SCENARIOS) + 4)
    d = tmpdir()
    goserver, goclient = go_peers()
    agent_sock = os.path.join(d, "agent.sock")
    apf = os.path.join(d, "apf.json")
    sock = os.path.join(d, "pod.sock")
    write_apf(apf)
    chain = {}

    def setup():
        chain["agent"] = start_agent(goserver, agent_sock)
        chain["fwd"] = start_forwarder(agent_sock, apf)
        chain["proxy"] = start_proxy(sock, chain["fwd"].port)
    if not tap.run("chain up", setup):
        tap.exit()

    for sc in SCENARIOS:
        def scenario(sc=sc):
            ok, out = run_scenario(goclient, sock, *sc)
            check(ok, out)
            return out.splitlines()[0]
        tap.run("goclient %s through proxy + forwarder" % " ".join(sc), scenario)

    def long_calls():
        held = Driver(goclient, sock)
        blk = msg((1, "block-long"), (2, "exec-1"))
        held.call("grpc.AgentService", "WaitProcess", blk, cid="wait")
        held.call("grpc.AgentService", "ReadStdout", blk, cid="stdout")
        held.call("grpc.AgentService", "ReadStderr", blk, cid="stderr")
        # 300 calls on three other connections while those three are held.
        others = Driver(goclient, sock)
        ids = []
        t0 = time.monotonic()
        for c in range(3):
            others.conn(c)
            for i in range(100):
                ids.append(others.call("caa.interop.Test", "Echo", b"other-%d-%d" % (c, i), timeout_ms=20000))
        for cid in ids:
            r = others.result(cid)
            check(r["code"] == 0, "call %s failed: %s" % (cid, r))
        dt = time.monotonic() - t0
        for cid in ("wait", "stdout", "stderr"):
            check(not held.done(cid), "%s finished while the agent still held it" % cid)
        st = proxy_stats(chain["proxy"])
        check(int(st["inflight"]) >= 3, "proxy does not count the held calls in flight: %s" % st)
        # The agent releases the container: the held calls answer.
        others.call("grpc.AgentService", "SignalProcess", msg((1, "block-long"), (3, 9)), timeout_ms=20000,
                    cid="kill")
        check(others.result("kill")["code"] == 0, "SignalProcess failed")
        w = held.result("wait")
        check(w["code"] == 0 and w["data"] == bytes([0x08, 0x89, 0x01]), "WaitProcess answered %s" % w)
        for cid in ("stdout", "stderr"):
            r = held.result(cid)
            check(r["code"] == 0 and r["len"] == 0, "%s answered %s" % (cid, r))
        held.close()
        others.close()
        return "300 calls done in %.2f s while 3 calls without deadline were held" % dt
    tap.run("calls without deadline never block the others", long_calls)

    def one_link():
        st = proxy_stats(chain["proxy"])
        check(st["connects"] == "1" and st["dial_failures"] == "0", "proxy redialled: %s" % st)
        check(int(st["relayed"]) > 2300, "relayed only %s calls" % st["relayed"])
        check(st["queued"] == "0" and st["inflight"] == "0", "calls left over: %s" % st)
        return "%s calls over one forwarder connection" % st["relayed"]
    tap.run("everything over one forwarder connection, nothing left in flight", one_link)

    def shutdown():
        rc = chain["proxy"].stop(signal.SIGTERM)
        check(rc == 0 and not os.path.exists(sock), "proxy exit %s:\n%s" % (rc, chain["proxy"].tail()))
        rc = chain["fwd"].stop(signal.SIGINT)
        check(rc == 0, "forwarder exit %s:\n%s" % (rc, chain["fwd"].tail()))
    tap.run("clean shutdown (proxy SIGTERM, forwarder SIGINT)", shutdown)

    def version_help():
        v = subprocess.run([FORWARDER, "-version"], capture_output=True, timeout=10)
        check(v.returncode == 0 and v.stdout.startswith(b"agent-protocol-forwarder version "), "-version: %s" % v)
        h = subprocess.run([FORWARDER, "-h"], capture_output=True, timeout=10)
        for flag in (b"-config", b"-listen", b"-kata-agent-socket", b"-pod-namespace", b"-host-interface",
                     b"-ca-cert-file", b"-cert-file", b"-cert-key", b"-tls-skip-verify", b"-disable-tls", b"-version"):
            check(flag in h.stdout, "-h does not list %s" % flag.decode())
        b = subprocess.run([FORWARDER, "-no-such-flag"], capture_output=True, timeout=10)
        check(b.returncode == 2, "bad flag exit %d" % b.returncode)
        return v.stdout.decode().splitlines()[0]
    tap.run("forwarder -version, -h with upstream's flags, bad flag exit 2", version_help)
    tap.exit()


if __name__ == "__main__":
    main()
