#!/usr/bin/env python3
"""A fake Kubernetes API server for tests (python3 standard library only).

No real API server can run on the build machines, so the tests of the daemon's Kubernetes
features (and later the PeerPod controller and webhook) talk to this one. It keeps the parts of
the API server's behaviour those clients depend on: URL layout and discovery, bearer-token and
client-certificate authentication, create/get/list/update/patch/delete with resourceVersion
conflicts, status subresources, finalizers and deletionTimestamp, list+watch with bookmarks and
410 Expired, CRD structural-schema validation and pruning, and Status objects shaped as the API
server shapes them. tests/integration/kube-fake/ runs Debian's official clients (python3-kubernetes,
kubectl) against it to keep that claim honest.

Usage:
  fake-kube-apiserver.py --port 0 [--host 127.0.0.1] [--seed objs.json] [--crd crd.json]
                         [--tls-cert C --tls-key K [--client-ca CA]] [--token T] [--rbac rules.json]
prints "PORT <n>" on stdout once it listens. Test-only control endpoints (no authentication,
loopback only): /_fake/faults, /_fake/requests, /_fake/objects, /_fake/token, /_fake/rbac,
/_fake/compact.
See docs/kubernetes.md ("The fake API server") for their bodies.
"""

import argparse
import base64
import copy
import datetime
import hashlib
import json
import random
import re
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# --------------------------------------------------------------------------------------------
# Resource table

# Upstream's PeerPod CRD (src/peerpod-ctrl config/crd), schema without descriptions. The test
# tests/integration/kube-fake checks it equals deploy/kubernetes/peerpod-crd.yaml.
PEERPOD_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "peerpods.confidentialcontainers.org"},
    "spec": {
        "group": "confidentialcontainers.org",
        "names": {"kind": "PeerPod", "listKind": "PeerPodList", "plural": "peerpods", "singular": "peerpod"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1alpha1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "apiVersion": {"type": "string"},
                            "kind": {"type": "string"},
                            "metadata": {"type": "object"},
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "cloudProvider": {"type": "string"},
                                    "instanceID": {"type": "string"},
                                },
                            },
                            "status": {"type": "object", "properties": {"cleand": {"type": "boolean"}}},
                        },
                    }
                },
            }
        ],
    },
}

ALL_VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


