#!/usr/bin/env python3
"""The Azure provider against the official Azure SDK for JavaScript
(@azure/arm-compute 23.3.0, pinned in oracle/package-lock.json):

1. Every VM PUT body variant we build, and every body the provider sent to
   the fake endpoint, goes through the SDK's VirtualMachine mapper and back:
   no error (required fields, types) and no dropped field (key-sorted JSON
   equality).
2. The long-running operation: for each way the fake announces and ends the
   operation, the official client and our provider run against the same fake;
   the ARM request sequences must agree (ours adds the NIC read, and after a
   failed or canceled operation the DELETE of the VM the SDK leaves behind).

TAP output; exit 77 when node/npm are missing."""
import json
import os
import subprocess
import sys
import urllib.request

SRC = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("CAA_SOURCE_ROOT", os.path.join(SRC, "..", "..", ".."))
BUILD = os.environ.get("CAA_BUILD_ROOT", ".")
TOOL = os.environ.get("CAA_AZURE_ORACLE_TOOL", "")
FAKE = os.path.join(ROOT, "tests", "integration", "azure", "fake_arm.py")

results = []


def tap(ok, name, detail=""):
    results.append(ok)
    print("%s %d - %s" % ("ok" if ok else "not ok", len(results), name), flush=True)
    if not ok and detail:
        for line in str(detail).splitlines():
            print("# " + line)


def setup_node():
    r = subprocess.run([os.path.join(SRC, "oracle", "setup-node.sh"), os.path.join(BUILD, "azure-node")],
                       capture_output=True, text=True)
    if r.returncode == 77:
        print("1..0 # SKIP node/npm not installed")
        sys.exit(77)
    if r.returncode != 0:
        print("Bail out! installing the SDK oracle failed:\n" + r.stderr)
        sys.exit(1)
    return r.stdout.strip()


class Fake:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, FAKE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        self.port = int(line.split()[1])
        self.url = "http://127.0.0.1:%d" % self.port

    def call(self, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method="POST" if data is not None else "GET")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def reset(self, cfg):
        self.call("/_fake/reset", cfg)

    def state(self):
        return self.call("/_fake/state")

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


def check_bodies(node_dir, cases, label):
    r = subprocess.run(["node", os.path.join(node_dir, "oracle.js"), "bodies"], input=json.dumps(cases),
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        tap(False, label + ": oracle.js bodies", r.stderr)
        return
    for res in json.loads(r.stdout):
        tap(res["ok"], "%s: %s round-trips through the SDK mapper" % (label, res["name"]),
            res.get("error") or res.get("diff"))


def kind(path):
    if "/operations/" in path:
        return "op"
    if "/networkInterfaces/" in path:
        return "nic"
    if "/publicIPAddresses/" in path:
        return "pip"
    if "/virtualMachines/" in path:
        return "vm"
    if path.endswith("/vmSizes"):
        return "sizes"
    return "other"


def sequence(state, skip=("sizes",)):
    seq = []
    for method, path, _status in state["log"]:
        if "/oauth2/" in path or "/metadata/" in path:
            continue
        k = kind(path)
        if k in skip:
            continue
        seq.append("%s %s" % (method, k))
    return seq


SCENARIOS = [
    # name, fake config, our extra flags, what ours adds after the SDK's sequence
    ("Azure-AsyncOperation, 2 polls, Succeeded", {"lro_polls": 2}, [], ["GET nic"]),
    ("Operation-Location, Succeeded", {"lro_header": "operation-location", "lro_polls": 2}, [], ["GET nic"]),
    # With Location the SDK takes the last poll answer as the result; we read the VM.
    ("Location, Succeeded", {"lro_header": "location", "lro_polls": 2}, [], ["GET vm", "GET nic"]),
    ("Retry-After 1 s (capped by us at 100 ms)", {"retry_after": "1", "lro_polls": 2},
     ["-retry-max-delay", "100ms"], ["GET nic"]),
    ("public IP", {"lro_polls": 1}, ["-use-public-ip"], ["GET nic", "GET pip"]),
    ("Failed", {"lro_result": "Failed", "lro_polls": 2}, [], ["DELETE vm", "GET op"]),
    ("Canceled", {"lro_result": "Canceled", "lro_polls": 1}, [], ["DELETE vm", "GET op"]),
]

FLAG_VARIANTS = [
    ("cvm off", ["-disable-cvm"]),
    ("secure boot", ["-enable-secure-boot"]),
    ("public IP + NSG", ["-use-public-ip", "-securitygroupid",
                         "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Network/"
                         "networkSecurityGroups/nsg"]),
    ("community gallery image", ["-imageid", "/CommunityGalleries/cocopodvm-1/Images/podvm/Versions/0.13.0"]),
    ("root volume size + tags", ["-root-volume-size", "50", "-tags", "owner=a,env=b"]),
]


def main():
    node_dir = setup_node()
    ours = subprocess.run([TOOL, "bodies"], capture_output=True, text=True, timeout=60)
    if ours.returncode != 0:
        print("Bail out! azure-oracle-tool bodies: " + ours.stderr)
        return 1
    check_bodies(node_dir, json.loads(ours.stdout), "builder")

    fake = Fake()
    try:
        sent = []
        n = 500
        for name, cfg, flags, extra in SCENARIOS:
            n += 1
            vm_name = "podvm-test-%d-%08x" % (n, n)
            # Ours first: its PUT body is what the SDK then sends too.
            fake.reset(cfg)
            r = subprocess.run([TOOL, "create", fake.url, str(n), "-poll-interval", "1ms"] + flags,
                               capture_output=True, text=True, timeout=60)
            res = json.loads(r.stdout)
            st = fake.state()
            ours_seq = sequence(st)
            body = st["puts"][0]
            sent.append({"name": name, "body": body})
            failing = cfg.get("lro_result") in ("Failed", "Canceled")

            fake.reset(dict(cfg, url_base="https://management.azure.com"))
            sdk = subprocess.run(["node", os.path.join(node_dir, "oracle.js"), "lro", fake.url, vm_name],
                                 input=json.dumps(body), capture_output=True, text=True, timeout=120)
            if sdk.returncode != 0:
                tap(False, name + ": SDK run", sdk.stderr)
                continue
            sdk_res = json.loads(sdk.stdout)
            sdk_state = fake.state()
            sdk_seq = sequence(sdk_state)
            tap(sdk_res["ok"] == (not failing), name + ": SDK outcome",
                json.dumps(sdk_res))
            tap((res["status"] == 0) == (not failing), name + ": our outcome", json.dumps(res))
            tap(ours_seq == sdk_seq + extra, name + ": request sequence = SDK's + %s" % extra,
                "ours %s\nSDK  %s" % (ours_seq, sdk_seq))
            if failing:
                tap(len(st["vms"]) == 0 and len(sdk_state["vms"]) == 1,
                    name + ": we delete the failed VM, the SDK (as upstream) leaves it",
                    "ours left %s, SDK left %s" % (list(st["vms"]), list(sdk_state["vms"])))
        for i, (name, flags) in enumerate(FLAG_VARIANTS):
            fake.reset({})
            subprocess.run([TOOL, "create", fake.url, str(600 + i), "-poll-interval", "1ms"] + flags,
                           capture_output=True, text=True, timeout=60)
            st = fake.state()
            if st["puts"]:
                sent.append({"name": name, "body": st["puts"][0]})
            else:
                tap(False, name + ": no PUT sent", json.dumps(st["log"]))
        check_bodies(node_dir, sent, "sent")
    finally:
        fake.close()
    print("1..%d" % len(results))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
