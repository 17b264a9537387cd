#!/usr/bin/env python3
"""Fault matrix with a pod network, for libvirt and the test provider (root
only): the cells of test_daemon_fault_matrix.py (SIGKILL at every failpoint,
a new daemon gets the shim's next call), each pod with a pod network
namespace, and counting on the worker as well as in the cloud.

libvirt: the daemon (cloud-api-adaptor libvirt) talks to a private libvirtd
that this test starts as an unprivileged user (its own socket, configuration
and cache in a temporary directory), through its test driver
(test+unix:///default?socket=...). The test driver would live inside the
daemon with test:///default, and a SIGKILL would lose its domains; in a
libvirtd they survive the daemon. The driver's shared state is reset when its
last connection closes, so a `virsh event --loop` holds one open for the
whole test. The driver's "default" network is replaced by one in
198.18.0.0/16, so the leases it reports (198.18.x.y) lead into our namespaces
only.

Namespaces (names with this test's pid): W, the worker, where the daemon
runs; U, the underlay, where every address of 198.18.0.0/16 is local and a
FakeForwarder answers for every pod VM; P, the pod namespace (eth0 behind a
veth into W, as a CNI leaves it).

For libvirt there are also cells killed at each libvirt call of the
provider (gdb on the daemon, a breakpoint on the call, then kill).

Counted after each cell: in the cloud, domains, volumes and cidata ISOs made
for pods and what was wrongly deleted (the driver's own domain "test", the
base volume and a bystander volume); on the worker, devices left in W and P
(the VXLAN), tc filters on the pod's eth0, NOTRACK rules (nft table peerpod)
in W; pod dirs and sockets. Every cell must be zero."""
import json
import os
import shutil
import signal
import subprocess
import sys

from caa_harness import Daemon, check, run_main
from libvirt_helpers import (BASE_VOL, LIBVIRTD, REAL_DAEMON, LibvirtDaemon, PrivateLibvirtd, failpoint_env,
                             libvirt_env)
from netns_helpers import add_helper, make_netns, nft_rules, ns, sh, sweep_stale
from test_daemon_fault_matrix import START_POINTS, STOP_POINTS, Matrix

