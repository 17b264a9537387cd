#!/usr/bin/env python3
"""Secure comms, Trustee mode, end to end with real OpenSSH parts and a fake KBS.

The pod VM side (our forwarder with -secure-comms, running Debian's sshd) runs in a
network namespace this test creates (a veth pair in 198.19.0.0/16, a /30 derived
from the PID), so that the VM's fixed KBS tunnel port 127.0.0.1:8080 and the SSH
port 2222 are its own. The worker is the test daemon with -secure-comms (no
-secure-comms-no-trustee), its KBS the fake one of fake_kbs.py (PyJWT checks the
daemon's EdDSA admin tokens).

Two phases: the daemon posts the worker's public key and the pod's host key to the
KBS; the VM's attestation-phase sshd (fresh host key, any client key, only the KBS
remote forward) carries the forwarder's key fetch through the KBS tunnel, where the
worker rewrites pp-sid to pp-<sid>; the VM restarts sshd with the fetched keys; the
daemon reconnects, pins the host key, and the agent path works. StopVM deletes the
KBS resource. Failure cases: a wrong admin key, an expired token (KBS clock ahead)
and a KBS that is down all fail StartVM with a clear error and leave nothing; a
FIFO as the forwarder's key namespace is named as such and does not hang it.
"""
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

from agent_helpers import Child, free_port, health_checks, start_agent
from caa_harness import SANITIZED, Daemon, check, pod_annotations, run_main, sandbox_id, tmpdir
from test_secure_comms import FORWARDER, SSHD, TEST_AGENT, VALGRIND, cleanup, wait_serving

DEBIAN_PYTHON = "/usr/bin/python3"
FAKE_KBS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_kbs.py")
SOURCE_ROOT = os.environ.get("CAA_SOURCE_ROOT", "")

