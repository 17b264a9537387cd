#!/usr/bin/env python3
"""State files at start: valid ones are re-registered (StopVM then deletes
their instance), hostile ones are rejected with one log line each and left in
place, and the daemon serves."""
import json
import os

from caa_harness import Daemon, check, pod_annotations, run_main, sandbox_id, tmpdir


def valid_doc(sid, state="ready", instance_id=None, name="podvm-p-x"):
    return {
        "schema": 1, "sandbox_id": sid, "pod_name": "p", "pod_namespace": "ns", "state": state,
        "instance_name": name, "idempotency_key": "0a1b2c3d-0000-4000-8000-000000000000",
        "instance_id": instance_id, "instance_ips": ["127.0.0.1"] if instance_id else [], "vni": 0,
        "tls_dir": None, "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
    }


def write_pod(pods, name, content, mode=0o600):
    d = os.path.join(pods, name)
    os.makedirs(d, exist_ok=True)
    p = os.path.join(d, "state.json")
    with open(p, "w" if isinstance(content, str) else "wb") as f:
        f.write(content)
    os.chmod(p, mode)
    return p


def main():
    root = tmpdir()
    # A real pod: created and started, then the daemon stops (VMs are kept).
    d = Daemon(root=root).start()
    sid = sandbox_id(40)
    d.ctl_ok("create", sid, *pod_annotations())
    d.ctl_ok("start", sid)
    check(len(d.instances()) == 1, "one instance")
    check(d.stop() == 0, "exit status")

    pods = d.pods
    hostile = {}
    hostile["bad-json"] = write_pod(pods, "bad-json", "{\"schema\": 1,")
    doc = valid_doc("wrong-types")
    doc["vni"] = "zero"
    hostile["wrong-types"] = write_pod(pods, "wrong-types", json.dumps(doc))
    hostile["huge"] = write_pod(pods, "huge", "{" + " " * (70 * 1024) + "}")
    target = os.path.join(root, "elsewhere.json")
    with open(target, "w") as f:
        json.dump(valid_doc("symlinked"), f)
    os.makedirs(os.path.join(pods, "symlinked"))
    os.symlink(target, os.path.join(pods, "symlinked", "state.json"))
    hostile["symlinked"] = os.path.join(pods, "symlinked", "state.json")
    hostile["mismatch"] = write_pod(pods, "mismatch", json.dumps(valid_doc("someone-else")))
    hostile["unknown-state"] = write_pod(pods, "unknown-state", json.dumps(valid_doc("unknown-state", state="zombie")))
    hostile["schema"] = write_pod(pods, "schema", json.dumps(dict(valid_doc("schema"), schema=99)))
    hostile["binary"] = write_pod(pods, "binary", b"\x00\xff\xfe\x01" * 64)
    os.makedirs(os.path.join(pods, "bad name"))
    with open(os.path.join(pods, "stray-file"), "w") as f:
        f.write("x")

    # A pod whose create was in flight when its daemon died: the id never
    # reached the state file, but an instance with its name exists.
    sid2 = sandbox_id(41)
    write_pod(pods, sid2, json.dumps(valid_doc(sid2, state="provisioning", name="podvm-orphan-" + sid2[:8])))
    with open(os.path.join(d.state, "test-00000000000000aa.json"), "w") as f:
        json.dump({"id": "test-00000000000000aa", "name": "podvm-orphan-" + sid2[:8], "ips": []}, f)
    # A StopVM that did not finish: resumed at start.
    sid3 = sandbox_id(42)
    write_pod(pods, sid3, json.dumps(valid_doc(sid3, state="stopping", instance_id="test-00000000000000bb")))
    with open(os.path.join(d.state, "test-00000000000000bb.json"), "w") as f:
        json.dump({"id": "test-00000000000000bb", "name": "podvm-p-x", "ips": ["127.0.0.1"]}, f)
    # A pod already gone whose directory was not removed.
    sid4 = sandbox_id(43)
    write_pod(pods, sid4, json.dumps(valid_doc(sid4, state="gone")))

    d = Daemon(root=root).start()
    d.ctl_ok("version")
    log = d.log()
    for name, path in hostile.items():
        n = d.count_log(r'rejected pod directory "%s"' % name)
        check(n == 1, "expected one rejection line for %s, got %d:\n%s" % (name, n, log))
        check(os.path.lexists(path), "hostile file %s was removed" % path)
    check(d.count_log(r'rejected pod directory "bad name"') == 1, "bad dir name rejected")
    check(d.count_log(r'rejected pod directory "stray-file"') == 1, "stray file rejected")
    check(d.count_log(r"sandbox=%s recovered pod default/nginx: state ready" % sid) == 1, "real pod recovered")
    check(d.count_log(r"loaded 3 pod\(s\)") == 1, "three pods loaded:\n%s" % log)

    # The interrupted StopVM finishes by itself.
    d.wait_log(r"sandbox=%s pod stopped" % sid3)
    check(not os.path.exists(os.path.join(pods, sid3)), "resumed stop removed the pod dir")
    check(not os.path.exists(os.path.join(pods, sid4)), "gone pod's leftover dir removed")

    # StopVM of the recovered pod deletes the instance the earlier daemon made.
    d.ctl_ok("stop", sid)
    # StopVM of the pod whose instance id was never recorded finds it by name.
    d.ctl_ok("stop", sid2)
    d.wait_log(r"sandbox=%s deleted instance test-00000000000000aa \(found by name\)" % sid2)
    check(d.instances() == [], "instances left: %s" % d.instances())

    # A pod created (not started) by a daemon that kept no start request cannot
    # be started: its request is lost (test_daemon_start_after_restart.py: with one).
    sid5 = sandbox_id(44)
    d.ctl_ok("create", sid5, *pod_annotations("late"))
    check(d.stop() == 0, "exit status")
    os.unlink(os.path.join(pods, sid5, "start-request.json"))
    d = Daemon(root=root).start()
    rc, _, err = d.ctl("start", sid5)
    check(rc == 1 and "FAILED_PRECONDITION" in err and "earlier daemon" in err, "start after restart: %s" % err)
    check(d.instances() == [], "no instance for a lost request")
    d.ctl_ok("stop", sid5)

    # A pod dir whose state could not be loaded blocks reuse of its id.
    rc, _, err = d.ctl("create", "bad-json", *pod_annotations())
    check(rc == 1 and "could not be loaded" in err, "CreateVM over a rejected state file: %s" % err)
    check(d.stop() == 0, "exit status")


run_main(main)
