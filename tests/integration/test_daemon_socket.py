#!/usr/bin/env python3
"""The hypervisor socket: 0600 in a 0700 directory the daemon creates, a stale
socket file is replaced, a non-socket file is refused, SIGTERM/SIGINT exit 0
and remove the socket."""
import os
import signal
import socket
import stat
import subprocess

from caa_harness import CTL, Daemon, check, pod_annotations, run_main, sandbox_id, tmpdir


def main():
    root = tmpdir()
    d = Daemon(root=root).start()
    sock_dir = os.path.dirname(d.sock)
    check(stat.S_ISSOCK(os.stat(d.sock).st_mode), "socket exists")
    check(stat.S_IMODE(os.stat(d.sock).st_mode) == 0o600, "socket mode %o" % stat.S_IMODE(os.stat(d.sock).st_mode))
    check(stat.S_IMODE(os.stat(sock_dir).st_mode) == 0o700, "socket dir mode %o" % stat.S_IMODE(os.stat(sock_dir).st_mode))
    check(stat.S_IMODE(os.stat(d.pods).st_mode) == 0o700, "pods dir mode")
    d.ctl_ok("version")
    check(d.stop(signal.SIGTERM) == 0, "SIGTERM exit status")
    check(not os.path.exists(d.sock), "socket not removed at shutdown")
    check("shutdown complete" in d.log(), "shutdown not logged")

    # A stale socket (bound, nobody listening) is replaced.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(d.sock)
    s.close()
    check(os.path.exists(d.sock), "stale socket file prepared")
    d = Daemon(root=root).start()
    d.ctl_ok("version")
    check(d.stop(signal.SIGINT) == 0, "SIGINT exit status")
    check(not os.path.exists(d.sock), "socket not removed after SIGINT")

    # A regular file at the socket path is not ours to delete.
    with open(d.sock, "w") as f:
        f.write("precious")
    d = Daemon(root=root).start(wait=False)
    rc = d.proc.wait(20)
    d.reader.join(5)
    check(rc == 1, "daemon must refuse a non-socket file at the socket path (rc %d)" % rc)
    with open(d.sock) as f:
        check(f.read() == "precious", "the file at the socket path was modified")
    os.unlink(d.sock)

    # Shutdown with a pod in flight cancels the create and keeps the state for
    # the next daemon (test_daemon_shutdown.py has the details).
    d = Daemon(root=root, args=["-test-create-delay", "500ms"]).start()
    sid = sandbox_id(30)
    d.ctl_ok("create", sid, *pod_annotations())
    start = subprocess.Popen([CTL, "-socket", d.sock, "start", sid], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    d.wait_log(r"sandbox=%s creating instance" % sid)
    check(d.stop(signal.SIGTERM) == 0, "SIGTERM with a create in flight")
    start.wait(10)
    st = d.pod_state(sid)
    check(st["state"] == "provisioning" and st["idempotency_key"], "state kept as provisioning: %s" % st)
    d = Daemon(root=root).start()
    d.ctl_ok("stop", sid)
    check(d.instances() == [], "StopVM on the next daemon deletes it")
    check(d.stop() == 0, "exit status")

    # Usage errors exit 2 before touching anything.
    d = Daemon(root=tmpdir(), args=["-no-such-flag"]).start(wait=False)
    check(d.proc.wait(20) == 2, "bad flag must exit 2")
    d.reader.join(5)
    check(not os.path.exists(d.sock), "no socket after a usage error")


run_main(main)