class Resource:
    """One REST resource: where it lives and which API-server strategy rules apply to it."""

    def __init__(self, group, version, plural, kind, namespaced, singular="", short_names=(), status=False,
                 custom=False, schema=None, has_generation=False):
        self.group, self.version, self.plural, self.kind = group, version, plural, kind
        self.namespaced, self.singular, self.short_names = namespaced, singular or kind.lower(), list(short_names)
        self.has_status = status
        self.custom = custom
        self.schema = schema
        # Strategy differences between built-in types and custom resources (as in the API server).
        self.allow_unconditional_update = not custom
        self.status_keeps_metadata = not custom
        self.has_generation = has_generation or custom
        self.returns_deleted_object = custom or plural == "pods"

    @property
    def api_version(self):
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self):
        """'pods' or 'peerpods.confidentialcontainers.org', as in API server messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def group_kind(self):
        return f"{self.kind}.{self.group}" if self.group else self.kind


def builtin_resources():
    r = [
        Resource("", "v1", "namespaces", "Namespace", False, short_names=["ns"], status=True),
        Resource("", "v1", "nodes", "Node", False, short_names=["no"], status=True),
        Resource("", "v1", "pods", "Pod", True, short_names=["po"], status=True),
        Resource("", "v1", "serviceaccounts", "ServiceAccount", True, short_names=["sa"]),
        Resource("", "v1", "secrets", "Secret", True),
        Resource("", "v1", "configmaps", "ConfigMap", True, short_names=["cm"]),
        Resource("", "v1", "events", "Event", True, short_names=["ev"]),
        Resource("events.k8s.io", "v1", "events", "Event", True, short_names=["ev"]),
        Resource("coordination.k8s.io", "v1", "leases", "Lease", True),
        # what an install applies (deploy/kubernetes, kubectl apply -k): stored, not acted on
        Resource("apps", "v1", "daemonsets", "DaemonSet", True, short_names=["ds"], status=True,
                 has_generation=True),
        Resource("apps", "v1", "deployments", "Deployment", True, short_names=["deploy"], status=True,
                 has_generation=True),
        Resource("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
        Resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
        Resource("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
        Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
        Resource("node.k8s.io", "v1", "runtimeclasses", "RuntimeClass", False),
        Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False,
                 short_names=["crd", "crds"], status=True, has_generation=True),
        Resource("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations",
                 "MutatingWebhookConfiguration", False, has_generation=True),
    ]
    return r


def resource_from_crd(crd):
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    versions = [v for v in spec.get("versions") or [] if v.get("served", True)]
    if not spec.get("group") or not names.get("plural") or not names.get("kind") or not versions:
        raise ValueError("CRD needs spec.group, spec.names.plural/kind and a served version")
    v = next((v for v in versions if v.get("storage")), versions[0])
    schema = ((v.get("schema") or {}).get("openAPIV3Schema")) or {"type": "object",
                                                                   "x-kubernetes-preserve-unknown-fields": True}
    return Resource(spec["group"], v["name"], names["plural"], names["kind"], spec.get("scope") == "Namespaced",
                    singular=names.get("singular", ""), short_names=names.get("shortNames", []),
                    status="status" in (v.get("subresources") or {}), custom=True, schema=schema)


# --------------------------------------------------------------------------------------------
# Errors shaped as the API server shapes them (k8s.io/apimachinery/pkg/api/errors)

REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
           406: "NotAcceptable", 409: "Conflict", 410: "Expired", 413: "RequestEntityTooLarge",
           415: "UnsupportedMediaType", 422: "Invalid", 429: "TooManyRequests", 500: "InternalError",
           503: "ServiceUnavailable", 504: "Timeout"}


class ApiError(Exception):
    def __init__(self, code, message, reason=None, details=None, retry_after=None):
        super().__init__(message)
        self.code, self.message = code, message
        self.reason = reason or REASONS.get(code, "Unknown")
        self.details, self.retry_after = details, retry_after
        self.plain_text = False

    def status(self):
        s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": self.message,
             "reason": self.reason, "code": self.code}
        if self.details is not None:
            s["details"] = self.details
        return s


def _details(res, name=None, kind_is_kind=False, **extra):
    d = {}
    if name:
        d["name"] = name
    if res is not None:
        if res.group:
            d["group"] = res.group
        d["kind"] = res.kind if kind_is_kind else res.plural
    d.update(extra)
    return d


def not_found(res, name):
    return ApiError(404, f'{res.group_resource} "{name}" not found', details=_details(res, name))


def already_exists(res, name):
    return ApiError(409, f'{res.group_resource} "{name}" already exists', "AlreadyExists", _details(res, name))


def conflict(res, name, why="the object has been modified; please apply your changes to the latest version "
                             "and try again"):
    return ApiError(409, f'Operation cannot be fulfilled on {res.group_resource} "{name}": {why}', "Conflict",
                    _details(res, name))


def invalid(res, name, causes):
    """causes: [(field, detail, reason)] -> 422 Invalid like field.ErrorList.ToAggregate()."""
    texts = [f"{f}: {d}" for f, d, _ in causes]
    joined = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    return ApiError(422, f'{res.group_kind} "{name}" is invalid: {joined}', "Invalid",
                    _details(res, name, kind_is_kind=True,
                             causes=[{"reason": r, "message": d, "field": f}
                                     for f, d, r in causes]))


def forbidden(info, user):
    res, verb = info.resource, info.verb
    what = res.plural + (f"/{info.subresource}" if info.subresource else "") if res else info.path
    subject = f'{res.group_resource if res else what} "{info.name}"' if info.name else (
        res.group_resource if res else what)
    scope = f'in the namespace "{info.namespace}"' if info.namespace else "at the cluster scope"
    group = res.group if res else ""
    msg = f'{subject} is forbidden: User "{user}" cannot {verb} resource "{what}" in API group "{group}" {scope}'
    return ApiError(403, msg, details=_details(res, info.name))


def status_for_code(code, info, user, retry_after=None, message=None, status_json=False):
    """The Status a real API server (or its filters) returns for this code on this request."""
    if code == 403:
        e = forbidden(info, user)
    elif code == 404 and info.resource and info.name:
        e = not_found(info.resource, info.name)
    elif code == 409 and info.resource and info.name:
        e = conflict(info.resource, info.name)
    elif code == 429 and not status_json:
        # The throttling filters (max-in-flight, priority and fairness) answer in plain text.
        e = ApiError(429, "Too many requests, please try again later.\n", retry_after=retry_after or 1)
        e.plain_text = True
    elif code == 429:  # e.g. the eviction API: a Status
        e = ApiError(429, "Too many requests, please try again later.",
                     details={"retryAfterSeconds": retry_after or 1}, retry_after=retry_after or 1)
    elif code == 401:
        e = ApiError(401, "Unauthorized")
    elif code == 500:
        e = ApiError(500, "Internal error occurred: fake fault injected",
                     details={"causes": [{"message": "fake fault injected"}]})
    elif code == 503:
        e = ApiError(503, "the server is currently unable to handle the request", retry_after=retry_after)
    elif code == 504:
        e = ApiError(504, "Timeout: request did not complete within requested timeout - context deadline exceeded",
                     details={})
    else:
        e = ApiError(code, f"the server responded with the status code {code} but did not return more information",
                     details={})
    if message:
        e.message = message
    if retry_after and code != 429:
        e.retry_after = retry_after
    return e


# --------------------------------------------------------------------------------------------
# Patches (RFC 6902 JSON patch, RFC 7386 merge patch)

class PatchError(Exception):
    pass


def _pointer(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc, parts, op):
    cur = doc
    for p in parts:
        if isinstance(cur, dict):
            if p not in cur:
                raise PatchError(f"{op} operation does not apply: doc is missing path: {'/' + '/'.join(parts)}")
            cur = cur[p]
        elif isinstance(cur, list):
            i = _index(p, len(cur) - 1)
            cur = cur[i]
        else:
            raise PatchError(f"{op} operation does not apply: doc is missing path: {'/' + '/'.join(parts)}")
    return cur


def _index(p, maxi):
    if not re.fullmatch(r"0|[1-9][0-9]*", p) or int(p) > maxi:
        raise PatchError(f"Unable to access invalid index: {p}")
    return int(p)


def _add(doc, parts, value):
    if not parts:
        return value
    parent = _walk(doc, parts[:-1], "add")
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        else:
            parent.insert(_index(last, len(parent)), value)
    else:
        raise PatchError("add operation does not apply: doc is missing path: /" + "/".join(parts))
    return doc


def _remove(doc, parts, op="remove"):
    if not parts:
        raise PatchError(f"{op} operation does not apply to the document root")
    parent = _walk(doc, parts[:-1], op)
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"{op} operation does not apply: doc is missing key: /" + "/".join(parts))
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(last, len(parent) - 1))
    raise PatchError(f"{op} operation does not apply: doc is missing path: /" + "/".join(parts))


def apply_json_patch(doc, ops):
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError("operation missing 'op' or 'path'")
        kind, parts = op["op"], _pointer(op["path"])
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"{kind} operation is missing 'value'")
        if kind == "add":
            doc = _add(doc, parts, copy.deepcopy(op["value"]))
        elif kind == "remove":
            _remove(doc, parts)
        elif kind == "replace":
            if not parts:
                doc = copy.deepcopy(op["value"])
            else:
                _remove(doc, parts, "replace")
                doc = _add(doc, parts, copy.deepcopy(op["value"]))
        elif kind in ("move", "copy"):
            if "from" not in op:
                raise PatchError(f"{kind} operation is missing 'from'")
            src = _pointer(op["from"])
            value = _remove(doc, src, kind) if kind == "move" else copy.deepcopy(_walk(doc, src, kind))
            doc = _add(doc, parts, value)
        elif kind == "test":
            if _walk(doc, parts, "test") != op["value"]:
                raise PatchError(f"testing value {op['path']} failed: test failed")
        else:
            raise PatchError(f"Unexpected kind: {kind}")
    return doc


def apply_merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        else:
            target[k] = apply_merge_patch(target.get(k), v)
    return target


# --------------------------------------------------------------------------------------------
# Structural schema validation and pruning for custom resources (a subset of OpenAPI v3)

JSON_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool}


def _type_name(v):
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    return {dict: "object", list: "array", str: "string", type(None): "null"}.get(type(v), "unknown")


def validate_schema(value, schema, path, errs, prune=True):
    t = schema.get("type")
    if t and not (schema.get("x-kubernetes-int-or-string") and _type_name(value) in ("integer", "string")):
        actual = _type_name(value)
        ok = actual == t or (t == "number" and actual == "integer")
        if value is None and schema.get("nullable"):
            return
        if not ok:
            errs.append((path, f'Invalid value: "{actual}": {path} in body must be of type {t}: "{actual}"',
                         "FieldValueTypeInvalid"))
            return
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(json.dumps(e) for e in schema["enum"])
        errs.append((path, f"Unsupported value: {json.dumps(value)}: supported values: {allowed}",
                     "FieldValueNotSupported"))
    if isinstance(value, dict):
        props = schema.get("properties")
        for req in schema.get("required", []):
            if req not in value:
                errs.append((f"{path}.{req}", "Required value", "FieldValueRequired"))
        if props is not None:
            for k in list(value):
                if k in props:
                    validate_schema(value[k], props[k], f"{path}.{k}", errs, prune)
                elif isinstance(schema.get("additionalProperties"), dict):
                    validate_schema(value[k], schema["additionalProperties"], f"{path}[{k}]", errs, prune)
                elif prune and not schema.get("x-kubernetes-preserve-unknown-fields"):
                    del value[k]  # the API server silently prunes unknown fields
        elif isinstance(schema.get("additionalProperties"), dict):
            for k in value:
                validate_schema(value[k], schema["additionalProperties"], f"{path}.{k}", errs, prune)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            validate_schema(item, schema["items"], f"{path}[{i}]", errs, prune)


# --------------------------------------------------------------------------------------------
# Selectors

def parse_label_selector(text):
    """Returns a predicate on a labels dict; raises ValueError on syntax errors."""
    reqs = []
    for part in re.findall(r"(?:[^,(]|\([^)]*\))+", text or ""):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)", part)
        if m:
            vals = {v.strip() for v in m.group(3).split(",") if v.strip()}
            reqs.append((m.group(1), m.group(2), vals))
            continue
        m = re.fullmatch(r"(!?)([\w./-]+)", part)
        if m:
            reqs.append((m.group(2), "!exists" if m.group(1) else "exists", None))
            continue
        m = re.fullmatch(r"([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)", part)
        if not m:
            raise ValueError(f"unable to parse requirement: {part!r}")
        reqs.append((m.group(1), "!=" if m.group(2) == "!=" else "=", m.group(3)))

    def match(labels):
        labels = labels or {}
        for key, op, val in reqs:
            has = key in labels
            if op == "exists" and not has or op == "!exists" and has:
                return False
            if op == "=" and labels.get(key) != val or op == "!=" and labels.get(key) == val:
                return False
            if op == "in" and labels.get(key) not in val or op == "notin" and labels.get(key) in val:
                return False
        return True

    return match


FIELD_PATHS = {"metadata.name": ("metadata", "name"), "metadata.namespace": ("metadata", "namespace"),
               "spec.nodeName": ("spec", "nodeName"), "status.phase": ("status", "phase"),
               "type": ("type",), "involvedObject.name": ("involvedObject", "name"),
               "involvedObject.uid": ("involvedObject", "uid")}


def parse_field_selector(text):
    reqs = []
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"([\w.]+)\s*(==|=|!=)\s*(.*)", part)
        if not m or m.group(1) not in FIELD_PATHS:
            raise ValueError(f'"{part.split("=")[0]}" is not a known field selector: only '
                             '"metadata.name", "metadata.namespace"')
        reqs.append((FIELD_PATHS[m.group(1)], m.group(2) != "!=", m.group(3)))

    def match(obj):
        for path, eq, val in reqs:
            cur = obj
            for p in path:
                cur = cur.get(p) if isinstance(cur, dict) else None
            if ((cur or "") == val) != eq:
                return False
        return True

    return match


# --------------------------------------------------------------------------------------------
# Object store with resourceVersions and a bounded event history for watches

DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Store:
    def __init__(self, history):
        self.lock = threading.Condition()
        self.rv = 1
        self.objects = {}  # (resource, namespace, name) -> object (with kind/apiVersion)
        self.events = []  # (rv, type, resource, object)
        self.compacted = 0  # watches from a version below this get 410 Expired
        self.history = history
        self.closed = False

    def next_rv(self):
        self.rv += 1
        return self.rv

    def record(self, etype, res, obj):
        """Caller holds the lock; obj already carries its new resourceVersion."""
        rv = int(obj["metadata"]["resourceVersion"])
        self.events.append((rv, etype, res, copy.deepcopy(obj)))
        if len(self.events) > self.history:
            dropped = self.events[: len(self.events) - self.history]
            self.events = self.events[len(dropped):]
            self.compacted = max(self.compacted, dropped[-1][0])
        self.lock.notify_all()

    def put(self, res, obj, etype):
        md = obj["metadata"]
        md["resourceVersion"] = str(self.next_rv())
        self.objects[(res, md.get("namespace", ""), md["name"])] = obj
        self.record(etype, res, obj)

    def remove(self, res, obj):
        md = obj["metadata"]
        del self.objects[(res, md.get("namespace", ""), md["name"])]
        md["resourceVersion"] = str(self.next_rv())
        self.record("DELETED", res, obj)


# --------------------------------------------------------------------------------------------
# Request routing

def rules_from(doc):
    """PolicyRules from a list of rules, a ClusterRole/Role, or a List of them."""
    if isinstance(doc, dict) and doc.get("kind") in ("ClusterRole", "Role"):
        return list(doc.get("rules") or [])
    if isinstance(doc, dict) and "items" in doc:
        return [r for item in doc["items"] for r in rules_from(item)]
    if isinstance(doc, list):
        out = []
        for item in doc:
            out += rules_from(item) if isinstance(item, dict) and "kind" in item else [item]
        return out
    raise ValueError("RBAC rules: expected a list of PolicyRules, a (Cluster)Role or a List")


def rbac_allows(rules, info):
    """The RBAC authorizer's rule match for a resource request (no aggregation, no non-resource URLs)."""
    res = info.resource
    what = res.plural + (f"/{info.subresource}" if info.subresource else "")
    for r in rules:
        if not any(g in ("*", res.group) for g in r.get("apiGroups") or []):
            continue
        if not any(x in ("*", what) or (x == f"*/{info.subresource}" and info.subresource)
                   for x in r.get("resources") or []):
            continue
        if not any(v in ("*", info.verb) for v in r.get("verbs") or []):
            continue
        names = r.get("resourceNames") or []
        if names and info.name not in names:
            continue
        return True
    return False


