#!/usr/bin/env python3
"""The daemon's pod network hooks with real namespaces (root only).

All inside namespaces this test makes (198.18.0.0/15 only, nothing on the
host): a worker namespace W where the daemon runs, an underlay namespace U
holding the "VM" address 198.18.0.2 and a FakeForwarder on it, and two pod
namespaces P1, P2 (eth0 with an address and a default route, as a CNI leaves
them).

Checks: CreateVM with networkNamespacePath inspects the pod namespace into
apf.json's pod-network and persists the VNI (lowest free from -vxlan-min-id)
and the path; a missing namespace fails CreateVM without leftovers; StartVM
builds vxlan1 (VNI, remote = VM IP), the tc bridge and the NOTRACK rules in
W; a restarted daemon reconnects the ready pod and its StopVM still tears the
tunnel down (config read back from apf.json); a freed VNI is reused.
"""
import json
import os
import subprocess
import sys

from caa_harness import Daemon, check, pod_annotations, run_main, sandbox_id, tmpdir
from netns_helpers import add_helper, make_netns, nft_rules, ns, sh, sweep_stale

TAG = "caa-itn%d" % os.getpid()
W, U, P1, P2 = TAG + "-w", TAG + "-u", TAG + "-p1", TAG + "-p2"
VM_IP = "198.18.0.2"
FWD_PORT = 15150


