#!/usr/bin/env python3
"""The local demo: one real VM per pod on libvirt/QEMU (run by scripts/demo.sh).

Builds nothing itself except the pod VM image; expects a meson build directory
with the daemon, caa-ctl, the forwarder, process-user-data and caa-test-agent.
Every step prints its wall time; the last line is "DEMO OK: ..." on success.
Everything it starts is stopped and deleted on every exit path (docs/e2e.md).

Usage: demo.py --build BUILD_DIR [--state-file PATH] [--keep-logs DIR] [--hold-on-failure SECONDS]
"""
import argparse
import contextlib
import os
import platform
import shutil
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import localcloud as lc  # noqa: E402
from agentclient import AgentClient  # noqa: E402

POD_IP = lc.POD_NET + ".10"
CLIENT_IP = lc.POD_NET + ".200"


class Steps:
    """Numbered steps with their wall time."""

    def __init__(self, out=print):
        self.out = out
        self.rows = []
        self.n = 0

    @contextlib.contextmanager
    def __call__(self, title):
        self.n += 1
        self.out("[%2d] %s" % (self.n, title))
        t0 = time.monotonic()
        try:
            yield
        except BaseException:
            self.out("     FAILED after %.1f s" % (time.monotonic() - t0))
            raise
        dt = time.monotonic() - t0
        self.rows.append((self.n, title, dt))
        self.out("     ok (%.1f s)" % dt)

    def note(self, text):
        self.out("     " + text)


def expect(cond, what):
    if not cond:
        raise lc.E2EError(what)


def start_cloud(step, state_file=None, log=print):
    cloud = lc.Cloud(log=log, state_file=state_file)
    with step("worker node: network namespace %s with its own virtlogd + libvirtd "
              "(private /run/libvirt, /etc/libvirt, /var/lib/libvirt)" % cloud.worker):
        try:
            cloud.start()
        except BaseException:
            cloud.close()
            raise
        step.note("libvirtd pid %d, isolated network %s on %s.0/24 (bridge %s), dir pool %s"
                  % (cloud.daemon_pids["libvirtd"], cloud.net_name, lc.VM_NET, cloud.BRIDGE, cloud.pool_name))
    return cloud