class RequestInfo:
    """What the API server's RequestInfoResolver derives from a URL."""

    def __init__(self):
        self.path = ""
        self.verb = ""
        self.resource = None
        self.namespace = ""
        self.name = ""
        self.subresource = ""


class FakeApiServer:
    def __init__(self, args):
        self.args = args
        self.store = Store(args.history)
        self.resources = []
        self.tokens = {args.token} if args.token else set()
        self.user = args.user
        self.faults = []
        self.rbac_rules = None  # None: everything allowed; else RBAC PolicyRules of the token's user
        if args.rbac:
            with open(args.rbac) as f:
                self.rbac_rules = rules_from(json.load(f))
        self.requests = []
        self.req_seq = 0
        self.ctl_lock = threading.Lock()
        for r in builtin_resources():
            self.add_resource(r)
        self.add_resource(resource_from_crd(PEERPOD_CRD))
        for path in args.crd or []:
            with open(path) as f:
                doc = json.load(f)
            for crd in doc if isinstance(doc, list) else [doc]:
                self.add_resource(resource_from_crd(crd))
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.insert_raw({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns},
                             "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
        if args.seed:
            with open(args.seed) as f:
                doc = json.load(f)
            items = doc.get("items", []) if isinstance(doc, dict) and "items" in doc else doc
            for obj in items if isinstance(items, list) else [items]:
                self.insert_raw(obj)

    def add_resource(self, res):
        old = self.find_resource(res.group, res.version, res.plural)
        if old is not None:
            old.__dict__.update(res.__dict__)  # keep the identity: stored objects are keyed by it
        else:
            self.resources.append(res)

    def find_resource(self, group, version, plural):
        for r in self.resources:
            if r.group == group and r.version == version and r.plural == plural:
                return r
        return None

    def resource_for_object(self, obj):
        api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
        group, _, version = api_version.rpartition("/")
        for r in self.resources:
            if r.group == group and r.version == version and r.kind == kind:
                return r
        raise ApiError(400, f'no resource for apiVersion "{api_version}" kind "{kind}"')

    # ---- control-plane helpers -------------------------------------------------------------

    def insert_raw(self, obj):
        """Seed/control path: stores the object as given (no validation), like writing to etcd."""
        obj = copy.deepcopy(obj)
        res = self.resource_for_object(obj)
        md = obj.setdefault("metadata", {})
        if not md.get("name"):
            raise ApiError(400, "seed object without metadata.name")
        if res.namespaced:
            md.setdefault("namespace", "default")
        else:
            md.pop("namespace", None)
        md.setdefault("uid", str(uuid.uuid4()))
        md.setdefault("creationTimestamp", now_rfc3339())
        with self.store.lock:
            key = (res, md.get("namespace", ""), md["name"])
            self.store.put(res, obj, "MODIFIED" if key in self.store.objects else "ADDED")
        return obj

    # ---- authentication ----------------------------------------------------------------------

    def authenticate(self, handler):
        """Returns the user name, or None (401). Without --token everyone is let in."""
        auth = handler.headers.get("Authorization", "")
        cert_user = handler.client_cert_user()
        if auth.startswith("Bearer "):
            tok = auth[7:].strip()
            with self.ctl_lock:
                if tok in self.tokens:
                    return self.user
            return None  # a wrong token is refused even if a certificate is present (as the API server)
        if cert_user:
            return cert_user
        if not self.tokens and not self.args.client_ca:
            return self.user
        return None


def parse_bool(text):
    """Go's strconv.ParseBool, which the API server uses for query flags."""
    return text in ("1", "t", "T", "TRUE", "true", "True")


def make_info(server, method, path, query):
    info = RequestInfo()
    info.path = path
    parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif parts[0] == "apis" and len(parts) >= 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if not rest:
        return None
    if rest[0] == "namespaces" and len(rest) >= 3:
        info.namespace, rest = rest[1], rest[2:]
    res = server.find_resource(group, version, rest[0])
    if res is None:
        return None
    info.resource = res
    if len(rest) >= 2:
        info.name = rest[1]
    if len(rest) >= 3:
        info.subresource = rest[2]
    if len(rest) > 3:
        return None
    if res.plural == "namespaces" and info.name:
        info.namespace = info.name
    is_watch = parse_bool(query.get("watch", [""])[0])
    if method == "GET":
        info.verb = "watch" if is_watch else ("get" if info.name else "list")
    else:
        info.verb = {"POST": "create", "PUT": "update", "PATCH": "patch",
                     "DELETE": "delete" if info.name else "deletecollection"}.get(method, method.lower())
    return info


# --------------------------------------------------------------------------------------------
# HTTP

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle plus the client's
    # delayed ACK add ~40 ms to every answer on a kept-alive connection.
    disable_nagle_algorithm = True
    server_version = "fake-kube-apiserver/1"
    MAX_BODY = 3 * 1024 * 1024  # the API server's default request size limit

    def log_message(self, fmt, *args):  # the request log is /_fake/requests
        pass

    @property
    def fake(self):
        return self.server.fake

    def client_cert_user(self):
        if not isinstance(self.connection, ssl.SSLSocket):
            return None
        cert = self.connection.getpeercert()
        if not cert:
            return None
        for rdn in cert.get("subject", ()):
            for k, v in rdn:
                if k == "commonName":
                    return v
        return None

    # Responses -------------------------------------------------------------------------------

    def send_json(self, code, obj, headers=None, mangle=None):
        self.send_body(code, json.dumps(obj).encode(), "application/json", headers, mangle)

    def send_body(self, code, body, content_type, headers=None, mangle=None):
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Audit-Id", str(uuid.uuid4()))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        if mangle == "truncate":
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: max(1, len(body) // 2)])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if mangle == "garbage":
            body = b"\x00\xffnot json {{{" + bytes(random.randrange(256) for _ in range(64))
        elif mangle == "empty":
            body = b""
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_error_status(self, e, mangle=None):
        headers = {"Retry-After": e.retry_after} if e.retry_after else None
        if e.plain_text:
            self.send_body(e.code, e.message.encode(), "text/plain; charset=utf-8", headers, mangle)
        else:
            self.send_json(e.code, e.status(), headers, mangle)
        return e.code

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > self.MAX_BODY:
            raise ApiError(413, "Request entity too large: limit is 3145728")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                data += self.rfile.read(size)
                self.rfile.readline()
                if len(data) > self.MAX_BODY:
                    raise ApiError(413, "Request entity too large: limit is 3145728")
            return data
        return self.rfile.read(n) if n else b""

    # Dispatch --------------------------------------------------------------------------------

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def dispatch(self, method):
        url = urllib.parse.urlsplit(self.path)
        path, query = url.path, urllib.parse.parse_qs(url.query, keep_blank_values=True)
        try:
            body = self.read_body()
        except ApiError as e:
            self.send_error_status(e)
            return
        except (ValueError, OSError):
            self.close_connection = True
            return
        if path.startswith("/_fake/"):
            self.control(method, path, query, body)
            return
        info = make_info(self.fake, method, path, query)
        entry = {"method": method, "path": path, "query": url.query, "verb": info.verb if info else "",
                 "resource": info.resource.plural if info else "", "group": info.resource.group if info else "",
                 "namespace": info.namespace if info else "", "name": info.name if info else "",
                 "subresource": info.subresource if info else "",
                 "contentType": self.headers.get("Content-Type", ""),
                 "userAgent": self.headers.get("User-Agent", ""), "body": None}
        auth = self.headers.get("Authorization", "")
        entry["tokenSha256"] = hashlib.sha256(auth[7:].strip().encode()).hexdigest() if auth.startswith(
            "Bearer ") else ""
        if body:
            try:
                entry["body"] = json.loads(body)
            except ValueError:
                entry["body"] = body[:4096].decode("utf-8", "replace")
        with self.fake.ctl_lock:
            self.fake.req_seq += 1
            entry["seq"] = self.fake.req_seq
            self.fake.requests.append(entry)
        self.last_patch_error = None
        code = self.serve_api(method, path, query, body, info)
        if self.last_patch_error:
            entry["patchError"] = self.last_patch_error
        entry["status"] = code

    def take_fault(self, method, path, query_string):
        target = path + ("?" + query_string if query_string else "")
        with self.fake.ctl_lock:
            for f in self.fake.faults:
                if f["method"] and not re.fullmatch(f["method"], method, re.I):
                    continue
                if not re.search(f["path"], target):
                    continue
                if f["count"] > 0:
                    f["count"] -= 1
                    if f["count"] == 0:
                        self.fake.faults.remove(f)
                return dict(f)
        return None

    def serve_api(self, method, path, query, body, info):
        fault = self.take_fault(method, path, urllib.parse.urlsplit(self.path).query)
        if fault and fault.get("delay"):
            time.sleep(fault["delay"])
        mangle = fault.get("body") if fault else None
        if mangle == "close":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return 0
        user = self.fake.authenticate(self)
        if user is None:
            return self.send_error_status(ApiError(401, "Unauthorized"), mangle)
        with self.fake.ctl_lock:
            rules = self.fake.rbac_rules
        if rules is not None and info is not None and not rbac_allows(rules, info):
            return self.send_error_status(forbidden(info, user), mangle)
        if fault and fault.get("status"):
            e = status_for_code(fault["status"], info or RequestInfo(), user, fault.get("retryAfter"),
                                fault.get("message"), fault.get("statusJson", False))
            return self.send_error_status(e, mangle)
        try:
            if info is None:
                code, obj = self.discovery(path)
            else:
                api = Api(self.fake, info, query, body, self.headers)
                try:
                    code, obj = api.run(self)
                finally:
                    self.last_patch_error = api.patch_error
                if code is None:
                    return 200  # a watch stream, already written
        except ApiError as e:
            return self.send_error_status(e, mangle)
        self.send_json(code, obj, mangle=mangle)
        return code

    # Discovery (legacy, non-aggregated: clients fall back to it) -----------------------------

    def discovery(self, path):
        fake = self.fake
        p = path.rstrip("/")
        if p == "/version":
            return 200, {"major": "1", "minor": "32", "gitVersion": "v1.32.0-fake", "gitCommit": "", "platform":
                         "linux/amd64", "goVersion": "", "compiler": "gc", "buildDate": "", "gitTreeState": "clean"}
        if p == "/healthz" or p == "/readyz" or p == "/livez":
            return 200, "ok"
        if p == "/api":
            host = self.headers.get("Host", "127.0.0.1")
            return 200, {"kind": "APIVersions", "versions": ["v1"],
                         "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}]}
        if p == "/apis":
            groups = {}
            for r in fake.resources:
                if r.group:
                    groups.setdefault(r.group, [])
                    if r.version not in groups[r.group]:
                        groups[r.group].append(r.version)
            out = []
            for g, vs in groups.items():
                gv = [{"groupVersion": f"{g}/{v}", "version": v} for v in vs]
                out.append({"name": g, "versions": gv, "preferredVersion": gv[0]})
            return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": out}
        m = re.fullmatch(r"/api/(v1)|/apis/([^/]+)/([^/]+)", p)
        if m:
            group, version = ("", "v1") if m.group(1) else (m.group(2), m.group(3))
            lst = []
            for r in fake.resources:
                if r.group != group or r.version != version:
                    continue
                entry = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                         "kind": r.kind, "verbs": ALL_VERBS}
                if r.short_names:
                    entry["shortNames"] = r.short_names
                lst.append(entry)
                if r.has_status:
                    lst.append({"name": f"{r.plural}/status", "singularName": "", "namespaced": r.namespaced,
                                "kind": r.kind, "verbs": ["get", "patch", "update"]})
            if lst:
                return 200, {"kind": "APIResourceList", "apiVersion": "v1",
                             "groupVersion": f"{group}/{version}" if group else version, "resources": lst}
        raise ApiError(404, "the server could not find the requested resource", details={})

    # Control endpoints -----------------------------------------------------------------------

    def control(self, method, path, query, body):
        fake = self.fake
        try:
            data = json.loads(body) if body else None
        except ValueError as e:
            self.send_json(400, {"error": f"bad JSON: {e}"})
            return
        try:
            if path == "/_fake/faults":
                if method == "POST":
                    items = data if isinstance(data, list) else [data]
                    added = []
                    for f in items:
                        if not isinstance(f, dict) or not isinstance(f.get("path", ""), str):
                            raise ValueError("a fault is an object with at least 'path'")
                        fault = {"method": f.get("method", ""), "path": f.get("path", ""),
                                 "status": int(f.get("status", 0) or 0), "count": int(f.get("count", 1)),
                                 "retryAfter": f.get("retryAfter"), "delay": float(f.get("delay", 0) or 0),
                                 "body": f.get("body"), "message": f.get("message"),
                                 "statusJson": bool(f.get("statusJson", False))}
                        re.compile(fault["path"])
                        re.compile(fault["method"] or ".")
                        if fault["body"] not in (None, "truncate", "garbage", "empty", "close"):
                            raise ValueError("body must be truncate, garbage, empty or close")
                        added.append(fault)
                    with fake.ctl_lock:
                        fake.faults.extend(added)
                    self.send_json(200, {"added": len(added)})
                elif method == "DELETE":
                    with fake.ctl_lock:
                        fake.faults.clear()
                    self.send_json(200, {})
                else:
                    with fake.ctl_lock:
                        self.send_json(200, {"faults": list(fake.faults)})
            elif path == "/_fake/requests":
                if method == "DELETE":
                    with fake.ctl_lock:
                        fake.requests.clear()
                    self.send_json(200, {})
                else:
                    since = int(query.get("since", ["0"])[0])
                    with fake.ctl_lock:
                        reqs = [r for r in fake.requests if r["seq"] > since and "status" in r]
                    self.send_json(200, {"requests": reqs})
            elif path == "/_fake/objects":
                if method == "POST":
                    items = data if isinstance(data, list) else [data]
                    stored = [fake.insert_raw(o) for o in items]
                    self.send_json(200, {"items": stored})
                else:
                    want = query.get("resource", [""])[0]
                    with fake.store.lock:
                        objs = [copy.deepcopy(o) for (r, _, _), o in sorted(
                            fake.store.objects.items(), key=lambda kv: (kv[0][0].plural, kv[0][1], kv[0][2]))
                            if not want or r.plural == want or r.group_resource == want]
                    self.send_json(200, {"resourceVersion": str(fake.store.rv), "items": objs})
            elif path == "/_fake/token" and method == "POST":
                toks = data.get("tokens") if isinstance(data, dict) and "tokens" in data else [
                    (data or {}).get("token")]
                if not all(isinstance(t, str) and t for t in toks):
                    raise ValueError("token must be a non-empty string")
                with fake.ctl_lock:
                    fake.tokens = set(toks)
                self.send_json(200, {})
            elif path == "/_fake/rbac" and method == "POST":
                rules = None if data is None or data.get("rules") is None else rules_from(data["rules"])
                with fake.ctl_lock:
                    fake.rbac_rules = rules
                self.send_json(200, {})
            elif path == "/_fake/compact" and method == "POST":
                with fake.store.lock:
                    fake.store.compacted = fake.store.rv
                    fake.store.events.clear()
                self.send_json(200, {"compacted": str(fake.store.rv)})
            elif path == "/_fake/healthz":
                self.send_json(200, {"ok": True})
            else:
                self.send_json(404, {"error": "unknown control endpoint"})
        except ApiError as e:
            self.send_json(e.code, e.status())
        except (ValueError, TypeError, re.error) as e:
            self.send_json(400, {"error": str(e)})


# --------------------------------------------------------------------------------------------
# The API semantics of one request

PATCH_TYPES_BUILTIN = ["application/json-patch+json", "application/merge-patch+json",
                       "application/strategic-merge-patch+json", "application/apply-patch+yaml"]
PATCH_TYPES_CUSTOM = ["application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"]
SERVER_MANAGED_METADATA = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                           "generation", "selfLink")


class Api:
    def __init__(self, fake, info, query, body, headers):
        self.fake, self.info, self.query, self.body, self.headers = fake, info, query, body, headers
        self.res = info.resource
        self.store = fake.store
        self.patch_error = None

    def q(self, name, default=""):
        return self.query.get(name, [default])[0]

    def run(self, handler):
        i = self.info
        if i.subresource and (i.subresource != "status" or not self.res.has_status):
            raise ApiError(404, "the server could not find the requested resource", details={})
        if self.res.namespaced and not i.namespace and i.verb not in ("list", "watch"):
            raise ApiError(404, "the server could not find the requested resource", details={})
        if not self.res.namespaced and self.res.plural != "namespaces" and i.namespace:
            raise ApiError(404, "the server could not find the requested resource", details={})
        if i.verb == "watch":
            self.watch(handler)
            return None, None
        handler_fn = {"get": self.get, "list": self.list, "create": self.create, "update": self.update,
                      "patch": self.patch, "delete": self.delete}.get(i.verb)
        if handler_fn is None or (i.subresource and i.verb not in ("get", "update", "patch")):
            raise ApiError(405, "the server does not allow this method on the requested resource",
                           details={})
        return handler_fn()

    # helpers ------------------------------------------------------------------------------

    def key(self, name=None):
        ns = self.info.namespace if self.res.namespaced else ""
        return (self.res, ns, name or self.info.name)

    def current(self):
        obj = self.store.objects.get(self.key())
        if obj is None:
            raise not_found(self.res, self.info.name)
        return obj

    def decode(self):
        try:
            obj = json.loads(self.body or b"")
        except ValueError as e:
            raise ApiError(400, f"couldn't get version/kind; json parse error: {e}")
        if not isinstance(obj, dict):
            raise ApiError(400, "couldn't get version/kind; json parse error: body is not a JSON object")
        self.check_kind(obj)
        return obj

    def check_kind(self, obj):
        # Missing apiVersion/kind are defaulted from the URL, wrong ones refused.
        av, kind = obj.setdefault("apiVersion", self.res.api_version), obj.setdefault("kind", self.res.kind)
        if av != self.res.api_version:
            raise ApiError(400, f"the API version in the data ({av}) does not match the expected API version "
                                f"({self.res.api_version})")
        if kind != self.res.kind:
            raise ApiError(400, f"the kind in the data ({kind}) does not match the expected kind ({self.res.kind})")
        md = obj.get("metadata")
        if md is None:
            obj["metadata"] = {}
        elif not isinstance(md, dict):
            raise ApiError(400, "metadata must be an object")

    def output(self, obj):
        return copy.deepcopy(obj)

    def validate(self, obj, name):
        """The per-type validation clients meet most often; CRs: structural schema + pruning."""
        errs = []
        md = obj["metadata"]
        if not isinstance(md.get("labels", {}), dict) or not isinstance(md.get("annotations", {}), dict):
            errs.append(("metadata", "Invalid value: labels and annotations must be string maps", "FieldValueInvalid"))
        for field in ("labels", "annotations"):
            for k, v in (md.get(field) or {}).items():
                if not isinstance(v, str):
                    errs.append((f"metadata.{field}", f"Invalid value: {json.dumps(v)}: must be a string",
                                 "FieldValueTypeInvalid"))
        fins = md.get("finalizers", [])
        if not isinstance(fins, list) or not all(isinstance(f, str) and f for f in fins):
            errs.append(("metadata.finalizers", "Invalid value: finalizers must be non-empty strings",
                         "FieldValueInvalid"))
        for i, ref in enumerate(md.get("ownerReferences") or []):
            for req in ("apiVersion", "kind", "name", "uid"):
                if not isinstance(ref, dict) or not ref.get(req):
                    errs.append((f"metadata.ownerReferences[{i}].{req}", "Required value", "FieldValueRequired"))
        ctrl = [r for r in md.get("ownerReferences") or [] if isinstance(r, dict) and r.get("controller")]
        if len(ctrl) > 1:
            errs.append(("metadata.ownerReferences", "Invalid value: only one reference can have Controller set "
                         "to true", "FieldValueInvalid"))
        kind = self.res.kind
        if self.res.custom and self.res.schema:
            props = self.res.schema.get("properties") or {}
            preserve = self.res.schema.get("x-kubernetes-preserve-unknown-fields")
            for k in list(obj):
                if k in ("apiVersion", "kind", "metadata"):
                    continue
                if k in props:
                    validate_schema(obj[k], props[k], k, errs)
                elif not preserve:
                    del obj[k]  # pruned, as the API server does with unknown fields
        elif kind == "Pod":
            containers = (obj.get("spec") or {}).get("containers")
            if not isinstance(containers, list) or not containers:
                errs.append(("spec.containers", "Required value", "FieldValueRequired"))
            else:
                for i, c in enumerate(containers):
                    if not isinstance(c, dict) or not c.get("name"):
                        errs.append((f"spec.containers[{i}].name", "Required value", "FieldValueRequired"))
                    if not isinstance(c, dict) or not c.get("image"):
                        errs.append((f"spec.containers[{i}].image", "Required value", "FieldValueRequired"))
        elif kind == "Secret":
            self.validate_secret(obj, errs)
        elif kind == "Lease":
            spec = obj.get("spec") or {}
            if "leaseDurationSeconds" in spec and (not isinstance(spec["leaseDurationSeconds"], int)
                                                   or spec["leaseDurationSeconds"] <= 0):
                errs.append(("spec.leaseDurationSeconds", f"Invalid value: {spec['leaseDurationSeconds']}: "
                             "must be greater than 0", "FieldValueInvalid"))
        elif kind == "Event" and self.res.group == "":
            if not isinstance(obj.get("involvedObject"), dict):
                errs.append(("involvedObject", "Required value", "FieldValueRequired"))
            if obj.get("type") not in (None, "", "Normal", "Warning"):
                errs.append(("type", f'Unsupported value: "{obj.get("type")}": supported values: "Normal", '
                             '"Warning"', "FieldValueNotSupported"))
        if errs:
            raise invalid(self.res, name, errs)

    @staticmethod
    def validate_secret(obj, errs):
        data = obj.get("data") or {}
        if not isinstance(data, dict):
            raise ApiError(400, "Secret.data: must be a map of base64 strings")
        decoded = {}
        for k, v in data.items():
            try:
                decoded[k] = base64.b64decode(v, validate=True)
            except (ValueError, TypeError):
                raise ApiError(400, f'Secret in version "v1" cannot be handled as a Secret: illegal base64 '
                                    f'data at input byte 0 (key {k})')
        string_data = obj.pop("stringData", None) or {}
        for k, v in string_data.items():
            decoded[k] = str(v).encode()
            data[k] = base64.b64encode(decoded[k]).decode()
        if data:
            obj["data"] = data
        stype = obj.setdefault("type", "Opaque")
        wanted = {"kubernetes.io/dockerconfigjson": ".dockerconfigjson", "kubernetes.io/dockercfg": ".dockercfg"}
        if stype in wanted:
            key = wanted[stype]
            if key not in decoded:
                errs.append((f"data[{key}]", "Required value", "FieldValueRequired"))
            else:
                try:
                    json.loads(decoded[key])
                except ValueError as e:
                    errs.append((f"data[{key}]", f'Invalid value: "<secret contents redacted>": {e}',
                                 "FieldValueInvalid"))

    def store_update(self, old, new):
        """Shared by PUT and PATCH: server-managed fields, subresource rules, finalizers, conflicts."""
        res, info = self.res, self.info
        name = info.name
        omd, nmd = old["metadata"], new["metadata"]
        rv = nmd.get("resourceVersion")
        if rv in (None, ""):
            if not res.allow_unconditional_update:
                raise invalid(res, name, [("metadata.resourceVersion",
                                           "Invalid value: 0x0: must be specified for an update",
                                           "FieldValueInvalid")])
        elif rv != omd["resourceVersion"]:
            raise conflict(res, name)
        if nmd.get("name", name) != name:
            raise ApiError(400, f"the name of the object ({nmd.get('name')}) does not match the name on the URL "
                                f"({name})")
        if res.namespaced and nmd.get("namespace", info.namespace) != info.namespace:
            raise ApiError(400, "the namespace of the provided object does not match the namespace sent on the "
                                "request")
        if nmd.get("uid") not in (None, omd["uid"]):
            raise ApiError(409, f'Precondition failed: UID in precondition: {nmd["uid"]}, UID in object meta: '
                                f'{omd["uid"]}', "Conflict", _details(res, name))
        nmd["name"] = name
        if res.namespaced:
            nmd["namespace"] = info.namespace
        for k in SERVER_MANAGED_METADATA:
            if k in omd:
                nmd[k] = omd[k]
            else:
                nmd.pop(k, None)
        if info.subresource == "status":
            keep_md = nmd if res.status_keeps_metadata else copy.deepcopy(omd)
            status = new.get("status")
            new = {k: copy.deepcopy(v) for k, v in old.items() if k != "status"}
            new["metadata"] = keep_md
            if status is not None:
                new["status"] = status
            nmd = keep_md
        elif res.has_status:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        self.validate(new, name)
        if omd.get("deletionTimestamp"):
            added = set(nmd.get("finalizers") or []) - set(omd.get("finalizers") or [])
            if added:
                raise invalid(res, name, [("metadata.finalizers", "Forbidden: no new finalizers can be added if "
                                           "the object is being deleted, found new finalizers " +
                                           json.dumps(sorted(added)), "FieldValueForbidden")])
        if not nmd.get("finalizers"):
            nmd.pop("finalizers", None)
        nmd["resourceVersion"] = omd["resourceVersion"]
        if new == old:
            return 200, self.output(old)  # no-op updates keep the resourceVersion
        if res.has_generation and {k: v for k, v in new.items() if k not in ("metadata", "status")} != {
                k: v for k, v in old.items() if k not in ("metadata", "status")}:
            nmd["generation"] = int(omd.get("generation", 1)) + 1
        if nmd.get("deletionTimestamp") and not nmd.get("finalizers"):
            self.store.remove(res, new)  # the last finalizer is gone: the object goes away
            return 200, self.output(new)
        self.store.put(res, new, "MODIFIED")
        return 200, self.output(new)

    # verbs --------------------------------------------------------------------------------

    def get(self):
        with self.store.lock:
            return 200, self.output(self.current())

    def selected(self):
        try:
            lsel = parse_label_selector(self.q("labelSelector"))
            fsel = parse_field_selector(self.q("fieldSelector"))
        except ValueError as e:
            raise ApiError(400, f"unable to parse requirement: {e}")
        ns = self.info.namespace if self.res.namespaced else ""

        def match(obj):
            md = obj["metadata"]
            if ns and md.get("namespace") != ns:
                return False
            return lsel(md.get("labels")) and fsel(obj)

        return match

    def list(self):
        match = self.selected()
        with self.store.lock:
            items = [copy.deepcopy(o) for (r, ns, n), o in sorted(self.store.objects.items(),
                                                                   key=lambda kv: (kv[0][1], kv[0][2]))
                     if r is self.res and match(o)]
            rv = str(self.store.rv)
        rv_req, match_mode = self.q("resourceVersion"), self.q("resourceVersionMatch")
        if match_mode == "Exact" and rv_req and int(rv_req) < self.store.compacted:
            raise ApiError(410, "The resourceVersion for the provided list is too old.", "Expired", details={})
        start = 0
        if self.q("continue"):
            try:
                start = int(base64.b64decode(self.q("continue")).decode())
            except ValueError:
                raise ApiError(400, "continue key is not valid: illegal base64 data", details={})
        meta = {"resourceVersion": rv}
        limit = int(self.q("limit", "0") or 0)
        if limit > 0:
            if start + limit < len(items):
                meta["continue"] = base64.b64encode(str(start + limit).encode()).decode()
                meta["remainingItemCount"] = len(items) - start - limit
            items = items[start:start + limit]
        else:
            items = items[start:]
        if not self.res.custom:
            for o in items:  # built-in list items carry no kind/apiVersion on the wire
                o.pop("kind", None)
                o.pop("apiVersion", None)
        return 200, {"kind": self.res.kind + "List", "apiVersion": self.res.api_version, "metadata": meta,
                     "items": items}

    def create(self):
        res, info = self.res, self.info
        if info.name:
            raise ApiError(405, "the server does not allow this method on the requested resource", details={})
        obj = self.decode()
        md = obj["metadata"]
        if res.namespaced:
            if md.get("namespace") and md["namespace"] != info.namespace:
                raise ApiError(400, "the namespace of the provided object does not match the namespace sent on "
                                    "the request")
            md["namespace"] = info.namespace
        else:
            md.pop("namespace", None)
        if not md.get("name") and md.get("generateName"):
            md["name"] = md["generateName"] + "".join(random.choice("bcdfghjklmnpqrstvwxz2456789")
                                                      for _ in range(5))
        name = md.get("name") or ""
        if not name:
            raise invalid(res, "", [("metadata.name", "Required value: name or generateName is required",
                                     "FieldValueRequired")])
        if len(name) > 253 or not DNS1123_SUBDOMAIN.fullmatch(name):
            raise invalid(res, name, [("metadata.name", f'Invalid value: "{name}": a lowercase RFC 1123 subdomain '
                                       "must consist of lower case alphanumeric characters, '-' or '.', and must "
                                       "start and end with an alphanumeric character", "FieldValueInvalid")])
        if md.get("resourceVersion"):
            raise ApiError(500, "Internal error occurred: resourceVersion should not be set on objects to be "
                                "created", details={"causes": [{"message": "resourceVersion should not be set "
                                                                           "on objects to be created"}]})
        for k in SERVER_MANAGED_METADATA:
            md.pop(k, None)
        if res.custom and res.has_status:
            obj.pop("status", None)
        if res.kind == "Pod":
            obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
        if res.kind == "ServiceAccount":
            obj.pop("secrets", None) if obj.get("secrets") is None else None
        self.validate(obj, name)
        with self.store.lock:
            if res.namespaced and (self.fake.find_resource("", "v1", "namespaces"), "",
                                   info.namespace) not in self.store.objects:
                ns_res = self.fake.find_resource("", "v1", "namespaces")
                raise not_found(ns_res, info.namespace)
            if self.key(name) in self.store.objects:
                raise already_exists(res, name)
            md["uid"] = str(uuid.uuid4())
            md["creationTimestamp"] = now_rfc3339()
            if res.has_generation:
                md["generation"] = 1
            if not md.get("finalizers"):
                md.pop("finalizers", None)
            if res.kind == "CustomResourceDefinition":
                self.establish_crd(obj)
            self.store.put(res, obj, "ADDED")
            return 201, self.output(obj)

    def establish_crd(self, crd):
        """A created CRD is served at once (the real server takes a moment to set Established)."""
        try:
            served = resource_from_crd(crd)
        except (ValueError, KeyError, TypeError) as e:
            raise invalid(self.res, crd["metadata"]["name"], [("spec", f"Invalid value: {e}", "FieldValueInvalid")])
        expected = f"{served.plural}.{served.group}"
        if crd["metadata"]["name"] != expected:
            raise invalid(self.res, crd["metadata"]["name"], [(
                "metadata.name", f'Invalid value: "{crd["metadata"]["name"]}": must be spec.names.plural+"."+'
                f'spec.group', "FieldValueInvalid")])
        self.fake.add_resource(served)
        now = now_rfc3339()
        crd["status"] = {"acceptedNames": crd["spec"]["names"], "storedVersions": [served.version],
                         "conditions": [{"type": t, "status": "True", "lastTransitionTime": now, "reason": r,
                                         "message": m} for t, r, m in (
                             ("NamesAccepted", "NoConflicts", "no conflicts found"),
                             ("Established", "InitialNamesAccepted", "the initial names have been accepted"))]}

    def update(self):
        new = self.decode()
        with self.store.lock:
            old = self.current()
            return self.store_update(old, new)

    def patch(self):
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        allowed = PATCH_TYPES_CUSTOM if self.res.custom else PATCH_TYPES_BUILTIN
        if ctype not in allowed or ctype == "application/apply-patch+yaml":
            why = "" if ctype != "application/apply-patch+yaml" else " (server-side apply is not implemented " \
                                                                    "by the fake)"
            raise ApiError(415, f"the body of the request was in an unknown format - accepted media types "
                                f"include: {', '.join(allowed)}{why}", details={})
        try:
            patch = json.loads(self.body or b"")
        except ValueError as e:
            raise ApiError(400, f"error decoding patch: {e}")
        with self.store.lock:
            old = self.current()
            doc = copy.deepcopy(old)
            if ctype == "application/json-patch+json":
                if not isinstance(patch, list):
                    raise ApiError(400, "json: cannot unmarshal object into Go value of type jsonpatch.Patch")
                try:
                    doc = apply_json_patch(doc, patch)
                except PatchError as e:
                    # The API server drops the patch library's text here (NewGenericServerResponse
                    # without causes); the fake keeps it in its request log for test diagnostics.
                    self.patch_error = str(e)
                    raise ApiError(422, "the server rejected our request due to an error in our request",
                                   details={})
            else:
                # Strategic merge patch is treated as a merge patch: lists are replaced, not merged by key
                # (documented deviation; the daemon and controllers use JSON and merge patches).
                if not isinstance(patch, dict):
                    raise ApiError(400, "error decoding patch: the patch is not a JSON object")
                patch.pop("$patch", None)
                doc = apply_merge_patch(doc, patch)
            if not isinstance(doc, dict):
                raise ApiError(422, "the server rejected our request due to an error in our request",
                               details={})
            doc.setdefault("metadata", {})
            if not isinstance(doc["metadata"], dict):
                raise ApiError(422, "the server rejected our request due to an error in our request",
                               details={})
            self.check_kind(doc)
            return self.store_update(old, doc)

    def delete(self):
        res = self.res
        opts = {}
        if self.body:
            try:
                opts = json.loads(self.body)
            except ValueError as e:
                raise ApiError(400, f"error decoding DeleteOptions: {e}")
            if not isinstance(opts, dict):
                raise ApiError(400, "DeleteOptions must be a JSON object")
        with self.store.lock:
            obj = self.current()
            md = obj["metadata"]
            pre = opts.get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != md["uid"]:
                raise ApiError(409, f'Precondition failed: UID in precondition: {pre["uid"]}, UID in object '
                                    f'meta: {md["uid"]}', "Conflict", _details(res, self.info.name))
            if pre.get("resourceVersion") and pre["resourceVersion"] != md["resourceVersion"]:
                raise ApiError(409, f'Precondition failed: ResourceVersion in precondition: '
                                    f'{pre["resourceVersion"]}, ResourceVersion in object meta: '
                                    f'{md["resourceVersion"]}', "Conflict", _details(res, self.info.name))
            if md.get("finalizers"):
                if not md.get("deletionTimestamp"):
                    obj = copy.deepcopy(obj)
                    obj["metadata"]["deletionTimestamp"] = now_rfc3339()
                    obj["metadata"]["deletionGracePeriodSeconds"] = 0
                    self.store.put(res, obj, "MODIFIED")
                return 200, self.output(obj)
            self.store.remove(res, obj)
            if res.returns_deleted_object:
                return 200, self.output(obj)
            return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                         "details": {**_details(res, self.info.name), "uid": md["uid"]}}

    # watch --------------------------------------------------------------------------------

    def watch(self, handler):
        match = self.selected()
        bookmarks = parse_bool(self.q("allowWatchBookmarks"))
        timeout = float(self.q("timeoutSeconds", "0") or 0) or self.fake.args.max_watch_seconds
        timeout = min(timeout, self.fake.args.max_watch_seconds)
        rv_req = self.q("resourceVersion")
        store = self.store
        pending = []
        with store.lock:
            if rv_req in ("", "0"):
                last = store.rv
                for (r, _, _), o in sorted(store.objects.items(), key=lambda kv: (kv[0][1], kv[0][2])):
                    if r is self.res and match(o):
                        pending.append({"type": "ADDED", "object": copy.deepcopy(o)})
            else:
                try:
                    last = int(rv_req)
                except ValueError:
                    raise ApiError(400, f'invalid resource version "{rv_req}"')
                if last < store.compacted:
                    pending.append({"type": "ERROR", "object": ApiError(
                        410, f"too old resource version: {last} ({store.compacted + 1})", "Expired").status()})
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()

        def emit(ev):
            data = json.dumps(ev).encode() + b"\n"
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            handler.wfile.flush()

        deadline = time.monotonic() + timeout
        interval = self.fake.args.bookmark_interval
        next_bookmark = time.monotonic() + interval
        try:
            for ev in pending:
                emit(ev)
            if pending and pending[-1]["type"] == "ERROR":
                raise StopIteration
            while True:
                with store.lock:
                    events = [e for e in store.events if e[0] > last and e[2] is self.res]
                    if not events:
                        wait = min(deadline, next_bookmark) - time.monotonic()
                        if wait > 0 and not store.closed:
                            store.lock.wait(wait)
                        events = [e for e in store.events if e[0] > last and e[2] is self.res]
                    current = store.rv
                    closed = store.closed
                for rv, etype, _, obj in events:
                    last = rv
                    if match(obj):
                        emit({"type": etype, "object": copy.deepcopy(obj)})
                now = time.monotonic()
                if closed or now >= deadline:
                    break
                if bookmarks and now >= next_bookmark:
                    last = max(last, current)
                    emit({"type": "BOOKMARK", "object": {"kind": self.res.kind, "apiVersion": self.res.api_version,
                                                         "metadata": {"resourceVersion": str(last)}}})
                if now >= next_bookmark:
                    next_bookmark = now + interval
            handler.wfile.write(b"0\r\n\r\n")
            handler.wfile.flush()
        except StopIteration:
            handler.wfile.write(b"0\r\n\r\n")
            handler.wfile.flush()
        except OSError:
            handler.close_connection = True


