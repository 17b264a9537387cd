"""A whole local "cloud" for end-to-end runs: libvirtd + QEMU (TCG) inside a
network namespace that plays the worker node, the cloud-api-adaptor beside it,
and pod network namespaces wired to a CNI-like bridge (docs/e2e.md).

Isolation (nothing of the machine is touched, several runs can go at once):
- The calling program re-executes itself in a private mount namespace
  (enter_private_mounts()). There, /etc/libvirt (a copy), /var/lib/libvirt,
  /var/log/libvirt and /run/libvirt are bind mounts of directories in the run's
  temporary directory, and /run/netns is a private tmpfs. Our libvirtd therefore
  has its own sockets (/run/libvirt/libvirt-sock), configuration, state, pool
  directory and logs, and does not meet a libvirtd the machine may run. Only the
  QEMU capability cache (/var/cache/libvirt) is shared, which saves the ~8 s probe.
- libvirtd, virtlogd, dnsmasq, QEMU and the adaptor run inside the worker netns;
  the libvirt network is isolated (no <forward>) on 198.18.0.0/24, pods live on
  198.19.0.0/24 behind a bridge in the worker netns.
- Cleanup stops what was started by PID (and, as a last resort, whatever still
  runs inside the namespaces this run created), deletes domains, volumes, the
  pool, the network and the namespaces, and removes the temporary directory.
"""
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

VM_NET = "198.18.0"          # libvirt network (the cloud's VPC)
POD_NET = "198.19.0"         # pod network (the CNI's subnet)
POD_GW = POD_NET + ".1"
BASE_VOLUME = "podvm-base.qcow2"
# The pod's interface name in its namespace, as CNIs name it (override for diagnosis only).
POD_IFNAME = os.environ.get("CAA_E2E_POD_IFNAME", "eth0")
AGENT_ARGS = "-record /run/caa-test-agent/requests.jsonl -log-level debug"
SKIP = 77


class E2EError(Exception):
    pass


def now():
    return time.monotonic()


