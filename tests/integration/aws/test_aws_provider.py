#!/usr/bin/env python3
"""The AWS provider through its ops table (aws-provider-driver) against the
fake EC2/STS/IMDS endpoint, which checks every signature with the official
signer: create (default, idempotent, public IP, launch template, CVM off,
sizes, per-pod AMI), delete (with Elastic IPs), list, get, capacity
fallback, throttling storms (counted, and an EC2-style token bucket),
credentials (web identity refresh, instance role over IMDSv2), hostile answers, failures after RunInstances (the
instance is terminated, or handed back when that fails too), teardown in
flight, and secrets kept out of logs. After every test no instance may be
left running unless the test hands it back on purpose."""
import base64
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aws_harness import (AMI, AMI2, NODE, SG1, SG2, STATIC_SK, SUBNET, Driver, Fake, Skip, Tap,  # noqa: E402
                         base_args, base_env, check, tmpdir)

fake = None


def only(lst, msg="exactly one"):
    check(len(lst) == 1, "%s expected, got %s" % (msg, lst))
    return lst[0]


def no_leftovers():
    alive = fake.alive()
    check(alive == [], "instances left running: %s" % [(i["id"], i["state"]) for i in alive])


def signatures_ok():
    st = fake.state()
    check(st["sig_failures"] == 0, "the fake refused %d signatures" % st["sig_failures"])


# ---- create / delete / list / get ----

def t_create_default():
    d = Driver(fake, base_args(**{"-tags": "team=caa,cost center=42"}))
    r = d.cmd("create podvm-nginx-1234abcd 1234abcd5678ef90 key=3b1f0c9e-0d55-4d6b-9b0e-1c7f0e6f8a10 "
              "userdata=#cloud-config")
    check(r["status"] == 0, "create: %s" % r)
    inst = only(fake.alive())
    check(r["instance"]["id"] == inst["id"] and r["instance"]["name"] == "podvm-nginx-1234abcd", "result %s" % r)
    check(r["instance"]["ips"] == [inst["private_ip"]], "ips %s, fake %s" % (r["instance"]["ips"], inst))
    check(inst["type"] == "m6a.large" and inst["image"] == AMI, "type/image %s" % inst)
    check(inst["subnet"] == SUBNET and inst["sgs"] == [SG1, SG2] and inst["key_name"] == "caa-key", "net %s" % inst)
    check(inst["sev_snp"] == "enabled", "SEV-SNP must be on by default")
    check(inst["root_volume"] == ["/dev/xvda", 30], "root volume %s" % inst["root_volume"])
    check(base64.b64decode(inst["user_data"]) == b"#cloud-config", "user data %s" % inst["user_data"])
    check(inst["client_token"] == "3b1f0c9e-0d55-4d6b-9b0e-1c7f0e6f8a10", "client token %s" % inst["client_token"])
    tags = inst["tags"]
    check(tags == {"Name": "podvm-nginx-1234abcd", "team": "caa", "cost center": "42", "caa.node": NODE,
                   "caa.sandbox-id": "1234abcd5678ef90"}, "tags %s" % tags)
    st = fake.state()
    check(st["counts"].get("DescribeImages") == 1 and st["counts"].get("DescribeInstanceTypes") == 1,
          "startup calls %s" % st["counts"])
    # get and delete
    g = d.cmd("get " + inst["id"])
    check(g["status"] == 0 and g["instance"]["ips"] == [inst["private_ip"]], "get %s" % g)
    x = d.cmd("delete " + inst["id"])
    check(x["status"] == 0, "delete %s" % x)
    no_leftovers()
    check(d.cmd("delete " + inst["id"])["status"] == 0, "second delete must succeed")
    check(d.cmd("delete i-0000000000000000f")["status"] == 0, "deleting an unknown id is success")
    bad = d.cmd("delete not-an-id")
    check(bad["status"] == -22 and bad.get("sync"), "malformed id: %s" % bad)
    time.sleep(0.3)
    g = d.cmd("get " + inst["id"])
    check(g["status"] == -2, "get of a terminated instance: %s" % g)
    g = d.cmd("get i-0000000000000000f")
    check(g["status"] == -2, "get of an unknown instance: %s" % g)
    check(d.close() == 0, "driver exit")
    signatures_ok()


def t_idempotent_create():
    d = Driver(fake)
    a = d.cmd("create podvm-a-11111111 1111111111111111 key=same-key-1")
    b = d.cmd("create podvm-a-11111111 1111111111111111 key=same-key-1")
    check(a["status"] == 0 and b["status"] == 0, "%s %s" % (a, b))
    check(a["instance"]["id"] == b["instance"]["id"], "a retried create made a second instance")
    check(len(fake.instances()) == 1, "fake has %d instances" % len(fake.instances()))
    c = d.cmd("create podvm-b-22222222 2222222222222222")  # no key: derived from sandbox id + name
    c2 = d.cmd("create podvm-b-22222222 2222222222222222")
    check(c["instance"]["id"] == c2["instance"]["id"], "without a key, the token must still be stable")
    d.cmd("delete " + a["instance"]["id"])
    d.cmd("delete " + c["instance"]["id"])
    check(d.close() == 0, "driver exit")
    no_leftovers()