PID = os.getpid()
NETNS = "caa-sct-%d" % PID
VETH_WORKER, VETH_VM = "sctw%d" % PID, "sctv%d" % PID
_net = (PID % 16000) * 4
WORKER_IP = "198.19.%d.%d" % (_net // 256, _net % 256 + 1)
VM_IP = "198.19.%d.%d" % (_net // 256, _net % 256 + 2)


def ip(*args):
    subprocess.run(["ip"] + list(args), check=True, capture_output=True, timeout=20)


def netns_up():
    ip("netns", "add", NETNS)
    ip("link", "add", VETH_WORKER, "type", "veth", "peer", "name", VETH_VM, "netns", NETNS)
    ip("addr", "add", WORKER_IP + "/30", "dev", VETH_WORKER)
    ip("link", "set", VETH_WORKER, "up")
    ip("-n", NETNS, "addr", "add", VM_IP + "/30", "dev", VETH_VM)
    ip("-n", NETNS, "link", "set", VETH_VM, "up")
    ip("-n", NETNS, "link", "set", "lo", "up")


def netns_down():
    subprocess.run(["ip", "link", "del", VETH_WORKER], capture_output=True, timeout=20)
    subprocess.run(["ip", "netns", "del", NETNS], capture_output=True, timeout=20)


def admin_keys(root, name):
    prv, pub = os.path.join(root, name + ".pem"), os.path.join(root, name + ".pub")
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", prv], check=True, capture_output=True)
    subprocess.run(["openssl", "pkey", "-in", prv, "-pubout", "-out", pub], check=True, capture_output=True)
    return prv, pub


class FakeKbs:
    def __init__(self, public_key, skew=0, lose_answer=""):
        self.child = Child([DEBIAN_PYTHON, FAKE_KBS, "--admin-public-key", public_key, "--skew", str(skew),
                            "--lose-answer", lose_answer])
        self.child.wait_line("fake-kbs listening on")
        line = [l for l in self.child.lines if "fake-kbs listening on" in l][0]
        self.port = int(line.split()[-1])
        self.addr = "127.0.0.1:%d" % self.port

    def get(self, what):
        with urllib.request.urlopen("http://%s/test/%s" % (self.addr, what), timeout=10) as r:
            return json.loads(r.read())

    def stop(self):
        self.child.stop()


class TrusteeVm:
    """The pod VM side in the test's namespace: forwarder -secure-comms and its sshd."""

    def __init__(self, root, apf_path, agent_sock, wrapper=()):
        self.dir = os.path.join(root, "sshd")
        self.argv = ["ip", "netns", "exec", NETNS] + list(wrapper) + [FORWARDER, "-config", apf_path, "-listen", "127.0.0.1:15150",
                     "-kata-agent-socket", agent_sock, "-pod-namespace", "/run/netns/podns-caa-sct-unused",
                     "-secure-comms", "-secure-comms-listen", VM_IP, "-secure-comms-dir", self.dir,
                     # Acting as CDH (as upstream's test double did): straight through the KBS tunnel,
                     # inside the test's namespace (setns in the fetch thread).
                     "-secure-comms-key-source", "http://127.0.0.1:8080/kbs/v0/resource/default",
                     "-secure-comms-key-netns", "/run/netns/" + NETNS, "-log-level", "debug"]
        self.fwd = None

    def start(self):
        self.fwd = Child(self.argv)
        self.fwd.wait_line("Server listening on %s port 2222" % VM_IP, timeout=60)
        return self

    def stop(self):
        self.fwd.stop()
        check(self.fwd.p.returncode == 0, "forwarder exit status %s (99: valgrind found errors):\n%s"
              % (self.fwd.p.returncode, "\n".join(self.fwd.lines[-30:])))


def daemon_args(kbs_addr, admin_key):
    return ["-test-ip", VM_IP, "-forwarder-port", "15150", "-proxy-timeout", "90s", "-secure-comms",
            "-secure-comms-kbs", kbs_addr, "-secure-comms-kbs-admin-key", admin_key]


def scenario_two_phases(root, admin_prv, admin_pub, wrapper=()):
    """wrapper: valgrind for the daemon and the forwarder (exit status 99 on an error or a leak)."""
    kbs = FakeKbs(admin_pub)
    agent_sock = os.path.join(root, "agent.sock")
    record = os.path.join(root, "agent-requests")
    agent = start_agent(agent_sock, record)
    d = Daemon(root=root, forwarder=False, args=daemon_args(kbs.addr, admin_prv), log_level="debug",
               wrapper=wrapper).start(timeout=60)
    d.wait_log(r"secure comms \(SSH, Trustee: keys through the KBS\) replaces TLS")

    sid = sandbox_id(31)
    d.ctl_ok("create", sid, *pod_annotations("sct", "default"))
    apf_path = os.path.join(d.pods, sid, "apf.json")
    with open(apf_path) as f:
        apf = json.load(f)
    check(not any(k.startswith("sc") for k in apf), "Trustee mode: no secure comms field in apf.json: %r" % apf)
    vm = TrusteeVm(root, apf_path, agent_sock, wrapper).start()
    vm.fwd.wait_line("attestation phase, only the KBS tunnel")
    with open(os.path.join(vm.dir, "sshd_config")) as f:
        conf = f.read()
    check("PermitOpen none" in conf and "PermitListen 127.0.0.1:8080" in conf and "AuthorizedKeysCommand" in conf,
          conf)

    rc, out, err = d.ctl("start", sid, timeout=150)
    check(rc == 0, "StartVM (Trustee) failed: %s\n--- daemon:\n%s\n--- vm:\n%s"
          % (err, d.log()[-5000:], "\n".join(vm.fwd.lines[-40:])))
    d.wait_log(r"sandbox=%s SSH connection to %s:2222 up in the attestation phase" % (sid, VM_IP))
    d.wait_log(r"sandbox=%s SSH connection to %s:2222 up \(host key pinned" % (sid, VM_IP))
    vm.fwd.wait_line("attestation phase over")
    log = kbs.get("log")
    check("POST /kbs/v0/resource/default/sshclient/publicKey 200" in log, log)
    check("POST /kbs/v0/resource/default/pp-%s/privateKey 200" % sid in log, log)
    check("GET /kbs/v0/resource/default/sshclient/publicKey 200" in log, log)
    # The VM asked for the generic name; the worker's KBS tunnel made it this pod's.
    check("GET /kbs/v0/resource/default/pp-%s/privateKey 200" % sid in log, log)
    check(not any("pp-sid" in l for l in log), "pp-sid reached the KBS: %r" % log)
    with open(os.path.join(vm.dir, "authorized_keys")) as f:
        check("ssh-ed25519" in f.read(), "Kubernetes phase: the worker's key is the authorized one")

    n = health_checks(record)
    check(d.ctl_ok("check", sid).strip() == "SERVING", "check through SSH (Trustee)")
    check(health_checks(record) == n + 1, "caa-ctl check did not reach the agent")

    # The daemon restarts while its VM runs: the KBS keeps the pod's key, the recovered pod
    # reconnects with the pinned key and posts nothing again.
    check(d.stop(timeout=60) == 0, "daemon exit status at the restart:\n%s" % d.log()[-3000:])
    check("default/pp-%s/privateKey" % sid in kbs.get("resources"), "a daemon restart deleted the pod's key")
    d = Daemon(root=root, forwarder=False, args=daemon_args(kbs.addr, admin_prv), log_level="debug",
               wrapper=wrapper).start(timeout=60)
    wait_serving(d, sid, "after a daemon restart (Trustee)")
    check(sum("POST /kbs/v0/resource/default/pp-%s/" % sid in l for l in kbs.get("log")) == 1,
          "the pod's key was posted again: %r" % kbs.get("log"))

    # A forwarder restart goes through the attestation phase again (the KBS still has the keys).
    vm.stop()
    vm.start()
    vm.fwd.wait_line("attestation phase over", timeout=60)
    wait_serving(d, sid, "after a forwarder restart (Trustee)")

    d.ctl_ok("stop", sid)
    d.wait_log(r"sandbox=%s KBS: deleted the pod's SSH host key" % sid, timeout=30)
    res = kbs.get("resources")
    check("default/pp-%s/privateKey" % sid not in res, "KBS resource left after StopVM: %r" % res)
    check(not os.path.exists(os.path.join(d.pods, sid)), "pod directory left after StopVM")
    rc = d.stop(timeout=60)
    check(rc == 0, "daemon exit status %d (99: valgrind found errors):\n%s" % (rc, d.log()[-3000:]))
    check("PRIVATE KEY" not in d.log(), "key material in the daemon log")
    vm.stop()
    agent.stop()
    kbs.stop()


def refused_start(root, kbs_addr, admin_prv, needle):
    """StartVM must fail with needle in the error; nothing of the pod's keys may stay."""
    d = Daemon(root=root, forwarder=False, args=daemon_args(kbs_addr, admin_prv), log_level="debug").start(timeout=60)
    sid = sandbox_id(32)
    d.ctl_ok("create", sid, *pod_annotations("sct-bad", "default"))
    rc, out, err = d.ctl("start", sid, timeout=150)
    check(rc != 0 and needle in err + d.log(), "StartVM should fail with %r: rc %d %s\n%s"
          % (needle, rc, err, d.log()[-3000:]))
    check(not os.path.exists(os.path.join(d.pods, sid, "sc-host-key.pub")), "pinned key kept after a failed start")
    check(d.count_log(r"sandbox=%s SSH connection" % sid) == 0, "an SSH connection was made without the KBS")
    check("PRIVATE KEY" not in d.log(), "key material in the daemon log")
    d.ctl("stop", sid)
    check(d.stop(timeout=60) == 0, "daemon exit status")
    return sid


# Run by /usr/bin/python3 (PyJWT): POSTs with wrong tokens, then a good one; prints the statuses.
TOKEN_PROBE = r"""
import sys, time, urllib.request, urllib.error
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
addr, key_path = sys.argv[1], sys.argv[2]
key = load_pem_private_key(open(key_path, "rb").read(), None)
now = int(time.time())
good = {"iat": now, "nbf": now, "exp": now + 300, "issued_at": now, "invalid_before": now, "expires_at": now + 300}
tokens = [
    "garbage",
    jwt.encode(good, None, algorithm="none"),
    jwt.encode(good, "secret", algorithm="HS256"),
    jwt.encode(good, Ed25519PrivateKey.generate(), algorithm="EdDSA"),
    jwt.encode(dict(good, exp=now - 10, expires_at=now - 10), key, algorithm="EdDSA"),
    jwt.encode({k: v for k, v in good.items() if k != "exp"}, key, algorithm="EdDSA"),
    jwt.encode(good, key, algorithm="EdDSA"),
]
for i, t in enumerate(tokens):
    path = "probe/good" if i == len(tokens) - 1 else "probe/bad%d" % i
    req = urllib.request.Request("http://%s/kbs/v0/resource/default/%s" % (addr, path), data=b"ok",
                                 headers={"Authorization": "Bearer " + t}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            print(r.status)
    except urllib.error.HTTPError as e:
        print(e.code)
"""


def scenario_refusals(root, admin_prv, admin_pub):
    # The daemon refuses Trustee mode without an admin key, or with one that is not Ed25519.
    d = Daemon(forwarder=False, args=["-secure-comms"])
    p = subprocess.run(d.cmdline(), stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    check(p.returncode != 0 and b"needs the KBS admin key" in p.stderr, p.stderr)
    rsa = os.path.join(root, "rsa.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "rsa", "-pkeyopt", "rsa_keygen_bits:2048", "-out", rsa],
                   check=True, capture_output=True)
    d = Daemon(forwarder=False, args=daemon_args("127.0.0.1:1", rsa))
    p = subprocess.run(d.cmdline(), stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    check(p.returncode != 0 and b"not an Ed25519 key" in p.stderr, p.stderr)

    # The fake KBS itself: wrong tokens are refused (checked with PyJWT-made tokens), a good one is not.
    kbs = FakeKbs(admin_pub)
    p = subprocess.run([DEBIAN_PYTHON, "-c", TOKEN_PROBE, kbs.addr, admin_prv], capture_output=True, timeout=60)
    check(p.returncode == 0 and p.stdout.decode().split() == ["401"] * 6 + ["200"],
          "fake KBS token checks: %r %r" % (p.stdout, p.stderr))
    check(kbs.get("resources") == {"default/probe/good": 2}, "fake KBS stored: %r" % kbs.get("resources"))
    kbs.stop()

    # Signed by a key the KBS does not know.
    kbs = FakeKbs(admin_pub)
    other_prv, _ = admin_keys(root, "other-admin")
    refused_start(tmpdir(), kbs.addr, other_prv, "HTTP 401")
    check(kbs.get("resources") == {}, "a refused token stored something")
    check(any("InvalidSignatureError" in l for l in kbs.child.lines), "the KBS did not see a bad signature")
    kbs.stop()

    # Expired: the KBS's clock is two hours ahead of the daemon's tokens.
    kbs = FakeKbs(admin_pub, skew=7200)
    refused_start(tmpdir(), kbs.addr, admin_prv, "HTTP 401")
    check(kbs.get("resources") == {}, "an expired token stored something")
    check(any("token expired" in l for l in kbs.child.lines), "the KBS did not see an expired token")
    kbs.stop()

    # The pod's key reached the KBS but the answer was lost: StartVM fails and the daemon deletes
    # the resource it may have stored.
    kbs = FakeKbs(admin_pub, lose_answer="^default/pp-")
    sid = refused_start(tmpdir(), kbs.addr, admin_prv, "HTTP 500")
    deadline = time.monotonic() + 30
    while "default/pp-%s/privateKey" % sid in kbs.get("resources"):
        check(time.monotonic() < deadline, "the pod's key stayed in the KBS: %r" % kbs.get("log"))
        time.sleep(0.2)
    check("DELETE /kbs/v0/resource/default/pp-%s/privateKey 200" % sid in kbs.get("log"), kbs.get("log"))
    kbs.stop()

    # KBS down: a clear error, nothing kept.
    refused_start(tmpdir(), "127.0.0.1:%d" % free_port(), admin_prv, "KBS POST default/sshclient/publicKey")


def scenario_key_netns_not_a_namespace(root):
    """-secure-comms-key-netns naming a FIFO: the key fetch says what the path is and waits for
    a namespace there; it never blocks in open(), so the forwarder stops at once."""
    fifo = os.path.join(root, "key-netns-fifo")
    os.mkfifo(fifo, 0o600)
    apf_path = os.path.join(root, "apf-fifo.json")
    with open(apf_path, "w") as f:
        json.dump({"pod-network": None, "pod-namespace": "default", "pod-name": "sct-fifo"}, f)
    fwd = Child([FORWARDER, "-config", apf_path, "-listen", "127.0.0.1:%d" % free_port(),
                 "-kata-agent-socket", os.path.join(root, "agent-fifo.sock"),
                 "-pod-namespace", "/run/netns/podns-caa-sct-unused", "-secure-comms", "-secure-comms-listen",
                 "127.0.0.1", "-secure-comms-ssh-port", str(free_port()),
                 "-secure-comms-dir", os.path.join(root, "sshd-fifo"),
                 "-secure-comms-key-source", "http://127.0.0.1:%d/kbs/v0/resource/default" % free_port(),
                 "-secure-comms-key-netns", fifo, "-log-level", "debug"])
    fwd.wait_line('cannot fetch the keys in that namespace: "%s" is not a network namespace (a FIFO)' % fifo)
    t0 = time.monotonic()
    fwd.stop()
    check(fwd.p.returncode == 0 and time.monotonic() - t0 < 10,
          "forwarder with a FIFO key namespace: exit %s after %.1f s:\n%s"
          % (fwd.p.returncode, time.monotonic() - t0, "\n".join(fwd.lines[-20:])))


def main():
    if not FORWARDER or not TEST_AGENT or not os.access(SSHD, os.X_OK):
        print("SKIP: needs the forwarder, caa-test-agent and sshd (openssh-server)")
        sys.exit(77)
    if os.geteuid() != 0 or not shutil.which("ip"):
        print("SKIP: needs root and iproute2 (a network namespace for the VM side)")
        sys.exit(77)
    probe = subprocess.run([DEBIAN_PYTHON, "-c", "import jwt, cryptography"], capture_output=True)
    if probe.returncode != 0:
        print("SKIP: needs python3-jwt and python3-cryptography under /usr/bin/python3")
        sys.exit(77)
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    root = tmpdir()
    admin_prv, admin_pub = admin_keys(root, "kbs-admin")
    valgrind = "--valgrind" in sys.argv
    if valgrind and (SANITIZED or not shutil.which("valgrind")):
        print("SKIP: valgrind cannot run here (sanitizer build or not installed)")
        sys.exit(77)
    netns_up()
    try:
        if valgrind:
            scenario_two_phases(tmpdir(), admin_prv, admin_pub, VALGRIND)
            return
        scenario_refusals(root, admin_prv, admin_pub)
        scenario_key_netns_not_a_namespace(tmpdir())
        scenario_two_phases(tmpdir(), admin_prv, admin_pub)
    finally:
        cleanup()
        netns_down()


if __name__ == "__main__":
    run_main(main)
