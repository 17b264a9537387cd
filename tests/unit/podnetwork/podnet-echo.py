#!/usr/bin/env python3
"""TCP + UDP echo for the pod network tests.

  podnet-echo.py serve ADDR PORT COUNT   echo COUNT requests (TCP or UDP), print "ready" once bound
  podnet-echo.py client ADDR PORT SIZE   one TCP and one UDP exchange of SIZE bytes; exit 0 if both echo
"""
import os
import select
import socket
import sys


def serve(addr, port, count):
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind((addr, port))
    t.listen(8)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((addr, port))
    print("ready", flush=True)
    served = 0
    while served < count:
        ready, _, _ = select.select([t, u], [], [], 60)
        if not ready:
            sys.exit("echo server: idle for 60 s")
        for s in ready:
            if s is t:
                c, _ = t.accept()
                c.settimeout(10)
                data = b""
                while True:
                    chunk = c.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                c.sendall(data)
                c.close()
            else:
                d, a = u.recvfrom(65535)
                u.sendto(d, a)
            served += 1


def client(addr, port, size):
    payload = os.urandom(size)
    c = socket.create_connection((addr, port), timeout=10)
    c.sendall(payload)
    c.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        chunk = c.recv(65536)
        if not chunk:
            break
        got += chunk
    c.close()
    if got != payload:
        sys.exit("tcp: echo mismatch (%d of %d bytes)" % (len(got), size))
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(5)
    u.sendto(payload, (addr, port))
    d, _ = u.recvfrom(65535)
    if d != payload:
        sys.exit("udp: echo mismatch (%d of %d bytes)" % (len(d), size))
    print("tcp ok, udp ok, %d bytes" % size)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif len(sys.argv) == 5 and sys.argv[1] == "client":
        client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit(__doc__)
