#!/usr/bin/env python3
"""Adversarial: a FIFO (no writer: opening it blocking would hang forever)
or another special file where a program expects a regular file, at each
call site that opens a path from outside. Each one is refused at once with
a clear error; nothing hangs. (The cidata user-data of process-user-data is
covered in test_adversarial_userdata.py; the shared reader, lib/fs.c, in the
test-fs unit test.)"""
import json
import os
import subprocess
import time

from caa_harness import Daemon, check, pod_annotations, run_main, sandbox_id, tmpdir

FORWARDER = os.environ.get("CAA_FORWARDER", "")


def fifo(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.mkfifo(path, 0o600)
    return path


def expect_start_failure(args, needle, what):
    d = Daemon(args=args, forwarder=False)
    t0 = time.monotonic()
    d.start(wait=False)
    try:
        rc = d.proc.wait(15)
    except subprocess.TimeoutExpired:
        d.kill()
        check(False, "%s: the daemon hangs:\n%s" % (what, d.log()))
    d.reader.join(5)
    check(rc != 0 and needle in d.log(), "%s: exit %s, log:\n%s" % (what, rc, d.log()))
    check(time.monotonic() - t0 < 10, "%s: took %.1f s" % (what, time.monotonic() - t0))


def main():
    root = tmpdir()
    # -ca-cert-file, -cert-file, -cert-key.
    cert = fifo(os.path.join(root, "tls", "cert.pem"))
    key = fifo(os.path.join(root, "tls", "key.pem"))
    ca = fifo(os.path.join(root, "tls", "ca.pem"))
    expect_start_failure(["-cert-file", cert, "-cert-key", key], "not a regular file", "-cert-file FIFO")
    expect_start_failure(["-ca-cert-file", ca], "not a regular file", "-ca-cert-file FIFO")
    expect_start_failure(["-ca-cert-file", "/dev/zero"], "not a regular file", "-ca-cert-file /dev/zero")

    # The generated TLS material the daemon keeps in <pods>/.tls.
    d = Daemon(forwarder=False)
    fifo(os.path.join(d.pods, ".tls", "tls-material.json"))
    os.chmod(os.path.join(d.pods, ".tls"), 0o700)
    expect_start_failure(["-pods-dir", d.pods], "not a regular file", "TLS store FIFO")

    # A state file: rejected with one line, the daemon serves.
    d = Daemon()
    fifo(os.path.join(d.pods, sandbox_id(1), "state.json"))
    d.start()
    d.wait_log(r'rejected pod directory "%s": .*not a regular file' % sandbox_id(1))
    d.ctl_ok("version")

    # CreateVM with a FIFO as the network namespace path: refused, no hang.
    ns = fifo(os.path.join(root, "netns-fifo"))
    t0 = time.monotonic()
    rc, _, err = d.ctl("create", sandbox_id(2), *pod_annotations(), "-netns", ns, timeout=20)
    check(rc == 1 and "not a network namespace" in err, "CreateVM with a FIFO netns: %s" % err)
    check(time.monotonic() - t0 < 5, "CreateVM with a FIFO netns took %.1f s" % (time.monotonic() - t0))
    check(not os.path.exists(os.path.join(d.pods, sandbox_id(2))), "refused CreateVM left a directory")
    d.ctl_ok("version")
    check(d.stop() == 0, "exit status")

    # The forwarder's -config (apf.json).
    if FORWARDER:
        cfg = fifo(os.path.join(root, "fwd", "apf.json"))
        t0 = time.monotonic()
        p = subprocess.run([FORWARDER, "-config", cfg, "-listen", "127.0.0.1:0", "-disable-tls",
                            "-kata-agent-socket", os.path.join(root, "fwd", "agent.sock")],
                           capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
        err = p.stderr.decode("utf-8", "replace")
        check(p.returncode != 0 and "not a regular file" in err, "forwarder -config FIFO: %d %s" % (p.returncode, err))
        check(time.monotonic() - t0 < 10, "forwarder -config FIFO took %.1f s" % (time.monotonic() - t0))
    print(json.dumps({"call sites": 7}))


run_main(main)
