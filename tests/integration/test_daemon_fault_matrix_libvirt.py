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
import tempfile
import time

from caa_harness import SANITIZED, Daemon, check, run_main
from netns_helpers import add_helper, end_process, make_netns, nft_rules, ns, sh, sweep_stale
from test_daemon_fault_matrix import START_POINTS, STOP_POINTS, Matrix

REAL_DAEMON = os.environ.get("CAA_DAEMON", "")
LIBVIRTD = "/usr/sbin/libvirtd"
NOBODY = 65534
PID = os.getpid()
TAG = "caa-fml%d" % PID
W, U, P = TAG + "-w", TAG + "-u", TAG + "-p"
# Interface names: at most 15 bytes, unique per run (other tests run at once).
W_UP, U_DN, P_HOST = "fmw%d" % PID, "fmu%d" % PID, "fmp%d" % PID
FWD_PORT = 15150
BASE_VOL = "podvm-base.qcow2"
BYSTANDER_VOL = "bystander.qcow2"
BYSTANDER_DOM = "test"  # the test driver's own domain
NETWORK_XML = """<network>
  <name>default</name>
  <bridge name='virbr0'/>
  <forward/>
  <ip address='198.18.0.1' netmask='255.255.0.0'>
    <dhcp><range start='198.18.0.2' end='198.18.255.254'/></dhcp>
  </ip>
</network>
"""


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


class PrivateLibvirtd:
    """libvirtd as user nobody with everything in a temporary directory;
    killed by PID at exit."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="caa-lv-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        for sub in ("run", "config", "cache", "home"):
            os.mkdir(os.path.join(self.dir, sub))
            os.chown(os.path.join(self.dir, sub), NOBODY, NOBODY)
        sock_dir = os.path.join(self.dir, "run")
        conf = os.path.join(self.dir, "libvirtd.conf")
        with open(conf, "w") as f:
            f.write('unix_sock_dir = "%s"\nauth_unix_rw = "none"\n' % sock_dir)
        os.chmod(conf, 0o644)
        self.sock = os.path.join(sock_dir, "libvirt-sock")
        self.uri = "test+unix:///default?socket=" + self.sock
        env = dict(os.environ, HOME=os.path.join(self.dir, "home"), XDG_RUNTIME_DIR=sock_dir,
                   XDG_CONFIG_HOME=os.path.join(self.dir, "config"), XDG_CACHE_HOME=os.path.join(self.dir, "cache"))
        self.log = open(os.path.join(self.dir, "libvirtd.log"), "w")
        self.proc = subprocess.Popen(["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups",
                                      LIBVIRTD, "-f", conf, "-p", os.path.join(sock_dir, "pid")],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, env=env)
        add_helper(self.proc)
        deadline = time.monotonic() + 30
        while not os.path.exists(self.sock):
            check(self.proc.poll() is None, "libvirtd exited: %s" % self.tail())
            check(time.monotonic() < deadline, "libvirtd socket did not appear: %s" % self.tail())
            time.sleep(0.05)
        # The one connection that keeps the test driver's state alive.
        self.keeper = subprocess.Popen(["virsh", "-c", self.uri, "event", "--loop", "--all"],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        add_helper(self.keeper)
        while "running" not in self.virsh("domstate", BYSTANDER_DOM, check_rc=False):
            check(self.keeper.poll() is None, "virsh event exited")
            check(time.monotonic() < deadline, "test driver not ready: %s" % self.tail())
            time.sleep(0.05)
        net = os.path.join(self.dir, "network.xml")
        with open(net, "w") as f:
            f.write(NETWORK_XML)
        self.virsh("net-destroy", "default")
        self.virsh("net-undefine", "default")
        self.virsh("net-define", net)
        self.virsh("net-start", "default")
        self.make_base()
        self.virsh("vol-create-as", "default-pool", BYSTANDER_VOL, "1M")
        self.foreign = []  # domains of our names that are not ours: never to be deleted
        self.net = net

    def make_base(self):
        self.virsh("vol-create-as", "default-pool", BASE_VOL, "64M", "--format", "qcow2")

    def define_foreign(self, name):
        """A domain without our metadata (someone else's) under the name a pod will want."""
        xml = os.path.join(self.dir, "foreign.xml")
        with open(xml, "w") as f:
            f.write("<domain type='test'><name>%s</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>"
                    "<os><type arch='x86_64'>hvm</type></os></domain>\n" % name)
        self.virsh("define", xml)
        self.foreign.append(name)

    def drop_foreign(self):
        for name in self.foreign:
            self.virsh("undefine", name, check_rc=False)
        self.foreign = []

    def net_gone(self):
        self.virsh("net-destroy", "default")
        self.virsh("net-undefine", "default")

    def net_back(self):
        self.virsh("net-define", self.net)
        self.virsh("net-start", "default")

    def domain_gone(self, name):
        """The domain undefined behind the daemon's back (an operator)."""
        self.virsh("destroy", name, check_rc=False)
        self.virsh("undefine", name)

    def tail(self):
        with open(os.path.join(self.dir, "libvirtd.log")) as f:
            return f.read()[-2000:]

    def virsh(self, *args, check_rc=True):
        return sh("virsh", "-q", "-c", self.uri, *args, check_rc=check_rc)

    def counts(self, _d=None):
        all_doms = self.virsh("list", "--all", "--name").split()
        keep = [BYSTANDER_DOM] + self.foreign
        doms = [x for x in all_doms if x not in keep]
        vols = [line.split()[0] for line in self.virsh("vol-list", "default-pool").splitlines() if line.strip()]
        made = [v for v in vols if v not in (BASE_VOL, BYSTANDER_VOL)]
        gone = sum(1 for v in (BASE_VOL, BYSTANDER_VOL) if v not in vols)
        gone += sum(1 for x in keep if x not in all_doms)
        return {"domains": len(doms), "volumes": len(made), "isos": sum(1 for v in made if v.endswith(".iso")),
                "wrongly deleted": gone}

    def close(self):
        for p in (self.keeper, self.proc):
            end_process(p)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class LibvirtDaemon(Daemon):
    """The production binary with the libvirt provider, inside W."""

    def __init__(self, uri, root, env):
        super().__init__(root=root, env=env, forwarder=False, wrapper=["ip", "netns", "exec", W])
        self.uri = uri

    def cmdline(self):
        return self.wrapper + [
            REAL_DAEMON, "libvirt", "-socket", self.sock, "-pods-dir", self.pods, "-log-level", self.log_level,
            "-uri", self.uri, "-pool-name", "default-pool", "-network-name", "default", "-vol-name", BASE_VOL,
            "-console-log-dir", "", "-ip-wait", "10s", "-disable-tls", "-forwarder-port", str(FWD_PORT),
            "-proxy-timeout", "20s", "-orphan-sweep-interval", "0"]


def failpoint_env(fp):
    return {"CAA_FAILPOINT": fp} if fp else None


def libvirt_env(fp):
    """ASan's XDR interceptors look their real functions up once, at start;
    libvirt's remote driver takes XDR from libtirpc, which arrives only with the
    libvirt module (dlopen), so under ASan the first RPC calls NULL. Preloading
    libtirpc gives the interceptors something to find."""
    env = failpoint_env(fp) or {}
    if SANITIZED:
        env["LD_PRELOAD"] = "libtirpc.so.3"
        env["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
    return env or None


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
            m = Matrix(lambda r, fp: LibvirtDaemon(lv.uri, r, libvirt_env(fp)), lv.counts, 800,
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
