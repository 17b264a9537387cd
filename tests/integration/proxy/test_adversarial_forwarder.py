#!/usr/bin/env python3
"""Adversarial: the seeded ttRPC protocol fuzzer (tests/integration/adversary.py)
against the running agent-protocol-forwarder, with the Go ttRPC agent behind
it. Phases: hostile frames for the methods the forwarder rewrites and for a
plain passthrough one; NULs in the fields it re-encodes (CreateSandbox,
CreateContainer: refused like any undecodable payload, never a shortened
string handed on);
thousands of connections dropped mid-frame; many calls in flight dropped
with their connections. After each phase a call through the forwarder
answers within 100 ms, its fd count is back at its baseline and RSS is
bounded. CAA_ADV_SEED picks the seed."""
import os
import random
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import adversary as adv  # noqa: E402
from agentpath import go_peers, skip_without_go, start_agent, start_forwarder, tmpdir, write_apf  # noqa: E402
from caa_harness import SANITIZED, check, pb_bytes  # noqa: E402

SEED = int(os.environ.get("CAA_ADV_SEED", "17"))
SCALE = 0.2 if SANITIZED else 1.0
AGENT = "grpc.AgentService"


def n(x):
    return max(10, int(x * SCALE))


def create_container(cid, odd=None):
    """CreateContainerRequest with an OCI spec; odd goes into the hostname (spec field 4)."""
    spec = pb_bytes(1, "1.1.0") + pb_bytes(4, odd if odd is not None else "host") + \
        pb_bytes(7, pb_bytes(1, "k") + pb_bytes(2, "v"))
    return pb_bytes(1, cid) + pb_bytes(2, "exec-1") + pb_bytes(6, spec)


def main():
    skip_without_go()
    rng = random.Random(SEED)
    d = tmpdir()
    goserver, _ = go_peers()
    agent_sock = os.path.join(d, "agent.sock")
    apf = os.path.join(d, "apf.json")
    write_apf(apf)
    record = os.path.join(d, "agent-record")
    start_agent(goserver, agent_sock, record=record)
    fwd = start_forwarder(agent_sock, apf, extra=["-log-level", "info"])

    def connect():
        s = socket.create_connection(("127.0.0.1", fwd.port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def rpc(method, payload, timeout=20):
        return adv.call(connect, AGENT, method, payload, timeout)

    def probe():
        code, msg, dt = rpc("GetGuestDetails", b"")
        check(code == 0, "GetGuestDetails through the forwarder: %d %s" % (code, msg))
        return dt

    probe()
    watch = adv.Watch(fwd.pid, probe, rss_slack_kib=(256 if SANITIZED else 64) * 1024)

    # ---- hostile frames for the rewritten methods and a passthrough one
    for method, payload in [("CreateContainer", create_container("c1")),
                            ("CreateSandbox", pb_bytes(1, "host") + pb_bytes(2, "1.1.1.1")),
                            ("ListInterfaces", b"")]:
        adv.blast(connect, adv.hostile_frames(rng, AGENT, method, payload, n(300)), rng, read_reply=0.05)
    watch.after("hostile frames")

    # ---- NULs in the fields the forwarder re-encodes: refused, not cut
    def recorded():
        with open(record) as f:
            return [line.split()[1] for line in f]
    seen = len(recorded())
    for method, payload, what in [
            ("CreateContainer", create_container("c2", odd=b"host\0name"), "NUL in the OCI hostname"),
            ("CreateContainer", create_container(b"c\0x"), "NUL in the container id"),
            ("CreateSandbox", pb_bytes(1, b"host\0x") + pb_bytes(2, "1.1.1.1"), "NUL in the sandbox hostname"),
            ("CreateSandbox", pb_bytes(1, "host") + pb_bytes(2, b"1.1.1.1\0evil"), "NUL in a DNS entry")]:
        code, msg, _ = rpc(method, payload)
        # The relay answers an undecodable payload as the Go ttRPC server does (INTERNAL).
        check(code == 13 and "NUL byte at offset" in msg, "%s: expected a refusal, got %d %s" % (what, code, msg))
    # None of them reached the agent (the Go agent records every request it gets).
    got = recorded()[seen:]
    check(not any(m in ("CreateContainer", "CreateSandbox") for m in got), "a refused request reached the agent: %s" % got)
    for odd in adv.odd_strings(rng):
        rpc("CreateContainer", create_container("c3", odd=odd))
        rpc("CreateSandbox", pb_bytes(1, odd) + pb_bytes(2, odd))
    watch.after("NULs and odd bytes")

    # ---- connections dropped mid-frame, in bulk and all open at once
    adv.drop_mid_frame(connect, adv.request(AGENT, "CreateContainer", create_container("c4")), rng, n(2000), n(200), probe)
    watch.after("connections dropped mid-frame")

    # ---- calls in flight dropped with their connections (the agent answers later)
    held = []
    for i in range(n(200)):
        s = connect()
        s.sendall(b"".join(adv.request(AGENT, "ListInterfaces", b"", stream_id=2 * k + 1) for k in range(5)))
        held.append(s)
    for s in held:
        s.close()
    watch.after("calls abandoned in flight")

    fwd.stop()
    print("seed %d: worst probe after a phase %.1f ms" % (SEED, watch.worst * 1000))


try:
    main()
except AssertionError as e:
    print("FAIL: %s" % e)
    sys.exit(1)
print("PASS")
