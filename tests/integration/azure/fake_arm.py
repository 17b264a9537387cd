#!/usr/bin/env python3
"""A fake Azure endpoint on 127.0.0.1 for the Azure provider tests and bench:
Entra ID token endpoint (client secret, workload identity), IMDS managed
identity tokens, and the ARM calls the provider makes (VM sizes, VM PUT / GET /
DELETE / list, async operations, NICs, public IPs).

It keeps VMs in memory so a test can see what is left behind, and it can be
told to misbehave: latency, long or failing operations, 429 storms, ARM's
token-bucket rate limits (rate_limit), quota and SKU errors, token failures
and expiry, hostile bodies.

Usage: fake_arm.py [--port N] [--config JSON]. Prints "PORT <n>" when ready.
Exits when its stdin reaches EOF (the test that started it went away) or on
SIGTERM. Control API (no auth): GET /_fake/state, POST /_fake/config (merges
the JSON object into the configuration), POST /_fake/reset (defaults, no VMs,
empty log; the body, if any, is merged), POST /_fake/expire-tokens, POST
/_fake/plant (running VMs with given tags, without a PUT).

The shapes follow the ARM REST API (api-version pinned by the provider); the
oracle tests check the provider's request bodies with the official SDK
mappers, not with this fake.
"""
import argparse
import asyncio
import base64
import copy
import json
import math
import secrets
import signal
import sys
import time
import urllib.parse

COMPUTE_API = "2025-04-01"
NETWORK_API = "2024-05-01"
IMDS_API = "2018-02-01"

DEFAULTS = {
    "latency_ms": 0,
    "tenant": "tenant-1",
    "client_id": "client-1",
    "client_secret": "s3cr3t-value",
    "federated_token": "federated-jwt-value",
    "imds_client_id": None,  # user-assigned identity expected, or None
    "sub": "sub-1",
    "rg": "rg-1",
    "region": "eastus",
    "token_lifetime": 3600,
    "token_lifetime_as_string": False,
    "token_fail": 0,  # next N token requests fail
    "token_fail_status": 500,
    "lro_polls": 1,  # operation GETs until the terminal status
    "provision_ms": 0,  # and a create's operation runs at least this long after the PUT (the VM provisioning)
    "lro_result": "Succeeded",  # Succeeded | Failed | Canceled | never
    "lro_header": "azure-asyncoperation",  # | location | operation-location | none
    "retry_after": None,  # Retry-After on PUT/DELETE/poll answers
    "delete_polls": 1,
    "throttle": 0,  # next N ARM requests answer throttle_status
    "throttle_status": 429,
    "throttle_retry_after": "0",
    # ARM's token buckets per operation type ("reads", "writes", "deletes": {"bucket", "refill_per_s"};
    # the documented subscription limits are 250/25, 200/10, 200/10). An empty bucket answers 429
    # with Retry-After: the whole seconds until a token is back.
    "rate_limit": {},
    "put_error": None,  # {"status", "code", "message"}
    "sku_unavailable": [],
    "answer_delay_ms": {},  # method -> ms: done at once, answered that much later (an answer on its way)
    # {"match", "method", "status", "body", "count", "headers"}: that answer instead;
    # {"match", "method", "count", "delay_ms"}: the request done, its answer late (a client timeout);
    # {"match", "method", "count", "cut": true}: half of the real answer, then the connection closes;
    # {"match", "method", "count", "truncate": true}: half of the real answer's body, as the whole body.
    "hostile": None,
    "sizes": [
        {"name": "Standard_DC2as_v5", "numberOfCores": 2, "memoryInMB": 8192},
        {"name": "Standard_DC4as_v5", "numberOfCores": 4, "memoryInMB": 16384},
        {"name": "Standard_DC8as_v5", "numberOfCores": 8, "memoryInMB": 32768},
        {"name": "Standard_DC2es_v6", "numberOfCores": 2, "memoryInMB": 8192},
        {"name": "Standard_D2as_v5", "numberOfCores": 2, "memoryInMB": 8192},
    ],
    "page_size": 50,
    "private_ip_prefix": "127.0.1.",
    "private_ip_fixed": None,  # every VM gets this private IP
    "public_ip_prefix": "127.0.2.",
    "public_ip_address": True,  # False: public IPs without an address
    "url_base": None,  # base of the URLs we hand out (default: http://<Host header>)
    "nics_reversed": False,  # the VM lists its NICs last first (ARM does not promise an order)
    "timeline": False,  # keep [arrival, answer, method, path, status] per request (epoch s; GET /_fake/state)
}


