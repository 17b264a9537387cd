"""Hostile ttRPC traffic and the checks that follow each phase, shared by the
adversarial tests of the daemon (test_adversarial_ttrpc.py) and of the
forwarder (proxy/test_adversarial_forwarder.py).

Everything is drawn from a random.Random seeded by the caller, so a run is
repeatable; the amounts are given by the caller (smaller under the
sanitizers). Frames are built with the protobuf helpers of caa_harness."""
import os
import socket
import struct
import time

from caa_harness import TtrpcClient, _varint, check, fail, pb_bytes, pb_varint

MAX_MESSAGE = 4 << 20
REQUEST, RESPONSE = 1, 2


def frame(stream_id, mtype, body, flags=0, length=None):
    return struct.pack(">IIBB", len(body) if length is None else length, stream_id, mtype, flags) + body


def request(service, method, payload=b"", stream_id=1, timeout_ns=0):
    body = pb_bytes(1, service) + pb_bytes(2, method) + (pb_bytes(3, payload) if payload else b"")
    if timeout_ns:
        body += pb_varint(4, timeout_ns)
    return frame(stream_id, REQUEST, body)


def nested(depth, field=2, core=b"x"):
    """depth levels of a length-delimited field inside itself."""
    out = core
    for _ in range(depth):
        out = pb_bytes(field, out)
    return out


def odd_strings(rng):
    """Values that are not what a C string of them would say."""
    return [b"abc\0def", b"\0", b"ok\0/../../etc", b"\xff\xfe\xfd", b"a\nb\rc", b"../x", b"x" * 5000,
            bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))]


def hostile_frames(rng, service, method, payload, count):
    """count byte strings, each a hostile thing to write on a fresh connection
    (the writer closes it afterwards, possibly mid-frame)."""
    good = request(service, method, payload)
    kinds = [
        lambda: frame(1, REQUEST, b"", length=rng.choice([MAX_MESSAGE + 1, 0xFFFFFFFF, 0x7FFFFFFF])),
        lambda: frame(1, REQUEST, good[10:], length=len(good) - 10 + rng.randint(1, 1000)),  # lying length
        lambda: good[:rng.randrange(1, len(good))],  # truncated
        lambda: frame(rng.choice([0, 2, 4, 0xFFFFFFFF, 0x80000000]), REQUEST, good[10:]),  # stream id abuse
        lambda: good + good,  # the same stream id twice in flight
        lambda: frame(1, rng.choice([0, 2, 3, 4, 7, 255]), good[10:], flags=rng.randrange(256)),
        lambda: bytes(rng.randrange(256) for _ in range(rng.randint(1, 300))),  # garbage
        lambda: frame(1, REQUEST, bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))),
        lambda: request(service, method, bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))),
        lambda: request(service, method, nested(rng.choice([40, 200, 2000]))),
        lambda: request(service, method, nested(rng.randint(2, 64), field=rng.choice([1, 2, 3, 15]))),
        lambda: request(service + "\0x", method, payload),
        lambda: request(service, method + "\0", payload),
        lambda: frame(1, REQUEST, pb_bytes(1, service) + pb_bytes(2, method) + _varint(3 << 3 | 2) + _varint(1 << 40)),
    ]
    return [kinds[rng.randrange(len(kinds))]() for _ in range(count)]


def blast(connect, blobs, rng, read_reply=0.0):
    """Writes each blob on its own connection and drops it (mid-frame for
    most); with read_reply > 0 waits that long for an answer first."""
    for blob in blobs:
        s = connect()
        try:
            s.sendall(blob)
            if read_reply and rng.random() < 0.2:
                s.settimeout(read_reply)
                try:
                    s.recv(65536)
                except (socket.timeout, OSError):
                    pass
        except OSError:
            pass  # the peer may close first (refused frame): fine
        finally:
            s.close()


def drop_mid_frame(connect, good, rng, one_by_one, at_once, probe):
    """one_by_one connections that each send part of the frame good and
    close; then at_once of them open together (the probe must still answer
    while they hang), all closed."""
    blast(connect, [good[:rng.randrange(1, len(good))] for _ in range(one_by_one)], rng)
    held = []
    for _ in range(at_once):
        s = connect()
        s.sendall(good[:rng.randrange(1, len(good))])
        held.append(s)
    probe()
    for s in held:
        s.close()


def client_on(sock, timeout):
    """caa_harness's ttRPC client over an already connected socket (unix or TCP)."""
    return TtrpcClient.from_socket(sock, timeout)


def call(connect, service, method, payload=b"", timeout=10.0):
    """One call on a fresh connection: (code, message, seconds)."""
    c = client_on(connect(), timeout)
    try:
        t0 = time.monotonic()
        code, msg, _ = c.call(service, method, payload)
        return code, msg, time.monotonic() - t0
    except ConnectionError:
        fail("%s/%s: connection closed without an answer" % (service, method))
    finally:
        c.close()


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Watch:
    """The invariants checked after each phase: the probe call answers within
    100 ms, the fd count is back at its baseline, RSS stays bounded."""

    def __init__(self, pid, probe, rss_slack_kib, latency=0.1):
        self.pid, self.probe, self.slack, self.latency = pid, probe, rss_slack_kib, latency
        self.base_fds = fd_count(pid)
        self.base_rss = rss_kib(pid)
        self.worst = 0.0

    def after(self, phase, extra=None):
        # Best of three: one slow answer can be the scheduler of a shared machine.
        best = min(self.probe() for _ in range(3))
        self.worst = max(self.worst, best)
        check(best < self.latency, "%s: probe answered in %.0f ms" % (phase, best * 1000))
        deadline = time.monotonic() + 10
        while fd_count(self.pid) > self.base_fds and time.monotonic() < deadline:
            time.sleep(0.05)
        n = fd_count(self.pid)
        check(n <= self.base_fds, "%s: %d fds open, baseline %d" % (phase, n, self.base_fds))
        rss = rss_kib(self.pid)
        check(rss < self.base_rss + self.slack, "%s: RSS %d KiB, baseline %d KiB" % (phase, rss, self.base_rss))
        if extra:
            extra(phase)
        return best
