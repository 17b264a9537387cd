// The official Azure SDK (@azure/arm-compute 23.x, api-version 2025-04-01)
// as an oracle for the Azure provider tests.
//
//   node oracle.js bodies < cases.json
//     cases: [{"name", "body"}] (VM PUT bodies in wire form). Each body is
//     deserialised with the SDK's VirtualMachine mapper and serialised back;
//     serialisation validates required fields and types. Answers
//     [{"name", "ok", "error", "diff"}]: ok when nothing threw and the
//     key-sorted JSON of the round trip equals the input (a dropped or
//     misplaced field shows up as a diff).
//
//   node oracle.js lro <fake-base-url> <vm-name> < body.json
//     Runs virtualMachines.beginCreateOrUpdateAndWait with the official
//     client, its requests forwarded from https://management.azure.com to the
//     fake endpoint by a custom httpClient (the SDK's bearer policy refuses
//     plain http). Answers {"ok", "error", "provisioningState"}. The fake
//     records the request sequence.
"use strict";

const path = require("path");
const { createSerializer } = require("@azure/core-client");
const { createHttpHeaders } = require("@azure/core-rest-pipeline");
const Mappers = require(path.resolve(__dirname, "node_modules/@azure/arm-compute/dist/commonjs/models/mappers.js"));
const { ComputeManagementClient } = require("@azure/arm-compute");

const ARM = "https://management.azure.com";

function sorted(v) {
  if (Array.isArray(v)) return v.map(sorted);
  if (v && typeof v === "object") {
    const o = {};
    for (const k of Object.keys(v).sort()) if (v[k] !== undefined) o[k] = sorted(v[k]);
    return o;
  }
  return v;
}

// First path where a and b differ, or null.
function diff(a, b, at) {
  if (JSON.stringify(sorted(a)) === JSON.stringify(sorted(b))) return null;
  if (a && b && typeof a === "object" && typeof b === "object" && Array.isArray(a) === Array.isArray(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of [...keys].sort()) {
      const d = diff(a[k], b[k], at + "." + k);
      if (d) return d;
    }
  }
  return at + ": sent " + JSON.stringify(a) + ", round trip " + JSON.stringify(b);
}

function readStdin() {
  return require("fs").readFileSync(0, "utf8");
}

function bodies() {
  const ser = createSerializer(Mappers, false);
  const out = [];
  for (const c of JSON.parse(readStdin())) {
    try {
      const model = ser.deserialize(Mappers.VirtualMachine, c.body, "body");
      const back = ser.serialize(Mappers.VirtualMachine, model, "body");
      const d = diff(c.body, back, "body");
      out.push({ name: c.name, ok: d === null, diff: d });
    } catch (e) {
      out.push({ name: c.name, ok: false, error: String(e && e.message ? e.message : e) });
    }
  }
  process.stdout.write(JSON.stringify(out));
}

async function lro(base, vmName) {
  const ser = createSerializer(Mappers, false);
  const wire = JSON.parse(readStdin());
  const model = ser.deserialize(Mappers.VirtualMachine, wire, "body");
  // A token the fake accepts.
  const tr = await fetch(base + "/tenant-1/oauth2/v2.0/token", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: "grant_type=client_credentials&client_id=client-1&client_secret=s3cr3t-value&scope=" +
      encodeURIComponent(ARM + "/.default"),
  });
  const token = (await tr.json()).access_token;
  const credential = { getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 3600e3 }) };
  const httpClient = {
    async sendRequest(req) {
      const url = req.url.replace(ARM, base);
      const headers = {};
      for (const [k, v] of req.headers) headers[k] = v;
      const res = await fetch(url, { method: req.method, headers, body: req.body });
      const text = await res.text();
      const h = createHttpHeaders();
      res.headers.forEach((v, k) => h.set(k, v));
      return { status: res.status, headers: h, bodyAsText: text, request: req };
    },
  };
  const client = new ComputeManagementClient(credential, "sub-1", { httpClient, retryOptions: { maxRetries: 0 } });
  try {
    const vm = await client.virtualMachines.beginCreateOrUpdateAndWait("rg-1", vmName, model, {
      updateIntervalInMs: 1,
    });
    process.stdout.write(JSON.stringify({ ok: true, provisioningState: vm.provisioningState }));
  } catch (e) {
    process.stdout.write(JSON.stringify({ ok: false, error: String(e && e.message ? e.message : e) }));
  }
}

const mode = process.argv[2];
if (mode === "bodies") bodies();
else if (mode === "lro") lro(process.argv[3], process.argv[4]).catch((e) => {
  console.error(e);
  process.exit(1);
});
else {
  console.error("usage: oracle.js bodies | lro <base> <vm-name>");
  process.exit(2);
}