class State:
    def __init__(self):
        self.reset()

    def reset(self, cfg=None):
        self.cfg = copy.deepcopy(DEFAULTS)
        if cfg:
            self.cfg.update(cfg)
        self.vms = {}
        self.ops = {}
        self.tokens = {}  # token -> expiry (epoch seconds)
        self.log = []
        self.timeline = []
        self.stats = {"token_requests": 0, "imds_requests": 0, "arm_requests": 0, "in_flight": 0,
                      "max_in_flight": 0, "rate_limited": 0, "scopes": [], "imds_resources": []}
        self.next_ip = 4
        self.puts = []  # bodies of VM PUTs
        self.buckets = {}  # operation type -> [tokens, last refill time]


S = State()


def arm_error(status, code, message, headers=None):
    return status, {"error": {"code": code, "message": message}}, headers or {}


def vm_path(name):
    c = S.cfg
    return "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachines/%s" % (
        c["sub"], c["rg"], name)


def nic_path(name):
    c = S.cfg
    return "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Network/networkInterfaces/%s" % (
        c["sub"], c["rg"], name)


def pip_path(name):
    c = S.cfg
    return "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Network/publicIPAddresses/%s" % (
        c["sub"], c["rg"], name)


def vm_json(vm):
    props = {
        "provisioningState": vm["state"],
        "vmId": vm["vmId"],
        "hardwareProfile": vm["body"]["properties"]["hardwareProfile"],
        "networkProfile": {"networkInterfaces": []},
    }
    refs = [{"id": nic_path(n["name"]), "properties": {"primary": n["primary"]}} for n in vm.get("nics", [])]
    props["networkProfile"]["networkInterfaces"] = refs[::-1] if S.cfg["nics_reversed"] else refs
    return {"id": vm_path(vm["name"]), "name": vm["name"], "type": "Microsoft.Compute/virtualMachines",
            "location": S.cfg["region"], "tags": vm["body"].get("tags", {}), "properties": props}


def base_url(host):
    return S.cfg["url_base"] or "http://" + host


def op_url(host, op_id):
    c = S.cfg
    return "%s/subscriptions/%s/providers/Microsoft.Compute/locations/%s/operations/%s?api-version=%s" % (
        base_url(host), c["sub"], c["region"], op_id, COMPUTE_API)


def lro_headers(host, op_id):
    h = {}
    mode = S.cfg["lro_header"]
    url = op_url(host, op_id)
    if mode == "azure-asyncoperation":
        h["Azure-AsyncOperation"] = url
    elif mode == "operation-location":
        h["Operation-Location"] = url
    elif mode == "location":
        h["Location"] = url
    if S.cfg["retry_after"] is not None:
        h["Retry-After"] = str(S.cfg["retry_after"])
    return h