def t_list_owned_only():
    other = Driver(fake, base_args(**{"-aws-node-name": "other-node"}))
    o = other.cmd("create podvm-o-33333333 3333333333333333")
    check(o["status"] == 0, "other node create %s" % o)
    other.close()
    fake.config(list_page_size=2)
    d = Driver(fake)
    ids = []
    for i in range(5):
        r = d.cmd("create podvm-l%d-44444444 44444444444444%02d" % (i, i))
        check(r["status"] == 0, "create %s" % r)
        ids.append(r["instance"]["id"])
    d.cmd("delete " + ids[4])
    lst = d.cmd("list")
    check(lst["status"] == 0, "list %s" % lst)
    got = sorted(i["id"] for i in lst["instances"])
    check(got == sorted(ids[:4]), "listed %s, expected %s" % (got, sorted(ids[:4])))
    names = sorted(i["name"] for i in lst["instances"])
    check(names == ["podvm-l%d-44444444" % i for i in range(4)], "names %s" % names)
    check(all(i["ips"] for i in lst["instances"]), "listed instances carry their IPs")
    check(fake.state()["counts"]["DescribeInstances"] >= 2, "paging must have been used")
    for i in ids[:4] + [o["instance"]["id"]]:
        d.cmd("delete " + i)
    check(d.close() == 0, "driver exit")
    no_leftovers()


def t_public_ip():
    fake.config(pending_ms=700)
    d = Driver(fake, base_args(**{"-use-public-ip": True}))
    t0 = time.monotonic()
    r = d.cmd("create podvm-p-55555555 5555555555555555")
    check(r["status"] == 0, "create %s" % r)
    check(time.monotonic() - t0 >= 0.6, "must wait for running")
    inst = only(fake.alive())
    check(r["instance"]["ips"] == [inst["public_ip"], inst["private_ip"]], "ips %s vs %s" % (r["instance"], inst))
    check(inst["public_ip"].startswith("203.0.113."), "public ip %s" % inst["public_ip"])
    check(inst["subnet"] == SUBNET and inst["sgs"] == [SG1, SG2], "NIC subnet/groups %s" % inst)
    check(fake.state()["counts"]["DescribeInstances"] >= 2, "polled with DescribeInstances")
    lst = d.cmd("list")
    check(lst["instances"][0]["ips"][0] == inst["public_ip"], "list gives the public IP first")
    d.cmd("delete " + inst["id"])
    check(d.close() == 0, "driver exit")
    no_leftovers()


def t_launch_template():
    d = Driver(fake, base_args(**{"-use-lt": True, "-imageid": None, "-root-volume-size": "0"}))
    r = d.cmd("create podvm-t-66666666 6666666666666666")
    check(r["status"] == 0, "create %s" % r)
    inst = only(fake.alive())
    check(inst["launch_template"] == "kata" and inst["image"] == AMI, "LT instance %s" % inst)
    check(inst["subnet"] is None and inst["sgs"] == [] and inst["key_name"] is None, "LT sets the network: %s" % inst)
    check(inst["sev_snp"] is None, "no CPU options in LT mode")
    check("DescribeInstanceTypes" not in fake.state()["counts"], "no instance types in LT mode")
    d.cmd("delete " + inst["id"])
    d.close()
    fake.reset()
    d = Driver(fake, base_args(**{"-use-lt": True, "-aws-lt-name": "missing"}))
    r = d.cmd("create podvm-t-77777777 7777777777777777")
    check(r["status"] == -2 and "InvalidLaunchTemplateName.NotFoundException" in r["error"], "missing LT: %s" % r)
    d.close()
    no_leftovers()


def t_cvm_and_sizes():
    d = Driver(fake, base_args(**{"-disable-cvm": True, "-instance-types":
                                  "m6a.large,m6a.xlarge,c6a.xlarge,g5.xlarge,t3.small"}))
    r = d.cmd("create podvm-s1-88888888 8888888888888881 vcpus=4 memory=16384")
    check(r["status"] == 0, "create %s" % r)
    i1 = [i for i in fake.alive() if i["id"] == r["instance"]["id"]][0]
    check(i1["type"] == "m6a.xlarge" and i1["sev_snp"] is None, "sized %s" % i1)
    r = d.cmd("create podvm-s2-88888888 8888888888888882 gpus=1")
    check(r["status"] == 0, "gpu create %s" % r)
    check([i for i in fake.alive() if i["id"] == r["instance"]["id"]][0]["type"] == "g5.xlarge", "gpu type")
    r = d.cmd("create podvm-s3-88888888 8888888888888883 vcpus=3 memory=4096")
    check([i for i in fake.alive() if i["id"] == r["instance"]["id"]][0]["type"] == "c6a.xlarge", "smallest fit")
    r = d.cmd("create podvm-s4-88888888 8888888888888884 type=m6a.2xlarge")
    check(r["status"] == -22 and r.get("sync") and "is not part of supported instance types list" in r["error"],
          "type outside the list: %s" % r)
    r = d.cmd("create podvm-s5-88888888 8888888888888885 vcpus=64 memory=1000")
    check(r["status"] == -22 and "no instance type found for the given vcpus (64) and memory (1000)" in r["error"],
          "no fit: %s" % r)
    for i in fake.alive():
        d.cmd("delete " + i["id"])
    d.close()
    # SEV-SNP on a type without it: EC2's error, with its code, and nothing left.
    fake.reset()
    d = Driver(fake, base_args(**{"-instance-type": "t3.small"}))
    r = d.cmd("create podvm-s6-88888888 8888888888888886")
    check(r["status"] < 0 and "UnsupportedOperation" in r["error"], "SNP on t3: %s" % r)
    d.close()
    no_leftovers()


