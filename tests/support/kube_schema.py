"""Check Kubernetes objects against the official OpenAPI models (run with /usr/bin/python3).

Built-in kinds go through python3-kubernetes: the object is deserialized into the generated model
(which enforces required fields and types) and serialized back; any field that does not survive the
round trip is unknown to the schema or misplaced. Custom resources (PeerPod, ...) are checked against
the openAPIV3Schema of their CRD manifest in deploy/kubernetes/, strictly (unknown fields are errors
here, where the API server would silently prune them).

    problems = check(obj)          # [] when the object is valid
"""
import datetime
import json
import os
import re

import yaml
from kubernetes import client

HERE = os.path.dirname(os.path.abspath(__file__))
SRC_ROOT = os.environ.get("CAA_SOURCE_ROOT", os.path.abspath(os.path.join(HERE, "..", "..")))
CRD_DIR = os.path.join(SRC_ROOT, "deploy", "kubernetes")

# (apiVersion, kind) -> python3-kubernetes model; kinds missing here are looked up by name.
MODELS = {
    ("v1", "Event"): "CoreV1Event",
    ("events.k8s.io/v1", "Event"): "EventsV1Event",
    ("v1", "EventList"): "CoreV1EventList",
    ("events.k8s.io/v1", "EventList"): "EventsV1EventList",
}

_api = client.ApiClient()
_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def _model_name(api_version, kind):
    if (api_version, kind) in MODELS:
        return MODELS[(api_version, kind)]
    group, _, version = api_version.rpartition("/")
    return version.capitalize() + kind


def _norm(v):
    if isinstance(v, dict):
        return {k: _norm(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_norm(x) for x in v]
    if isinstance(v, datetime.datetime):
        return v.astimezone(datetime.timezone.utc).replace(microsecond=0)
    if isinstance(v, str) and _TIME.match(v):
        return datetime.datetime.fromisoformat(v.replace("Z", "+00:00")).astimezone(
            datetime.timezone.utc).replace(microsecond=0)
    return v


def _diff(a, b, path, out):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in a:
            if k not in b:
                out.append(f"{path}.{k}: not in the schema (dropped by the model)")
            else:
                _diff(a[k], b[k], f"{path}.{k}", out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            _diff(x, y, f"{path}[{i}]", out)
    elif a != b:
        out.append(f"{path}: {a!r} does not round-trip (got {b!r})")


def load_crds():
    crds = {}
    for name in sorted(os.listdir(CRD_DIR)):
        if not name.endswith((".yaml", ".yml")):
            continue
        with open(os.path.join(CRD_DIR, name)) as f:
            for doc in yaml.safe_load_all(f):
                if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                    spec = doc["spec"]
                    for v in spec["versions"]:
                        crds[(f"{spec['group']}/{v['name']}", spec["names"]["kind"])] = v["schema"]["openAPIV3Schema"]
    return crds


_CRDS = None


def _schema_problems(value, schema, path, out):
    t = schema.get("type")
    types = {"object": dict, "array": list, "string": str, "boolean": bool, "integer": int, "number": (int, float)}
    if t and not (isinstance(value, types[t]) and not (t in ("integer", "number") and isinstance(value, bool))):
        out.append(f"{path}: {value!r} is not of type {t}")
        return
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{path}: {value!r} not one of {schema['enum']}")
    if isinstance(value, dict):
        for req in schema.get("required", []):
            if req not in value:
                out.append(f"{path}.{req}: required")
        props = schema.get("properties")
        if props is not None and path != ".metadata":
            for k, v in value.items():
                if k in props:
                    _schema_problems(v, props[k], f"{path}.{k}", out)
                elif not schema.get("x-kubernetes-preserve-unknown-fields"):
                    out.append(f"{path}.{k}: not in the schema")
    elif isinstance(value, list) and "items" in schema:
        for i, x in enumerate(value):
            _schema_problems(x, schema["items"], f"{path}[{i}]", out)


def check(obj):
    """Returns a list of problems ([] = valid)."""
    global _CRDS
    if not isinstance(obj, dict) or "kind" not in obj or "apiVersion" not in obj:
        return ["object without apiVersion/kind"]
    key = (obj["apiVersion"], obj["kind"])
    if _CRDS is None:
        _CRDS = load_crds()
    if key in _CRDS:
        out = []
        _schema_problems(obj, _CRDS[key], "", out)
        md = obj.get("metadata", {})
        meta_problems = check_metadata(md)
        return out + meta_problems
    name = _model_name(*key)
    if not hasattr(client, name):
        return [f"no model for {key}"]
    try:
        model = _api._ApiClient__deserialize(json.loads(json.dumps(obj)), name)
    except (ValueError, TypeError) as e:
        return [f"{name}: {e}"]
    back = _api.sanitize_for_serialization(model)
    out = []
    _diff(_norm(obj), _norm(back), "", out)
    return out


def check_metadata(md):
    """ObjectMeta of a custom resource, through the V1ObjectMeta model."""
    try:
        model = _api._ApiClient__deserialize(json.loads(json.dumps(md)), "V1ObjectMeta")
    except (ValueError, TypeError) as e:
        return [f"metadata: {e}"]
    out = []
    _diff(_norm(md), _norm(_api.sanitize_for_serialization(model)), ".metadata", out)
    return out
