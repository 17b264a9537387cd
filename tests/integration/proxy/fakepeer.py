"""A scripted ttRPC server for fault injection (stands in for the forwarder or
the kata-agent). Methods:
    Check      -> HealthCheckResponse SERVING
    Truncate   -> a Response header announcing 50 bytes, 10 bytes, then the
                  connection is closed (a peer dying mid-frame)
    Huge       -> a Response of 4 MiB + 1 bytes (over the limit)
    anything   -> echoes the payload
"""
import os
import socket
import threading

from agentpath import field, frame, one, recv_exact

MAX = 4 << 20


class FakePeer:
    def __init__(self, unix_path=None):
        if unix_path:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(unix_path)
            self.port = None
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.bind(("127.0.0.1", 0))
            self.port = self.sock.getsockname()[1]
        self.path = unix_path
        self.sock.listen(16)
        self.accepted = 0
        self.requests = []
        self.lock = threading.Lock()
        self.closing = False
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closing:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            while True:
                hdr = recv_exact(c, 10)
                if hdr is None:
                    return
                length = int.from_bytes(hdr[0:4], "big")
                sid = int.from_bytes(hdr[4:8], "big")
                body = recv_exact(c, length) if length else b""
                if body is None:
                    return
                if hdr[8] != 1:
                    continue
                method = (one(body, 2, b"") or b"").decode()
                payload = one(body, 3, b"") or b""
                with self.lock:
                    self.requests.append(method)
                if method == "Check":
                    c.sendall(frame(sid, 2, field(2, bytes([0x08, 0x01]))))
                elif method == "Truncate":
                    c.sendall(frame(sid, 2, b"\x12\x30" + b"x" * 8, length=50))
                    c.shutdown(socket.SHUT_RDWR)
                    c.close()
                    return
                elif method == "Huge":
                    c.sendall(frame(sid, 2, b"\0" * (MAX + 1)))
                else:
                    c.sendall(frame(sid, 2, field(2, payload) if payload else b""))
        except OSError:
            return
        finally:
            try:
                c.close()
            except OSError:
                pass

    def close(self):
        self.closing = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() thread
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass
        with self.lock:
            for c in self.conns:
                try:
                    c.close()
                except OSError:
                    pass
        if self.path:
            try:
                os.unlink(self.path)
            except OSError:
                pass
