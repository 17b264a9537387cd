"""The tests' one ttRPC and protobuf client, shared by tests/integration,
tests/integration/proxy, tests/test-agent and tests/e2e.

Written from the wire facts, independent of the C library under test:
- a frame is a 10-byte big-endian header (length u32, stream id u32, type u8,
  flags u8) and the body; type 1 is a Request, 2 a Response;
- ttrpc.Request is {1 service, 2 method, 3 payload, 4 timeout_nano, ...},
  ttrpc.Response is {1 status {1 code, 2 message}, 2 payload};
- bodies and payloads use the proto3 wire format.
Clients open a unix socket path or a (host, port) tuple.
"""
import socket
import struct
import time

HEADER = struct.Struct(">IIBB")
MSG_REQUEST = 1
MSG_RESPONSE = 2

# gRPC status codes
GRPC_OK = 0
GRPC_CANCELLED = 1
GRPC_UNKNOWN = 2
GRPC_INVALID_ARGUMENT = 3
GRPC_DEADLINE_EXCEEDED = 4
GRPC_NOT_FOUND = 5
GRPC_ALREADY_EXISTS = 6
GRPC_PERMISSION_DENIED = 7
GRPC_FAILED_PRECONDITION = 9
GRPC_UNIMPLEMENTED = 12
GRPC_INTERNAL = 13
GRPC_UNAVAILABLE = 14
GRPC_CODES = {0: "OK", 1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED",
              5: "NOT_FOUND", 6: "ALREADY_EXISTS", 7: "PERMISSION_DENIED", 9: "FAILED_PRECONDITION",
              12: "UNIMPLEMENTED", 13: "INTERNAL", 14: "UNAVAILABLE"}


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
    """One field: int/bool as varint, str/bytes (or an encoded message) as length-delimited."""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return varint(num << 3) + varint(value)
    if isinstance(value, str):
        value = value.encode()
    return varint((num << 3) | 2) + varint(len(value)) + value


def msg(*fields):
    """msg((1, "a"), (2, 5), (3, [x, y])): a list value repeats the field."""
    out = b""
    for num, value in fields:
        for v in (value if isinstance(value, list) else [value]):
            out += field(num, v)
    return out


def read_varint(b, i):
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


def decode_wt(b):
    """[(field number, wire type, value)]: varints as int, the others as bytes."""
    out = []
    i = 0
    b = b or b""
    while i < len(b):
        tag, i = read_varint(b, i)
        wt = tag & 7
        if wt == 0:
            v, i = read_varint(b, i)
        elif wt == 2:
            n, i = read_varint(b, i)
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
        out.append((tag >> 3, wt, v))
    return out


def decode(b):
    """[(field number, value)]."""
    return [(n, v) for n, _wt, v in decode_wt(b)]


def parse(b):
    """{field number: [values]}."""
    out = {}
    for n, v in decode(b):
        out.setdefault(n, []).append(v)
    return out


def fields_of(b, num):
    return [v for n, v in decode(b) if n == num]


def get(b, num, default=None):
    """The last value of field num (proto3: the last one wins)."""
    vals = fields_of(b, num)
    return vals[-1] if vals else default


# ---------------------------------------------------------------- ttRPC frames

def frame(stream_id, mtype, body, flags=0, length=None):
    """A frame; length overrides the header's length (for malformed-frame tests)."""
    return HEADER.pack(len(body) if length is None else length, stream_id, mtype, flags) + body


def request_body(service, method, payload=b"", timeout_ns=0):
    body = field(1, service) + field(2, method)
    if payload:
        body += field(3, payload)
    if timeout_ns:
        body += field(4, timeout_ns)
    return body


def response_status(body):
    """(code, message, payload) of a Response body."""
    st = get(body, 1, b"")
    return int(get(st, 1, 0) or 0), (get(st, 2, b"") or b"").decode(errors="replace"), get(body, 2, b"")


def recv_exact(sock, n):
    """n bytes from a blocking socket, None at EOF."""
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(min(65536, n - len(buf)))
        if not chunk:
            return None
        buf += chunk
    return buf


def recv_frame(sock, timeout=10):
    """(stream id, type, flags, body) of the next frame, None at EOF."""
    sock.settimeout(timeout)
    hdr = recv_exact(sock, HEADER.size)
    if hdr is None:
        return None
    length, sid, mtype, flags = HEADER.unpack(hdr)
    body = recv_exact(sock, length)
    return None if body is None else (sid, mtype, flags, body)


class Reply:
    def __init__(self, sid, body):
        self.sid = sid
        self.body = body
        status = get(body, 1)
        self.status_present = status is not None
        self.code, self.message, self.payload = response_status(body)

    def __repr__(self):
        return "Reply(code=%d, message=%r, payload=%s)" % (self.code, self.message, self.payload.hex())


class Client:
    """One ttRPC connection. Requests can be pipelined: send() returns the
    stream id, wait() blocks for that stream's Response while keeping any
    other Response that arrives; next_reply() takes whichever comes first."""

    def __init__(self, addr, timeout=10):
        family = socket.AF_INET if isinstance(addr, tuple) else socket.AF_UNIX
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(addr)
        except BaseException:
            self.sock.close()
            raise
        self.timeout = timeout
        self.next_id = 1
        self.done = {}
        self.order = []  # stream ids of kept Responses, arrival order
        self.buf = b""
        self.sent = []  # (service, method, payload) in send order

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, service, method, payload=b"", timeout_ns=0):
        body = request_body(service, method, payload, timeout_ns)
        sid = self.next_id
        self.next_id += 2
        self.sock.sendall(frame(sid, MSG_REQUEST, body))
        self.sent.append((service, method, payload))
        return sid

    def read_frame(self, deadline):
        """(stream id, type, body) of the next frame; TimeoutError, ConnectionError."""
        while True:
            if len(self.buf) >= HEADER.size:
                length, sid, mtype, _flags = HEADER.unpack(self.buf[:HEADER.size])
                if len(self.buf) >= HEADER.size + length:
                    body = self.buf[HEADER.size:HEADER.size + length]
                    self.buf = self.buf[HEADER.size + length:]
                    return sid, mtype, body
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no frame from the peer")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the peer closed the connection")
            self.buf += chunk

    def _keep(self, sid, mtype, body):
        if mtype == MSG_RESPONSE:
            self.done[sid] = Reply(sid, body)
            self.order.append(sid)
        return mtype

    def poll(self, sid, timeout=0.0):
        """The Reply for sid if it has arrived within timeout, else None."""
        deadline = time.monotonic() + timeout
        while sid not in self.done:
            try:
                self._keep(*self.read_frame(deadline))
            except (TimeoutError, socket.timeout):
                return None
        self.order.remove(sid)
        return self.done.pop(sid)

    def wait(self, sid, timeout=None):
        r = self.poll(sid, self.timeout if timeout is None else timeout)
        if r is None:
            raise TimeoutError("stream %d: no Response" % sid)
        return r

    def next_reply(self, timeout=None):
        """The first Response to arrive (or already kept); ValueError for another frame type."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.order:
            sid, mtype, body = self.read_frame(deadline)
            if self._keep(sid, mtype, body) != MSG_RESPONSE:
                raise ValueError("expected a Response frame, got type %d" % mtype)
        sid = self.order.pop(0)
        return self.done.pop(sid)

    def call(self, service, method, payload=b"", timeout=None, timeout_ns=0):
        return self.wait(self.send(service, method, payload, timeout_ns), timeout)
