#!/usr/bin/python3
"""Image-pull secrets at CreateVM against the fake API server: the service account's and the pod's
secrets merged as upstream into /run/peerpod/auth.json in the user-data (2 + one request per
secret), credentials never logged; malformed base64 / JSON fail CreateVM with INVALID_ARGUMENT
naming the secret and leave nothing behind; no secrets: no file; credentials over 12288 bytes are
left out; the API server failing while the pod is read fails CreateVM with a clear error."""
import base64
import json
import os
import sys

import yaml

from caa_harness import check, pod_annotations, run_main, sandbox_id
from kube_daemon import FakeKube, KubeDaemon, kube_requests, node_seed, tmpdir

NS = "team-a"
AUTH_PATH = "/run/peerpod/auth.json"


def b64(data):
    return base64.b64encode(data if isinstance(data, bytes) else data.encode()).decode()


def secret(name, key, raw, typ="kubernetes.io/dockerconfigjson"):
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NS}, "type": typ,
            "data": {key: raw}}


def seed(pod_secrets=(), sa_secrets=(), secrets=(), sa="builder"):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": NS, "uid": "u-web"},
           "spec": {"serviceAccountName": sa, "containers": [{"name": "c", "image": "nginx"}],
                    "imagePullSecrets": [{"name": n} for n in pod_secrets]}}
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa, "namespace": NS},
               "imagePullSecrets": [{"name": n} for n in sa_secrets]}
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
    return [node_seed(), ns, pod, account, *secrets]


def user_data_files(d):
    insts = d.instances()
    check(len(insts) == 1, "instances: %s" % insts)
    doc = yaml.safe_load(d.user_data(insts[0]).decode())
    return {f["path"]: f["content"] for f in doc["write_files"]}


def run_pod(kube, sid_n=1):
    d = KubeDaemon(kube.kubeconfig(os.path.join(tmpdir(), "kc"))).start()
    d.wait_log(r"advertised")
    sid = sandbox_id(sid_n)
    kube.clear_requests()
    return d, sid


def merged_credentials():
    pw_a, pw_b = "hunter2-sa-%d" % os.getpid(), "hunter2-pod-%d" % os.getpid()
    sa_cfg = {"auths": {"reg-a.example": {"auth": b64("alice:" + pw_a)},
                        "reg-c.example": {"username": "carol", "password": pw_b},
                        "reg-empty.example": {"username": "nobody"}}}
    pod_cfg = {"reg-a.example": {"username": "bob", "password": pw_b, "email": "b@example"}}
    secrets = [secret("sa-pull", ".dockerconfigjson", b64(json.dumps(sa_cfg))),
               secret("pod-pull", ".dockercfg", b64(json.dumps(pod_cfg)), "kubernetes.io/dockercfg")]
    with FakeKube(token="t1", seed=seed(["pod-pull", "absent", "sa-pull"], ["sa-pull"], secrets)) as kube:
        d, sid = run_pod(kube)
        d.ctl_ok("create", sid, *pod_annotations("web", NS))
        reqs = kube_requests(kube)
        check(len(reqs) == 2 + 3, "requests for the pod: %d (%s)" % (len(reqs), [r["path"] for r in reqs]))
        d.ctl_ok("start", sid)
        files = user_data_files(d)
        auth = json.loads(files[AUTH_PATH])
        check(auth == {"auths": {"reg-a.example": {"auth": b64("bob:" + pw_b)},
                                 "reg-c.example": {"auth": b64("carol:" + pw_b)}}}, "auth.json: %s" % auth)
        d.ctl_ok("stop", sid)
        check(d.stop() == 0, "clean exit")
        log = d.log()
        for s in (pw_a, pw_b, b64("alice:" + pw_a), b64("bob:" + pw_b)):
            check(s not in log, "a credential is in the daemon log")
        check("absent" in log, "the missing secret is named in a warning")