def t_image_per_pod_and_root_volume():
    d = Driver(fake, base_args(**{"-root-volume-size": "20"}))
    r = d.cmd("create podvm-i-99999999 9999999999999999 image=" + AMI2)
    check(r["status"] == 0, "create %s" % r)
    inst = only(fake.alive())
    check(inst["image"] == AMI2, "per-pod AMI %s" % inst["image"])
    check(inst["root_volume"] == ["/dev/sda1", 40], "raised to the AMI's 40 GiB on its root device: %s" %
          inst["root_volume"])
    r = d.cmd("create podvm-j-99999999 9999999999999998 image=ami-0000000000000dead")
    check(r["status"] == -2 and "InvalidAMIID.NotFound" in r["error"], "unknown AMI: %s" % r)
    r = d.cmd("create podvm-k-99999999 9999999999999997 image=not-an-ami")
    check(r["status"] == -22 and r.get("sync"), "malformed AMI: %s" % r)
    d.cmd("delete " + inst["id"])
    d.close()
    no_leftovers()


def t_elastic_ips_released():
    d = Driver(fake)
    r = d.cmd("create podvm-e-aaaaaaaa aaaaaaaaaaaaaaaa")
    iid = r["instance"]["id"]
    fake.add_address(public_ip="198.51.100.7", allocation_id="eipalloc-0aaaaaaaaaaaaaaa1",
                     association_id="eipassoc-0aaaaaaaaaaaaaaa1", instance_id=iid)
    fake.add_address(public_ip="198.51.100.8", allocation_id="eipalloc-0aaaaaaaaaaaaaaa2", instance_id="i-0other")
    x = d.cmd("delete " + iid)
    check(x["status"] == 0, "delete %s" % x)
    st = fake.state()
    check([a["allocationId"] for a in st["addresses"]] == ["eipalloc-0aaaaaaaaaaaaaaa2"],
          "only the instance's address is released: %s" % st["addresses"])
    check(st["counts"].get("DisassociateAddress") == 1 and st["counts"].get("ReleaseAddress") == 1, "calls")
    d.close()
    no_leftovers()


def t_validate_spec():
    d = Driver(fake)
    r = d.cmd("create podvm-u-bbbbbbbb bbbbbbbbbbbbbbbb userdata_size=16385")
    check(r["status"] == -22 and r.get("sync") and "16384" in r["error"], "user data limit: %s" % r)
    r = d.cmd("create podvm-u-bbbbbbbb bbbbbbbbbbbbbbbb userdata_size=16384")
    check(r["status"] == 0, "16 KiB exactly is fine: %s" % r)
    r2 = d.cmd("create podvm-v-bbbbbbbb bbbbbbbbbbbbbbbc tag=aws:x=1")
    check(r2["status"] == -22 and r2.get("sync"), "aws: tags refused: %s" % r2)
    d.cmd("delete " + r["instance"]["id"])
    d.close()
    no_leftovers()


# ---- capacity, throttling, limits ----

def t_capacity_fallback():
    fake.config(capacity=["m6a.large", "c6a.xlarge"])
    d = Driver(fake, base_args(**{"-instance-types": "m6a.large,c6a.xlarge,r6a.large,m6a.xlarge"}))
    r = d.cmd("create podvm-c-cccccccc cccccccccccccccc key=cap-key")
    check(r["status"] == 0, "create with fallback %s" % r)
    inst = only(fake.alive())
    # m6a.large and c6a.xlarge have no capacity; the next type at least as
    # big as the default (2 vCPUs, 8 GiB) in (memory, vCPUs) order is r6a.large.
    check(inst["type"] == "r6a.large", "fell back to %s" % inst["type"])
    check(inst["client_token"] not in ("cap-key", None), "a fallback uses its own client token")
    st = fake.state()
    check(st["counts"]["RunInstances"] == 3 and st["errors"].get("InsufficientInstanceCapacity") == 2, "%s" % st)
    r = d.cmd("create podvm-d-cccccccc cccccccccccccccd type=c6a.xlarge")
    check(r["status"] == -28 and "InsufficientInstanceCapacity" in r["error"], "explicit type, no fallback: %s" % r)
    check(fake.state()["counts"]["RunInstances"] == 4, "a capacity error is not retried")
    d.cmd("delete " + inst["id"])
    d.close()
    no_leftovers()


