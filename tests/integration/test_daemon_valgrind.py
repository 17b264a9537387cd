#!/usr/bin/env python3
"""One create/start/stop scenario with the daemon under valgrind: no memory
errors, no leaks, clean exit after SIGTERM."""
import shutil
import signal
import sys

from caa_harness import SANITIZED, Daemon, check, pod_annotations, run_main, sandbox_id


def main():
    d = Daemon(args=["-test-create-delay", "50ms"],
               wrapper=["valgrind", "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
                        "--show-leak-kinds=definite,indirect", "--track-fds=no", "--quiet"]).start(timeout=60)
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


if SANITIZED:
    print("# sanitizer build: valgrind cannot run ASan binaries")
    sys.exit(77)
if not shutil.which("valgrind"):
    print("# valgrind not installed")
    sys.exit(77)
run_main(main)