def provision(vm):
    """The create succeeded: one NIC per networkInterfaceConfigurations entry
    (named after it, as ARM does), with its public IP, exist now."""
    vm["state"] = "Succeeded"
    vm["nics"] = []
    for cfg in vm["body"]["properties"]["networkProfile"]["networkInterfaceConfigurations"]:
        ipc = cfg["properties"]["ipConfigurations"][0]["properties"]
        # The last octet runs 4..254 and then starts over: storms create more VMs than one /24 holds.
        host = str(4 + (S.next_ip - 4) % 251)
        nic = {"name": cfg["name"], "primary": bool(cfg["properties"].get("primary")),
               "subnet": ipc["subnet"]["id"],
               "private_ip": S.cfg["private_ip_fixed"] or S.cfg["private_ip_prefix"] + host}
        S.next_ip += 1
        if "publicIPAddressConfiguration" in ipc:
            nic["pip"] = ipc["publicIPAddressConfiguration"]["name"]
            nic["public_ip"] = S.cfg["public_ip_prefix"] + host if S.cfg["public_ip_address"] else None
        vm["nics"].append(nic)


def finish_op(op):
    vm = S.vms.get(op["vm"])
    if op["kind"] == "delete":
        S.vms.pop(op["vm"], None)
        return "Succeeded", None
    result = op["result"]
    if vm is None:
        return "Canceled", {"code": "OperationPreempted", "message": "the VM was deleted"}
    if result == "Succeeded":
        provision(vm)
        return "Succeeded", None
    if result == "Failed":
        vm["state"] = "Failed"
        return "Failed", {"code": "OSProvisioningTimedOut",
                          "message": "OS Provisioning for VM '%s' did not finish in the allotted time." % vm["name"]}
    vm["state"] = "Failed"
    return "Canceled", None


def check_put_body(name, body):
    if not isinstance(body, dict):
        return arm_error(400, "InvalidRequestContent", "The request content was invalid")
    if body.get("location") != S.cfg["region"]:
        return arm_error(400, "LocationRequired", "The location property is required for this definition.")
    props = body.get("properties")
    if not isinstance(props, dict):
        return arm_error(400, "InvalidParameter", "properties missing")
    size = (props.get("hardwareProfile") or {}).get("vmSize")
    if size in S.cfg["sku_unavailable"]:
        return arm_error(409, "SkuNotAvailable",
                         "The requested VM size %s is currently not available in location '%s'." % (
                             size, S.cfg["region"]))
    if size not in [s["name"] for s in S.cfg["sizes"]]:
        return arm_error(400, "InvalidParameter", "The value %s provided for the VM size is not valid." % size)
    os_prof = props.get("osProfile") or {}
    if os_prof.get("computerName") != name:
        return arm_error(400, "InvalidParameter", "computerName")
    ud = props.get("userData", "")
    try:
        base64.b64decode(ud, validate=True)
    except Exception:
        return arm_error(400, "InvalidParameter", "userData is not base64")
    if len(ud) > 65536:
        return arm_error(400, "InvalidParameter", "userData is larger than 64 KB")
    # ARM: with several NICs exactly one is primary, and names are unique.
    nics = ((props.get("networkProfile") or {}).get("networkInterfaceConfigurations")) or []
    if not nics or len({n.get("name") for n in nics}) != len(nics):
        return arm_error(400, "InvalidParameter", "networkInterfaceConfigurations")
    if len(nics) > 1 and sum(1 for n in nics if (n.get("properties") or {}).get("primary") is True) != 1:
        return arm_error(400, "VMMustHaveOnePrimaryNetworkInterface",
                         "Virtual machine %s must have one network interface set as the primary." % name)
    return None


def key_of(body):
    try:
        return body["properties"]["osProfile"]["linuxConfiguration"]["ssh"]["publicKeys"][0]["keyData"]
    except (KeyError, IndexError, TypeError):
        return None


