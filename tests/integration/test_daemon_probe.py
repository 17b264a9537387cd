#!/usr/bin/env python3
"""The probe endpoint on the daemon's loop (adaptor/probe): the paths and
their answers, HEAD, refused methods and bodies, keep-alive, an oversized
request head, SO_REUSEPORT (a rolling update's second listener binds the
same port), and a daemon that still exits promptly on SIGTERM while a
client holds an idle keep-alive connection to the endpoint. Without a
sanitizer, the same again with the daemon under valgrind (no leak or error
from the connections left open at exit)."""
import http.client
import shutil
import socket
import time

from caa_harness import SANITIZED, Daemon, check, free_port, probe_get, run_main, tmpdir

VALGRIND = ["valgrind", "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
            "--show-leak-kinds=definite,indirect", "--track-fds=no", "--quiet"]


def request(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def scenario(wrapper, exit_bound):
    port = free_port()
    d = Daemon(root=tmpdir(), args=["-probe-port", str(port)], wrapper=wrapper)
    d.start(timeout=60)
    check(probe_get(port, "/healthz") == (200, "ok\n"), "/healthz")
    check(probe_get(port, "/startup") == (200, "ready\n"), "/startup once serving")
    status, text = probe_get(port, "/metrics")
    check(status == 200 and "caa_build_info" in text, "/metrics: %d" % status)
    check(probe_get(port, "/nothing-here")[0] == 404, "unknown path")
    check(request(port, "HEAD", "/healthz") == (200, b""), "HEAD: status without body")
    check(request(port, "DELETE", "/healthz")[0] == 405, "other methods")
    check(request(port, "POST", "/healthz", body=b"x" * 10)[0] == 400, "a body is refused")

    # Keep-alive: two requests on one connection.
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    for _ in range(2):
        c.request("GET", "/healthz")
        r = c.getresponse()
        check(r.status == 200 and r.read() == b"ok\n", "keep-alive request")

    # A request head over the bound: refused, the connection closed.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nX-Pad: " + b"a" * 20000 + b"\r\n\r\n")
        answer = s.recv(4096)
        check(answer.startswith((b"HTTP/1.1 400", b"HTTP/1.1 431")), "oversized head: %r" % answer[:40])

    # SO_REUSEPORT: a second listener on the same port binds (rolling update).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind(("127.0.0.1", port))

    # The idle keep-alive connection `c` is still open: it must not hold the exit.
    t0 = time.monotonic()
    rc = d.stop(timeout=60)
    check(rc == 0, "exit status %d (99: valgrind found errors):\n%s" % (rc, d.log()))
    took = time.monotonic() - t0
    check(took < exit_bound, "exit took %.1fs with an idle probe connection open (idle timeout 10 s)" % took)
    c.close()


def main():
    scenario((), 8)
    print("ok: probe endpoint on the loop")
    if not SANITIZED and shutil.which("valgrind"):
        # Under valgrind the exit is slower: a loose bound; the leak check is the point.
        scenario(VALGRIND, 60)
        print("ok: under valgrind")


if __name__ == "__main__":
    run_main(main)