def setup():
    sweep_stale("caa-itn")
    for n in (W, U, P1, P2):
        make_netns(n)
    # Worker <-> underlay: the worker's primary interface and the VM's address.
    sh("ip", "link", "add", "w-up", "netns", W, "type", "veth", "peer", "name", "u-dn", "netns", U)
    ns(W, "ip", "addr", "add", "198.18.0.1/24", "dev", "w-up")
    ns(W, "ip", "link", "set", "w-up", "up")
    ns(W, "ip", "route", "add", "default", "via", "198.18.0.254", "dev", "w-up")
    ns(U, "ip", "addr", "add", VM_IP + "/24", "dev", "u-dn")
    ns(U, "ip", "link", "set", "u-dn", "up")
    # Two pods, each behind its own veth into the worker namespace.
    for i, pod in ((1, P1), (2, P2)):
        host = "p%dh" % i
        sh("ip", "link", "add", host, "netns", W, "type", "veth", "peer", "name", "eth0", "netns", pod)
        ns(W, "ip", "addr", "add", "198.19.%d.1/24" % i, "dev", host)
        ns(W, "ip", "link", "set", host, "up")
        ns(pod, "ip", "addr", "add", "198.19.%d.5/24" % i, "dev", "eth0")
        ns(pod, "ip", "link", "set", "eth0", "up")
        ns(pod, "ip", "route", "add", "default", "via", "198.19.%d.1" % i, "dev", "eth0")
    # The VM's forwarder stand-in, in the underlay namespace.
    harness = os.path.join(os.path.dirname(os.path.abspath(__file__)), "caa_harness.py")
    p = subprocess.Popen(["ip", "netns", "exec", U, sys.executable, harness, "fake-forwarder", VM_IP, str(FWD_PORT)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    add_helper(p)
    line = p.stdout.readline()
    check(line.startswith("LISTENING"), "fake forwarder did not start: %r" % line)


def vxlan1(pod):
    out = ns(pod, "ip", "-d", "-j", "link", "show", "dev", "vxlan1", check_rc=False)
    if not out.strip():
        return None
    info = json.loads(out)[0]["linkinfo"]
    check(info["info_kind"] == "vxlan", "vxlan1 is not a VXLAN device: %s" % info)
    return info["info_data"]


def notrack_comments():
    return [rule.get("comment", "") for rule in nft_rules(W, "peerpod")]


def tc_filters(pod):
    return ns(pod, "tc", "filter", "show", "dev", "eth0", "ingress").strip()


def maps_libnl(d):
    with open("/proc/%d/maps" % d.pid) as f:
        return "libnl-route-3" in f.read()


def daemon(root, extra=()):
    return Daemon(root=root, forwarder=False, wrapper=["ip", "netns", "exec", W],
                  args=["-test-ip", VM_IP, "-forwarder-port", str(FWD_PORT), "-disable-tls",
                        "-proxy-timeout", "20s", *extra]).start()


def start_request(d, sid):
    with open(os.path.join(d.pods, sid, "start-request.json")) as f:
        return json.load(f)


def main():
    if os.geteuid() != 0:
        print("SKIP: needs root (network namespaces)")
        sys.exit(77)
    setup()
    root = tmpdir()
    d = daemon(root)

    s1, s2, s3, s4 = sandbox_id(20), sandbox_id(21), sandbox_id(22), sandbox_id(23)
    # The netlink/nftables code is a module mapped at the first pod network.
    d.ctl_ok("version")
    check(not maps_libnl(d), "an idle daemon maps libnl-route")
    d.ctl_ok("create", s1, *pod_annotations("one", "default"), "-netns", "/run/netns/" + P1)
    d.wait_log(r"loaded the pod network module .*caa-podnet-worker\.so")
    check(maps_libnl(d), "the pod network module did not map libnl-route")
    net = d.apf(s1)["pod-network"]
    check(net is not None, "pod-network missing from apf.json")
    check(net["podip"] == "198.19.1.5/24" and net["interface"] == "eth0", "pod address: %s" % net)
    check(net["worker-node-ip"] == "198.18.0.1/24" and net["dedicated"] is False, "worker side: %s" % net)
    check(net["vxlan-id"] == 555000 and net["index"] == 0 and net["vxlan-port"] == 4789, "VNI: %s" % net)
    check(net["tunnel-type"] == "vxlan", "tunnel type: %s" % net)
    check(net["external-net-via-pod-vm"] is False and "multi_nic" not in start_request(d, s1),
          "no second NIC without -ext-network-via-podvm")
    check({"dst": "0.0.0.0/0", "gw": "198.19.1.1"}.items() <= next(
        (r for r in net["routes"] if r["dst"] == "0.0.0.0/0"), {}).items(), "default route: %s" % net["routes"])
    st = d.pod_state(s1)
    check(st["vni"] == 555000 and st["netns_path"] == "/run/netns/" + P1, "persisted network: %s" % st)

    d.ctl_ok("create", s2, *pod_annotations("two", "default"), "-netns", "/run/netns/" + P2)
    check(d.pod_state(s2)["vni"] == 555001, "second pod's VNI: %s" % d.pod_state(s2)["vni"])

    # A namespace that does not exist: NOT_FOUND, nothing left, no VNI used.
    rc, _, err = d.ctl("create", s4, *pod_annotations("ghost", "default"), "-netns", "/run/netns/" + TAG + "-nope")
    check(rc == 1 and "NOT_FOUND" in err and "does not exist" in err, "missing netns: %s" % err)
    check(not os.path.exists(os.path.join(d.pods, s4)), "failed CreateVM left its pod dir")

    # StartVM: tunnel to the VM.
    d.ctl_ok("start", s1)
    vx = vxlan1(P1)
    check(vx is not None and vx["id"] == 555000 and vx["remote"] == VM_IP and vx["port"] == 4789,
          "vxlan1 after StartVM: %s" % vx)
    check("mirred" in tc_filters(P1), "no tc mirred filter on the pod interface: %s" % tc_filters(P1))
    check(any("vni:555000" in c for c in notrack_comments()), "no NOTRACK rule for VNI 555000: %s" % notrack_comments())
    check(vxlan1(P2) is None, "the pod that was not started has a tunnel")

    # Restart: the ready pod is reconnected; its StopVM still removes the tunnel.
    check(d.stop() == 0, "exit status")
    check(vxlan1(P1) is not None, "the tunnel must outlive the daemon")
    d = daemon(root)
    d.wait_log(r"sandbox=%s agent proxy reconnected" % s1)
    d.ctl_ok("stop", s1)
    check(vxlan1(P1) is None, "vxlan1 left after StopVM")
    check(tc_filters(P1) == "", "tc filters left after StopVM: %s" % tc_filters(P1))
    check(not any("vni:555000" in c for c in notrack_comments()), "NOTRACK rules left: %s" % notrack_comments())
    check(d.instances() == [], "instance left after StopVM")

    # The freed VNI is the lowest free one again.
    d.ctl_ok("create", s3, *pod_annotations("three", "default"), "-netns", "/run/netns/" + P1)
    check(d.pod_state(s3)["vni"] == 555000, "VNI not reused: %s" % d.pod_state(s3)["vni"])
    d.ctl_ok("stop", s3)
    d.ctl_ok("stop", s2)
    check(d.stop() == 0, "exit status")

    # -ext-network-via-podvm: the VM is told (apf.json) and the provider is
    # asked for a second NIC (upstream's MultiNic), kept for StartVM.
    d = daemon(root, ["-ext-network-via-podvm"])
    s5 = sandbox_id(24)
    d.ctl_ok("create", s5, *pod_annotations("five", "default"), "-netns", "/run/netns/" + P2)
    check(d.apf(s5)["pod-network"]["external-net-via-pod-vm"] is True, "apf.json: %s" % d.apf(s5)["pod-network"])
    check(start_request(d, s5).get("multi_nic") is True, "start request: %s" % start_request(d, s5))
    d.ctl_ok("stop", s5)
    check(d.stop() == 0, "exit status")


run_main(main)
