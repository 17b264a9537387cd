#!/usr/bin/env python3
"""agent-protocol-forwarder and the pod network (needs root; else skip).

The forwarder runs in a fresh network namespace (unshare -n) that plays the
pod VM's root namespace; addresses are from 198.18.0.0/15. With `pod-network`
in apf.json it builds the pod interface in the pod namespace (a file in the
test's temporary directory) before it listens; without it, it skips that
step; a pod-network it cannot build stops it with exit 1 before listening.
"""
import json
import os
import shutil
import subprocess

from agentpath import (Proc, Tap, check, go_peers, skip_without_go, start_agent, tmpdir, write_apf, FORWARDER)

POD_NETWORK = {
    "podip": "198.18.1.5/24", "pod-hw-addr": "0a:58:c6:12:01:05", "interface": "eth0",
    "worker-node-ip": "198.18.0.1/24", "tunnel-type": "vxlan",
    "routes": [{"dst": "198.18.1.0/24", "dev": "eth0", "protocol": "kernel", "scope": "link"},
               {"dst": "0.0.0.0/0", "gw": "198.18.1.1", "dev": "eth0", "protocol": "boot", "scope": "universe"}],
    "neighbors": [], "mtu": 1500, "index": 123, "vxlan-port": 4789, "vxlan-id": 555123,
    "dedicated": False, "external-net-via-pod-vm": False,
}


def forwarder_in_netns(agent_sock, apf, podns):
    argv = ["unshare", "--net", "--", FORWARDER, "-config", apf, "-listen", "127.0.0.1:0", "-kata-agent-socket",
            agent_sock, "-pod-namespace", podns, "-disable-tls"]
    return Proc("agent-protocol-forwarder (netns)", argv)


def main():
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("nsenter") is None:
        print("1..0 # SKIP needs root, unshare and nsenter")
        raise SystemExit(77)
    skip_without_go()
    tap = Tap(4)
    d = tmpdir()
    goserver, _ = go_peers()
    agent_sock = os.path.join(d, "agent.sock")
    agent = start_agent(goserver, agent_sock)
    podns = os.path.join(d, "podns")

    def cleanup_podns():
        if os.path.exists(podns):
            subprocess.run(["umount", podns], stderr=subprocess.DEVNULL)
            os.unlink(podns)

    def with_pod_network():
        apf = os.path.join(d, "apf.json")
        write_apf(apf, {"pod-network": POD_NETWORK, "pod-namespace": podns, "pod-name": "nginx"})
        fwd = forwarder_in_netns(agent_sock, apf, podns)
        try:
            fwd.wait_line(r"pod network set up in .*podns")
            fwd.wait_line(r"listening on port \d+")
            order = [i for i, line in enumerate(fwd.lines) if "pod network set up" in line or "listening on" in line]
            check(len(order) == 2 and "pod network" in fwd.lines[order[0]], "set-up must come before listening")
            link = json.loads(subprocess.run(["nsenter", "--net=" + podns, "ip", "-d", "-j", "link", "show", "eth0"],
                                             capture_output=True, check=True).stdout)[0]
            check(link["linkinfo"]["info_kind"] == "vxlan", "eth0 is %s" % link["linkinfo"]["info_kind"])
            check(link["linkinfo"]["info_data"]["id"] == 555123, "VNI %s" % link["linkinfo"]["info_data"]["id"])
            check(link["mtu"] == 1450 and link["address"] == "0a:58:c6:12:01:05", "mtu/mac %s" % link)
            addrs = json.loads(subprocess.run(["nsenter", "--net=" + podns, "ip", "-j", "addr", "show", "eth0"],
                                              capture_output=True, check=True).stdout)[0]["addr_info"]
            check(any(a["local"] == "198.18.1.5" and a["prefixlen"] == 24 for a in addrs), "addresses %s" % addrs)
            routes = json.loads(subprocess.run(["nsenter", "--net=" + podns, "ip", "-j", "route", "show"],
                                               capture_output=True, check=True).stdout)
            check(any(r["dst"] == "default" and r.get("gateway") == "198.18.1.1" for r in routes), "routes %s" % routes)
            check(fwd.stop() == 0, "forwarder exit:\n%s" % fwd.tail())
            return "vxlan eth0 (VNI 555123, MTU 1450) with 198.18.1.5/24 in the pod namespace"
        finally:
            fwd.kill()
            cleanup_podns()
    tap.run("pod-network in apf.json: tunnel built in the pod namespace before listening", with_pod_network)

    def unsupported():
        apf = os.path.join(d, "apf-ext.json")
        pn = dict(POD_NETWORK, **{"external-net-via-pod-vm": True})
        write_apf(apf, {"pod-network": pn})
        fwd = forwarder_in_netns(agent_sock, apf, podns)
        try:
            rc = fwd.wait_exit()
            check(rc == 1, "exit status %s" % rc)
            check(any("external-net-via-pod-vm" in line for line in fwd.lines), "no reason given:\n%s" % fwd.tail())
            check(not any("listening on" in line for line in fwd.lines), "listened anyway")
        finally:
            fwd.kill()
            cleanup_podns()
    tap.run("a pod network it cannot build: exit 1 before listening", unsupported)

    def without():
        apf = os.path.join(d, "apf-none.json")
        write_apf(apf, {"pod-name": "nginx"})
        fwd = forwarder_in_netns(agent_sock, apf, podns)
        try:
            fwd.wait_line(r"no pod-network in .*: pod network set-up skipped")
            fwd.wait_line(r"listening on port")
            check(not os.path.exists(podns), "pod namespace created without pod-network")
            check(fwd.stop() == 0, "forwarder exit")
        finally:
            fwd.kill()
            cleanup_podns()
    tap.run("no pod-network: set-up skipped, forwarder serves", without)

    def bad_config():
        apf = os.path.join(d, "apf-bad.json")
        with open(apf, "w") as f:
            f.write('{"pod-network": {"podip": "not-an-ip"}}')
        fwd = Proc("agent-protocol-forwarder", [FORWARDER, "-config", apf, "-kata-agent-socket", agent_sock,
                                                 "-listen", "127.0.0.1:0", "-disable-tls"])
        rc = fwd.wait_exit()
        check(rc == 1 and any("podip" in line for line in fwd.lines), "rc %s:\n%s" % (rc, fwd.tail()))
    tap.run("a malformed pod-network: exit 1 naming the field", bad_config)
    agent.stop()
    tap.exit()


if __name__ == "__main__":
    main()