def handle_arm(method, path, query, body, host):
    c = S.cfg
    parts = path.strip("/").split("/")
    low = [p.lower() for p in parts]
    api = query.get("api-version", [None])[0]
    sub_prefix = ["subscriptions", c["sub"].lower()]
    if low[:2] != sub_prefix:
        return arm_error(404, "SubscriptionNotFound", "The subscription '%s' could not be found." % parts[1]
                         if len(parts) > 1 else "no subscription")

    # /subscriptions/s/providers/Microsoft.Compute/locations/r/{vmSizes|operations/id}
    if low[2:6] == ["providers", "microsoft.compute", "locations", c["region"]]:
        if api != COMPUTE_API:
            return arm_error(400, "InvalidApiVersionParameter", "api-version %s" % api)
        if len(low) == 7 and low[6] == "vmsizes" and method == "GET":
            sizes = [dict(s, osDiskSizeInMB=1047552, resourceDiskSizeInMB=0, maxDataDiskCount=4)
                     for s in c["sizes"]]
            return 200, {"value": sizes}, {}
        if len(low) == 8 and low[6] == "operations" and method == "GET":
            op = S.ops.get(parts[7])
            if not op:
                return arm_error(404, "NotFound", "operation not found")
            op["polls"] += 1
            headers = {}
            if c["retry_after"] is not None:
                headers["Retry-After"] = str(c["retry_after"])
            if op["status"] is None:
                need = op["polls_needed"]
                if op["result"] == "never" and op["kind"] == "create" or op["polls"] < need or \
                        time.time() < op["ready_at"]:
                    if op["mode"] == "location":
                        return 202, None, dict(headers, Location=op_url(host, op["id"]))
                    return 200, {"status": "InProgress", "name": op["id"]}, headers
                op["status"], op["error"] = finish_op(op)
            doc = {"status": op["status"], "name": op["id"]}
            if op["error"]:
                doc["error"] = op["error"]
            if op["mode"] == "location":
                if op["status"] == "Succeeded":
                    return 200, None, {}
                return 400, {"error": op["error"] or {"code": "Canceled", "message": "canceled"}}, {}
            return 200, doc, headers
        return arm_error(404, "NotFound", "no such path")

    if low[2:4] != ["resourcegroups", c["rg"].lower()]:
        return arm_error(404, "ResourceGroupNotFound", "Resource group '%s' could not be found." % (
            parts[3] if len(parts) > 3 else ""))
    rest = low[4:]
    if rest[:2] == ["providers", "microsoft.network"] and len(rest) == 4 and method == "GET":
        if api != NETWORK_API:
            return arm_error(400, "InvalidApiVersionParameter", "api-version %s" % api)
        kind, name = rest[2], parts[7]
        nics = [n for vm in S.vms.values() for n in vm.get("nics", [])]
        if kind == "networkinterfaces":
            for nic in nics:
                if nic["name"] == name:
                    ipc = {"privateIPAddress": nic["private_ip"], "privateIPAllocationMethod": "Dynamic",
                           "primary": True, "subnet": {"id": nic["subnet"]}}
                    if nic.get("pip"):
                        ipc["publicIPAddress"] = {"id": pip_path(nic["pip"])}
                    return 200, {"id": nic_path(name), "name": name, "properties": {
                        "provisioningState": "Succeeded", "primary": nic["primary"],
                        "ipConfigurations": [{"name": "ip-config", "id": nic_path(name) + "/ipConfigurations/ip-config",
                                              "properties": ipc}]}}, {}
        elif kind == "publicipaddresses":
            for nic in nics:
                if nic.get("pip") == name:
                    props = {"provisioningState": "Succeeded", "publicIPAllocationMethod": "Static"}
                    if nic.get("public_ip"):
                        props["ipAddress"] = nic["public_ip"]
                    return 200, {"id": pip_path(name), "name": name, "properties": props}, {}
        return arm_error(404, "ResourceNotFound", "The Resource '%s' was not found." % name)

    if rest[:3] != ["providers", "microsoft.compute", "virtualmachines"]:
        return arm_error(404, "NotFound", "no such path")
    if api != COMPUTE_API:
        return arm_error(400, "InvalidApiVersionParameter", "api-version %s" % api)

    if len(rest) == 3 and method == "GET":
        names = sorted(S.vms)
        start = int(query.get("$skiptoken", ["0"])[0])
        page = names[start:start + c["page_size"]]
        doc = {"value": [vm_json(S.vms[n]) for n in page]}
        if start + c["page_size"] < len(names):
            doc["nextLink"] = "%s%s?api-version=%s&$skiptoken=%d" % (
                base_url(host), path, COMPUTE_API, start + c["page_size"])
        return 200, doc, {}
    if len(rest) != 4:
        return arm_error(404, "NotFound", "no such path")
    name = parts[7]
    vm = S.vms.get(name)

    if method == "GET":
        if not vm:
            return arm_error(404, "ResourceNotFound",
                             "The Resource 'Microsoft.Compute/virtualMachines/%s' under resource group '%s' was not "
                             "found." % (name, c["rg"]))
        # The create goes on in ARM whoever follows it: a client that lost the
        # operation URL (a cut PUT answer) sees it finish on the VM itself.
        if vm["state"] == "Creating" and S.ops[vm["op"]]["status"] is None:
            vm["body_polls"] += 1
            op = S.ops[vm["op"]]
            if vm["body_polls"] >= c["lro_polls"] and vm["result"] != "never" and time.time() >= op["ready_at"]:
                op["status"], op["error"] = finish_op(op)
        return 200, vm_json(vm), {}

    if method == "PUT":
        S.puts.append(body)
        if c["put_error"]:
            e = c["put_error"]
            return arm_error(e.get("status", 409), e["code"], e["message"])
        bad = check_put_body(name, body)
        if bad:
            return bad
        if vm:
            if key_of(vm["body"]) != key_of(body):
                return arm_error(409, "PropertyChangeNotAllowed",
                                 "Changing property 'linuxConfiguration.ssh.publicKeys' is not allowed.")
            vm["body"] = body
            return 200, vm_json(vm), {}
        op_id = secrets.token_hex(8)
        now = time.time()
        vm = {"name": name, "body": body, "state": "Creating", "vmId": secrets.token_hex(16), "op": op_id,
              "mode": c["lro_header"], "body_polls": 0, "result": c["lro_result"], "created": now,
              "ready_at": now + c["provision_ms"] / 1000.0}
        S.vms[name] = vm
        S.ops[op_id] = {"id": op_id, "kind": "create", "vm": name, "polls": 0, "polls_needed": c["lro_polls"],
                        "result": c["lro_result"], "status": None, "error": None, "mode": c["lro_header"],
                        "ready_at": vm["ready_at"]}
        return 201, vm_json(vm), lro_headers(host, op_id)

    if method == "DELETE":
        if not vm:
            return 204, None, {}
        if c["delete_polls"] == 0:
            S.vms.pop(name, None)
            return 200, None, {}
        op_id = secrets.token_hex(8)
        vm["state"] = "Deleting"
        S.ops[op_id] = {"id": op_id, "kind": "delete", "vm": name, "polls": 0, "polls_needed": c["delete_polls"],
                        "result": "Succeeded", "status": None, "error": None, "mode": c["lro_header"],
                        "ready_at": 0}
        h = lro_headers(host, op_id)
        if c["lro_header"] == "none":
            S.vms.pop(name, None)
            return 200, None, {}
        return 202, None, h
    return arm_error(405, "MethodNotAllowed", method)


