"""A small ttRPC client and protobuf encoder for driving caa-test-agent.

Written from the wire facts (10-byte big-endian frame header, ttrpc.Request /
Response envelopes, proto3 wire format), independent of the C library under
test. Requests can be pipelined: send() returns the stream id, wait() blocks
for that stream's Response while keeping any other Response that arrives.
"""
import socket
import struct
import time

GRPC_OK = 0
GRPC_CANCELLED = 1
GRPC_UNKNOWN = 2
GRPC_INVALID_ARGUMENT = 3
GRPC_NOT_FOUND = 5
GRPC_PERMISSION_DENIED = 7
GRPC_FAILED_PRECONDITION = 9
GRPC_UNIMPLEMENTED = 12
GRPC_INTERNAL = 13


# ---------------------------------------------------------------- protobuf

def varint(n):
    if n < 0:
        n &= (1 << 64) - 1  # proto3 int32/int64: two's complement, 10 bytes
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, value):
    """One field: int/bool as varint, str/bytes as length-delimited."""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return varint(num << 3) + varint(value)
    if isinstance(value, str):
        value = value.encode()
    return varint((num << 3) | 2) + varint(len(value)) + value


def msg(*fields):
    """msg((1, "a"), (2, 5), ...); a list value repeats the field."""
    out = b""
    for num, value in fields:
        for v in (value if isinstance(value, list) else [value]):
            out += field(num, v)
    return out


def _read_varint(b, i):
    shift = n = 0
    while True:
        if i >= len(b):
            raise ValueError("truncated varint")
        c = b[i]
        i += 1
        n |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return n, i


def decode(b):
    """[(field number, value)]: varints as int, length-delimited as bytes."""
    out = []
    i = 0
    while i < len(b):
        tag, i = _read_varint(b, i)
        wt = tag & 7
        if wt == 0:
            v, i = _read_varint(b, i)
        elif wt == 2:
            n, i = _read_varint(b, i)
            v = bytes(b[i:i + n])
            if len(v) != n:
                raise ValueError("truncated field")
            i += n
        elif wt == 1:
            v, i = bytes(b[i:i + 8]), i + 8
        elif wt == 5:
            v, i = bytes(b[i:i + 4]), i + 4
        else:
            raise ValueError("wire type %d" % wt)
        out.append((tag >> 3, v))
    return out


def get(b, num, default=None):
    vals = [v for n, v in decode(b) if n == num]
    return vals[-1] if vals else default


# ---------------------------------------------------------------- ttRPC

class Reply:
    def __init__(self, body):
        self.body = body
        status = get(body, 1)
        self.status_present = status is not None
        self.code = get(status, 1, 0) if status else 0
        self.message = (get(status, 2, b"") if status else b"").decode(errors="replace")
        self.payload = get(body, 2, b"")

    def __repr__(self):
        return "Reply(code=%d, message=%r, payload=%s)" % (self.code, self.message, self.payload.hex())


class Client:
    def __init__(self, addr, timeout=10):
        """addr: a unix socket path, or a (host, port) tuple for TCP."""
        family = socket.AF_INET if isinstance(addr, tuple) else socket.AF_UNIX
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(addr)
        self.next_id = 1
        self.done = {}
        self.buf = b""
        self.timeout = timeout
        self.sent = []  # (service, method, payload) in send order

    def close(self):
        self.sock.close()

    def send(self, service, method, payload=b"", timeout_ns=0):
        body = field(1, service) + field(2, method)
        if payload:
            body += field(3, payload)
        if timeout_ns:
            body += field(4, timeout_ns)
        sid = self.next_id
        self.next_id += 2
        self.sock.sendall(struct.pack(">IIBB", len(body), sid, 1, 0) + body)
        self.sent.append((service, method, payload))
        return sid

    def _read_frame(self, deadline):
        while True:
            if len(self.buf) >= 10:
                length, sid, mtype, _flags = struct.unpack(">IIBB", self.buf[:10])
                if len(self.buf) >= 10 + length:
                    body = self.buf[10:10 + length]
                    self.buf = self.buf[10 + length:]
                    return sid, mtype, body
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no frame from the agent")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("agent closed the connection")
            self.buf += chunk

    def poll(self, sid, timeout=0.0):
        """The Reply for sid if it has arrived within timeout, else None."""
        deadline = time.monotonic() + timeout
        while sid not in self.done:
            try:
                got, mtype, body = self._read_frame(deadline)
            except (TimeoutError, socket.timeout):
                return None
            if mtype == 2:
                self.done[got] = Reply(body)
        return self.done.pop(sid)

    def wait(self, sid, timeout=None):
        r = self.poll(sid, self.timeout if timeout is None else timeout)
        if r is None:
            raise TimeoutError("stream %d: no Response" % sid)
        return r

    def call(self, service, method, payload=b"", timeout=None):
        return self.wait(self.send(service, method, payload), timeout)

    def agent(self, method, payload=b"", timeout=None):
        return self.call("grpc.AgentService", method, payload, timeout)