def no_secrets_no_file():
    with FakeKube(token="t1", seed=seed()) as kube:
        d, sid = run_pod(kube)
        d.ctl_ok("create", sid, *pod_annotations("web", NS))
        check(len(kube_requests(kube)) == 2, "pod and account only")
        d.ctl_ok("start", sid)
        check(AUTH_PATH not in user_data_files(d), "no credentials: no auth.json")
        d.ctl_ok("stop", sid)
        check(d.stop() == 0, "clean exit")


def bad_secret(raw, what):
    with FakeKube(token="t1", seed=seed(["broken"], [], [secret("broken", ".dockerconfigjson", raw)])) as kube:
        d, sid = run_pod(kube)
        rc, out, err = d.ctl("create", sid, *pod_annotations("web", NS))
        check(rc != 0 and "INVALID_ARGUMENT" in err and "%s/broken" % NS in err and what in err,
              "CreateVM with a bad secret: rc %d, %s" % (rc, err))
        check(not os.path.exists(os.path.join(d.pods, sid)), "pod directory left behind")
        check(d.instances() == [], "instance left behind")
        # The sandbox id is free again: nothing half-registered.
        rc, _, err = d.ctl("stop", sid)
        check(rc != 0 and "does not exist" in err, "StopVM of the failed sandbox: %s" % err)
        check(d.stop() == 0, "clean exit")


def oversized_credentials():
    big = {"auths": {"reg-%04d.example" % i: {"auth": b64("user%d:%s" % (i, "x" * 40))} for i in range(300)}}
    with FakeKube(token="t1", seed=seed(["big"], [], [secret("big", ".dockerconfigjson", b64(json.dumps(big)))])) as kube:
        d, sid = run_pod(kube)
        d.ctl_ok("create", sid, *pod_annotations("web", NS))
        d.wait_log(r"auth\.json left out")
        d.ctl_ok("start", sid)
        check(AUTH_PATH not in user_data_files(d), "auth.json over 12288 bytes must be left out")
        d.ctl_ok("stop", sid)
        check(d.stop() == 0, "clean exit")


def oversized_answer():
    """A pod object over the client's 4 MiB answer cap: CreateVM fails with a clear error, nothing left."""
    objs = seed()
    objs[2]["metadata"]["annotations"] = {"huge": "x" * (5 << 20)}
    with FakeKube(token="t1", seed=objs) as kube:
        d, sid = run_pod(kube)
        rc, _, err = d.ctl("create", sid, *pod_annotations("web", NS))
        check(rc != 0 and "/pods/web" in err, "CreateVM with a 5 MiB pod: %s" % err)
        check(not os.path.exists(os.path.join(d.pods, sid)), "pod directory left behind")
        check(d.stop() == 0, "clean exit")


def api_failing_fails_create():
    with FakeKube(token="t1", seed=seed()) as kube:
        d, sid = run_pod(kube)
        kube.fault(path="/api/v1/namespaces/%s/pods/web" % NS, status=503, count=-1)
        rc, _, err = d.ctl("create", sid, *pod_annotations("web", NS))
        check(rc != 0 and "GET /api/v1/namespaces/%s/pods/web" % NS in err and "503" in err,
              "CreateVM with the API server failing: %s" % err)
        check(not os.path.exists(os.path.join(d.pods, sid)), "pod directory left behind")
        kube.clear_faults()
        d.ctl_ok("create", sid, *pod_annotations("web", NS))
        d.ctl_ok("stop", sid)
        check(d.stop() == 0, "clean exit")


def main():
    merged_credentials()
    print("ok - merged_credentials")
    no_secrets_no_file()
    print("ok - no_secrets_no_file")
    bad_secret("not*base64", "base64")
    print("ok - bad base64")
    bad_secret(b64("{not json"), "JSON")
    print("ok - bad JSON")
    bad_secret(b64(json.dumps({"auths": {"r.example": {"auth": 7}}})), "non-string")
    print("ok - bad field type")
    oversized_credentials()
    print("ok - oversized_credentials")
    api_failing_fails_create()
    print("ok - api_failing_fails_create")
    oversized_answer()
    print("ok - oversized_answer")


if __name__ == "__main__":
    run_main(main)