def t_throttling_storm():
    fake.config(throttle_all=6)
    d = Driver(fake, env=base_env(fake, AWS_MAX_ATTEMPTS="10"))
    r = d.cmd("create-many 4")
    check(r["ok"] == 4, "creates through a throttling storm: %s" % r)
    st = fake.state()
    check(st["errors"].get("RequestLimitExceeded", 0) == 6, "storm %s" % st["errors"])
    check(len(fake.alive()) == 4, "exactly one instance per pod despite retries: %d" % len(fake.alive()))
    for i in r["ids"]:
        d.cmd("delete " + i)
    d.close()
    fake.reset(throttle={"RunInstances": 100})
    d = Driver(fake, env=base_env(fake, AWS_MAX_ATTEMPTS="3"))
    r = d.cmd("create podvm-t-dddddddd dddddddddddddddd")
    check(r["status"] == -11 and "RequestLimitExceeded" in r["error"] and "after retries" in r["error"],
          "throttled for good: %s" % r)
    check(fake.state()["counts"]["RunInstances"] == 3, "3 attempts")
    d.close()
    no_leftovers()


def t_token_bucket_storm():
    # EC2's throttling is a token bucket: 3 RunInstances at once, then 10 per second. 12 pods
    # at once: 9 wait for refills, retried with backoff until they fit, one instance each.
    fake.config(rate_limit={"RunInstances": {"bucket": 3, "refill_per_s": 10}})
    d = Driver(fake, env=base_env(fake, AWS_MAX_ATTEMPTS="10"))
    r = d.cmd("create-many 12")
    check(r["ok"] == 12, "creates through the token bucket: %s" % r)
    st = fake.state()
    check(st["errors"].get("RequestLimitExceeded", 0) > 0, "the bucket throttled: %s" % st["errors"])
    check(st["counts"]["RunInstances"] == 12 + st["errors"]["RequestLimitExceeded"], "%s" % st["counts"])
    check(len(fake.alive()) == 12, "exactly one instance per pod: %d" % len(fake.alive()))
    # 9 past the bucket at 10/s take at least 0.9 s.
    check(r["ms"] >= 800, "the refill rate bounds the storm (%s ms)" % r["ms"])
    for i in r["ids"]:
        d.cmd("delete " + i)
    d.close()
    no_leftovers()


def t_concurrency_cap():
    fake.config(latency_ms=150)
    d = Driver(fake, base_args(**{"-aws-max-concurrent-requests": "4"}))
    r = d.cmd("create-many 16")
    check(r["ok"] == 16, "creates %s" % r)
    mx = fake.state()["max_in_flight"]
    check(mx <= 4, "at most 4 requests in flight, saw %d" % mx)
    check(r["ms"] >= 4 * 150 * 0.9, "the queue must have been used (%s ms)" % r["ms"])
    for i in r["ids"]:
        d.cmd("delete " + i)
    d.close()
    no_leftovers()


# ---- failures after RunInstances ----

def t_cleanup_after_failure():
    # No running state within the wait: the instance is terminated again.
    fake.config(pending_ms=60000)
    d = Driver(fake, base_args(**{"-use-public-ip": True, "-aws-running-wait": "1s"}))
    r = d.cmd("create podvm-f-eeeeeeee eeeeeeeeeeeeeeee")
    check(r["status"] == -110 and "not running with a public address" in r["error"], "timeout %s" % r)
    check("instance" not in r, "terminated, so nothing handed back: %s" % r)
    no_leftovers()
    # ... and when terminating fails too, the instance is handed back.
    fake.config(fail={"TerminateInstances": {"code": "UnauthorizedOperation", "status": 403, "count": 1}})
    r = d.cmd("create podvm-g-eeeeeeee eeeeeeeeeeeeeeef")
    check(r["status"] == -110 and "terminating it failed too" in r["error"] and "UnauthorizedOperation" in r["error"],
          "cleanup failure %s" % r)
    left = only(fake.alive())
    check(r.get("instance", {}).get("id") == left["id"], "partial instance handed back: %s" % r)
    d.close()
    fake.reset(no_private_ip=True)
    d = Driver(fake)
    r = d.cmd("create podvm-h-eeeeeeee eeeeeeeeeeeeeee0")
    check(r["status"] == -71 and "private IP" in r["error"], "no private IP %s" % r)
    d.close()
    no_leftovers()


def enis():
    return fake.state()["enis"]