# --------------------------------------------------------------------------------------------

class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, fake, tls_ctx):
        self.fake = fake
        self.tls_ctx = tls_ctx
        super().__init__(addr, Handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.tls_ctx:
            # Handshake in the handler thread, so a stalled client cannot block accept().
            sock = self.tls_ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address):
        pass  # client gone mid-request, TLS handshake refused: nothing to answer


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--seed", help="JSON file: an object, a list, or a List of objects to preload")
    ap.add_argument("--crd", action="append", help="JSON file with CustomResourceDefinition(s) to serve")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--client-ca", help="accept client certificates signed by this CA (user = CN)")
    ap.add_argument("--token", help="required bearer token (changeable with POST /_fake/token)")
    ap.add_argument("--user", default="system:serviceaccount:confidential-containers-system:cloud-api-adaptor",
                    help="user name the token authenticates as (in Forbidden messages)")
    ap.add_argument("--rbac", help="JSON file: PolicyRules (or a ClusterRole) granted to the authenticated user; "
                                   "other requests get 403 (default: everything allowed)")
    ap.add_argument("--history", type=int, default=1000, help="watch events kept before 410 Expired")
    ap.add_argument("--bookmark-interval", type=float, default=1.0)
    ap.add_argument("--max-watch-seconds", type=float, default=300.0)
    args = ap.parse_args()
    if bool(args.tls_cert) != bool(args.tls_key):
        ap.error("--tls-cert and --tls-key go together")
    if args.client_ca and not args.tls_cert:
        ap.error("--client-ca needs TLS")
    tls_ctx = None
    if args.tls_cert:
        tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls_ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        tls_ctx.load_cert_chain(args.tls_cert, args.tls_key)
        if args.client_ca:
            tls_ctx.load_verify_locations(args.client_ca)
            tls_ctx.verify_mode = ssl.CERT_OPTIONAL
    try:
        fake = FakeApiServer(args)
    except (OSError, ValueError, ApiError) as e:
        print(f"fake-kube-apiserver: {e}", file=sys.stderr)
        return 2
    srv = Server((args.host, args.port), fake, tls_ctx)

    def stop(*_):
        with fake.store.lock:
            fake.store.closed = True
            fake.store.lock.notify_all()
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"PORT {srv.server_address[1]}", flush=True)
    srv.serve_forever(poll_interval=0.2)
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