def handle_token(method, path, query, form, headers):
    c = S.cfg
    S.stats["token_requests"] += 1
    if c["token_fail"] > 0:
        c["token_fail"] -= 1
        return c["token_fail_status"], {"error": "temporarily_unavailable",
                                        "error_description": "AADSTS50196: try again"}, {"Retry-After": "0"}
    if path != "/%s/oauth2/v2.0/token" % c["tenant"] or method != "POST":
        return 400, {"error": "invalid_request", "error_description": "AADSTS90002: Tenant not found."}, {}
    if form.get("grant_type") != "client_credentials" or form.get("client_id") != c["client_id"]:
        return 400, {"error": "unauthorized_client", "error_description": "AADSTS700016: unknown application"}, {}
    scope = form.get("scope", "")
    S.stats["scopes"].append(scope)
    if not scope.endswith("/.default"):
        return 400, {"error": "invalid_scope", "error_description": "AADSTS1002012: bad scope"}, {}
    if "client_secret" in form:
        if form["client_secret"] != c["client_secret"]:
            return 401, {"error": "invalid_client",
                         "error_description": "AADSTS7000215: Invalid client secret provided."}, {}
    elif form.get("client_assertion_type") == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
        if form.get("client_assertion") != c["federated_token"]:
            return 400, {"error": "invalid_client",
                         "error_description": "AADSTS700211: No matching federated identity record found."}, {}
    else:
        return 400, {"error": "invalid_request", "error_description": "no credential"}, {}
    return issue_token(False)


