#!/usr/bin/env python3
"""Secure comms (SSH, NoTrustee) on loopback with real OpenSSH parts.

VM side: our agent-protocol-forwarder, given an apf.json with `sc` fields whose
keys were made by OpenSSH's ssh-keygen, runs Debian's sshd; OpenSSH's `ssh`
client checks what it allows and refuses:
- `ssh -W` to the agent port: a ttRPC Health check reaches caa-test-agent;
- `ssh -L` to the agent port works, `-W` to any other target is refused;
- `ssh -R 127.0.0.1:8080` (the KBS tunnel) is allowed, `-R` elsewhere refused;
- password/keyboard-interactive, no key, another key, a wrong pinned host key,
  and a shell command are all refused; sshd logs the refusals.

Worker side end to end: the test daemon with -secure-comms
-secure-comms-no-trustee; the forwarder runs with the apf.json the daemon
wrote for the pod; StartVM completes over SSH, `caa-ctl check` answers
SERVING through the tunnel, a forwarder restart is recovered, StopVM
cleans up, no key in the daemon log. As root, tunnels in a network namespace
work both ways, and tunnels whose namespace is a FIFO or a plain file are
refused on both sides with what the path is, without a hang or a listener.
"""
import base64
import shutil
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import agent_helpers
from agent_helpers import Child, free_port, health_checks, start_agent
from caa_harness import (CTL, SANITIZED, Daemon, check, fail, pb_bytes, pb_parse, pod_annotations, run_main, sandbox_id,
                         tmpdir)

FORWARDER = os.environ.get("CAA_FORWARDER", "")
TEST_AGENT = os.environ.get("CAA_TEST_AGENT", "")
SSH = "/usr/bin/ssh"
SSHD = "/usr/sbin/sshd"


def cleanup():
    """Stops helpers by PID: SIGTERM first, so a forwarder stops its sshd; then
    any sshd a killed forwarder left behind (its PID is in the log)."""
    sshd_pids = []
    for c in agent_helpers._children:
        sshd_pids += [int(l.split("sshd started (pid ")[1].split(",")[0]) for l in c.lines if "sshd started (pid " in l]
    for p in agent_helpers._procs:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    for pid in sshd_pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def keygen(path, comment):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path], check=True)
    with open(path, "rb") as f:
        prv = f.read()
    with open(path + ".pub", "rb") as f:
        pub = f.read()
    return prv, pub


def health_frame():
    body = pb_bytes(1, "grpc.Health") + pb_bytes(2, "Check") + pb_bytes(3, b"")
    return struct.pack(">IIBB", len(body), 1, 1, 0) + body


def read_response(recv):
    hdr = recv(10)
    length, sid, typ, _ = struct.unpack(">IIBB", hdr)
    body = recv(length)
    check(typ == 2 and sid == 1, "not the Health response (type %d, stream %d)" % (typ, sid))
    resp = pb_parse(body)
    check(1 not in resp or pb_parse(resp[1][0]).get(1, [0])[0] == 0, "Health check failed: %r" % resp)
    return resp


VALGRIND = ["valgrind", "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
            "--show-leak-kinds=definite,indirect", "--track-fds=no", "--quiet"]


class VmSide:
    def __init__(self, root, apf_path, agent_sock, wrapper=()):
        self.root = root
        self.agent_port = free_port()
        self.ssh_port = free_port()
        self.dir = os.path.join(root, "sshd")
        self.argv = list(wrapper) + [FORWARDER, "-config", apf_path, "-listen", "127.0.0.1:%d" % self.agent_port,
                     "-kata-agent-socket", agent_sock, "-pod-namespace", "/run/netns/podns-caa-sc-unused",
                     "-secure-comms-ssh-port", str(self.ssh_port), "-secure-comms-listen", "127.0.0.1",
                     "-secure-comms-dir", self.dir, "-log-level", "debug"]
        self.fwd = None

    def start(self):
        self.fwd = Child(self.argv)
        self.fwd.wait_line("listening on port %d (loopback, reached through SSH)" % self.agent_port)
        self.fwd.wait_line("Server listening on 127.0.0.1 port %d" % self.ssh_port)
        return self

    def stop(self):
        self.fwd.stop()
        check(self.fwd.p.returncode == 0, "forwarder exit status %s (99: valgrind found errors):\n%s"
              % (self.fwd.p.returncode, "\n".join(self.fwd.lines[-30:])))


