#!/usr/bin/env python3
"""CreateVM / StartVM / StopVM through caa-ctl; validation errors; Version;
duplicate id; fast StopVM of unknown ids; logs carry the sandbox id and never
initdata or other secrets."""
import base64
import gzip
import json
import os
import stat
import time

from caa_harness import Daemon, FakeHealthAgent, check, pod_annotations, run_main, sandbox_id

SECRET_MARK = "initdata-secret-6b1f0c2e"
SECRET_ANNOTATION = 'algorithm = "sha256"\nversion = "0.1.0"\n\n[data]\n"aa.toml" = "# %s"\n' % SECRET_MARK
FLAG_MARK = "flag-secret-94d2"
SECRET_FLAG = base64.b64encode(gzip.compress(
    ('algorithm = "sha256"\nversion = "0.1.0"\n\n[data]\n"cdh.toml" = "# %s"\n' % FLAG_MARK).encode(),
    mtime=0)).decode()


def main():
    d = Daemon(args=["-initdata", SECRET_FLAG]).start()
    sid = sandbox_id(1)

    # Version, as upstream.
    check(d.ctl_ok("version").strip() == "0.0.0", "Version must answer 0.0.0")

    # CreateVM
    ann = pod_annotations("nginx", "default", {
        "io.katacontainers.config.hypervisor.default_vcpus": "1.5",
        "io.katacontainers.config.hypervisor.default_memory": "2048",
        "io.katacontainers.config.hypervisor.cc_init_data": SECRET_ANNOTATION,
    })
    out = d.ctl_ok("create", sid, *ann)
    expected_sock = os.path.join(d.pods, sid, "agent.ttrpc")
    check(out.strip() == expected_sock, "agent socket path %r, expected %r" % (out.strip(), expected_sock))
    pod_dir = os.path.join(d.pods, sid)
    check(stat.S_IMODE(os.stat(pod_dir).st_mode) == 0o700, "pod dir must be 0700")
    st = d.pod_state(sid)
    check(st["state"] == "created", "state after CreateVM: %s" % st["state"])
    check(st["schema"] == 1 and st["sandbox_id"] == sid, "state file header")
    check(st["pod_name"] == "nginx" and st["pod_namespace"] == "default", "pod name/namespace in state")
    check(st["instance_name"] == "podvm-nginx-" + sid[:8], "instance name %s" % st["instance_name"])
    check(len(st["idempotency_key"]) == 36, "idempotency key is a UUID")
    check(st["instance_id"] is None and st["instance_ips"] == [], "no instance yet")
    check(stat.S_IMODE(os.stat(os.path.join(pod_dir, "state.json")).st_mode) == 0o600, "state.json 0600")
    check(d.instances() == [], "CreateVM must not create an instance")

    # Duplicate id.
    rc, _, err = d.ctl("create", sid, *ann)
    check(rc == 1, "duplicate CreateVM must fail")
    check("ALREADY_EXISTS" in err and "sandbox %s already exists" % sid in err, "duplicate error: %s" % err)

    # StartVM creates one instance with the pod's size (vCPUs rounded up).
    out = d.ctl_ok("start", sid)
    check(out.strip() == "started " + sid, "start output %r" % out)
    insts = d.instances()
    check(len(insts) == 1, "one instance after StartVM, got %s" % insts)
    inst = d.instance(insts[0])
    check(inst["vcpus"] == 2 and inst["memory_mib"] == 2048, "instance size %s" % inst)
    check(inst["idempotency_key"] == st["idempotency_key"], "provider got the persisted idempotency key")
    st = d.pod_state(sid)
    check(st["state"] == "ready", "state after StartVM: %s" % st["state"])
    check(st["instance_id"] == inst["id"] and st["instance_ips"] == ["127.0.0.1"], "instance recorded")

    # StartVM twice.
    rc, _, err = d.ctl("start", sid)
    check(rc == 1 and "FAILED_PRECONDITION" in err, "second StartVM: %s" % err)

    # StopVM deletes the instance and the pod dir.
    out = d.ctl_ok("stop", sid)
    check(out.strip() == "stopped " + sid, "stop output %r" % out)
    check(d.instances() == [], "instance left after StopVM: %s" % d.instances())
    check(not os.path.exists(pod_dir), "pod dir left after StopVM")

    # StopVM again / unknown id: upstream text, fast.
    t0 = time.monotonic()
    rc, _, err = d.ctl("stop", sid)
    took = time.monotonic() - t0
    check(rc == 1 and "UNKNOWN" in err and "stopping VM: sandbox %s does not exist" % sid in err,
          "unknown StopVM: %s" % err)
    check(took < 1.0, "StopVM of an unknown id took %.2fs" % took)

    # StopVM of a pod that was never started answers fast and cleans up.
    sid2 = sandbox_id(2)
    d.ctl_ok("create", sid2, *pod_annotations("web", "prod"))
    t0 = time.monotonic()
    d.ctl_ok("stop", sid2)
    took = time.monotonic() - t0
    check(took < 1.0, "StopVM with nothing to delete took %.2fs" % took)
    check(not os.path.exists(os.path.join(d.pods, sid2)), "pod dir of never-started pod left")

    # StartVM of unknown id.
    rc, _, err = d.ctl("start", sandbox_id(99))
    check(rc == 1 and "NOT_FOUND" in err and "does not exist" in err, "unknown StartVM: %s" % err)

    # Validation errors.
    cases = [
        (["create", "", *ann], "empty sandbox id"),
        (["create", "..", *ann], "invalid sandbox id"),
        (["create", "a.b/../c", *ann], "not allowed"),
        (["create", "x" * 129, *ann], "longer than 128"),
        (["create", sandbox_id(3), "-a", "io.kubernetes.cri.sandbox-namespace=ns"],
         "pod name io.kubernetes.cri.sandbox-name is missing in annotations"),
        (["create", sandbox_id(3), "-a", "io.kubernetes.cri.sandbox-name=p"],
         "namespace name io.kubernetes.cri.sandbox-namespace is missing in annotations"),
        (["create", sandbox_id(3), *pod_annotations("p", "n", {
            "io.katacontainers.config.hypervisor.default_memory": "lots"})], "default_memory"),
        (["create", sandbox_id(3), *pod_annotations("p", "n", {
            "io.katacontainers.config.hypervisor.default_vcpus": "-1"})], "default_vcpus"),
        (["stop", "../etc"], "invalid sandbox id"),
    ]
    for args, needle in cases:
        rc, _, err = d.ctl(*args)
        check(rc == 1 and "INVALID_ARGUMENT" in err and needle in err,
              "caa-ctl %s: expected INVALID_ARGUMENT with %r, got rc %d: %s" % (args[:2], needle, rc, err))
    check(not os.path.exists(os.path.join(d.pods, sandbox_id(3))), "failed CreateVM left a pod dir")

    # CRI-O sandbox name form.
    sid4 = sandbox_id(4)
    d.ctl_ok("create", sid4, "-a", "io.kubernetes.cri.sandbox-name=k8s_busybox_team-a_uid-1_0",
             "-a", "io.kubernetes.cri.sandbox-namespace=team-a")
    st = d.pod_state(sid4)
    check(st["pod_name"] == "busybox" and st["instance_name"] == "podvm-busybox-" + sid4[:8], "CRI-O name: %s" % st)
    d.ctl_ok("stop", sid4)

    # check: grpc.Health/Check on a pod's agent socket (a stand-in agent here).
    sid5 = sandbox_id(5)
    agent_sock = d.ctl_ok("create", sid5, *pod_annotations("h", "n")).strip()
    agent = FakeHealthAgent(agent_sock, status=1)
    check(d.ctl_ok("check", sid5).strip() == "SERVING", "check by sandbox id")
    check(agent.requests == [("grpc.Health", "Check")], "agent saw %s" % agent.requests)
    agent.close()
    other = FakeHealthAgent(os.path.join(d.root, "agent2.sock"), status=2)
    check(d.ctl_ok("check", "-agent-socket", other.path).strip() == "NOT_SERVING", "check by path")
    other.close()
    rc, _, err = d.ctl("check", sid5)
    check(rc == 1 and "cannot connect" in err, "check without an agent: %s" % err)
    d.ctl_ok("stop", sid5)

    # Usage errors exit 2.
    rc, _, _ = d.ctl("frobnicate")
    check(rc == 2, "unknown command must exit 2")
    rc, _, _ = d.ctl("start")
    check(rc == 2, "start without id must exit 2")

    rc = d.stop()
    check(rc == 0, "daemon exit status %d" % rc)
    log = d.log()
    check(SECRET_MARK not in log, "initdata annotation content appears in the log")
    check(SECRET_FLAG not in log and FLAG_MARK not in log, "-initdata value appears in the log")
    check("initdata=********" in log, "effective configuration must show -initdata masked")
    pod_lines = [l for l in log.splitlines() if "CreateVM" in l or "StartVM" in l or "StopVM" in l or "state " in l]
    check(pod_lines, "no pod lines in the log")
    for l in pod_lines:
        check("sandbox=" in l, "pod log line without sandbox id: %s" % l)
    check(any("sandbox=%s" % sid in l for l in pod_lines), "no line carries sandbox=%s" % sid)
    check(d.count_log(r"state created -> provisioning") == 1, "one provisioning transition logged")

    # JSON log lines (LOG_FORMAT env), one object per line with the sandbox id.
    j = Daemon(env={"LOG_FORMAT": "json"}).start()
    sid6 = sandbox_id(6)
    j.ctl_ok("create", sid6, *pod_annotations())
    j.ctl_ok("stop", sid6)
    check(j.stop() == 0, "exit status (json)")
    events = [json.loads(l) for l in j.log().splitlines()]
    check(all({"time", "level", "component", "msg"} <= set(e) for e in events), "JSON log fields")
    check(any(e.get("sandbox_id") == sid6 and "CreateVM" in e["msg"] for e in events), "JSON pod line")


run_main(main)