def demo_flow(cloud, build, step, pod_ifname="eth0", adaptor_flags=()):
    """The demo's path; raises E2EError on any deviation. Returns measurements."""
    res = {}
    with step("pod VM image: images/build-podvm-base.sh with the tree's forwarder, "
              "process-user-data and caa-test-agent (as kata-agent)"):
        image, spent = lc.build_image(build, os.path.join(build.root, "e2e-podvm"), log=step.note)
        step.note("%s (%s)" % (image, "built in %.1f s" % spent if spent else "inputs unchanged: reused"))
    with step("upload it into pool %s as %s" % (cloud.pool_name, lc.BASE_VOLUME)):
        cloud.upload_image(image)
    with step("start cloud-api-adaptor libvirt -uri qemu:///system -domain-type qemu in the worker netns"):
        caa = lc.Adaptor(cloud, build, flags=["-ip-wait", "300s", "-proxy-timeout", "180s"] + list(adaptor_flags)).start()
        step.note("pid %d, socket %s" % (caa.proc.pid, caa.socket))
    with step("pod network namespaces on the worker's bridge %s: the pod (%s) and a client (%s)"
              % (cloud.CNI_BRIDGE, POD_IP, CLIENT_IP)):
        pod = cloud.pod_netns("pod", POD_IP, pod_ifname)
        client = cloud.pod_netns("client", CLIENT_IP, pod_ifname)
    sid = lc.new_sandbox_id()
    with step("CreateVM (caa-ctl create <id> -netns %s)" % pod.path):
        out = caa.ctl("create", sid, *lc.pod_annotations("demo"), "-netns", pod.path).stdout.strip()
        expect(out == caa.agent_socket(sid), "CreateVM answered %r, want %s" % (out, caa.agent_socket(sid)))
        step.note("agent socket %s" % out)
    t_start = time.monotonic()
    with step("StartVM (the pod VM boots under QEMU TCG; StartVM returns when its agent answers)"):
        caa.ctl("start", sid, "-timeout", "600s")
        st = caa.state(sid)
        expect(st and st["state"] == "ready", "state after StartVM: %r" % (st and st["state"]))
        res["instance"] = inst = st["instance_name"]
        res["vm_ip"] = st["instance_ips"][0]
        expect(cloud.domain_state(inst) == "running", "domain %s is %r" % (inst, cloud.domain_state(inst)))
        links = pod.links()
        expect("vxlan1" in links, "no vxlan1 in the pod netns: %s" % links)
        step.note("domain %s running, VM IP %s, VXLAN id %s; pod netns has %s"
                  % (inst, res["vm_ip"], st.get("vni"), ", ".join(links)))
    res["start_to_ready"] = time.monotonic() - t_start
    with step("agent Health.Check through the agent socket (caa-ctl check)"):
        out = caa.ctl("check", sid, timeout=60).stdout.strip()
        expect(out == "SERVING", "Health.Check: %r" % out)
        step.note(out)
    token = "token-" + os.urandom(4).hex()
    with step("CreateSandbox, CreateContainer, StartContainer: busybox httpd on :8080 "
              "in the VM's pod network namespace"):
        with AgentClient(caa.agent_socket(sid)) as agent:
            expect(agent.health_check() == 1, "agent Health.Check not SERVING")
            agent.create_sandbox("demo", sid)
            agent.create_container("httpd", lc.http_server_command(token), netns_path=pod.path)
            agent.start_container("httpd")
    url = "http://%s:8080/" % POD_IP
    with step("HTTP GET %s from the client netns: worker bridge -> pod netns -> VXLAN -> pod VM" % url):
        body = lc.http_get(client, POD_IP, 8080, 120).strip()
        expect(token in body, "the answer %r lacks %s" % (body, token))
        host_kernel = platform.release()
        expect(host_kernel not in body, "answered by the host kernel %s, not the VM: %r" % (host_kernel, body))
        step.note("answer: %s" % body)
        res["answer"] = body
    with step("StopVM (caa-ctl stop): domain, volumes and tunnel go"):
        caa.ctl("stop", sid, timeout=300)
        expect(cloud.domains() == [], "domains left: %s" % cloud.domains())
        expect(cloud.volumes() == [lc.BASE_VOLUME], "volumes left: %s" % cloud.volumes())
        expect(pod.leftover_devices() == [], "pod netns still has %s" % pod.leftover_devices())
        expect(cloud.nft_rules() == "", "NOTRACK rules left: %s" % cloud.nft_rules())
        expect(caa.pod_dirs() == [], "pods dir not empty: %s" % caa.pod_dirs())
    res["adaptor"] = caa
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--state-file")
    ap.add_argument("--keep-logs", help="copy the daemon log and console logs here")
    ap.add_argument("--pod-ifname", default=lc.POD_IFNAME, help="the pod's interface name (default eth0)")
    ap.add_argument("--prior-step", action="append", default=[], metavar="SECONDS=TITLE",
                    help="a step done before (scripts/demo.sh: install, build), for the summary")
    ap.add_argument("--hold-on-failure", type=int, default=0, metavar="SECONDS",
                    help="on failure, keep everything running this long for inspection")
    args = ap.parse_args()
    reason = lc.check_machine()
    if reason:
        print("demo: cannot run: %s" % reason)
        return 1
    lc.enter_private_mounts()
    lc.signals_raise()
    build = lc.Build(args.build)
    step = Steps()
    prior = 0.0
    for item in args.prior_step:
        dt, _, title = item.partition("=")
        step.n += 1
        step.rows.append((step.n, title, float(dt)))
        prior += float(dt)
    t0 = time.monotonic() - prior
    cloud = None
    ok = failed = False
    try:
        cloud = start_cloud(step, args.state_file)
        res = demo_flow(cloud, build, step, args.pod_ifname)
        ok = True
    except KeyboardInterrupt as e:
        print("demo: interrupted (%s); cleaning up" % (e or "Ctrl-C"))
    except lc.E2EError as e:
        print("demo: FAILED: %s" % e)
        failed = True
    finally:
        if cloud and failed and args.hold_on_failure:
            hold(cloud, args.hold_on_failure)
        if cloud:
            if failed or args.keep_logs:
                dump_logs(cloud, args.keep_logs)
            with step("clean up: adaptor, domains, volumes, pool, network, libvirtd, virtlogd, "
                      "namespaces, temporary directory"):
                errors = cloud.close()
                if errors:
                    ok = False
    print("")
    print("steps (wall time):")
    for n, title, dt in step.rows:
        print("  %2d  %6.1f s  %s" % (n, dt, title))
    if ok:
        print("DEMO OK: a pod VM booted on libvirt/QEMU in %.1f s (StartVM to agent ready), served %r "
              "to another pod over the VXLAN tunnel, and was deleted; total %.1f s"
              % (res["start_to_ready"], res["answer"], time.monotonic() - t0))
        return 0
    print("DEMO FAILED after %.1f s" % (time.monotonic() - t0))
    return 1


def hold(cloud, seconds):
    pid = cloud.daemon_pids.get("libvirtd")
    print("holding for %d s (Ctrl-C ends it); enter the run with:" % seconds)
    print("  nsenter -t %s -m -n    # mount + worker netns; ip netns list; virsh -c qemu:///system list" % pid)
    try:
        time.sleep(seconds)
    except KeyboardInterrupt:
        pass


def dump_logs(cloud, dest):
    """The daemon log and the VM console logs: into dest, or their tails to stdout."""
    files = [a.log_path for a in cloud.adaptors]
    if os.path.isdir(cloud.console_dir):
        files += [os.path.join(cloud.console_dir, f) for f in sorted(os.listdir(cloud.console_dir))]
    for f in files:
        if not os.path.isfile(f):
            continue
        if dest:
            os.makedirs(dest, exist_ok=True)
            shutil.copy(f, dest)
        else:
            lines = open(f, errors="replace").read().splitlines()
            print("---- %s (last 25 lines)" % f)
            for line in lines[-25:]:
                print("  " + line)
    if dest:
        print("logs copied to %s" % dest)


if __name__ == "__main__":
    sys.exit(main())