def ssh_argv(vm, key, known_hosts, *extra, cmd=()):
    return [SSH, "-F", "/dev/null", "-p", str(vm.ssh_port), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
            "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + known_hosts, "-o",
            "ConnectTimeout=10", "-o", "ExitOnForwardFailure=yes"] + (["-i", key] if key else []) + \
        list(extra) + ["root@127.0.0.1"] + list(cmd)


def run_ssh(argv, stdin=b"", timeout=20):
    p = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def scenario_vm_side_with_openssh():
    root = tmpdir()
    worker_prv, worker_pub = keygen(os.path.join(root, "worker"), "worker")
    host_prv, host_pub = keygen(os.path.join(root, "host"), "podvm")
    keygen(os.path.join(root, "stranger"), "stranger")
    keygen(os.path.join(root, "otherhost"), "otherhost")
    apf = {"pod-network": None, "pod-namespace": "default", "pod-name": "sc", "sc": True,
           "sc-pp-prv": base64.b64encode(host_prv).decode(), "sc-wn-pub": base64.b64encode(worker_pub).decode(),
           "sc-inbounds": "KUBERNETES_PHASE:DNS:%d" % free_port()}
    apf_path = os.path.join(root, "apf.json")
    with open(apf_path, "w") as f:
        json.dump(apf, f)
    agent_sock = os.path.join(root, "agent.sock")
    record = os.path.join(root, "agent-requests")
    agent = start_agent(agent_sock, record)
    vm = VmSide(root, apf_path, agent_sock).start()

    known = os.path.join(root, "known_hosts")
    with open(known, "w") as f:
        f.write("[127.0.0.1]:%d %s" % (vm.ssh_port, host_pub.decode()))
    wrong_known = os.path.join(root, "wrong_known_hosts")
    with open(os.path.join(root, "otherhost.pub")) as src, open(wrong_known, "w") as f:
        f.write("[127.0.0.1]:%d %s" % (vm.ssh_port, src.read()))
    key = os.path.join(root, "worker")

    # The files sshd got: private dir, only the worker's key, restricted.
    check(oct(os.stat(vm.dir).st_mode & 0o777) == "0o700", "sshd dir mode")
    with open(os.path.join(vm.dir, "authorized_keys")) as f:
        auth = f.read()
    check(auth.startswith("restrict,port-forwarding,permitopen=\"127.0.0.1:%d\"" % vm.agent_port), auth)
    check(auth.count("ssh-ed25519") == 1 and worker_pub.split()[1].decode() in auth, auth)

    # ssh -W to the agent port: a ttRPC Health check reaches the agent.
    n = health_checks(record)
    p = subprocess.Popen(ssh_argv(vm, key, known, "-W", "127.0.0.1:%d" % vm.agent_port), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        p.stdin.write(health_frame())
        p.stdin.flush()

        def take(k):
            b = p.stdout.read(k)
            check(b is not None and len(b) == k, "ssh -W: no ttRPC response: %s" % (p.poll(),))
            return b
        read_response(take)
    finally:
        p.stdin.close()
        p.wait(10)
    check(health_checks(record) == n + 1, "ssh -W: the Health check did not reach the agent")

    # ssh -L to the agent port.
    lport = free_port()
    p = subprocess.Popen(ssh_argv(vm, key, known, "-N", "-L", "127.0.0.1:%d:127.0.0.1:%d" % (lport, vm.agent_port)),
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        s = None
        for _ in range(100):
            try:
                s = socket.create_connection(("127.0.0.1", lport), timeout=5)
                break
            except OSError:
                time.sleep(0.1)
        check(s is not None, "ssh -L did not listen")
        s.sendall(health_frame())

        def recv(k):
            b = b""
            while len(b) < k:
                c = s.recv(k - len(b))
                if not c:
                    fail("ssh -L: connection closed")
                b += c
            return b
        read_response(recv)
        s.close()
    finally:
        p.terminate()
        p.wait()

    # A tunnel that is not allowed: refused by sshd, logged.
    rc, out, err = run_ssh(ssh_argv(vm, key, known, "-W", "127.0.0.1:%d" % free_port()))
    check(rc != 0 and "administratively prohibited" in err, "ssh -W elsewhere: rc %d: %s" % (rc, err))
    vm.fwd.wait_line("but the request was denied")

    # Remote forwarding: the KBS port is allowed, another one is not.
    rc, out, err = run_ssh(ssh_argv(vm, key, known, "-R", "127.0.0.1:%d:127.0.0.1:9" % free_port(), "-N"))
    check(rc == 255 and "remote port forwarding failed" in err, "ssh -R elsewhere: rc %d: %s" % (rc, err))
    # The built-in KBS port (8080) is fixed; skip this check if the machine already uses it.
    probe = socket.socket()
    try:
        probe.bind(("127.0.0.1", 8080))
        kbs_port_free = True
    except OSError:
        kbs_port_free = False
    probe.close()
    if kbs_port_free:
        p = subprocess.Popen(ssh_argv(vm, key, known, "-R", "127.0.0.1:8080:127.0.0.1:9", "-N"),
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            time.sleep(1.5)
            if p.poll() is not None:
                fail("ssh -R 8080 (KBS) was refused: %s" % p.stderr.read().decode())
        finally:
            p.terminate()
            p.wait()
    else:
        print("# 127.0.0.1:8080 is in use on this machine: the allowed -R check is skipped")

    # Refusals.
    rc, _, err = run_ssh(ssh_argv(vm, None, known, "-o", "PubkeyAuthentication=no", "-o",
                                  "PreferredAuthentications=password,keyboard-interactive", cmd=["true"]))
    check(rc == 255 and "Permission denied (publickey)" in err, "password attempt: rc %d: %s" % (rc, err))
    rc, _, err = run_ssh(ssh_argv(vm, None, known, "-o", "PubkeyAuthentication=no", cmd=["true"]))
    check(rc == 255 and "Permission denied" in err, "no key: rc %d: %s" % (rc, err))
    rc, _, err = run_ssh(ssh_argv(vm, os.path.join(root, "stranger"), known, cmd=["true"]))
    check(rc == 255 and "Permission denied" in err, "another key: rc %d: %s" % (rc, err))
    rc, _, err = run_ssh(ssh_argv(vm, key, wrong_known, cmd=["true"]))
    check(rc == 255 and "Host key verification failed" in err, "wrong host key: rc %d: %s" % (rc, err))
    rc, out, err = run_ssh(ssh_argv(vm, key, known, cmd=["echo", "shell"]))
    check(rc != 0 and b"shell" not in out, "a command ran: rc %d out %r" % (rc, out))
    vm.fwd.wait_line("Failed publickey for root")
    vm.stop()
    check(not any("sshd exited" in l for l in vm.fwd.lines), "sshd died while serving:\n" + "\n".join(vm.fwd.lines))
    agent.stop()


def wait_serving(d, sid, when, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        rc, out, err = d.ctl("check", sid)
        if rc == 0 and out.strip() == "SERVING":
            return
        check(time.monotonic() < deadline, "no recovery %s: %s\n%s" % (when, err, d.log()[-4000:]))
        time.sleep(0.5)


def kill_tree(pid):
    """SIGKILL to pid and its descendants (by PID, from /proc)."""
    children = {}
    for e in os.listdir("/proc"):
        if e.isdigit():
            try:
                with open("/proc/%s/stat" % e) as f:
                    st = f.read()
            except OSError:
                continue
            ppid = int(st[st.rindex(")") + 2:].split()[1])
            children.setdefault(ppid, []).append(int(e))
    todo, order = [pid], []
    while todo:
        p = todo.pop()
        order.append(p)
        todo += children.get(p, [])
    for p in reversed(order):
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def start_echo_server():
    """A loopback TCP echo service (stands for a service in the VM); returns its port."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)

    def serve_one(c):
        with c:
            while True:
                data = c.recv(65536)
                if not data:
                    return
                c.sendall(data)

    def accept_loop():
        while True:
            c, _ = srv.accept()
            threading.Thread(target=serve_one, args=(c,), daemon=True).start()
    threading.Thread(target=accept_loop, daemon=True).start()
    return srv.getsockname()[1]


def scenario_config_refusals():
    """Flags secure comms cannot serve stop the daemon at start with a clear message."""
    cases = [
        (["-secure-comms"], "needs the KBS admin key"),
        (["-secure-comms", "-secure-comms-no-trustee", "-secure-comms-inbounds", "KUBERNETES_PHASE:X:7000"],
         "tunnel 'X' has no pod VM outbound of that name"),
        (["-secure-comms", "-secure-comms-no-trustee", "-secure-comms-pp-inbounds", "KUBERNETES_PHASE:Y:podns:0"],
         "tunnel 'Y' needs a port"),
        (["-secure-comms", "-secure-comms-no-trustee", "-secure-comms-outbounds", "NOPHASE:Z:1"], "unknown phase"),
    ]
    for flags, needle in cases:
        d = Daemon(forwarder=False, args=flags)
        p = subprocess.run(d.cmdline(), stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        err = p.stderr.decode(errors="replace")
        check(p.returncode != 0 and needle in err, "%s: rc %d, %s" % (flags, p.returncode, err))


def scenario_daemon_end_to_end(wrapper=()):
    """wrapper: valgrind for the daemon and the forwarder (exit status 99 on an error or a leak)."""
    root = tmpdir()
    agent_sock = os.path.join(root, "agent.sock")
    record = os.path.join(root, "agent-requests")
    agent = start_agent(agent_sock, record)
    vm = VmSide(root, None, agent_sock, wrapper)
    # A VM-side service, and a worker inbound leading to it (SECURE_COMMS_INBOUNDS).
    echo_port, tunnel_port, ns_port = start_echo_server(), free_port(), free_port()
    # And one whose listener is inside a network namespace this test creates (Phase:Name:Namespace:Port).
    netns = "caa-scn-%d" % os.getpid() if os.geteuid() == 0 and shutil.which("ip") else None
    inbounds = ["KUBERNETES_PHASE:ECHO:%d" % tunnel_port]
    outbounds = ["KUBERNETES_PHASE:ECHO:127.0.0.1:%d" % echo_port]
    if netns:
        subprocess.run(["ip", "netns", "add", netns], check=True)
        _netns_created.append(netns)
        subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
        inbounds.append("KUBERNETES_PHASE:ECHONS:%s:%d" % (netns, ns_port))
        outbounds.append("KUBERNETES_PHASE:ECHONS:127.0.0.1:%d" % echo_port)
    # The other way: a VM inbound in that namespace (the forwarder listens there and relays to
    # sshd's remote forward), a worker outbound to the echo service.
    vm_ns_port = free_port()
    vm_inbounds = ["KUBERNETES_PHASE:ECHOVM:%s:%d" % (netns, vm_ns_port)] if netns else []
    vm_outbounds = ["KUBERNETES_PHASE:ECHOVM:127.0.0.1:%d" % echo_port] if netns else []
    # Namespace names that lead to a FIFO (opening it blocking would hang the daemon) and to a
    # plain file: each tunnel is refused with what the path is, no listener opened, on both sides.
    bogus = []
    if netns:
        for kind, make in (("FIFO", os.mkfifo), ("regular file", lambda p: open(p, "x").close())):
            name = "caa-scbad%d-%d" % (len(bogus), os.getpid())
            make(os.path.join("/run/netns", name))
            _netns_files_created.append(os.path.join("/run/netns", name))
            tag, port, vm_port = "BAD%d" % len(bogus), free_port(), free_port()
            inbounds.append("KUBERNETES_PHASE:%s:%s:%d" % (tag, name, port))
            outbounds.append("KUBERNETES_PHASE:%s:127.0.0.1:%d" % (tag, echo_port))
            vm_inbounds.append("KUBERNETES_PHASE:%sVM:%s:%d" % (tag, name, vm_port))
            vm_outbounds.append("KUBERNETES_PHASE:%sVM:127.0.0.1:%d" % (tag, echo_port))
            bogus.append((tag, name, kind, port, vm_port))
    vm_tunnels = (["-secure-comms-pp-inbounds", ",".join(vm_inbounds),
                   "-secure-comms-outbounds", ",".join(vm_outbounds)] if netns else [])
    args = ["-test-ip", "127.0.0.1", "-forwarder-port", str(vm.agent_port), "-proxy-timeout", "60s",
            "-secure-comms", "-secure-comms-no-trustee", "-secure-comms-ssh-port", str(vm.ssh_port),
            "-cert-file", "/nonexistent-ignored-with-secure-comms",
            "-secure-comms-inbounds", ",".join(inbounds), "-secure-comms-pp-outbounds", ",".join(outbounds)] + \
        vm_tunnels
    d = Daemon(root=root, forwarder=False, args=args, log_level="debug", wrapper=wrapper).start(timeout=60)
    d.wait_log(r"secure comms \(SSH, NoTrustee\) replaces TLS")
    check(os.stat(os.path.join(d.pods, ".tls", "sc-worker-ed25519")).st_mode & 0o777 == 0o600, "worker key mode")

    sid = sandbox_id(30)
    sock = d.ctl_ok("create", sid, *pod_annotations("sc", "default")).strip()
    apf_path = os.path.join(d.pods, sid, "apf.json")
    check(os.stat(apf_path).st_mode & 0o777 == 0o600, "apf.json holds the VM's key: mode 0600")
    check(os.path.exists(os.path.join(d.pods, sid, "sc-host-key.pub")), "pinned host key not kept with the pod")
    vm.argv[vm.argv.index("-config") + 1] = apf_path
    vm.start()
    rc, out, err = d.ctl("start", sid, timeout=60)
    check(rc == 0, "StartVM over SSH failed: %s\n--- daemon:\n%s" % (err, d.log()))
    d.wait_log(r"sandbox=%s SSH connection to 127\.0\.0\.1:%d up" % (sid, vm.ssh_port))
    d.wait_log(r"sandbox=%s agent proxy: connecting to 127\.0\.0\.1:%d \(SSH\)" % (sid, vm.agent_port))
    n = health_checks(record)
    check(d.ctl_ok("check", sid).strip() == "SERVING", "check through SSH")
    check(health_checks(record) == n + 1, "caa-ctl check did not reach the agent")
    vm.fwd.wait_line("Accepted publickey for root")

    # The worker inbound: worker 127.0.0.1:tunnel_port -> SSH -> the VM's 127.0.0.1:echo_port.
    d.wait_log(r"sandbox=%s tunnel ECHO: worker 127\.0\.0\.1:%d -> VM 127\.0\.0\.1:%d" % (sid, tunnel_port, echo_port))
    with socket.create_connection(("127.0.0.1", tunnel_port), timeout=10) as s:
        s.sendall(b"through the worker inbound")
        got = b""
        while len(got) < 26:
            chunk = s.recv(64)
            if not chunk:
                break
            got += chunk
    check(got == b"through the worker inbound", "worker inbound tunnel answered %r" % got)
    if netns:
        d.wait_log(r"sandbox=%s tunnel ECHONS: worker 127\.0\.0\.1:%d in namespace %s -> VM" % (sid, ns_port, netns))
        client = ("import socket\ns = socket.create_connection(('127.0.0.1', %d), timeout=10)\n"
                  "s.sendall(b'from the namespace')\ngot = b''\n"
                  "while len(got) < 18:\n    c = s.recv(64)\n    if not c: break\n    got += c\nprint(got.decode())"
                  % ns_port)
        for port, where in ((ns_port, "worker"), (vm_ns_port, "VM")):
            p = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", client.replace(str(ns_port), str(port))],
                               capture_output=True, timeout=30)
            check(p.stdout.strip() == b"from the namespace",
                  "%s namespace inbound answered %r %r" % (where, p.stdout, p.stderr))
        vm.fwd.wait_line("inbound ECHOVM: 127.0.0.1:%d in namespace %s" % (vm_ns_port, netns))
    for tag, name, kind, port, vm_port in bogus:
        why = '"/run/netns/%s" is not a network namespace (a %s)' % (name, kind)
        d.wait_log(r"sandbox=%s tunnel %s: %s" % (sid, tag, re.escape(why)))
        vm.fwd.wait_line("inbound %sVM: %s" % (tag, why))
        # (vm_port does listen here: sshd's remote forward, which the forwarder relays to.)
        check(not port_listening(port), "tunnel %s (%s) opened a listener on %d" % (tag, kind, port))

    # sshd and its connection processes die (as in a VM reboot): the forwarder restarts sshd,
    # the daemon's SSH client reconnects, the agent answers again.
    sshd_pid = [int(l.split("sshd started (pid ")[1].split(",")[0]) for l in vm.fwd.lines
                if "sshd started (pid " in l][-1]
    kill_tree(sshd_pid)
    vm.fwd.wait_line("sshd exited")
    d.wait_log(r"sandbox=%s SSH connection to 127\.0\.0\.1:%d lost" % (sid, vm.ssh_port), timeout=30)
    wait_serving(d, sid, "after sshd was killed")
    check(d.count_log(r"sandbox=%s SSH connection to 127\.0\.0\.1:%d up" % (sid, vm.ssh_port)) >= 2,
          "no second SSH connection")

    # The forwarder restarts (the SSH connection may outlive it, sshd's connection process is
    # not the forwarder's child): the agent path recovers.
    vm.stop()
    vm.start()
    wait_serving(d, sid, "after the forwarder restart")

    d.ctl_ok("stop", sid)
    check(not os.path.exists(sock), "agent socket left after StopVM")
    d.wait_log(r"sandbox=%s closing the SSH connection" % sid)
    check(not os.path.exists(os.path.join(d.pods, sid, "sc-host-key.pub")), "pinned host key left after StopVM")
    rc = d.stop(timeout=60)
    check(rc == 0, "daemon exit status %d (99: valgrind found errors):\n%s" % (rc, d.log()[-3000:]))
    check("PRIVATE KEY" not in d.log(), "key material in the daemon log")
    if os.environ.get("SC_DEBUG"):
        print(d.log())
    vm.stop()
    agent.stop()


def port_listening(port):
    """Whether anything in this network namespace listens on 127.0.0.1:port."""
    with socket.socket() as s:
        s.settimeout(5)
        return s.connect_ex(("127.0.0.1", port)) == 0


_netns_created = []
_netns_files_created = []


def delete_netns():
    for ns in _netns_created:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)
    for path in _netns_files_created:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def main():
    if not FORWARDER or not TEST_AGENT or not os.access(SSHD, os.X_OK) or not os.access(SSH, os.X_OK):
        print("SKIP: needs the forwarder, caa-test-agent, ssh and sshd (openssh-client, openssh-server)")
        sys.exit(77)
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    try:
        if "--valgrind" in sys.argv:
            if SANITIZED or not shutil.which("valgrind"):
                print("SKIP: valgrind cannot run here (sanitizer build or not installed)")
                sys.exit(77)
            scenario_daemon_end_to_end(VALGRIND)
            return
        scenario_config_refusals()
        scenario_vm_side_with_openssh()
        scenario_daemon_end_to_end()
    finally:
        cleanup()
        delete_netns()


if __name__ == "__main__":
    run_main(main)
