#!/usr/bin/env python3
"""One create/start/stop scenario with the daemon under valgrind: no memory
errors, no leaks, clean exit after SIGTERM."""
import shutil
import signal
import subprocess
import sys

from caa_harness import CTL, SANITIZED, Daemon, FakeForwarder, check, pod_annotations, run_main, sandbox_id, tmpdir

VALGRIND = ["valgrind", "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
            "--show-leak-kinds=definite,indirect", "--track-fds=no", "--quiet"]


def main():
    d = Daemon(args=["-test-create-delay", "50ms"], wrapper=VALGRIND).start(timeout=60)
    sid = sandbox_id(60)
    d.ctl_ok("create", sid, *pod_annotations("p", "n", {"io.katacontainers.config.hypervisor.default_vcpus": "2"}))
    d.ctl_ok("start", sid, timeout=60)
    d.ctl_ok("info", "p", "n")
    sid2 = sandbox_id(61)
    d.ctl_ok("create", sid2, *pod_annotations("q", "n"))
    d.ctl("create", sid2, *pod_annotations("q", "n"))  # duplicate: error path
    d.ctl("create", "bad/id", *pod_annotations("q", "n"))  # invalid: error path
    d.ctl_ok("stop", sid, timeout=60)
    d.ctl("stop", sid)  # unknown: error path
    rc = d.stop(signal.SIGTERM, timeout=60)
    check(rc == 0, "daemon under valgrind exited %d (99 = valgrind found errors):\n%s" % (rc, d.log()))
    check(d.instances() == [], "instances left")
    tls_scenario()


def tls_scenario():
    """TLS on: material generated and saved, a server certificate per pod, TLS
    dials refused by a plain-TCP peer until the proxy timeout, a shutdown
    with a proxy still connecting, a restart that reloads the material."""
    root = tmpdir()
    fake = FakeForwarder()  # plain TCP: every TLS handshake fails
    args = ["-test-ip", "127.0.0.1", "-forwarder-port", str(fake.port), "-proxy-timeout", "2s"]
    d = Daemon(root=root, forwarder=False, args=args, wrapper=VALGRIND).start(timeout=60)
    sid = sandbox_id(62)
    d.ctl_ok("create", sid, *pod_annotations("t", "n"))
    rc, _, err = d.ctl("start", sid, timeout=60)
    check(rc == 1 and "no connection to the agent-protocol-forwarder" in err, "TLS start against plain TCP: %s" % err)
    sid2 = sandbox_id(63)
    d.ctl_ok("create", sid2, *pod_annotations("u", "n"))
    start = subprocess.Popen([CTL, "-socket", d.sock, "start", sid2], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    d.wait_log(r"sandbox=%s agent proxy: connecting" % sid2, timeout=30)
    rc = d.stop(signal.SIGTERM, timeout=60)
    start.wait(30)
    check(rc == 0, "TLS daemon under valgrind exited %d (99 = valgrind found errors):\n%s" % (rc, d.log()))
    d = Daemon(root=root, forwarder=False, args=args, wrapper=VALGRIND).start(timeout=60)
    # The kept material is decoded at its first use.
    sid3 = sandbox_id(64)
    d.ctl_ok("create", sid3, *pod_annotations("v", "n"), timeout=60)
    d.wait_log(r"using the CA kept in")
    d.ctl_ok("stop", sid, timeout=60)
    d.ctl_ok("stop", sid2, timeout=60)
    d.ctl_ok("stop", sid3, timeout=60)
    rc = d.stop(signal.SIGTERM, timeout=60)
    check(rc == 0, "restarted TLS daemon under valgrind exited %d:\n%s" % (rc, d.log()))
    check(d.instances() == [], "instances left (TLS)")
    fake.close()


if SANITIZED:
    print("# sanitizer build: valgrind cannot run ASan binaries")
    sys.exit(77)
if not shutil.which("valgrind"):
    print("# valgrind not installed")
    sys.exit(77)
run_main(main)