PID = os.getpid()
TAG = "caa-fml%d" % PID
W, U, P = TAG + "-w", TAG + "-u", TAG + "-p"
# Interface names: at most 15 bytes, unique per run (other tests run at once).
W_UP, U_DN, P_HOST = "fmw%d" % PID, "fmu%d" % PID, "fmp%d" % PID
FWD_PORT = 15150
def setup_network():
    sweep_stale("caa-fml")
    for n in (W, U, P):
        make_netns(n)
    sh("ip", "link", "add", W_UP, "netns", W, "type", "veth", "peer", "name", U_DN, "netns", U)
    ns(W, "ip", "addr", "add", "198.19.200.1/24", "dev", W_UP)
    ns(W, "ip", "link", "set", W_UP, "up")
    ns(W, "ip", "route", "add", "default", "via", "198.19.200.2", "dev", W_UP)
    ns(U, "ip", "addr", "add", "198.19.200.2/24", "dev", U_DN)
    ns(U, "ip", "link", "set", U_DN, "up")
    # Every pod VM address the test driver hands out is local in U.
    ns(U, "ip", "route", "add", "local", "198.18.0.0/16", "dev", "lo")
    sh("ip", "link", "add", P_HOST, "netns", W, "type", "veth", "peer", "name", "eth0", "netns", P)
    ns(W, "ip", "addr", "add", "198.19.1.1/24", "dev", P_HOST)
    ns(W, "ip", "link", "set", P_HOST, "up")
    ns(P, "ip", "addr", "add", "198.19.1.5/24", "dev", "eth0")
    ns(P, "ip", "link", "set", "eth0", "up")
    ns(P, "ip", "route", "add", "default", "via", "198.19.1.1", "dev", "eth0")
    harness = os.path.join(os.path.dirname(os.path.abspath(__file__)), "caa_harness.py")
    p = subprocess.Popen(["ip", "netns", "exec", U, sys.executable, harness, "fake-forwarder", "0.0.0.0",
                          str(FWD_PORT)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    add_helper(p)
    line = p.stdout.readline()
    check(line.startswith("LISTENING"), "fake forwarder did not start: %r" % line)


def links(name, keep):
    out = json.loads(ns(name, "ip", "-j", "link", "show"))
    return [link["ifname"] for link in out if link["ifname"] not in keep]


def host_leftovers(_d):
    """What the pod network leaves on the worker: devices in W and P, tc
    filters on the pod's eth0, NOTRACK rules (table peerpod) in W."""
    devs = links(W, ("lo", W_UP, P_HOST)) + links(P, ("lo", "eth0"))
    tc = [line for line in ns(P, "tc", "filter", "show", "dev", "eth0", "ingress").splitlines()
          if line.startswith("filter")]
    return {"netns devs": len(devs), "tc": len(tc), "notrack": len(nft_rules(W, "peerpod"))}


def run_cells(m):
    for fp in START_POINTS:
        m.start_cell(fp)
    for fp in STOP_POINTS:
        m.stop_cell(fp)


# Kills between the libvirt provider's own calls: the daemon is SIGKILLed by
# gdb on entry to the libvirt call (name, or name#n for its n-th call).
LIBVIRT_START_CALLS = ["virStorageVolCreateXML#1", "virStorageVolCreateXML#2", "virStorageVolUpload",
                       "virDomainDefineXML", "virDomainCreate"]
LIBVIRT_STOP_CALLS = ["virDomainDestroy", "virStorageVolDelete#1", "virStorageVolDelete#2", "virDomainUndefineFlags"]
# A daemon killed after the pod's volumes were made but before its domain was
# defined (virStorageVolCreateXML#2, virStorageVolUpload, virDomainDefineXML):
# the next StopVM looks for the instance by name, and the provider lists
# domain-less pod volumes under their instance name, so they go too.


def gdb_kill_at(d, point):
    """Attaches gdb to the daemon with a breakpoint on the libvirt call; gdb
    kills the daemon there (SIGKILL). Returns a wait for that kill."""
    func, _, nth = point.partition("#")
    p = subprocess.Popen(["gdb", "-q", "-nx", "-batch", "-p", str(d.pid), "-ex", "set pagination off",
                          "-ex", "set breakpoint pending on", "-ex", "handle all nostop noprint pass",
                          "-ex", "break " + func, "-ex", "ignore 1 %d" % (int(nth or 1) - 1), "-ex", "continue",
                          "-ex", "info symbol $pc", "-ex", "kill"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    add_helper(p)
    out = []
    for line in p.stdout:  # up to the breakpoint being set; the daemon runs on after that
        out.append(line)
        if line.startswith("Breakpoint 1 at"):
            break
    check(any(x.startswith("Breakpoint 1 at") for x in out), "gdb did not set the breakpoint: %s" % "".join(out))

    def wait():
        rest, _ = p.communicate(timeout=90)
        rc = d.proc.wait(20)
        d.kill()
        check(rc == -signal.SIGKILL and func in rest, "%s: exit %r, gdb: %s" % (point, rc, "".join(out) + rest))

    return wait


def libvirt_faults(m, lv):
    """A fault at each libvirt step of a create, and a domain gone before the delete."""

    def name(sid):
        return "podvm-fm%d-%s" % (m.next_id, sid[:8])

    def stale_volumes(sid):
        for vol in (name(sid) + "-root.qcow2", name(sid) + "-cloudinit.iso"):
            lv.virsh("vol-create-as", "default-pool", vol, "1M")

    m.fault_cell("root volume", "base volume missing",
                 lambda sid: lv.virsh("vol-delete", "--pool", "default-pool", BASE_VOL), lv.make_base)
    m.fault_cell("root volume, ISO", "volumes of an earlier try", stale_volumes)
    m.fault_cell("define", "name taken (foreign domain)", lambda sid: lv.define_foreign(name(sid)))
    lv.drop_foreign()  # counted (kept) in the cell above
    m.fault_cell("lease wait", "network gone (timeout)", lambda sid: lv.net_gone(), lv.net_back)
    m.fault_cell("delete", "domain shut off (crashed)", None,
                 before_stop=lambda sid: lv.virsh("destroy", name(sid)))
    # With the domain undefined by someone else, delete_instance finds the
    # pod's volumes by the UUID derived from their instance name.
    m.fault_cell("delete", "domain undefined by others", None, before_stop=lambda sid: lv.domain_gone(name(sid)))


def main():
    if os.environ.get("CAA_FAILPOINTS") != "true":
        print("SKIP: failpoints are not compiled in (-Dfailpoints=false or a release build)")
        sys.exit(77)
    if os.geteuid() != 0:
        print("SKIP: needs root (network namespaces)")
        sys.exit(77)
    setup_network()
    netns_arg = ("-netns", "/run/netns/" + P)
    bad = []

    # The test provider with a pod network: every failpoint, host counting.
    test_args = ["-test-ip", "198.18.0.2", "-forwarder-port", str(FWD_PORT), "-disable-tls", "-proxy-timeout", "20s",
                 "-orphan-sweep-interval", "0"]
    m = Matrix(lambda root, fp: Daemon(root=root, env=failpoint_env(fp), forwarder=False,
                                       wrapper=["ip", "netns", "exec", W], args=test_args),
               lambda d: len(d.instances()), 700, host=host_leftovers, create_args=netns_arg, proof=True)
    run_cells(m)
    bad += m.report("test provider, pod network")

    have_libvirt = REAL_DAEMON and os.path.exists(LIBVIRTD) and shutil.which("virsh") and shutil.which("setpriv")
    if have_libvirt:
        lv = PrivateLibvirtd()
        try:
            m = Matrix(lambda r, fp: LibvirtDaemon(lv.uri, r, libvirt_env(fp), wrapper=["ip", "netns", "exec", W],
                                                  args=["-forwarder-port", str(FWD_PORT)]), lv.counts, 800,
                       host=host_leftovers, create_args=netns_arg, proof=True)
            run_cells(m)
            if shutil.which("gdb"):
                for call in LIBVIRT_START_CALLS:
                    m.start_cell("libvirt:" + call, via=lambda d, fp: gdb_kill_at(d, fp.split(":", 1)[1]))
                for call in LIBVIRT_STOP_CALLS:
                    m.stop_cell("libvirt:" + call, via=lambda d, fp: gdb_kill_at(d, fp.split(":", 1)[1]))
            libvirt_faults(m, lv)
            bad += m.report("libvirt (test driver in a private libvirtd), pod network")
            bad += m.report_faults("libvirt")
        finally:
            lv.close()
    else:
        print("# libvirt cells skipped: no cloud-api-adaptor, libvirtd, virsh or setpriv")
    check(not bad, "leftovers in %d cell(s): %r" % (len(bad), bad))
    print("ok: zero leftovers, zero wrong deletions")


if __name__ == "__main__":
    run_main(main)