def issue_token(imds):
    life = S.cfg["token_lifetime"]
    tok = "tok-" + secrets.token_urlsafe(24)
    S.tokens[tok] = time.time() + life
    if imds:
        return 200, {"access_token": tok, "expires_in": str(life), "expires_on": str(int(time.time() + life)),
                     "resource": "r", "token_type": "Bearer"}, {}
    exp = str(life) if S.cfg["token_lifetime_as_string"] else life
    return 200, {"token_type": "Bearer", "expires_in": exp, "ext_expires_in": exp, "access_token": tok}, {}


def handle_imds(method, query, headers):
    S.stats["imds_requests"] += 1
    c = S.cfg
    if headers.get("metadata") != "true":
        return 400, {"error": "invalid_request", "error_description": "Required metadata header not specified"}, {}
    if query.get("api-version", [None])[0] != IMDS_API:
        return 400, {"error": "invalid_request", "error_description": "bad api-version"}, {}
    S.stats["imds_resources"].append(query.get("resource", [""])[0])
    if c["token_fail"] > 0:
        c["token_fail"] -= 1
        return c["token_fail_status"], {"error": "unavailable", "error_description": "try later"}, {}
    if c["imds_client_id"] is not None and query.get("client_id", [None])[0] != c["imds_client_id"]:
        return 400, {"error": "invalid_request", "error_description": "Identity not found"}, {}
    return issue_token(True)


def handle_control(method, path, body):
    if path == "/_fake/state":
        return 200, {"vms": {n: {"state": v["state"], "tags": v["body"].get("tags", {}),
                                 "size": v["body"]["properties"]["hardwareProfile"]["vmSize"],
                                 "nics": v.get("nics", []), "created": v.get("created"),
                                 "ready_at": v.get("ready_at")}
                             for n, v in S.vms.items()},
                     "log": S.log, "timeline": S.timeline, "stats": S.stats, "puts": S.puts, "ops": len(S.ops)}, {}
    if path == "/_fake/config":
        S.cfg.update(body or {})
        return 200, {"ok": True}, {}
    if path == "/_fake/reset":
        S.reset(body or None)
        return 200, {"ok": True}, {}
    if path == "/_fake/plant":
        # {"count", "tags", "prefix", "sandbox_tag"}: running VMs made without a PUT (the orphan-sweep
        # bench), each with its own 64-hex value under sandbox_tag.
        size = S.cfg["sizes"][0]["name"]
        for i in range(body["count"]):
            name = "%s%d" % (body.get("prefix", "podvm-orphan-"), i)
            S.vms[name] = {"name": name, "state": "Succeeded", "vmId": secrets.token_hex(16), "op": None,
                           "mode": S.cfg["lro_header"], "body_polls": 0, "result": "Succeeded", "nic": name + "-net",
                           "private_ip": "198.18.0.2",
                           "body": {"tags": dict(body["tags"], **{body["sandbox_tag"]: "%064x" % len(S.vms)}),
                                    "properties": {"hardwareProfile": {"vmSize": size}}}}
        return 200, {"ok": True}, {}
    if path == "/_fake/expire-tokens":
        for t in S.tokens:
            S.tokens[t] = 0
        return 200, {"ok": True}, {}
    return 404, {"error": "no such control"}, {}


