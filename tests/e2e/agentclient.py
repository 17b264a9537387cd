"""The Kata shim's side of the agent protocol, as far as the end-to-end runs need it.

caa-ctl speaks the hypervisor service and grpc.Health/Check only, so the pod's
containers are created through this small ttRPC client over the pod's agent
socket (<pods-dir>/<id>/agent.ttrpc), i.e. through the adaptor's agent proxy,
TLS, the VM's agent-protocol-forwarder and the test agent. It is written from
the wire facts (10-byte big-endian frame header, ttrpc.Request/Response
envelopes, proto3 encoding) and shares no code with the C library under test.

Field numbers come from agent-protocol/proto/{agent,oci,health}.proto (the same
numbers as kata-agent's protocols).
"""
import socket
import struct
import time

# gRPC status codes used by the callers
OK = 0
CANCELLED = 1
UNKNOWN = 2
NOT_FOUND = 5
INTERNAL = 13
UNAVAILABLE = 14


# ---------------------------------------------------------------- protobuf

def _varint(n):
    if n < 0:
        n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pb(*fields):
    """pb((1, "x"), (2, 5), (4, [a, b])): str/bytes length-delimited, int/bool varint,
    a list repeats the field."""
    out = b""
    for num, value in fields:
        for v in (value if isinstance(value, list) else [value]):
            if isinstance(v, bool):
                v = int(v)
            if isinstance(v, int):
                out += _varint(num << 3) + _varint(v)
            else:
                if isinstance(v, str):
                    v = v.encode()
                out += _varint((num << 3) | 2) + _varint(len(v)) + v
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


def pb_decode(b):
    """[(field number, value)]: varints as int, length-delimited as bytes."""
    out, i = [], 0
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


def pb_get(b, num, default=None):
    vals = [v for n, v in pb_decode(b or b"") if n == num]
    return vals[-1] if vals else default


# ---------------------------------------------------------------- messages

def oci_spec(args, env=(), cwd="/", netns_path=None):
    """An OCI Spec with Process{Args, Env, Cwd} and, like the Kata shim sends it,
    Linux.Namespaces naming the worker-side network namespace (the forwarder
    replaces that with the VM's pod namespace)."""
    process = pb((4, list(args)), (5, list(env)), (6, cwd))
    spec = pb((1, "1.0.2"), (2, process))
    if netns_path is not None:
        namespaces = [pb((1, "ipc"), (2, "")), pb((1, "uts"), (2, "")), pb((1, "mount"), (2, "")),
                      pb((1, "network"), (2, netns_path))]
        spec += pb((8, pb((6, namespaces))))
    return spec


class RpcError(Exception):
    def __init__(self, method, code, message):
        super().__init__("%s: gRPC code %d: %s" % (method, code, message))
        self.code = code
        self.message = message


class AgentClient:
    """One ttRPC connection; calls are sequential."""

    def __init__(self, path, timeout=30.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.timeout = timeout
        self.next_id = 1
        self.buf = b""

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _frame(self, deadline):
        while True:
            if len(self.buf) >= 10:
                length, sid, mtype, _flags = struct.unpack(">IIBB", self.buf[:10])
                if len(self.buf) >= 10 + length:
                    body = self.buf[10:10 + length]
                    self.buf = self.buf[10 + length:]
                    return sid, mtype, body
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer on the agent socket")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the agent socket was closed")
            self.buf += chunk

    def call(self, service, method, payload=b"", timeout=None):
        """The response payload; RpcError for a non-OK status."""
        timeout = self.timeout if timeout is None else timeout
        body = pb((1, service), (2, method)) + (pb((3, payload)) if payload else b"")
        body += pb((4, int(timeout * 1e9)))
        sid = self.next_id
        self.next_id += 2
        self.sock.sendall(struct.pack(">IIBB", len(body), sid, 1, 0) + body)
        deadline = time.monotonic() + timeout
        while True:
            got, mtype, resp = self._frame(deadline)
            if got == sid and mtype == 2:
                break
        status = pb_get(resp, 1)
        code = pb_get(status, 1, 0) if status else 0
        if code != OK:
            msg = (pb_get(status, 2, b"") or b"").decode(errors="replace")
            raise RpcError("%s/%s" % (service, method), code, msg)
        return pb_get(resp, 2, b"")

    # ---- grpc.Health
    def health_check(self):
        """The ServingStatus number (1 = SERVING)."""
        return pb_get(self.call("grpc.Health", "Check"), 1, 0)

    # ---- grpc.AgentService
    def agent(self, method, payload=b"", timeout=None):
        return self.call("grpc.AgentService", method, payload, timeout)

    def create_sandbox(self, hostname, sandbox_id, dns=()):
        self.agent("CreateSandbox", pb((1, hostname), (2, list(dns)), (5, sandbox_id)))

    def create_container(self, cid, args, env=(), netns_path=None):
        self.agent("CreateContainer", pb((1, cid), (2, cid), (6, oci_spec(args, env, "/", netns_path))))

    def start_container(self, cid):
        self.agent("StartContainer", pb((1, cid)))

    def exec_process(self, cid, exec_id, args, env=()):
        self.agent("ExecProcess", pb((1, cid), (2, exec_id), (4, pb((4, list(args)), (5, list(env)), (6, "/")))))

    def wait_process(self, cid, exec_id, timeout=None):
        return pb_get(self.agent("WaitProcess", pb((1, cid), (2, exec_id)), timeout), 1, 0)

    def read_stdout(self, cid, exec_id):
        """Everything the process wrote to stdout, up to the end of the stream
        (the agent answers INTERNAL "read meet eof" there, as the kata-agent)."""
        out = b""
        while True:
            try:
                data = pb_get(self.agent("ReadStdout", pb((1, cid), (2, exec_id), (3, 65536))), 1, b"")
            except RpcError as e:
                if e.code == INTERNAL and "eof" in e.message:
                    return out
                raise
            if not data:
                return out
            out += data

    def remove_container(self, cid):
        self.agent("RemoveContainer", pb((1, cid)))

    def destroy_sandbox(self):
        self.agent("DestroySandbox")