def utc_now():
    """Wall clock in the daemon log's format, for correlating the two."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % (int(t * 1000) % 1000)


def run(cmd, timeout=120, check=True, netns=None, input=None):
    """Runs cmd (list), optionally inside a network namespace; raises E2EError on failure."""
    if netns:
        cmd = ["ip", "netns", "exec", netns] + list(cmd)
    try:
        p = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise E2EError("%s: no exit within %d s" % (" ".join(cmd), timeout)) from None
    if check and p.returncode != 0:
        raise E2EError("%s: exit %d: %s" % (" ".join(cmd), p.returncode, (p.stderr or p.stdout).strip()))
    return p


def wait_for(what, pred, timeout, interval=0.1):
    """Polls pred() until it returns a true value (returned) or timeout passes.
    Used only for conditions nothing can notify us about (a daemon's socket
    appearing, a file growing, a server in a VM starting to listen)."""
    deadline = now() + timeout
    while True:
        v = pred()
        if v:
            return v
        if now() >= deadline:
            raise E2EError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(interval)


# ---------------------------------------------------------------- preconditions

def check_machine():
    """None when this machine can run the e2e tests, else the reason to skip."""
    if os.geteuid() != 0:
        return "needs root"
    for tool in ("/usr/sbin/libvirtd", "/usr/sbin/virtlogd"):
        if not os.access(tool, os.X_OK):
            return "%s is not installed (libvirt-daemon-system)" % tool
    for tool in ("virsh", "qemu-system-x86_64", "qemu-img", "ip", "tc", "unshare", "nft"):
        if not shutil.which(tool):
            return "%s is not installed" % tool
    if not os.path.exists("/usr/share/OVMF/OVMF_CODE_4M.fd"):
        return "OVMF is not installed"
    try:
        subprocess.run(["qemu-system-x86_64", "-version"], capture_output=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return "qemu-system-x86_64 cannot run here"
    try:
        subprocess.run(["unshare", "--mount", "--net", "--propagation", "private", "true"],
                       capture_output=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return "cannot create mount and network namespaces here"
    return None


def enter_private_mounts():
    """Re-executes this program in a private mount namespace, once."""
    if os.environ.get("CAA_E2E_PRIVATE_MOUNTS") == str(os.getpid()):
        return
    env = dict(os.environ)
    # unshare execs python in place, so the pid stays the same.
    env["CAA_E2E_PRIVATE_MOUNTS"] = str(os.getpid())
    argv = ["unshare", "--mount", "--propagation", "private", "--", sys.executable] + sys.argv
    os.execvpe("unshare", argv, env)


def signals_raise():
    """SIGTERM/SIGHUP (meson's timeout, a closed terminal) unwind like Ctrl-C, so
    every `finally` and cleanup runs."""
    def handler(signum, _frame):
        raise KeyboardInterrupt("signal %d" % signum)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, handler)


# ---------------------------------------------------------------- build products

# ninja targets the runs need (scripts/demo.sh and bench/e2e/run.sh build these)
TARGETS = ["adaptor/cloud-api-adaptor", "providers/caa-provider-libvirt.so", "adaptor/ctl/caa-ctl",
           "agent-protocol/forwarder/agent-protocol-forwarder", "agent-protocol/process-user-data/process-user-data",
           "tests/test-agent/caa-test-agent"]


class Build:
    """The programs of a meson build directory."""

    def __init__(self, root):
        self.root = os.path.abspath(root)
        self.adaptor = self._exe("adaptor/cloud-api-adaptor")
        # Loaded by the daemon from <build>/providers when it runs from the build tree.
        self.libvirt_module = os.path.join(self.root, "providers/caa-provider-libvirt.so")
        if not os.path.exists(self.libvirt_module):
            raise E2EError("%s is not built (ninja -C %s providers/caa-provider-libvirt.so)"
                           % (self.libvirt_module, self.root))
        self.ctl = self._exe("adaptor/ctl/caa-ctl")
        self.forwarder = self._exe("agent-protocol/forwarder/agent-protocol-forwarder")
        self.process_user_data = self._exe("agent-protocol/process-user-data/process-user-data")
        self.test_agent = self._exe("tests/test-agent/caa-test-agent")

    def _exe(self, rel):
        path = os.path.join(self.root, rel)
        if not os.access(path, os.X_OK):
            raise E2EError("%s is not built (ninja -C %s %s)" % (path, self.root, rel))
        return path


def _image_inputs(build):
    files = [os.path.join(SRC, "images/build-podvm-base.sh"), build.forwarder, build.process_user_data,
             build.test_agent]
    for top in ("images/podvm-base", "images/tools"):
        for dirpath, _dirs, names in os.walk(os.path.join(SRC, top)):
            files += [os.path.join(dirpath, n) for n in sorted(names)]
    h = hashlib.sha256(AGENT_ARGS.encode())
    for f in files:
        st = os.stat(f)
        h.update(("%s %d %d\n" % (f, st.st_size, st.st_mtime_ns)).encode())
    return h.hexdigest()


def build_image(build, out_dir, log=print):
    """images/build-podvm-base.sh with the tree's forwarder, process-user-data and
    the test agent as kata-agent. Reused while none of its inputs changed.
    Returns (path, seconds spent building, 0 when reused)."""
    os.makedirs(out_dir, exist_ok=True)
    image = os.path.join(out_dir, BASE_VOLUME)
    stamp = os.path.join(out_dir, "inputs.sha256")
    with open(os.path.join(out_dir, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # several runs may share the cache
        key = _image_inputs(build)
        if os.path.exists(image) and os.path.exists(stamp) and open(stamp).read().strip() == key:
            return image, 0.0
        t0 = now()
        p = run([os.path.join(SRC, "images/build-podvm-base.sh"), "--forwarder", build.forwarder,
                 "--process-user-data", build.process_user_data, "--agent", build.test_agent,
                 "--agent-args", AGENT_ARGS, out_dir], timeout=600)
        for line in p.stdout.splitlines() + p.stderr.splitlines():
            if "placeholder" in line.lower() or line.startswith("build-podvm-base: wrote"):
                log("    " + line)
        with open(stamp, "w") as f:
            f.write(key + "\n")
        return image, now() - t0


def make_garbage_image(path, size_mib=16):
    """A well-formed qcow2 whose content is random bytes: libvirt and QEMU take it,
    the firmware finds nothing to boot."""
    raw = path + ".raw"
    with open(raw, "wb") as f:
        f.write(os.urandom(size_mib << 20))
    run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, path])
    os.unlink(raw)
    return path


# ---------------------------------------------------------------- the cloud

class Cloud:
    """libvirtd in a worker netns with an isolated network and a dir pool."""

    BRIDGE = "ppbr0"     # libvirt's bridge (inside the worker netns)
    CNI_BRIDGE = "cni0"  # the pods' bridge (inside the worker netns)

    def __init__(self, tag=None, log=print, state_file=None):
        self.log = log
        self.state_file = state_file
        self.tag = tag or "caae2e%d" % os.getpid()
        self.tmp = tempfile.mkdtemp(prefix="caa-e2e-")
        os.chmod(self.tmp, 0o755)
        self.worker = self.tag + "-w"
        self.net_name = self.tag
        self.pool_name = self.tag
        self.pool_dir = "/var/lib/libvirt/images/" + self.tag
        self.console_dir = "/var/log/libvirt/qemu"
        self.mounts = []
        self.netns = []
        self.netns_inodes = []
        self.pods = []
        self.adaptors = []
        self.daemon_pids = {}
        self.closed = False

    # -- set-up
    def start(self):
        if os.environ.get("CAA_E2E_PRIVATE_MOUNTS") != str(os.getpid()):
            raise E2EError("call enter_private_mounts() first: libvirtd needs the private mounts")
        self._private_dirs()
        self._add_netns(self.worker)
        self._start_daemons()
        net_xml = os.path.join(self.tmp, "net.xml")
        with open(net_xml, "w") as f:
            f.write("<network><name>%s</name><bridge name='%s' stp='off'/>"
                    "<ip address='%s.1' netmask='255.255.255.0'><dhcp><range start='%s.100' end='%s.200'/>"
                    "</dhcp></ip></network>\n" % (self.net_name, self.BRIDGE, VM_NET, VM_NET, VM_NET))
        self.virsh("net-create", net_xml)
        os.makedirs(self.pool_dir, mode=0o755, exist_ok=True)
        self.virsh("pool-create-as", self.pool_name, "dir", "--target", self.pool_dir)
        w = self.worker
        # The worker's "primary interface" (the adaptor's worker-node-ip) is the
        # interface of its default route: the libvirt bridge. Nothing routes on.
        run(["ip", "-n", w, "route", "add", "default", "dev", self.BRIDGE])
        run(["ip", "-n", w, "link", "add", self.CNI_BRIDGE, "type", "bridge"])
        run(["ip", "-n", w, "addr", "add", POD_GW + "/24", "dev", self.CNI_BRIDGE])
        run(["ip", "-n", w, "link", "set", self.CNI_BRIDGE, "up"])
        return self

    def _private_dirs(self):
        """Private /etc/libvirt (copy), /var/lib/libvirt, /var/log/libvirt, /run/libvirt, /run/netns."""
        def bind(src, dst):
            os.makedirs(dst, exist_ok=True)
            run(["mount", "--bind", src, dst])
            self.mounts.append(dst)
        etc = os.path.join(self.tmp, "etc-libvirt")
        shutil.copytree("/etc/libvirt", etc, symlinks=True)
        varlib = os.path.join(self.tmp, "var-lib-libvirt")
        os.makedirs(varlib)
        os.chmod(varlib, 0o755)
        if os.path.isdir("/var/lib/libvirt"):
            for name in sorted(os.listdir("/var/lib/libvirt")):
                src = os.path.join("/var/lib/libvirt", name)
                if os.path.isdir(src) and not os.path.islink(src):
                    st = os.stat(src)
                    d = os.path.join(varlib, name)
                    os.mkdir(d)
                    os.chown(d, st.st_uid, st.st_gid)
                    os.chmod(d, st.st_mode & 0o7777)
        os.makedirs(os.path.join(varlib, "images"), exist_ok=True)
        varlog = os.path.join(self.tmp, "var-log-libvirt")
        os.makedirs(os.path.join(varlog, "qemu"))
        os.chmod(varlog, 0o755)
        runlv = os.path.join(self.tmp, "run-libvirt")
        os.makedirs(runlv)
        os.chmod(runlv, 0o755)
        bind(etc, "/etc/libvirt")
        bind(varlib, "/var/lib/libvirt")
        bind(varlog, "/var/log/libvirt")
        bind(runlv, "/run/libvirt")
        os.makedirs("/run/netns", exist_ok=True)
        run(["mount", "-t", "tmpfs", "-o", "mode=0755,size=1m", "caa-e2e-netns", "/run/netns"])
        self.mounts.append("/run/netns")

    def _add_netns(self, name):
        run(["ip", "netns", "add", name])
        self.netns.append(name)
        self.netns_inodes.append(os.stat("/run/netns/" + name).st_ino)
        self._save_state()
        run(["ip", "-n", name, "link", "set", "lo", "up"])

    def _save_state(self):
        """What reap() needs if this process dies without cleaning up."""
        if self.state_file:
            with open(self.state_file + ".tmp", "w") as f:
                json.dump({"tmp": self.tmp, "netns_inodes": self.netns_inodes}, f)
            os.rename(self.state_file + ".tmp", self.state_file)

    def _start_daemons(self):
        for d in ("virtlogd", "libvirtd"):
            pidfile = os.path.join(self.tmp, d + ".pid")
            run(["ip", "netns", "exec", self.worker, "/usr/sbin/" + d, "-d", "-p", pidfile], timeout=60)
            pid = int(wait_for(d + " pid file", lambda: _read(pidfile).strip(), 30))
            self.daemon_pids[d] = pid
        # Ready when it answers (a first start probes QEMU for several seconds).
        wait_for("libvirtd to answer", lambda: run(["virsh", "-c", "qemu:///system", "version"],
                                                   check=False).returncode == 0, 60, 0.1)

    # -- libvirt
    def virsh(self, *args, check=True, timeout=120):
        return run(["virsh", "-q", "-c", "qemu:///system"] + list(args), check=check, timeout=timeout).stdout

    def upload_image(self, path, name=BASE_VOLUME):
        size = os.path.getsize(path)
        self.virsh("vol-create-as", self.pool_name, name, str(size), "--format", "qcow2")
        self.virsh("vol-upload", "--pool", self.pool_name, name, path, timeout=300)

    def domains(self):
        return [d for d in self.virsh("list", "--all", "--name", check=False).split() if d]

    def volumes(self):
        out = self.virsh("vol-list", self.pool_name, check=False)
        return sorted(line.split()[0] for line in out.splitlines() if line.strip())

    def domain_state(self, name):
        return self.virsh("domstate", name, check=False).strip()

    def console_log(self, instance_name):
        return os.path.join(self.console_dir, instance_name + "-console.log")

    def qemu_log(self, instance_name):
        return os.path.join(self.console_dir, instance_name + ".log")

    # -- namespaces
    def pod_netns(self, name, ip, ifname=POD_IFNAME, mtu=1450):
        """A pod network namespace as a bridge CNI makes it: <ifname> with ip/24 on
        a veth whose peer is on the worker's cni0, default route via the bridge."""
        name = "%s-%s" % (self.tag, name)
        self._add_netns(name)
        veth = "ve%d" % (len(self.pods) + 1)
        w = self.worker
        run(["ip", "-n", w, "link", "add", veth, "mtu", str(mtu), "type", "veth", "peer", "name", ifname,
             "mtu", str(mtu), "netns", name])
        run(["ip", "-n", w, "link", "set", veth, "master", self.CNI_BRIDGE, "up"])
        run(["ip", "-n", name, "addr", "add", "%s/24" % ip, "dev", ifname])
        run(["ip", "-n", name, "link", "set", ifname, "up"])
        run(["ip", "-n", name, "route", "add", "default", "via", POD_GW])
        pod = PodNetns(self, name, ip, ifname, veth)
        self.pods.append(pod)
        return pod

    def netns_pids(self, names=None):
        """{pid: command} of the processes inside the given (default: all of ours) namespaces."""
        out = {}
        for n in names or self.netns:
            for pid in run(["ip", "netns", "pids", n], check=False).stdout.split():
                comm = _read("/proc/%s/comm" % pid).strip()
                if comm:
                    out[int(pid)] = comm
        return out

    def nft_rules(self):
        """Rule lines of the NOTRACK table in the worker netns ("" when it is gone)."""
        p = run(["nft", "list", "table", "ip", "peerpod"], netns=self.worker, check=False)
        return "\n".join(line.strip() for line in p.stdout.splitlines() if "notrack" in line)

    def block_forwarder_port(self, on, port=15150):
        """Drops (on) or stops dropping the worker's TCP SYNs to the VMs' forwarder
        port: a pod then stays in "connecting" as long as the test wants."""
        if on:
            rules = ("add table ip caa_e2e\n"
                     "add chain ip caa_e2e out { type filter hook output priority 0; }\n"
                     "add rule ip caa_e2e out ip daddr %s.0/24 tcp dport %d drop\n" % (VM_NET, port))
            run(["nft", "-f", "-"], netns=self.worker, input=rules)
        else:
            run(["nft", "delete", "table", "ip", "caa_e2e"], netns=self.worker, check=False)

    # -- leftovers
    def leftovers(self, keep_volumes=(BASE_VOLUME,)):
        """What a finished scenario must not leave behind (an empty list when clean)."""
        left = []
        doms = self.domains()
        if doms:
            left.append("domains: %s" % doms)
        vols = [v for v in self.volumes() if v not in keep_volumes]
        if vols:
            left.append("volumes: %s" % vols)
        procs = {p: c for p, c in self.netns_pids().items()
                 if c not in ("libvirtd", "virtlogd", "dnsmasq")
                 and not any(a.proc and a.proc.pid == p for a in self.adaptors)}
        if procs:
            left.append("processes: %s" % procs)
        for pod in self.pods:
            extra = pod.leftover_devices()
            if extra:
                left.append("%s: %s" % (pod.name, extra))
        rules = self.nft_rules()
        if rules:
            left.append("NOTRACK rules in the worker: %s" % rules)
        for a in self.adaptors:
            if a.pod_dirs():
                left.append("%s: %s" % (a.pods_dir, a.pod_dirs()))
        return left

    # -- teardown
    def close(self):
        if self.closed:
            return
        self.closed = True
        # A second Ctrl-C or SIGTERM must not cut the cleanup short.
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        errors = []

        def attempt(what, fn):
            try:
                fn()
            except Exception as e:  # keep going: everything else must still go
                errors.append("%s: %s" % (what, e))

        for a in self.adaptors:
            attempt("stopping the adaptor", a.stop)
        if self.daemon_pids.get("libvirtd"):
            for d in self.domains():
                self.virsh("destroy", d, check=False)
                self.virsh("undefine", "--nvram", d, check=False)
            self.virsh("pool-destroy", self.pool_name, check=False)
            self.virsh("net-destroy", self.net_name, check=False)
        for d in ("libvirtd", "virtlogd"):
            pid = self.daemon_pids.pop(d, None)
            if pid:
                attempt("stopping " + d, lambda: _terminate(pid, 20))
        # Last resort: anything still running in our namespaces (a QEMU whose
        # libvirtd died, an agent server started in a pod namespace, ...).
        for pid, comm in self.netns_pids().items():
            errors.append("killed leftover process %d (%s)" % (pid, comm))
            _terminate(pid, 5)
        for n in reversed(self.netns):
            run(["ip", "netns", "del", n], check=False)
        self.netns = []
        for m in reversed(self.mounts):
            run(["umount", "-l", m], check=False)
        self.mounts = []
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self.state_file:
            with contextlib.suppress(OSError):
                os.unlink(self.state_file)
        if errors:
            self.log("cleanup: " + "; ".join(errors))
        return errors


class PodNetns:
    def __init__(self, cloud, name, ip, ifname, veth):
        self.cloud, self.name, self.ip, self.ifname, self.veth = cloud, name, ip, ifname, veth
        self.path = "/run/netns/" + name

    def links(self):
        out = run(["ip", "-n", self.name, "-o", "link", "show"]).stdout
        return sorted(re.match(r"\d+: ([^:@]+)", line).group(1) for line in out.splitlines())

    def ingress_qdiscs(self):
        out = run(["tc", "-n", self.name, "qdisc", "show"], check=False).stdout
        return [line for line in out.splitlines() if "ingress" in line or "clsact" in line]

    def leftover_devices(self):
        extra = [l for l in self.links() if l not in ("lo", self.ifname)]
        return extra + self.ingress_qdiscs()

    def run(self, cmd, **kw):
        return run(cmd, netns=self.name, **kw)


# ---------------------------------------------------------------- the adaptor

class Adaptor:
    """cloud-api-adaptor libvirt inside the worker netns, plus caa-ctl calls."""

    def __init__(self, cloud, build, name="caa", flags=()):
        self.cloud, self.build, self.name = cloud, build, name
        self.dir = os.path.join(cloud.tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.socket = os.path.join(self.dir, "hypervisor.sock")
        self.pods_dir = os.path.join(self.dir, "pods")
        self.log_path = os.path.join(self.dir, "daemon.log")
        self.flags = list(flags)
        self.proc = None
        self.starts = 0
        cloud.adaptors.append(self)

    def argv(self):
        c = self.cloud
        return [self.build.adaptor, "libvirt", "-uri", "qemu:///system", "-pool-name", c.pool_name,
                "-network-name", c.net_name, "-domain-type", "qemu", "-socket", self.socket,
                "-pods-dir", self.pods_dir, "-cpu", "1", "-memory", "512", "-root-disk-size", "1",
                "-console-log-dir", c.console_dir, "-log-level", "debug"] + self.flags

    def start(self, timeout=60):
        if self.proc and self.proc.poll() is None:
            raise E2EError("the adaptor is already running")
        self.starts += 1
        logf = open(self.log_path, "a")
        logf.write("==== start %d: %s\n" % (self.starts, " ".join(self.argv())))
        logf.flush()
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.cloud.worker] + self.argv(),
                                     stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        logf.close()
        mark = "serving hypervisor.Hypervisor"
        wait_for("the adaptor to serve", lambda: self._started(mark), timeout, 0.05)
        return self

    def _started(self, mark):
        if self.proc.poll() is not None:
            raise E2EError("the adaptor exited with %d: %s" % (self.proc.returncode, self.log_tail()))
        return self.starts == self.log_text().count(mark)

    def log_text(self):
        return _read(self.log_path)

    def log_tail(self, n=15):
        return "\n".join(self.log_text().splitlines()[-n:])

    def usage(self):
        """CPU seconds (user+system) and memory of the running daemon."""
        pid = self.proc.pid
        stat = _read("/proc/%d/stat" % pid)
        fields = stat[stat.rindex(")") + 2:].split()
        tick = os.sysconf("SC_CLK_TCK")
        status = dict(line.split(":", 1) for line in _read("/proc/%d/status" % pid).splitlines() if ":" in line)
        kib = lambda k: int(status.get(k, "0 kB").split()[0])
        return {"utime": int(fields[11]) / tick, "stime": int(fields[12]) / tick,
                "rss_kib": kib("VmRSS"), "hwm_kib": kib("VmHWM")}

    def stop(self, timeout=30):
        """SIGTERM, wait; returns the exit status."""
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise E2EError("the adaptor did not stop within %d s after SIGTERM" % timeout)

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    # -- caa-ctl
    def ctl_argv(self, *args):
        # A generous call deadline: StopVM during a StartVM waits for the
        # provider's create (the DHCP lease wait) to come back first.
        return [self.build.ctl, "-socket", self.socket, "-pods-dir", self.pods_dir, "-timeout", "600s"] + list(args)

    def ctl(self, *args, timeout=660, check=True):
        return run(self.ctl_argv(*args), timeout=timeout, check=check)

    def ctl_bg(self, *args):
        return subprocess.Popen(self.ctl_argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def pod_dirs(self):
        """The pod directories (the daemon's own dot-entries, e.g. .tls, are not pods)."""
        if not os.path.isdir(self.pods_dir):
            return []
        return sorted(n for n in os.listdir(self.pods_dir) if not n.startswith("."))

    def agent_socket(self, sandbox_id):
        return os.path.join(self.pods_dir, sandbox_id, "agent.ttrpc")

    def state(self, sandbox_id):
        try:
            with open(os.path.join(self.pods_dir, sandbox_id, "state.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None


def pod_annotations(pod_name, namespace="default", extra=()):
    args = ["-a", "io.kubernetes.cri.sandbox-name=" + pod_name,
            "-a", "io.kubernetes.cri.sandbox-namespace=" + namespace]
    for kv in extra:
        args += ["-a", kv]
    return args


def new_sandbox_id():
    """64 hex characters, as containerd makes them."""
    return os.urandom(32).hex()


def http_server_command(token):
    """Runs in the pod VM's pod network namespace (the forwarder puts it there):
    busybox httpd answering on :8080 with a page naming the VM's kernel and token."""
    page = "hello from the pod VM (kernel $(uname -r)) %s" % token
    return ["/bin/sh", "-c", "mkdir -p /tmp/www-%s && echo \"%s\" > /tmp/www-%s/index.html && "
            "exec httpd -f -p 8080 -h /tmp/www-%s" % (token, page, token, token)]


_HTTP_GET = r"""
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection((host, port), timeout=3)
s.settimeout(5)
s.sendall(b"GET / HTTP/1.0\r\nHost: %s\r\n\r\n" % host.encode())
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
head, _, body = data.partition(b"\r\n\r\n")
if not head.startswith(b"HTTP/1.") or b" 200 " not in head.split(b"\r\n")[0]:
    sys.exit("bad answer: %r" % head[:80])
sys.stdout.write(body.decode(errors="replace"))
"""


def http_get(client, host, port, timeout):
    """GET / from host:port inside the client pod namespace, retrying until it
    answers (the server in the VM needs a moment to listen). Returns the body.
    (A plain Python client: busybox-static's wget crashes in some namespaces.)"""
    last = [""]

    def attempt():
        p = client.run([sys.executable, "-c", _HTTP_GET, host, str(port)], check=False, timeout=15)
        last[0] = (p.stderr.strip().splitlines() or [""])[-1]
        return p.stdout if p.returncode == 0 else None
    try:
        return wait_for("http://%s:%d/ to answer" % (host, port), attempt, timeout, 0.5)
    except E2EError as e:
        raise E2EError("%s (last error: %s)" % (e, last[0])) from None


def reap(state_file):
    """Fallback for a run that died without cleaning up (SIGKILL): kills every
    process inside the network namespaces that run created (found by inode) and
    removes its temporary directory. Its private mount namespace, and with it
    the namespaces' mounts, goes away with its last process."""
    try:
        with open(state_file) as f:
            state = json.load(f)
    except (OSError, ValueError):
        return []
    inodes = set(state.get("netns_inodes", []))
    killed = []
    for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
        try:
            if os.stat("/proc/%d/ns/net" % pid).st_ino in inodes:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        except OSError:
            pass
    tmp = state.get("tmp", "")
    if tmp.startswith(tempfile.gettempdir() + "/caa-e2e-"):
        deadline = now() + 10
        while killed and now() < deadline and any(_alive(p) for p in killed):
            time.sleep(0.05)
        shutil.rmtree(tmp, ignore_errors=True)
    with contextlib.suppress(OSError):
        os.unlink(state_file)
    return killed


def _read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _terminate(pid, timeout):
    """SIGTERM, then SIGKILL after timeout; the pid is one this run started or
    found inside a namespace this run created."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = now() + timeout
    while now() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


if __name__ == "__main__":
    # localcloud.py reap STATE_FILE (used by scripts/demo.sh's exit trap)
    if len(sys.argv) == 3 and sys.argv[1] == "reap":
        pids = reap(sys.argv[2])
        if pids:
            print("reaped leftover processes: %s" % " ".join(map(str, pids)))
        sys.exit(0)
    sys.exit("usage: localcloud.py reap STATE_FILE")