def wait_terminated(timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end and any(i["state"] != "terminated" for i in fake.instances()):
        time.sleep(0.05)


def t_multi_nic():
    """external-net-via-pod-vm (upstream's MultiNic, createAddonNICforInstance): once the
    instance runs, an ENI on the node's subnet and security groups, tagged Name=nic-<id>,
    attached at device index 1 and deleted with the instance."""
    d = Driver(fake, base_args())
    r = d.cmd("create podvm-m-66666666 6666666666666666 multi_nic=1")
    check(r["status"] == 0, "create %s" % r)
    inst = only(fake.alive())
    check(r["instance"]["ips"] == [inst["private_ip"]], "ips: the primary interface only: %s" % r)
    eni = only(enis(), "one ENI")
    check(eni["subnet"] == SUBNET and eni["sgs"] == [SG1, SG2], "ENI subnet/groups %s" % eni)
    # Tagged in the CreateNetworkInterface call itself: no untagged window for the orphan sweep.
    check(eni["tags"] == [["Name", "nic-" + inst["id"]], ["caa.node", NODE], ["caa.sandbox-id", "6666666666666666"],
                          ["caa.instance-name", "podvm-m-66666666"], ["caa.instance-id", inst["id"]]],
          "ENI tags %s" % eni["tags"])
    att = eni["attachment"] or {}
    check(att.get("instanceId") == inst["id"] and att.get("deviceIndex") == 1 and att.get("deleteOnTermination") is True,
          "attachment %s" % att)
    counts = fake.state()["counts"]
    check(all(counts.get(a) == 1 for a in ("CreateNetworkInterface", "AttachNetworkInterface",
                                           "ModifyNetworkInterfaceAttribute")), "calls %s" % counts)
    check(d.cmd("delete " + inst["id"])["status"] == 0, "delete")
    wait_terminated()
    check(enis() == [], "the ENI goes with the instance: %s" % enis())
    # Without multi_nic: no ENI call at all.
    r = d.cmd("create podvm-n-66666666 6666666666666667")
    check(r["status"] == 0, "single NIC %s" % r)
    check(fake.state()["counts"]["CreateNetworkInterface"] == 1 and enis() == [], "no second ENI without multi_nic")
    d.cmd("delete " + r["instance"]["id"])
    wait_terminated()
    # The attach fails: the ENI is deleted, the instance terminated, the error says why.
    fake.config(fail={"AttachNetworkInterface": {"code": "AttachmentLimitExceeded", "status": 400, "count": 1}})
    r = d.cmd("create podvm-o-66666666 6666666666666668 multi_nic=1")
    check(r["status"] < 0 and "attaching ENI eni-" in r["error"] and "AttachmentLimitExceeded" in r["error"],
          "attach failure %s" % r)
    check(enis() == [], "ENI deleted after a failed attach: %s" % enis())
    no_leftovers()
    # DeleteOnTermination cannot be set: the instance is terminated, the ENI named.
    fake.config(fail={"ModifyNetworkInterfaceAttribute": {"code": "UnauthorizedOperation", "status": 403, "count": 1}})
    r = d.cmd("create podvm-q-66666666 6666666666666669 multi_nic=1")
    check(r["status"] < 0 and "may be left over" in r["error"], "modify failure %s" % r)
    no_leftovers()
    check(d.close() == 0, "driver exit")

    # With -use-public-ip the second ENI gets an Elastic IP (upstream's createElasticIPforInstance),
    # which the delete releases with the instance's other addresses.
    fake.reset()
    d = Driver(fake, base_args(**{"-use-public-ip": True}))
    r = d.cmd("create podvm-r-66666666 666666666666666a multi_nic=1")
    check(r["status"] == 0, "create %s" % r)
    inst = only(fake.alive())
    check(r["instance"]["ips"] == [inst["public_ip"], inst["private_ip"]], "ips of the primary interface %s" % r)
    eni = only(enis(), "one ENI")
    eip = only(fake.state()["addresses"], "one Elastic IP")
    check(eip["networkInterfaceId"] == eni["id"] and eip["instanceId"] == inst["id"] and eip["associationId"],
          "Elastic IP on the ENI %s" % eip)
    check(eip["tags"] == [["Name", "eip-" + inst["id"]], ["caa.node", NODE], ["caa.sandbox-id", "666666666666666a"],
                          ["caa.instance-name", "podvm-r-66666666"], ["caa.instance-id", inst["id"]]],
          "Elastic IP tags %s" % eip["tags"])
    check(d.cmd("delete " + inst["id"])["status"] == 0, "delete")
    check(fake.state()["addresses"] == [], "Elastic IP released: %s" % fake.state()["addresses"])
    wait_terminated()
    check(enis() == [], "ENI gone: %s" % enis())
    # The association fails: the address is released again, the instance terminated.
    fake.config(fail={"AssociateAddress": {"code": "InvalidParameterValue", "status": 400, "count": 1}})
    r = d.cmd("create podvm-s-66666666 666666666666666b multi_nic=1")
    check(r["status"] < 0 and "associating Elastic IP eipalloc-" in r["error"], "associate failure %s" % r)
    check(fake.state()["addresses"] == [], "no Elastic IP left: %s" % fake.state()["addresses"])
    no_leftovers()
    check(d.close() == 0, "driver exit")


def t_hostile_answers():
    env = base_env(fake, AWS_MAX_ATTEMPTS="2", AWS_REQUEST_TIMEOUT="1s")
    d = Driver(fake, env=env)
    cases = [
        ("truncated", -71, "malformed DescribeInstances"),
        ("html", -71, "content type text/html"),
        ("json", -71, "content type application/json"),
        ("huge", -90, "larger than the limit of 16777216 bytes"),
        ("slow", -110, "no complete answer within 1000 ms"),
        ("silence", -110, "no complete answer"),
        ("reset", -104, "DescribeInstances"),
        ("500", -5, "HTTP 500"),
    ]
    for mode, code, text in cases:
        fake.config(hostile={"DescribeInstances": {"mode": mode, "count": 5}})
        t0 = time.monotonic()
        r = d.cmd("get i-0123456789abcdef0", timeout=30)
        took = time.monotonic() - t0
        check(r["status"] == code and text in r["error"], "%s: %s" % (mode, r))
        check(took < 6, "%s took %.1fs" % (mode, took))
        fake.config(hostile={"DescribeInstances": {"mode": mode, "count": 0}})
    # Hostile answer to the poll after RunInstances: the instance is cleaned up.
    d.close()
    fake.reset(pending_ms=200)
    d = Driver(fake, base_args(**{"-use-public-ip": True}), env=env)
    fake.config(hostile={"DescribeInstances": {"mode": "truncated", "count": 1}})
    r = d.cmd("create podvm-x-ffffffff ffffffffffffffff")
    check(r["status"] == -71, "hostile poll answer: %s" % r)
    no_leftovers()
    # ... and a huge RunInstances answer: refused, nothing was created.
    fake.config(hostile={"RunInstances": {"mode": "huge", "count": 2}})
    r = d.cmd("create podvm-y-ffffffff fffffffffffffff0")
    check(r["status"] == -90, "huge RunInstances answer: %s" % r)
    d.close()
    no_leftovers()


# ---- credentials ----

def t_bad_signature():
    d = Driver(fake, base_args(**{"-aws-secret-key": "wrong-secret"}))
    r = d.cmd("get i-0123456789abcdef0")
    check(r["status"] == -13 and "SignatureDoesNotMatch" in r["error"], "bad secret: %s" % r)
    check(fake.state()["sig_failures"] >= 1, "the fake saw the bad signature")
    d.close()
    fake.reset()
    d = Driver(fake, base_args(**{"-aws-access-key-id": "AKIDUNKNOWN"}))
    r = d.cmd("get i-0123456789abcdef0")
    check(r["status"] == -13 and "AuthFailure" in r["error"], "unknown key: %s" % r)
    d.close()
    fake.reset()


def t_web_identity_refresh():
    token_file = os.path.join(tmpdir(), "token")
    with open(token_file, "w") as f:
        f.write(fake_token() + "\n")
    fake.config(sts_lifetime_s=4)
    env = base_env(fake, AWS_ROLE_ARN="arn:aws:iam::123456789012:role/caa-test", AWS_WEB_IDENTITY_TOKEN_FILE=token_file,
                   CAA_LOG_LEVEL="debug")
    args = base_args(**{"-aws-access-key-id": None, "-aws-secret-key": None})
    d = Driver(fake, args, env=env)
    ids = []
    t_end = time.monotonic() + 9
    while time.monotonic() < t_end:
        r = d.cmd("create-many 5")
        check(r["ok"] == 5, "creates with web identity credentials: %s" % r)
        ids += r["ids"]
        time.sleep(0.7)
    st = fake.state()
    check(st["sts_issued"] >= 3, "4 s credentials over 9 s must be refreshed (issued %d)" % st["sts_issued"])
    check(st["sts_issued"] <= 12, "no thundering herd: %d STS calls" % st["sts_issued"])
    check("ExpiredToken" not in st["errors"], "no call may go out with expired credentials: %s" % st["errors"])
    for i in ids:
        d.cmd("delete " + i)
    d.close()
    log = d.stderr()
    check("credentials refreshed" in log, "refresh logged at debug level")
    no_leftovers()
    # A token STS refuses: a clear error, nothing created.
    with open(token_file, "w") as f:
        f.write("not-the-token")
    fake.reset()
    d = Driver(fake, args, env=env)
    r = d.cmd("create podvm-w-11111111 1111111111111112")
    check(r["status"] == -13 and "InvalidIdentityToken" in r["error"], "bad web identity token: %s" % r)
    d.close()
    no_leftovers()
    # A FIFO as the token file: refused at once (the read never blocks the loop), nothing created.
    os.unlink(token_file)
    os.mkfifo(token_file, 0o600)
    fake.reset()
    d = Driver(fake, args, env=env)
    r = d.cmd("create podvm-w-11111111 1111111111111113")
    check(r["status"] < 0 and "not a regular file" in r["error"], "FIFO as the web identity token file: %s" % r)
    d.close()
    no_leftovers()


def fake_token():
    return "fake-web-identity-token"


def t_imds_everything():
    """No region, network, key or credentials given: all from IMDSv2."""
    fake.config(imds={"region": "us-east-1", "subnet": "subnet-0a1b2c3d4e5f60718", "key": "node-key"})
    args = base_args(**{"-aws-region": None, "-subnetid": None, "-securitygroupids": None, "-keyname": None,
                        "-aws-access-key-id": None, "-aws-secret-key": None})
    d = Driver(fake, args)
    r = d.cmd("create podvm-m-22222222 2222222222222223")
    check(r["status"] == 0, "create with IMDS settings: %s" % r)
    inst = only(fake.alive())
    check(inst["subnet"] == "subnet-0a1b2c3d4e5f60718" and inst["sgs"] == ["sg-0aaaaaaaaaaaaaaa1", "sg-0bbbbbbbbbbbbbbb2"],
          "network from IMDS: %s" % inst)
    check(inst["key_name"] == "node-key", "key from IMDS: %s" % inst["key_name"])
    st = fake.state()
    check(st["imds_creds_issued"] >= 1, "instance role credentials used")
    check(st["imds_tokens"] >= 1, "IMDSv2 session token used")
    d.cmd("delete " + inst["id"])
    d.close()
    no_leftovers()
    # Short-lived instance-role credentials and a revoked IMDS session token:
    # the refresh meets a 401, takes a new token and carries on.
    fake.reset(imds={"creds_lifetime_s": 3})
    d = Driver(fake, args)
    r = d.cmd("create podvm-n-22222222 2222222222222224")
    check(r["status"] == 0, "first create: %s" % r)
    fake.imds_revoke()
    time.sleep(2.8)
    r2 = d.cmd("create podvm-o-22222222 2222222222222225")
    check(r2["status"] == 0, "create after the token was revoked: %s" % r2)
    st = fake.state()
    check(st["imds_unauthorized"] >= 1 and st["imds_tokens_issued"] >= 2, "401 then a new token: %s" % st)
    check(st["imds_creds_issued"] >= 2, "credentials refreshed from IMDS: %d" % st["imds_creds_issued"])
    check("ExpiredToken" not in st["errors"], "no expired credentials used: %s" % st["errors"])
    d.cmd("delete " + r["instance"]["id"])
    d.cmd("delete " + r2["instance"]["id"])
    d.close()
    no_leftovers()
    # IMDS off and no region: init fails clearly.
    env = base_env(fake, AWS_EC2_METADATA_DISABLED="true")
    d = Driver(fake, base_args(**{"-aws-region": None}), env=env, expect_ready=False)
    check("no AWS region" in d.first.get("init_error", ""), "init without region: %s" % d.first)
    check(d.proc.wait(10) == 2, "driver exit 2 on init failure")


def t_endpoint_policy():
    env = base_env(fake, AWS_ENDPOINT_URL_EC2="http://ec2.example.com/")
    d = Driver(fake, env=env, expect_ready=False)
    check("plain http" in d.first.get("init_error", ""), "plain http to a remote host: %s" % d.first)
    d.proc.wait(10)


def t_verify_config():
    d = Driver(fake, base_args(**{"-imageid": "ami-0000000000000dead"}))
    r = d.cmd("verify")
    check(r["status"] == -2 and "InvalidAMIID.NotFound" in r["error"], "verify with a missing AMI: %s" % r)
    d.close()
    d = Driver(fake, base_args(**{"-instance-types": "m6a.large,no.such"}))
    r = d.cmd("verify")
    check(r["status"] < 0 and "InvalidInstanceType" in r["error"], "verify with a bad type: %s" % r)
    d.close()
    d = Driver(fake)
    check(d.cmd("verify")["status"] == 0, "verify ok")
    d.close()


def t_teardown_in_flight():
    fake.config(latency_ms=400)
    d = Driver(fake)
    check(d.cmd("verify")["status"] == 0, "startup")
    for i in range(3):
        d.cmd("create-async podvm-z%d-33333333 33333333333333%02d" % (i, i))
    r = d.cmd("teardown")
    res = r["results"]
    check(len(res) == 3 and all(x["status"] == -125 for x in res), "cancelled creates: %s" % res)
    check(d.proc.wait(10) == 0, "no libuv handle left open (exit %s)" % d.proc.returncode)
    # The fake may have made the instances after the cancel: that is what
    # list_instances-based orphan collection is for. Clean up here.
    time.sleep(0.5)
    d = Driver(fake)
    lst = d.cmd("list")
    for i in lst["instances"]:
        d.cmd("delete " + i["id"])
    d.close()
    no_leftovers()


def t_no_secrets_in_output():
    env = base_env(fake, CAA_LOG_LEVEL="trace", AWS_SESSION_TOKEN=None)
    d = Driver(fake, base_args(), env=env)
    r = d.cmd("create podvm-s-44444444 4444444444444444 userdata=user-data-secret-8c2f")
    check(r["status"] == 0, "create %s" % r)
    d.cmd("get i-0000000000000000f")
    d.cmd("delete " + r["instance"]["id"])
    d.close()
    out = d.stderr()
    for secret in (STATIC_SK, "user-data-secret-8c2f", base64.b64encode(b"user-data-secret-8c2f").decode()):
        check(secret not in out, "secret %r in the log" % secret)
    no_leftovers()


def t_addon_leftovers():
    """list reports this node's unattached add-on ENIs and loose Elastic IPs (ids, named after their
    pod's instance), never another node's, an untagged or an attached one; delete takes them by id
    (gone already is success, an ENI in use is refused); a failing ENI listing still lists instances."""
    own = [["caa.node", NODE], ["caa.sandbox-id", "77"], ["caa.instance-name", "podvm-l-77777777"]]
    d = Driver(fake, base_args())
    r = d.cmd("create podvm-l-77777777 7777777777777777")
    iid = r["instance"]["id"]
    loose = fake.add_eni(tags=own)["id"]
    attached = fake.add_eni(tags=own, instance_id=iid)["id"]
    fake.add_eni(tags=[["caa.node", "other-node"], ["caa.sandbox-id", "1"]])
    fake.add_eni(tags=[["caa.node", NODE]])  # no caa.sandbox-id: not made by a create
    fake.add_eni(tags=[])
    fake.add_address(public_ip="198.51.100.90", allocation_id="eipalloc-0aaaaaaaaaaaaaa01", tags=own)
    fake.add_address(public_ip="198.51.100.91", allocation_id="eipalloc-0aaaaaaaaaaaaaa02", tags=own,
                     association_id="eipassoc-1", network_interface_id=loose)
    fake.add_address(public_ip="198.51.100.92", allocation_id="eipalloc-0aaaaaaaaaaaaaa03", tags=own,
                     association_id="eipassoc-2", network_interface_id=attached, instance_id=iid)
    fake.add_address(public_ip="198.51.100.93", allocation_id="eipalloc-0aaaaaaaaaaaaaa04",
                     tags=[["caa.node", "other-node"], ["caa.sandbox-id", "1"]])
    fake.config(list_page_size=5)
    r = d.cmd("list")
    check(r["status"] == 0, "list %s" % r)
    got = sorted((i["id"], i.get("name")) for i in r["instances"])
    want = sorted([(iid, "podvm-l-77777777"), (loose, "podvm-l-77777777"),
                   ("eipalloc-0aaaaaaaaaaaaaa01", "podvm-l-77777777"), ("eipalloc-0aaaaaaaaaaaaaa02", "podvm-l-77777777")])
    check(got == want, "listed %s, expected %s" % (got, want))
    # Delete: the associated address is disassociated first, then released; the ENI deleted.
    for rid in ("eipalloc-0aaaaaaaaaaaaaa02", loose, "eipalloc-0aaaaaaaaaaaaaa01"):
        check(d.cmd("delete " + rid)["status"] == 0, "delete " + rid)
    st = fake.state()
    check(loose not in [n["id"] for n in st["enis"]], "ENI deleted")
    check(sorted(a["allocationId"] for a in st["addresses"]) == ["eipalloc-0aaaaaaaaaaaaaa03", "eipalloc-0aaaaaaaaaaaaaa04"],
          "addresses left %s" % st["addresses"])
    check(d.cmd("delete " + loose)["status"] == 0, "an ENI gone already is success")
    check(d.cmd("delete eipalloc-0aaaaaaaaaaaaaa01")["status"] == 0, "an address gone already is success")
    r = d.cmd("delete " + attached)
    check(r["status"] < 0 and "InvalidNetworkInterface.InUse" in r["error"], "an attached ENI is refused: %s" % r)
    r = d.cmd("delete eni-1&Action=x")
    check(r["status"] == -22, "a malformed id is refused before any call: %s" % r)
    # Without ec2:DescribeNetworkInterfaces the instances are still listed.
    fake.config(fail={"DescribeNetworkInterfaces": {"code": "UnauthorizedOperation", "status": 403, "count": 1}})
    r = d.cmd("list")
    check(r["status"] == 0 and iid in [i["id"] for i in r["instances"]], "list without ENI rights %s" % r)
    check("UnauthorizedOperation" in d.stderr(), "the failed ENI listing is logged")
    check(d.cmd("delete " + iid)["status"] == 0, "delete")
    check(d.close() == 0, "driver exit")
    signatures_ok()


TESTS = [
    ("create, get, delete with the default options", t_create_default),
    ("create is idempotent (client token)", t_idempotent_create),
    ("list: this node's live instances, paged", t_list_owned_only),
    ("public IP mode waits for running", t_public_ip),
    ("external-net-via-pod-vm: a second ENI at device index 1", t_multi_nic),
    ("list and delete of leftover add-on ENIs and Elastic IPs", t_addon_leftovers),
    ("launch template mode", t_launch_template),
    ("CVM off, instance-type selection, SNP on a type without it", t_cvm_and_sizes),
    ("per-pod AMI, root volume raised to the AMI's size", t_image_per_pod_and_root_volume),
    ("delete releases the instance's Elastic IPs", t_elastic_ips_released),
    ("validate_spec: user-data size, tags", t_validate_spec),
    ("capacity fallback to the next fitting type", t_capacity_fallback),
    ("throttling storm: retried with backoff, then a clear error", t_throttling_storm),
    ("token-bucket rate limit: a storm fits in by retries", t_token_bucket_storm),
    ("concurrency cap with a queue", t_concurrency_cap),
    ("failures after RunInstances terminate the instance (or hand it back)", t_cleanup_after_failure),
    ("hostile answers end in clear errors", t_hostile_answers),
    ("bad signatures and unknown keys", t_bad_signature),
    ("web identity credentials refreshed without a herd", t_web_identity_refresh),
    ("region, network, key and credentials from IMDSv2; token 401 and refresh", t_imds_everything),
    ("plain http only for loopback endpoints", t_endpoint_policy),
    ("verify_config runs the startup calls", t_verify_config),
    ("teardown with creates in flight", t_teardown_in_flight),
    ("no secrets or user data in logs", t_no_secrets_in_output),
]


def main():
    global fake
    try:
        fake = Fake()
    except Skip as e:
        print("1..0 # SKIP %s" % e)
        return 77
    tap = Tap()
    only_names = sys.argv[1:]
    for name, fn in TESTS:
        if only_names and fn.__name__ not in only_names:
            continue
        fake.reset()
        tap.run(name, fn)
    fake.stop()
    return tap.finish()


if __name__ == "__main__":
    sys.exit(main())
