"""A private libvirtd (its test driver, as an unprivileged user) and the
daemon with the libvirt provider against it: shared by the libvirt daemon
tests (the fault matrix, StopVM during the lease wait). Root only (setpriv)."""
import os
import shutil
import subprocess
import tempfile
import time

from caa_harness import SANITIZED, Daemon, check
from netns_helpers import add_helper, end_process, sh

REAL_DAEMON = os.environ.get("CAA_DAEMON", "")
LIBVIRTD = "/usr/sbin/libvirtd"
NOBODY = 65534
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
    """The production binary with the libvirt provider (wrapper: e.g. ip netns exec);
    args come last, so they override the defaults."""

    def __init__(self, uri, root, env, wrapper=(), args=()):
        super().__init__(root=root, env=env, forwarder=False, wrapper=list(wrapper))
        self.uri = uri
        self.extra = list(args)

    def cmdline(self):
        return self.wrapper + [
            REAL_DAEMON, "libvirt", "-socket", self.sock, "-pods-dir", self.pods, "-log-level", self.log_level,
            "-uri", self.uri, "-pool-name", "default-pool", "-network-name", "default", "-vol-name", BASE_VOL,
            "-console-log-dir", "", "-ip-wait", "10s", "-disable-tls", "-proxy-timeout", "20s",
            "-orphan-sweep-interval", "0"] + self.extra


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


