#!/usr/bin/env python3
"""End-to-end scenarios on a local libvirt/QEMU cloud (docs/e2e.md).

Each scenario builds (or reuses) the test pod VM image, starts its own
libvirtd inside a worker network namespace (localcloud.py), runs
cloud-api-adaptor there, drives it with caa-ctl and the agent protocol, and
asserts that nothing is left over: no domain, no volume but the base images,
no tunnel device, qdisc or NOTRACK rule, no pod directory and no process but
libvirtd/virtlogd/dnsmasq (and the adaptor) in the namespaces it made.

Usage: e2e_test.py --build-root BUILD --scenario NAME    (exit 0 pass, 1 fail, 77 skip)
Scenarios: demo, three-pods, stop-during-start, bad-image, adaptor-sigkill.
"""
import argparse
import os
import platform
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import localcloud as lc  # noqa: E402
from agentclient import AgentClient  # noqa: E402
from demo import Steps, demo_flow, expect, start_cloud  # noqa: E402

POD_IFNAME = lc.POD_IFNAME
CLIENT_IP = lc.POD_NET + ".200"


def log(text):
    print(text, flush=True)


def prepare(cloud, build, step):
    with step("pod VM image (cached in the build directory while its inputs do not change)"):
        image, spent = lc.build_image(build, os.path.join(build.root, "e2e-podvm"), log=step.note)
        step.note("built in %.1f s" % spent if spent else "reused")
    with step("upload %s" % lc.BASE_VOLUME):
        cloud.upload_image(image)


