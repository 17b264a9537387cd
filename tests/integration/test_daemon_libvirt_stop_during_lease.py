#!/usr/bin/env python3
"""StopVM while the libvirt provider waits for the pod VM's DHCP lease
(root only): the daemon with the libvirt provider against a private
libvirtd's test driver (libvirt_helpers.PrivateLibvirtd), -ip-wait 120 s.

The test driver makes up a lease for every running domain on a network with
an address (with or without a DHCP range; on one without any address its
libvirtd crashes, and with the network gone the lookup fails at once). So the
daemon runs with no-lease-preload.c (LD_PRELOAD): virDomainInterfaceAddresses
returns no interface, as libvirt does before the guest asked for a lease. CreateVM, StartVM, and about a second into the lease wait StopVM: it
must answer within a small bound (8 s, on a loaded machine) rather than after
the lease wait, StartVM answers CANCELLED, and no domain or volume of the pod
is left (nor one wrongly deleted)."""
import os
import re
import shutil
import subprocess
import sys
import time

from caa_harness import CTL, check, pod_annotations, run_main, sandbox_id, tmpdir
from libvirt_helpers import LIBVIRTD, REAL_DAEMON, LibvirtDaemon, PrivateLibvirtd, libvirt_env

STOP_BOUND_S = 8.0
PRELOAD = os.environ.get("CAA_NO_LEASE_PRELOAD", "")
def main():
    if os.geteuid() != 0:
        print("SKIP: needs root (libvirtd as another user)")
        sys.exit(77)
    if not (REAL_DAEMON and PRELOAD and os.path.exists(LIBVIRTD) and all(shutil.which(x) for x in ("virsh", "setpriv"))):
        print("SKIP: no cloud-api-adaptor with the libvirt provider, libvirtd, virsh or setpriv")
        sys.exit(77)
    lv = PrivateLibvirtd()
    try:
        env = libvirt_env(None) or {}
        env["LD_PRELOAD"] = " ".join(x for x in (env.get("LD_PRELOAD"), PRELOAD) if x)
        d = LibvirtDaemon(lv.uri, tmpdir(), env, args=["-ip-wait", "120s"]).start()
        sid = sandbox_id(30)
        d.ctl_ok("create", sid, *pod_annotations("leasewait"))
        start = subprocess.Popen([CTL, "-socket", d.sock, "-timeout", "180s", "start", sid], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
        name = "podvm-leasewait-" + sid[:8]
        deadline = time.monotonic() + 60
        while "running" not in lv.virsh("domstate", name, check_rc=False):
            if start.poll() is not None:
                check(False, "StartVM answered before the domain ran: %r" % (start.communicate(),))
            check(time.monotonic() < deadline, "domain %s did not start: %s" % (name, d.log()[-3000:]))
            time.sleep(0.1)
        time.sleep(1.0)
        if start.poll() is not None:
            check(False, "StartVM answered during the lease wait: %r" % (start.communicate(),))
        # Still in the provider's create (its lease wait), not past it (agent proxy).
        check(not re.search(r"sandbox=%s created instance" % sid, d.log()), "the create answered: a lease came")
        t0 = time.monotonic()
        out = d.ctl_ok("stop", sid, timeout=120)
        took = time.monotonic() - t0
        print("# StopVM during the lease wait answered in %.2f s (bound %.0f s, -ip-wait 120 s)" % (took, STOP_BOUND_S))
        check(out.strip() == "stopped " + sid, "stop output: %r" % out)
        check(took < STOP_BOUND_S, "StopVM waited %.1f s: it did not cut the lease wait short" % took)
        _, serr = start.communicate(timeout=30)
        check(start.returncode == 1 and b"CANCELLED" in serr, "StartVM: rc %d %s" % (start.returncode, serr))
        left = lv.counts()
        check(left == {"domains": 0, "volumes": 0, "isos": 0, "wrongly deleted": 0}, "left: %r" % left)
        check(not os.path.exists(os.path.join(d.pods, sid)), "pod dir left")
        check(d.stop() == 0, "exit status")
        print("ok: StopVM did not wait for the lease, nothing left")
    finally:
        lv.close()


if __name__ == "__main__":
    run_main(main)
