"""A loopback TCP port that nobody listens on right now (tests bind it next)."""
import socket


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