def wait_ctl(proc, timeout):
    """(exit status, stdout, stderr) of a background caa-ctl call."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise lc.E2EError("caa-ctl did not return within %d s: %s" % (timeout, err))
    return proc.returncode, out.strip(), err.strip()


def serve(caa, sid, pod, token):
    with AgentClient(caa.agent_socket(sid)) as agent:
        expect(agent.health_check() == 1, "agent of %s not SERVING" % sid[:8])
        agent.create_sandbox("pod-" + token, sid)
        agent.create_container("httpd", lc.http_server_command(token), netns_path=pod.path)
        agent.start_container("httpd")


def assert_clean(cloud, step, keep=(lc.BASE_VOLUME,)):
    with step("nothing left over (domains, volumes, tunnel devices, qdiscs, NOTRACK rules, pod dirs, processes)"):
        left = cloud.leftovers(keep_volumes=keep)
        expect(left == [], "left over: %s" % "; ".join(left))


# ---------------------------------------------------------------- scenarios

def sc_demo(cloud, build, step):
    """The README demo as assertions (demo.py's flow), then a clean daemon exit."""
    res = demo_flow(cloud, build, step, POD_IFNAME)
    assert_clean(cloud, step)
    caa = res["adaptor"]
    with step("SIGTERM: the adaptor exits 0"):
        rc = caa.stop()
        expect(rc == 0, "adaptor exit status %r" % rc)
    step.note("StartVM to agent ready: %.1f s" % res["start_to_ready"])


def sc_three_pods(cloud, build, step):
    """Three pods at once: distinct VMs, VNIs and tunnels; each answers with its own page."""
    prepare(cloud, build, step)
    caa = lc.Adaptor(cloud, build, flags=["-ip-wait", "400s", "-proxy-timeout", "120s"]).start()
    client = cloud.pod_netns("client", CLIENT_IP, POD_IFNAME)
    pods = []
    with step("three pod netns and CreateVM each"):
        for i in range(3):
            pod = cloud.pod_netns("pod%d" % i, "%s.%d" % (lc.POD_NET, 11 + i), POD_IFNAME)
            sid = lc.new_sandbox_id()
            caa.ctl("create", sid, *lc.pod_annotations("three-%d" % i), "-netns", pod.path)
            pods.append((pod, sid))
    with step("three StartVM calls at once"):
        procs = [caa.ctl_bg("start", sid, "-timeout", "600s") for _pod, sid in pods]
        for (pod, sid), p in zip(pods, procs):
            rc, out, err = wait_ctl(p, 660)
            expect(rc == 0, "StartVM %s: %s" % (sid[:8], err))
        states = [caa.state(sid) for _pod, sid in pods]
        expect(all(s["state"] == "ready" for s in states), "states %s" % [s["state"] for s in states])
        vnis = sorted(s["vni"] for s in states)
        ips = sorted(s["instance_ips"][0] for s in states)
        expect(len(set(vnis)) == 3 and len(set(ips)) == 3, "VNIs %s, IPs %s not distinct" % (vnis, ips))
        expect(len(cloud.domains()) == 3, "domains: %s" % cloud.domains())
        step.note("VNIs %s, VM IPs %s" % (vnis, ips))
    with step("each pod serves its own page; the client reaches all three over their tunnels"):
        tokens = []
        for i, (pod, sid) in enumerate(pods):
            tokens.append("pod%d-%s" % (i, os.urandom(3).hex()))
            serve(caa, sid, pod, tokens[-1])
        for (pod, sid), token in zip(pods, tokens):
            body = lc.http_get(client, pod.ip, 8080, 120)
            expect(token in body and platform.release() not in body, "%s answered %r" % (pod.ip, body))
    with step("three StopVM calls at once"):
        procs = [caa.ctl_bg("stop", sid) for _pod, sid in pods]
        for (pod, sid), p in zip(pods, procs):
            rc, out, err = wait_ctl(p, 300)
            expect(rc == 0, "StopVM %s: %s" % (sid[:8], err))
    assert_clean(cloud, step)
    expect(caa.stop() == 0, "adaptor exit status")


def sc_stop_during_start(cloud, build, step):
    """StopVM while StartVM waits (a) for the provider (VM booting, no lease yet)
    and (b) for the VM's forwarder (tunnel up, proxy dialing): StartVM answers
    CANCELLED, StopVM succeeds, and the VM, its volumes and tunnel are gone."""
    prepare(cloud, build, step)
    caa = lc.Adaptor(cloud, build, flags=["-ip-wait", "300s", "-proxy-timeout", "120s"]).start()
    phases = (("provider create", "provisioning"), ("agent connection", "connecting"))
    only = os.environ.get("CAA_E2E_PHASE")
    for phase, want_state in phases:
        if only and only != want_state:
            continue
        pod = cloud.pod_netns("p-" + want_state[:4], lc.POD_NET + (".21" if want_state == "provisioning" else ".22"),
                              POD_IFNAME)
        sid = lc.new_sandbox_id()
        caa.ctl("create", sid, *lc.pod_annotations("stop-" + want_state[:4]), "-netns", pod.path)
        with step("StopVM during StartVM's %s (state %s)" % (phase, want_state)):
            start = caa.ctl_bg("start", sid, "-timeout", "600s")
            if want_state == "provisioning":
                # The domain exists and boots; the provider is still waiting for its lease.
                lc.wait_for("the domain", lambda: cloud.domains(), 120, 0.1)
                st = caa.state(sid)["state"]
                expect(st == "provisioning", "state %s when the domain appeared" % st)
            else:
                # Hold the agent connection back (a firewall rule of the worker
                # netns drops the proxy's SYNs to the forwarder port), so that
                # "connecting" lasts until the stop rather than a few seconds.
                cloud.block_forwarder_port(True)
                lc.wait_for("state connecting", lambda: (caa.state(sid) or {}).get("state") == "connecting"
                            or start.poll() is not None, 400, 0.1)
                if start.poll() is not None:
                    raise lc.E2EError("StartVM ended before the stop: %s" % (start.communicate(),))
                links = pod.links()
                expect("vxlan1" in links, "tunnel not up in state connecting: %s" % links)
            step.note("%s: state %s seen, calling StopVM" % (lc.utc_now(), caa.state(sid)["state"]))
            t0 = time.monotonic()
            stop = caa.ctl_bg("stop", sid)
            rc, _out, err = wait_ctl(stop, 400)
            stop_s = time.monotonic() - t0
            expect(rc == 0, "StopVM: %s" % err)
            rc, _out, err = wait_ctl(start, 60)
            expect(rc != 0 and "CANCELLED" in err, "StartVM answered rc %d %r, want CANCELLED" % (rc, err))
            step.note("StopVM took %.1f s; StartVM: %s" % (stop_s, err))
            cloud.block_forwarder_port(False)
        assert_clean(cloud, step)
    expect(caa.stop() == 0, "adaptor exit status")


def sc_bad_image(cloud, build, step):
    """A base image that does not boot (a well-formed qcow2 full of random bytes):
    StartVM fails within -ip-wait + -proxy-timeout and leaves no domain and no
    volume; StopVM of the failed pod then succeeds. (OVMF finds no boot loader
    and stops in its EFI shell without network boot, so the VM never asks for a
    DHCP lease and -ip-wait is the bound that fires; a VM that got an address
    but ran no forwarder would be bounded by -proxy-timeout.)"""
    prepare(cloud, build, step)
    garbage = "podvm-garbage.qcow2"
    with step("upload %s (16 MiB of random bytes in a qcow2)" % garbage):
        cloud.upload_image(lc.make_garbage_image(os.path.join(cloud.tmp, garbage)), garbage)
    ip_wait, proxy_timeout = 30, 20
    caa = lc.Adaptor(cloud, build, flags=["-ip-wait", "%ds" % ip_wait,
                                          "-proxy-timeout", "%ds" % proxy_timeout]).start()
    pod = cloud.pod_netns("pod", lc.POD_NET + ".31", POD_IFNAME)
    sid = lc.new_sandbox_id()
    caa.ctl("create", sid, *lc.pod_annotations(
        "garbage", extra=["io.katacontainers.config.hypervisor.image=" + garbage]), "-netns", pod.path)
    with step("StartVM fails (-ip-wait %ds, -proxy-timeout %ds)" % (ip_wait, proxy_timeout)):
        t0 = time.monotonic()
        p = caa.ctl("start", sid, "-timeout", "600s", check=False)
        took = time.monotonic() - t0
        expect(p.returncode == 1, "StartVM exit %d: %s" % (p.returncode, p.stdout + p.stderr))
        limit = ip_wait + proxy_timeout + 30
        expect(took < limit, "StartVM failed only after %.0f s (limit %d s)" % (took, limit))
        st = caa.state(sid)
        expect(st and st["state"] == "failed" and not st.get("instance_id"),
               "state after the failure: %r" % ((st and (st["state"], st.get("instance_id"))),))
        lease = "created instance" in caa.log_text()
        step.note("failed after %.1f s (%s): %s" % (took, "the firmware's PXE got a lease, then the proxy timed out"
                                                    if lease else "no lease within -ip-wait", p.stderr.strip()))
        console = lc._read(cloud.console_log(st["instance_name"]))
        expect("podvm: userspace started" not in console, "the garbage image booted?")
    with step("no domain and no volume but the two base images; StopVM of the failed pod"):
        expect(cloud.domains() == [], "domains: %s" % cloud.domains())
        expect(cloud.volumes() == sorted([lc.BASE_VOLUME, garbage]), "volumes: %s" % cloud.volumes())
        caa.ctl("stop", sid, timeout=120)
    assert_clean(cloud, step, keep=(lc.BASE_VOLUME, garbage))
    expect(caa.stop() == 0, "adaptor exit status")


def sc_adaptor_sigkill(cloud, build, step):
    """The adaptor is SIGKILLed while a pod runs, then restarted on the same pods dir."""
    prepare(cloud, build, step)
    caa = lc.Adaptor(cloud, build, flags=["-ip-wait", "300s", "-proxy-timeout", "120s"]).start()
    pod = cloud.pod_netns("pod", lc.POD_NET + ".41", POD_IFNAME)
    client = cloud.pod_netns("client", CLIENT_IP, POD_IFNAME)
    sid = lc.new_sandbox_id()
    token = "sigkill-" + os.urandom(3).hex()
    with step("a running pod serving a page"):
        caa.ctl("create", sid, *lc.pod_annotations("killed"), "-netns", pod.path)
        caa.ctl("start", sid, "-timeout", "600s")
        serve(caa, sid, pod, token)
        expect(token in lc.http_get(client, pod.ip, 8080, 120), "no page before the kill")
        inst = caa.state(sid)["instance_name"]
    with step("SIGKILL the adaptor: the VM and the tunnel stay, the agent socket is dead"):
        caa.kill9()
        expect(cloud.domain_state(inst) == "running", "domain %s: %s" % (inst, cloud.domain_state(inst)))
        expect(token in lc.http_get(client, pod.ip, 8080, 30), "the pod stopped answering")
        p = caa.ctl("check", sid, timeout=30, check=False)
        expect(p.returncode != 0, "agent socket still answers after SIGKILL")
        expect(caa.state(sid)["state"] == "ready", "persisted state %s" % caa.state(sid)["state"])
        step.note("data path unaffected; caa-ctl check: %s" % p.stderr.strip())
    with step("restart on the same pods dir: the pod is recovered from state.json"):
        caa.start()
        text = caa.log_text().split("==== start 2")[-1]
        expect("loaded 1 pod(s)" in text, "restart log: %s" % caa.log_tail())
        # The restarted daemon re-adopts the ready pod: it listens on the agent
        # socket again and reconnects to the VM's forwarder.
        out = lc.wait_for("the agent socket to answer again", lambda: caa.ctl(
            "check", sid, timeout=30, check=False).stdout.strip() == "SERVING", 60, 0.2)
        with AgentClient(caa.agent_socket(sid)) as agent:
            agent.exec_process("httpd", "after-restart", ["/bin/cat", "/tmp/www-%s/index.html" % token])
            page = agent.read_stdout("httpd", "after-restart").decode()
            expect(token in page and agent.wait_process("httpd", "after-restart") == 0,
                   "ExecProcess after the restart: %r" % page)
        step.note("agent socket answers again (SERVING); ExecProcess in the running container works")
        p = caa.ctl("start", sid, check=False, timeout=60)
        expect(p.returncode == 1 and "FAILED_PRECONDITION" in p.stderr, "StartVM after restart: %s" % p.stderr)
        expect(token in lc.http_get(client, pod.ip, 8080, 30), "the pod stopped answering after the restart")
    with step("StopVM after the restart deletes the VM, its volumes and the tunnel"):
        caa.ctl("stop", sid, timeout=300)
    assert_clean(cloud, step)
    expect(caa.stop() == 0, "adaptor exit status")


def sc_secure_comms(cloud, build, step):
    """Secure comms (SSH, NoTrustee): the agent path goes through sshd in the VM; the pod's
    container serves a page over the VXLAN tunnel as usual; StopVM leaves nothing."""
    prepare(cloud, build, step)
    caa = lc.Adaptor(cloud, build, flags=["-ip-wait", "400s", "-proxy-timeout", "180s", "-secure-comms",
                                          "-secure-comms-no-trustee"]).start()
    client = cloud.pod_netns("client", CLIENT_IP, POD_IFNAME)
    pod = cloud.pod_netns("pod-sc", lc.POD_NET + ".31", POD_IFNAME)
    sid = lc.new_sandbox_id()
    with step("CreateVM + StartVM with secure comms"):
        caa.ctl("create", sid, *lc.pod_annotations("secure-comms"), "-netns", pod.path)
        caa.ctl("start", sid, "-timeout", "600s")
        expect(caa.state(sid)["state"] == "ready", "state %s" % caa.state(sid))
        with open(caa.log_path) as f:
            log_text = f.read()
        expect("SSH connection to" in log_text and "agent proxy: connecting to" in log_text and "(SSH)" in log_text,
               "the agent path did not go through SSH")
        expect("PRIVATE KEY" not in log_text, "key material in the daemon log")
    with step("the container serves a page; the client reaches it over the tunnel"):
        token = "sc-" + os.urandom(3).hex()
        serve(caa, sid, pod, token)
        expect(token in lc.http_get(client, pod.ip, 8080, 120), "no page from the pod")
    with step("StopVM"):
        caa.ctl("stop", sid, timeout=300)
    assert_clean(cloud, step)
    expect(caa.stop() == 0, "adaptor exit status")


SCENARIOS = {
    "demo": sc_demo,
    "three-pods": sc_three_pods,
    "stop-during-start": sc_stop_during_start,
    "bad-image": sc_bad_image,
    "adaptor-sigkill": sc_adaptor_sigkill,
    "secure-comms": sc_secure_comms,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-root", required=True)
    ap.add_argument("--scenario", required=True, choices=sorted(SCENARIOS))
    args = ap.parse_args()
    reason = lc.check_machine()
    if reason:
        log("SKIP: %s" % reason)
        return lc.SKIP
    lc.enter_private_mounts()
    lc.signals_raise()
    build = lc.Build(args.build_root)
    step = Steps(log)
    t0 = time.monotonic()
    cloud = None
    ok = False
    try:
        cloud = start_cloud(step)
        SCENARIOS[args.scenario](cloud, build, step)
        ok = True
    except (lc.E2EError, AssertionError) as e:
        log("FAIL: %s" % e)
    except KeyboardInterrupt as e:
        log("FAIL: interrupted (%s)" % e)
    finally:
        if cloud:
            keep = os.environ.get("CAA_E2E_KEEP_LOGS")
            if keep:
                import demo
                demo.dump_logs(cloud, os.path.join(keep, args.scenario))
            if not ok:
                for a in cloud.adaptors:
                    log("---- daemon log (last 40 lines)\n" + a.log_tail(40))
                for f in sorted(os.listdir(cloud.console_dir)) if os.path.isdir(cloud.console_dir) else []:
                    if f.endswith("-console.log"):
                        lines = lc._read(os.path.join(cloud.console_dir, f)).splitlines()
                        log("---- %s (last 30 lines)\n%s" % (f, "\n".join(lines[-30:])))
                        errors = list(dict.fromkeys(l[25:] for l in lines if " error " in l[:40]))
                        if errors:
                            log("---- %s: distinct error lines\n%s" % (f, "\n".join(errors[:5])))
            errors = cloud.close()
            if errors:
                log("FAIL: cleanup: %s" % "; ".join(errors))
                ok = False
    log("%s: scenario %s in %.1f s" % ("PASS" if ok else "FAIL", args.scenario, time.monotonic() - t0))
    return 0 if ok else 1


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())