def hostile_hit(method, path, kind):
    """The armed hostile entry if it is of this kind (body, delay_ms or cut)
    and matches the request (path substring, method if given); uses one count."""
    h = S.cfg["hostile"]
    if not h or h.get("count", 1) <= 0 or h["match"] not in path or path.endswith("/oauth2/v2.0/token"):
        return None
    if h.get("method") and h["method"] != method:
        return None
    if kind not in h and not (kind == "body" and not {"delay_ms", "cut", "truncate"} & h.keys()):
        return None
    h["count"] = h.get("count", 1) - 1
    return h


async def respond(writer, status, doc, headers, raw=None, cut=False, truncate=False):
    reasons = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 400: "Bad Request",
               401: "Unauthorized", 404: "Not Found", 409: "Conflict", 429: "Too Many Requests",
               500: "Internal Server Error", 503: "Service Unavailable"}
    if raw is not None:
        data = raw.encode() if isinstance(raw, str) else raw
    else:
        data = b"" if doc is None else json.dumps(doc).encode()
    if truncate:
        data = data[:len(data) // 2]
    lines = ["HTTP/1.1 %d %s" % (status, reasons.get(status, "Status")),
             "Content-Length: %d" % len(data)]
    if data:
        lines.append("Content-Type: application/json; charset=utf-8")
    for k, v in headers.items():
        lines.append("%s: %s" % (k, v))
    if cut:
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + data[:len(data) // 2])
        await writer.drain()
        raise ConnectionResetError("hostile: answer cut")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + data)
    await writer.drain()


async def handle_conn(reader, writer):
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            try:
                method, target, _ = line.decode("latin-1").split(" ", 2)
            except ValueError:
                break
            headers = {}
            while True:
                h = await reader.readline()
                if h in (b"\r\n", b"\n", b""):
                    break
                k, _, v = h.decode("latin-1").partition(":")
                headers[k.strip().lower()] = v.strip()
            n = int(headers.get("content-length", "0") or "0")
            raw = await reader.readexactly(n) if n else b""
            await serve_one(writer, method, target, headers, raw)
            if headers.get("connection", "").lower() == "close":
                break
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def serve_one(writer, method, target, headers, raw):
    u = urllib.parse.urlsplit(target)
    path = u.path
    query = urllib.parse.parse_qs(u.query, keep_blank_values=True)
    host = headers.get("host", "127.0.0.1")
    if path.startswith("/_fake/"):
        body = json.loads(raw) if raw else None
        await respond(writer, *handle_control(method, path, body))
        return

    S.stats["in_flight"] += 1
    S.stats["max_in_flight"] = max(S.stats["max_in_flight"], S.stats["in_flight"])
    arrival = time.time()
    try:
        late = hostile_hit(method, path, "delay_ms")
        cut = hostile_hit(method, path, "cut")
        truncate = hostile_hit(method, path, "truncate")
        # ARM answers a throttled request at once, before any work.
        wait = 0 if path.endswith("/oauth2/v2.0/token") or path.startswith("/metadata/") else take_token(method)
        if wait > 0:
            S.stats["rate_limited"] += 1
            status, doc, extra = arm_error(429, "TooManyRequests", "Too many requests; retry later.",
                                           {"Retry-After": str(math.ceil(wait))})
            rawbody = None
        else:
            if S.cfg["latency_ms"]:
                await asyncio.sleep(S.cfg["latency_ms"] / 1000.0)
            status, doc, extra, rawbody = route(method, path, query, headers, raw, host)
            if method == "GET" and path.startswith("/subscriptions/"):
                # ARM tells every read how many reads the subscription has left.
                extra = dict(extra, **{"x-ms-ratelimit-remaining-subscription-reads": str(reads_left())})
        S.log.append([method, path, status])
        delay = S.cfg["answer_delay_ms"].get(method) if "/oauth2/" not in path else None
        if delay:
            await asyncio.sleep(delay / 1000.0)
        if late:  # done, but the answer comes late
            await asyncio.sleep(late["delay_ms"] / 1000.0)
        await respond(writer, status, doc, extra, rawbody, cut=cut is not None, truncate=truncate is not None)
        if S.cfg["timeline"]:
            S.timeline.append([arrival, time.time(), method, path, status])
    finally:
        S.stats["in_flight"] -= 1


def route(method, path, query, headers, raw, host):
    c = S.cfg
    h = hostile_hit(method, path, "body")
    if h:
        body = h["body"]
        if isinstance(body, dict) and "repeat" in body:
            body = body["prefix"] + body["repeat"] * body["times"] + body.get("suffix", "")
        return h.get("status", 200), None, h.get("headers", {}), body
    if path.endswith("/oauth2/v2.0/token"):
        form = {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode(), keep_blank_values=True).items()}
        return (*handle_token(method, path, query, form, headers), None)
    if path == "/metadata/identity/oauth2/token":
        return (*handle_imds(method, query, headers), None)
    S.stats["arm_requests"] += 1
    auth = headers.get("authorization", "")
    tok = auth[7:] if auth.startswith("Bearer ") else None
    if tok not in S.tokens:
        return (*arm_error(401, "InvalidAuthenticationToken", "The access token is invalid."), None)
    if S.tokens[tok] < time.time():
        return (*arm_error(401, "ExpiredAuthenticationToken",
                           "The access token expiry UTC time is earlier than current UTC time."), None)
    if c["throttle"] > 0:
        c["throttle"] -= 1
        st = c["throttle_status"]
        code = "TooManyRequests" if st == 429 else "InternalServerError"
        return (*arm_error(st, code, "Too many requests; retry later.",
                           {"Retry-After": c["throttle_retry_after"]}), None)
    body = None
    if raw:
        try:
            body = json.loads(raw)
        except ValueError:
            return (*arm_error(400, "InvalidRequestContent", "The request content was invalid"), None)
    return (*handle_arm(method, path, query, body, host), None)


def reads_left():
    """What x-ms-ratelimit-remaining-subscription-reads says: the reads bucket's
    whole tokens; without a configured limit, a full documented bucket of 250
    less this read."""
    lim = S.cfg["rate_limit"].get("reads")
    if not lim:
        return 249
    b = S.buckets.get("reads")
    return int(b[0]) if b else int(lim["bucket"]) - 1


def take_token(method):
    """0 if the operation type's bucket had a token (taken), else the seconds until one is back."""
    kind = "reads" if method == "GET" else "deletes" if method == "DELETE" else "writes"
    lim = S.cfg["rate_limit"].get(kind)
    if not lim:
        return 0
    now = time.monotonic()
    b = S.buckets.setdefault(kind, [float(lim["bucket"]), now])
    b[0] = min(float(lim["bucket"]), b[0] + (now - b[1]) * lim["refill_per_s"])
    b[1] = now
    if b[0] >= 1:
        b[0] -= 1
        return 0
    return (1 - b[0]) / lim["refill_per_s"]


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--config", default=None)
    args = ap.parse_args()
    if args.config:
        S.reset(json.loads(args.config))
    server = await asyncio.start_server(handle_conn, "127.0.0.1", args.port, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print("PORT %d" % port, flush=True)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, lambda: stop.done() or stop.set_result(True))

    def on_stdin():
        if not sys.stdin.buffer.read1(65536) and not stop.done():
            stop.set_result(True)

    try:
        loop.add_reader(sys.stdin.fileno(), on_stdin)
    except (ValueError, OSError, PermissionError):
        pass
    await stop
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
