// A fake EC2 + STS + IMDSv2 endpoint on 127.0.0.1 for the AWS provider tests.
//
// No EC2 emulator runs here, so this is hand-written, and kept honest by the
// official SDK: every signed request is verified by re-signing it with the
// official @smithy/signature-v4 signer (a mismatch gets AWS's
// SignatureDoesNotMatch error document), and test_aws_fake_sdk.py drives this
// server with the official @aws-sdk/client-ec2 to check that the SDK reads
// its answers.
//
//   node fake-aws.mjs --port-file FILE [--port N]
//
// Control (JSON over HTTP, same port): GET /_fake/state, POST /_fake/config
// (merged into the behaviour settings below), POST /_fake/reset, POST /_fake/plant
// (running instances with given tags, without RunInstances).
import http from "node:http";
import { randomBytes, randomUUID } from "node:crypto";
import { renameSync, writeFileSync } from "node:fs";
import { SignatureV4 } from "@smithy/signature-v4";
import { HttpRequest } from "@smithy/protocol-http";
import { Sha256 } from "@aws-crypto/sha256-js";

process.removeAllListeners("warning");

const args = process.argv.slice(2);
const arg = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};

const DEFAULT_CFG = () => ({
  region: "us-east-1",
  static_keys: { AKIDFAKESTATIC: "fake-static-secret" },
  amis: { "ami-0123456789abcdef0": { root: "/dev/xvda", size: 8 }, "ami-0fedcba9876543210": { root: "/dev/sda1", size: 40 } },
  types: {
    "m6a.large": [2, 8192, 0], "m6a.xlarge": [4, 16384, 0], "m6a.2xlarge": [8, 32768, 0],
    "c6a.large": [2, 4096, 0], "c6a.xlarge": [4, 8192, 0], "r6a.large": [2, 16384, 0],
    "t3.small": [2, 2048, 0], "g5.xlarge": [4, 16384, 1], "g5.12xlarge": [48, 196608, 4],
  },
  snp_families: ["m6a", "c6a", "r6a"],
  launch_templates: { kata: { image: "ami-0123456789abcdef0", type: "m6a.large" } },
  latency_ms: 0,
  pending_ms: 300,            // pending -> running
  terminate_ms: 200,          // shutting-down -> terminated
  throttle: {},               // action -> number of calls answered RequestLimitExceeded
  throttle_all: 0,            // any EC2 action
  // action -> {bucket, refill_per_s}: EC2's token bucket (docs: "Request throttling for the
  // Amazon EC2 API"); a call finding the bucket empty is answered RequestLimitExceeded at once.
  rate_limit: {},
  capacity: [],               // instance types without capacity
  hostile: {},                // action -> {mode, count}; mode "late": the action is done, no answer ever
  no_private_ip: false,
  private_ip_override: null,  // every instance gets this private address (daemon tests: 127.0.0.1)
  fail: {},                   // action -> {code, status, message, count}
  answer_delay_ms: {},        // action -> ms: done at once, answered that much later (an answer on its way)
  types_page_size: 0,         // DescribeInstanceTypes page size (0: all)
  timeline: false,            // keep {action, in_ms, out_ms, status} per API call (GET /_fake/state "timeline")
  sts_lifetime_s: 900,
  web_identity_token: "fake-web-identity-token",
  role_arn: "arn:aws:iam::123456789012:role/caa-test",
  imds: {
    region: "us-east-1", mac: "0e:11:22:33:44:55", subnet: "subnet-0a1b2c3d4e5f60718",
    sgs: ["sg-0aaaaaaaaaaaaaaa1", "sg-0bbbbbbbbbbbbbbb2"], key: "node-key", role: "caa-node-role",
    creds_lifetime_s: 3600, token_ttl_max: 21600,
  },
});

let cfg = DEFAULT_CFG();
let st;
function resetState() {
  st = {
    instances: new Map(), tokens: new Map(), eni_tokens: new Map(), addresses: [], enis: [], temp_keys: new Map(), imds_tokens: new Map(),
    counts: {}, errors: {}, buckets: {}, sig_failures: 0, sts_issued: 0, imds_creds_issued: 0, in_flight: 0, max_in_flight: 0,
    imds_tokens_issued: 0, imds_unauthorized: 0,
    seq: 0, timeline: [],
  };
}
resetState();

// ---- XML ----

const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
function el(name, ...kids) {
  const inner = kids.flat(Infinity).filter((k) => k !== undefined && k !== null && k !== false).join("");
  return `<${name}>${inner}</${name}>`;
}
const txt = (name, v) => (v === undefined || v === null ? "" : `<${name}>${esc(v)}</${name}>`);
const items = (arr, fn) => arr.map((x) => el("item", fn(x)));

function ec2Doc(action, body) {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">` +
    `<requestId>${randomUUID()}</requestId>${body}</${action}Response>`;
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function send(res, status, body, type = "text/xml;charset=UTF-8") {
  if (res.destroyed) return;
  res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body) });
  res.end(body);
}

function sendError(res, err, sts = false) {
  const rid = randomUUID();
  const doc = sts
    ? `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>` +
      `${txt("Code", err.code)}${txt("Message", err.message)}</Error>${txt("RequestId", rid)}</ErrorResponse>`
    : `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>${txt("Code", err.code)}` +
      `${txt("Message", err.message)}</Error></Errors>${txt("RequestID", rid)}</Response>`;
  send(res, err.status, doc);
}

// ---- signature verification with the official signer ----

function lookupKey(ak) {
  if (cfg.static_keys[ak]) return { secret: cfg.static_keys[ak], token: null, expires: null };
  return st.temp_keys.get(ak) || null;
}

async function verify(req, body, service) {
  const auth = req.headers.authorization;
  if (!auth) throw new ApiError(401, "MissingAuthenticationToken", "Request is missing Authentication Token");
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) throw new ApiError(400, "IncompleteSignature", "Authorization header is malformed");
  const [, ak, , region, svc, signed] = m;
  const key = lookupKey(ak);
  if (!key) throw new ApiError(401, "AuthFailure", "AWS was not able to validate the provided access credentials");
  if (region !== cfg.region || svc !== service) {
    throw new ApiError(403, "SignatureDoesNotMatch", `Credential should be scoped to a valid region (${cfg.region}) and service (${service})`);
  }
  const amz = req.headers["x-amz-date"];
  const dm = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amz || "");
  if (!dm) throw new ApiError(400, "IncompleteSignature", "X-Amz-Date is missing or malformed");
  const when = new Date(Date.UTC(+dm[1], +dm[2] - 1, +dm[3], +dm[4], +dm[5], +dm[6]));
  if (Math.abs(Date.now() - when.getTime()) > 5 * 60 * 1000) throw new ApiError(400, "RequestExpired", "Request has expired");
  if (key.token !== null) {
    if (req.headers["x-amz-security-token"] !== key.token) throw new ApiError(401, "AuthFailure", "The security token included in the request is invalid");
    if (Date.now() >= key.expires) throw new ApiError(400, "ExpiredToken", "The security token included in the request is expired");
  }
  const names = signed.split(";");
  if (!names.includes("host") || !names.includes("x-amz-date")) throw new ApiError(403, "SignatureDoesNotMatch", "host and x-amz-date must be signed");
  const headers = {};
  for (const n of names) {
    if (req.headers[n] === undefined) throw new ApiError(403, "SignatureDoesNotMatch", `signed header ${n} is missing`);
    headers[n] = req.headers[n];
  }
  const url = new URL(req.url, "http://x");
  const query = {};
  for (const [k, v] of url.searchParams) query[k] = k in query ? [].concat(query[k], v) : v;
  const hreq = new HttpRequest({ method: req.method, protocol: "http:", hostname: "x", path: url.pathname, query, headers, body });
  const credentials = { accessKeyId: ak, secretAccessKey: key.secret };
  if (key.token) credentials.sessionToken = key.token;
  const signer = new SignatureV4({ service, region, sha256: Sha256, uriEscapePath: true, applyChecksum: false, credentials });
  const want = await signer.sign(hreq, { signingDate: when });
  if (want.headers.authorization !== auth) {
    st.sig_failures++;
    throw new ApiError(403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.");
  }
}

// ---- EC2 model ----

const hex = (n) => randomBytes(Math.ceil(n / 2)).toString("hex").slice(0, n);
function tick(inst) {
  const now = Date.now();
  if (inst.state === "pending" && now >= inst.runningAt) {
    inst.state = "running";
    if (inst.wantsPublicIp) inst.publicIp = `203.0.113.${(st.seq++ % 250) + 1}`;
  }
  if (inst.state === "shutting-down" && now >= inst.terminatedAt) {
    inst.state = "terminated";
    // As EC2: attached ENIs go with the instance when DeleteOnTermination is set, else become available
    // (an Elastic IP stays associated with such an ENI, no longer with the instance).
    for (const n of st.enis.filter((x) => x.attachment && x.attachment.instanceId === inst.id && x.attachment.deleteOnTermination)) removeEni(n);
    for (const n of st.enis) if (n.attachment && n.attachment.instanceId === inst.id) n.attachment = null;
    for (const a of st.addresses) if (a.instanceId === inst.id) a.instanceId = null;
  }
}

// A deleted ENI takes its Elastic IP associations with it (the addresses stay allocated).
function removeEni(eni) {
  st.enis = st.enis.filter((n) => n !== eni);
  for (const a of st.addresses) {
    if (a.networkInterfaceId === eni.id) Object.assign(a, { associationId: null, networkInterfaceId: null, instanceId: null });
  }
}

const tagMatch = (tags, f) => tags.some(([tk, tv]) => tk === f.name.slice(4) && f.values.includes(tv));

// MaxResults/NextToken paging as EC2 does it (5..1000; the token is opaque).
function paged(p, all) {
  const max = p.has("MaxResults") ? +p.get("MaxResults") : all.length;
  if (p.has("MaxResults") && (max < 5 || max > 1000)) throw new ApiError(400, "InvalidParameterValue", "MaxResults must be between 5 and 1000");
  const start = p.has("NextToken") ? +Buffer.from(p.get("NextToken"), "base64").toString() : 0;
  const page = all.slice(start, start + (cfg.list_page_size || max));
  const next = start + page.length < all.length ? Buffer.from(String(start + page.length)).toString("base64") : null;
  return [page, next];
}

function list(params, prefix) {
  const out = [];
  for (let i = 1; params.has(`${prefix}.${i}`); i++) out.push(params.get(`${prefix}.${i}`));
  return out;
}

function filters(params) {
  const fs = [];
  for (let i = 1; params.has(`Filter.${i}.Name`); i++) fs.push({ name: params.get(`Filter.${i}.Name`), values: list(params, `Filter.${i}.Value`) });
  return fs;
}

function instanceXml(inst) {
  tick(inst);
  const codes = { pending: 0, running: 16, "shutting-down": 32, terminated: 48, stopping: 64, stopped: 80 };
  const nicPriv = cfg.no_private_ip || inst.state === "terminated" ? null : inst.privateIp;
  return [
    txt("instanceId", inst.id), txt("imageId", inst.image),
    el("instanceState", txt("code", codes[inst.state]), txt("name", inst.state)),
    txt("instanceType", inst.type), nicPriv ? txt("privateIpAddress", nicPriv) : "",
    inst.publicIp && inst.state === "running" ? txt("ipAddress", inst.publicIp) : "",
    txt("subnetId", inst.subnet),
    inst.state === "terminated" ? "<networkInterfaceSet/>" : el("networkInterfaceSet", el("item",
      txt("networkInterfaceId", "eni-" + inst.id.slice(2)), nicPriv ? txt("privateIpAddress", nicPriv) : "",
      inst.publicIp && inst.state === "running" ? el("association", txt("publicIp", inst.publicIp), txt("ipOwnerId", "amazon")) : "",
      el("attachment", txt("deviceIndex", 0), txt("status", "attached")))),
    el("tagSet", items(inst.tags, (t) => [txt("key", t[0]), txt("value", t[1])])),
  ];
}

function runInstances(p) {
  const token = p.get("ClientToken") || "";
  const fp = JSON.stringify([...p.entries()].filter(([k]) => k !== "ClientToken" && k !== "Action" && k !== "Version").sort());
  if (token && st.tokens.has(token)) {
    const prev = st.tokens.get(token);
    if (prev.fp !== fp) throw new ApiError(400, "IdempotentParameterMismatch", "The client token you have provided is associated with a request that had different parameters.");
    const inst = st.instances.get(prev.id);
    return ec2Doc("RunInstances", txt("reservationId", "r-" + hex(17)) + el("instancesSet", el("item", instanceXml(inst))));
  }
  if (p.get("MinCount") !== "1" || p.get("MaxCount") !== "1") throw new ApiError(400, "InvalidParameterValue", "MinCount and MaxCount must be 1");
  if (p.get("MetadataOptions.HttpTokens") !== "required") throw new ApiError(400, "InvalidParameterValue", "this fake insists on IMDSv2");
  let image = p.get("ImageId");
  let type = p.get("InstanceType");
  const lt = p.get("LaunchTemplate.LaunchTemplateName");
  if (lt) {
    const t = cfg.launch_templates[lt];
    if (!t) throw new ApiError(400, "InvalidLaunchTemplateName.NotFoundException", `The specified launch template, with template name ${lt}, does not exist.`);
    image = image || t.image;
    type = type || t.type;
  }
  if (!image || !cfg.amis[image]) throw new ApiError(400, "InvalidAMIID.NotFound", `The image id '[${image}]' does not exist`);
  if (!type || !cfg.types[type]) throw new ApiError(400, "InvalidParameterValue", `Invalid value '${type}' for InstanceType.`);
  if (p.get("CpuOptions.AmdSevSnp") === "enabled" && !cfg.snp_families.includes(type.split(".")[0])) {
    throw new ApiError(400, "UnsupportedOperation", `AMD SEV-SNP is not supported for instance type ${type}.`);
  }
  const ud = p.get("UserData");
  if (ud !== null) {
    const raw = Buffer.from(ud, "base64");
    if (raw.toString("base64") !== ud) throw new ApiError(400, "InvalidParameterValue", "Invalid BASE64 encoding of user data.");
    if (raw.length > 16384) throw new ApiError(400, "InvalidParameterValue", "User data is limited to 16384 bytes");
  }
  const rootDev = p.get("BlockDeviceMapping.1.DeviceName");
  if (rootDev !== null) {
    const size = +p.get("BlockDeviceMapping.1.Ebs.VolumeSize");
    if (rootDev !== cfg.amis[image].root) throw new ApiError(400, "InvalidBlockDeviceMapping", `device ${rootDev} is not the root device of ${image}`);
    if (size < cfg.amis[image].size) throw new ApiError(400, "InvalidBlockDeviceMapping", `Volume of size ${size}GB is smaller than snapshot, expect size >= ${cfg.amis[image].size}GB`);
  }
  if (cfg.capacity.includes(type)) {
    throw new ApiError(500, "InsufficientInstanceCapacity", `We currently do not have sufficient ${type} capacity in the Availability Zone you requested (${cfg.region}a).`);
  }
  const publicIp = p.get("NetworkInterface.1.AssociatePublicIpAddress") === "true";
  const tags = [];
  if (p.get("TagSpecification.1.ResourceType") === "instance") {
    for (let i = 1; p.has(`TagSpecification.1.Tag.${i}.Key`); i++) tags.push([p.get(`TagSpecification.1.Tag.${i}.Key`), p.get(`TagSpecification.1.Tag.${i}.Value`) ?? ""]);
  }
  const n = st.seq++;
  const inst = {
    id: "i-0" + hex(16), image, type, state: "pending", createdAt: Date.now(), runningAt: Date.now() + cfg.pending_ms,
    privateIp: cfg.private_ip_override || `10.0.${(n >> 8) & 255}.${(n & 255) + 1}`, publicIp: null, wantsPublicIp: publicIp, tags,
    subnet: p.get("SubnetId") || p.get("NetworkInterface.1.SubnetId"),
    sgs: list(p, publicIp ? "NetworkInterface.1.SecurityGroupId" : "SecurityGroupId"),
    keyName: p.get("KeyName"), userData: ud, sevSnp: p.get("CpuOptions.AmdSevSnp"), launchTemplate: lt,
    rootVolume: rootDev ? [rootDev, +p.get("BlockDeviceMapping.1.Ebs.VolumeSize")] : null, token,
  };
  st.instances.set(inst.id, inst);
  if (token) st.tokens.set(token, { id: inst.id, fp });
  return ec2Doc("RunInstances", txt("reservationId", "r-" + hex(17)) + txt("ownerId", "123456789012") + el("instancesSet", el("item", instanceXml(inst))));
}

function matches(inst, f) {
  if (f.name === "instance-state-name") return f.values.includes(inst.state);
  if (f.name === "instance-id") return f.values.includes(inst.id);
  if (f.name.startsWith("tag:")) return tagMatch(inst.tags, f);
  throw new ApiError(400, "InvalidParameterValue", `The filter '${f.name}' is invalid`);
}

function describeInstances(p) {
  const ids = list(p, "InstanceId");
  let all = [...st.instances.values()];
  all.forEach(tick);
  if (ids.length) {
    const missing = ids.filter((id) => !st.instances.has(id));
    if (missing.length) throw new ApiError(400, "InvalidInstanceID.NotFound", `The instance IDs '${missing.join(", ")}' do not exist`);
    all = all.filter((i) => ids.includes(i.id));
  }
  for (const f of filters(p)) all = all.filter((i) => matches(i, f));
  const [page, next] = paged(p, all);
  return ec2Doc("DescribeInstances", el("reservationSet", items(page, (i) => [txt("reservationId", "r-" + i.id.slice(2)),
    el("instancesSet", el("item", instanceXml(i)))])) + txt("nextToken", next));
}

function terminateInstances(p) {
  const ids = list(p, "InstanceId");
  const missing = ids.filter((id) => !st.instances.has(id));
  if (missing.length) throw new ApiError(400, "InvalidInstanceID.NotFound", `The instance ID '${missing[0]}' does not exist`);
  const out = ids.map((id) => {
    const inst = st.instances.get(id);
    tick(inst);
    const prev = inst.state;
    if (prev !== "terminated" && prev !== "shutting-down") {
      inst.state = "shutting-down";
      inst.terminatedAt = Date.now() + cfg.terminate_ms;
    }
    return [id, prev, inst.state];
  });
  const codes = { pending: 0, running: 16, "shutting-down": 32, terminated: 48 };
  return ec2Doc("TerminateInstances", el("instancesSet", items(out, ([id, prev, cur]) => [txt("instanceId", id),
    el("currentState", txt("code", codes[cur]), txt("name", cur)), el("previousState", txt("code", codes[prev]), txt("name", prev))])));
}

function describeInstanceTypes(p) {
  const names = list(p, "InstanceType");
  const missing = names.filter((n) => !cfg.types[n]);
  if (missing.length) throw new ApiError(400, "InvalidInstanceType", `The following supplied instance types do not exist: [${missing.join(", ")}]`);
  const all = names.length ? names : Object.keys(cfg.types);
  const start = p.has("NextToken") ? +p.get("NextToken").slice(1) : 0;
  const size = cfg.types_page_size || all.length;
  const page = all.slice(start, start + size);
  const next = start + page.length < all.length ? "p" + (start + page.length) : null;
  return ec2Doc("DescribeInstanceTypes", el("instanceTypeSet", items(page, (n) => {
    const [v, m, g] = cfg.types[n];
    return [txt("instanceType", n), el("vCpuInfo", txt("defaultVCpus", v)), el("memoryInfo", txt("sizeInMiB", m)),
      g ? el("gpuInfo", el("gpus", el("item", txt("name", "A10G"), txt("manufacturer", "NVIDIA"), txt("count", g)))) : ""];
  })) + txt("nextToken", next));
}

function describeImages(p) {
  const ids = list(p, "ImageId");
  const missing = ids.filter((id) => !cfg.amis[id]);
  if (missing.length) throw new ApiError(400, "InvalidAMIID.NotFound", `The image id '[${missing[0]}]' does not exist`);
  return ec2Doc("DescribeImages", el("imagesSet", items(ids, (id) => [txt("imageId", id), txt("imageState", "available"),
    txt("rootDeviceType", "ebs"), txt("rootDeviceName", cfg.amis[id].root),
    el("blockDeviceMapping", el("item", txt("deviceName", cfg.amis[id].root), el("ebs", txt("snapshotId", "snap-1"),
      txt("volumeSize", cfg.amis[id].size), txt("deleteOnTermination", "true"), txt("volumeType", "gp3"))))])));
}

function addressMatches(a, f) {
  if (f.name === "instance-id") return f.values.includes(a.instanceId);
  if (f.name === "allocation-id") return f.values.includes(a.allocationId);
  if (f.name === "network-interface-id") return f.values.includes(a.networkInterfaceId);
  if (f.name.startsWith("tag:")) return tagMatch(a.tags || [], f);
  throw new ApiError(400, "InvalidParameterValue", `The filter '${f.name}' is invalid`);
}

// No paging: EC2's DescribeAddresses has none.
function describeAddresses(p) {
  let addrs = st.addresses;
  const ids = list(p, "AllocationId");
  const missing = ids.filter((id) => !addrs.some((a) => a.allocationId === id));
  if (missing.length) throw new ApiError(400, "InvalidAllocationID.NotFound", `The allocation IDs '${missing.join(", ")}' do not exist`);
  if (ids.length) addrs = addrs.filter((a) => ids.includes(a.allocationId));
  for (const f of filters(p)) addrs = addrs.filter((a) => addressMatches(a, f));
  return ec2Doc("DescribeAddresses", el("addressesSet", items(addrs, (a) => [txt("publicIp", a.publicIp),
    txt("allocationId", a.allocationId), txt("domain", "vpc"), txt("instanceId", a.instanceId),
    txt("associationId", a.associationId), txt("networkInterfaceId", a.networkInterfaceId),
    (a.tags || []).length ? el("tagSet", items(a.tags, ([k, v]) => [txt("key", k), txt("value", v)])) : ""])));
}

function disassociateAddress(p) {
  const a = st.addresses.find((x) => x.associationId && x.associationId === p.get("AssociationId"));
  if (!a) throw new ApiError(400, "InvalidAssociationID.NotFound", `The association ID '${p.get("AssociationId")}' does not exist`);
  a.associationId = null;
  a.instanceId = null;
  a.networkInterfaceId = null;
  return ec2Doc("DisassociateAddress", txt("return", "true"));
}

function releaseAddress(p) {
  const i = st.addresses.findIndex((x) => x.allocationId === p.get("AllocationId"));
  if (i < 0) throw new ApiError(400, "InvalidAllocationID.NotFound", `The allocation ID '${p.get("AllocationId")}' does not exist`);
  if (st.addresses[i].associationId) throw new ApiError(400, "InvalidIPAddress.InUse", "Address is in use");
  st.addresses.splice(i, 1);
  return ec2Doc("ReleaseAddress", txt("return", "true"));
}

// ---- network interfaces (external-net-via-pod-vm's second ENI) ----

function findEni(id) {
  const n = st.enis.find((x) => x.id === id);
  if (!n) throw new ApiError(400, "InvalidNetworkInterfaceID.NotFound", `The networkInterface ID '${id}' does not exist`);
  return n;
}

function eniXml(eni) {
  const att = eni.attachment;
  return [txt("networkInterfaceId", eni.id), txt("subnetId", eni.subnet), txt("status", att ? "in-use" : "available"),
    txt("privateIpAddress", eni.privateIp), el("groupSet", items(eni.sgs, (g) => txt("groupId", g))),
    att ? el("attachment", txt("attachmentId", att.id), txt("instanceId", att.instanceId), txt("deviceIndex", att.deviceIndex),
      txt("status", "attached"), txt("deleteOnTermination", att.deleteOnTermination)) : "",
    el("tagSet", items(eni.tags, ([k, v]) => [txt("key", k), txt("value", v)]))];
}

function eniMatches(eni, f) {
  if (f.name === "status") return f.values.includes(eni.attachment ? "in-use" : "available");
  if (f.name === "network-interface-id") return f.values.includes(eni.id);
  if (f.name === "attachment.instance-id") return !!eni.attachment && f.values.includes(eni.attachment.instanceId);
  if (f.name.startsWith("tag:")) return tagMatch(eni.tags, f);
  throw new ApiError(400, "InvalidParameterValue", `The filter '${f.name}' is invalid`);
}

function describeNetworkInterfaces(p) {
  // Bring the instances the ENIs are attached to up to date (an instance terminating frees its ENIs).
  for (const n of [...st.enis]) if (n.attachment && st.instances.has(n.attachment.instanceId)) tick(st.instances.get(n.attachment.instanceId));
  let all = st.enis;
  const ids = list(p, "NetworkInterfaceId");
  const missing = ids.filter((id) => !all.some((n) => n.id === id));
  if (missing.length) throw new ApiError(400, "InvalidNetworkInterfaceID.NotFound", `The networkInterface ID '${missing[0]}' does not exist`);
  if (ids.length) all = all.filter((n) => ids.includes(n.id));
  for (const f of filters(p)) all = all.filter((n) => eniMatches(n, f));
  const [page, next] = paged(p, all);
  return ec2Doc("DescribeNetworkInterfaces", el("networkInterfaceSet", items(page, eniXml)) + txt("nextToken", next));
}

function createNetworkInterface(p) {
  // ClientToken: as EC2, a retried call returns the ENI the first one made.
  const token = p.get("ClientToken") || "";
  const known = token && st.eni_tokens.get(token);
  if (known && st.enis.some((n) => n.id === known)) {
    return ec2Doc("CreateNetworkInterface", el("networkInterface", eniXml(st.enis.find((n) => n.id === known))) +
      txt("clientToken", token));
  }
  const subnet = p.get("SubnetId");
  if (!subnet) throw new ApiError(400, "MissingParameter", "The request must contain the parameter subnetId");
  const tags = [];
  if (p.get("TagSpecification.1.ResourceType") === "network-interface") {
    for (let i = 1; p.has(`TagSpecification.1.Tag.${i}.Key`); i++) tags.push([p.get(`TagSpecification.1.Tag.${i}.Key`), p.get(`TagSpecification.1.Tag.${i}.Value`) ?? ""]);
  }
  const eni = { id: "eni-" + hex(17), subnet, sgs: list(p, "SecurityGroupId"), tags, attachment: null,
    privateIp: `10.0.2.${(st.seq++ % 250) + 1}` };
  st.enis.push(eni);
  if (token) st.eni_tokens.set(token, eni.id);
  return ec2Doc("CreateNetworkInterface", el("networkInterface", txt("networkInterfaceId", eni.id),
    txt("subnetId", subnet), txt("status", "pending"), txt("privateIpAddress", eni.privateIp),
    el("groupSet", items(eni.sgs, (g) => txt("groupId", g))),
    el("tagSet", items(tags, ([k, v]) => [txt("key", k), txt("value", v)]))));
}

function attachNetworkInterface(p) {
  const id = p.get("InstanceId");
  const inst = st.instances.get(id);
  if (!inst) throw new ApiError(400, "InvalidInstanceID.NotFound", `The instance ID '${id}' does not exist`);
  tick(inst);
  if (inst.state !== "running" && inst.state !== "stopped")
    throw new ApiError(400, "IncorrectInstanceState", `The instance '${id}' is not in a valid state for this operation.`);
  const eni = findEni(p.get("NetworkInterfaceId"));
  const index = p.get("DeviceIndex");
  if (!/^[1-9][0-9]*$/.test(index ?? "")) throw new ApiError(400, "InvalidParameterValue", "Invalid value for DeviceIndex");
  if (eni.attachment) throw new ApiError(400, "InvalidNetworkInterface.InUse", `Interface: [${eni.id}] in use.`);
  if (st.enis.some((n) => n.attachment && n.attachment.instanceId === id && n.attachment.deviceIndex === +index))
    throw new ApiError(400, "InvalidParameterValue", `Instance '${id}' already has an interface attached at device index '${index}'.`);
  eni.attachment = { id: "eni-attach-" + hex(17), instanceId: id, deviceIndex: +index, deleteOnTermination: false };
  return ec2Doc("AttachNetworkInterface", txt("attachmentId", eni.attachment.id) + txt("networkCardIndex", 0));
}

function modifyNetworkInterfaceAttribute(p) {
  const eni = findEni(p.get("NetworkInterfaceId"));
  if (p.has("Attachment.AttachmentId")) {
    if (!eni.attachment || eni.attachment.id !== p.get("Attachment.AttachmentId"))
      throw new ApiError(400, "InvalidAttachmentID.NotFound", `The attachment ID '${p.get("Attachment.AttachmentId")}' does not exist`);
    eni.attachment.deleteOnTermination = p.get("Attachment.DeleteOnTermination") === "true";
  }
  return ec2Doc("ModifyNetworkInterfaceAttribute", txt("return", "true"));
}

function deleteNetworkInterface(p) {
  const eni = findEni(p.get("NetworkInterfaceId"));
  if (eni.attachment) throw new ApiError(400, "InvalidNetworkInterface.InUse", `The network interface '${eni.id}' is currently in use.`);
  removeEni(eni);
  return ec2Doc("DeleteNetworkInterface", txt("return", "true"));
}

function allocateAddress(p) {
  if (p.get("Domain") !== "vpc") throw new ApiError(400, "InvalidParameterValue", "Domain must be vpc");
  const tags = [];
  if (p.get("TagSpecification.1.ResourceType") === "elastic-ip") {
    for (let i = 1; p.has(`TagSpecification.1.Tag.${i}.Key`); i++) tags.push([p.get(`TagSpecification.1.Tag.${i}.Key`), p.get(`TagSpecification.1.Tag.${i}.Value`) ?? ""]);
  }
  const a = { publicIp: `198.51.100.${(st.seq++ % 250) + 1}`, allocationId: "eipalloc-" + hex(17), associationId: null,
    instanceId: null, networkInterfaceId: null, tags };
  st.addresses.push(a);
  return ec2Doc("AllocateAddress", txt("publicIp", a.publicIp) + txt("domain", "vpc") + txt("allocationId", a.allocationId));
}

function associateAddress(p) {
  const a = st.addresses.find((x) => x.allocationId === p.get("AllocationId"));
  if (!a) throw new ApiError(400, "InvalidAllocationID.NotFound", `The allocation ID '${p.get("AllocationId")}' does not exist`);
  const eni = findEni(p.get("NetworkInterfaceId"));
  if (a.associationId && p.get("AllowReassociation") !== "true") throw new ApiError(400, "Resource.AlreadyAssociated", "already associated");
  a.associationId = "eipassoc-" + hex(17);
  a.networkInterfaceId = eni.id;
  a.instanceId = eni.attachment ? eni.attachment.instanceId : null;
  return ec2Doc("AssociateAddress", txt("return", "true") + txt("associationId", a.associationId));
}

const EC2 = {
  RunInstances: runInstances, DescribeInstances: describeInstances, TerminateInstances: terminateInstances,
  DescribeInstanceTypes: describeInstanceTypes, DescribeImages: describeImages, DescribeAddresses: describeAddresses,
  DisassociateAddress: disassociateAddress, ReleaseAddress: releaseAddress,
  CreateNetworkInterface: createNetworkInterface, AttachNetworkInterface: attachNetworkInterface,
  ModifyNetworkInterfaceAttribute: modifyNetworkInterfaceAttribute, DeleteNetworkInterface: deleteNetworkInterface,
  DescribeNetworkInterfaces: describeNetworkInterfaces,
  AllocateAddress: allocateAddress, AssociateAddress: associateAddress,
};

// ---- STS ----

function issueKeys(lifetimeS) {
  const ak = "ASIA" + hex(16).toUpperCase();
  const key = { secret: hex(40), token: "FQoG" + randomBytes(48).toString("base64"), expires: Date.now() + lifetimeS * 1000 };
  st.temp_keys.set(ak, key);
  return [ak, key];
}

function assumeRoleWithWebIdentity(p) {
  if (p.get("WebIdentityToken") !== cfg.web_identity_token) throw new ApiError(400, "InvalidIdentityToken", "The web identity token is not valid");
  if (p.get("RoleArn") !== cfg.role_arn) throw new ApiError(403, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity");
  if (!p.get("RoleSessionName")) throw new ApiError(400, "ValidationError", "RoleSessionName is required");
  const [ak, key] = issueKeys(cfg.sts_lifetime_s);
  st.sts_issued++;
  return `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithWebIdentityResult>` +
    el("Credentials", txt("AccessKeyId", ak), txt("SecretAccessKey", key.secret), txt("SessionToken", key.token),
      txt("Expiration", new Date(key.expires).toISOString())) +
    `</AssumeRoleWithWebIdentityResult><ResponseMetadata>${txt("RequestId", randomUUID())}</ResponseMetadata></AssumeRoleWithWebIdentityResponse>`;
}

// ---- IMDSv2 ----

function imds(req, res) {
  const url = new URL(req.url, "http://x");
  if (req.method === "PUT" && url.pathname === "/latest/api/token") {
    const ttl = +req.headers["x-aws-ec2-metadata-token-ttl-seconds"];
    if (!(ttl >= 1 && ttl <= cfg.imds.token_ttl_max)) return send(res, 400, "bad ttl", "text/plain");
    const tok = "imds-" + hex(32);
    st.imds_tokens.set(tok, Date.now() + ttl * 1000);
    st.imds_tokens_issued++;
    return send(res, 200, tok, "text/plain");
  }
  if (req.method !== "GET") return send(res, 405, "", "text/plain");
  const tok = req.headers["x-aws-ec2-metadata-token"];
  if (!tok || !st.imds_tokens.has(tok) || st.imds_tokens.get(tok) < Date.now()) {
    st.imds_unauthorized++;
    return send(res, 401, "", "text/plain");
  }
  const m = cfg.imds;
  const base = "/latest/meta-data/";
  const paths = {
    "placement/region": m.region, mac: m.mac,
    [`network/interfaces/macs/${m.mac}/subnet-id`]: m.subnet,
    [`network/interfaces/macs/${m.mac}/security-group-ids`]: (m.sgs || []).join("\n"),
    "public-keys/": m.key ? `0=${m.key}` : undefined,
    "iam/security-credentials/": m.role || undefined,
  };
  if (!url.pathname.startsWith(base)) return send(res, 404, "", "text/plain");
  const rel = url.pathname.slice(base.length);
  if (m.role && rel === `iam/security-credentials/${m.role}`) {
    const [ak, key] = issueKeys(m.creds_lifetime_s);
    st.imds_creds_issued++;
    return send(res, 200, JSON.stringify({ Code: "Success", LastUpdated: new Date().toISOString(), Type: "AWS-HMAC",
      AccessKeyId: ak, SecretAccessKey: key.secret, Token: key.token, Expiration: new Date(key.expires).toISOString() }), "text/plain");
  }
  const v = paths[rel];
  if (v === undefined || v === null) return send(res, 404, "", "text/plain");
  return send(res, 200, v, "text/plain");
}

// ---- hostile answers ----

function hostile(res, mode) {
  switch (mode) {
    case "truncated":
      return send(res, 200, ec2Doc("DescribeInstances", "<reservationSet><item><instancesSet><item><instanceId>i-0").slice(0, 180));
    case "html":
      return send(res, 200, "<html><body>Welcome to nginx!</body></html>", "text/html");
    case "json":
      return send(res, 200, '{"Reservations": []}', "application/json");
    case "500":
      return send(res, 500, "", "text/plain");
    case "reset":
      return res.socket.destroy();
    case "silence":
      return; // never answers; the client's timeout ends it
    case "huge": {
      // 100 MB, no length: the client must stop at its cap while receiving.
      res.writeHead(200, { "content-type": "text/xml" });
      const chunk = Buffer.alloc(1 << 20, "x");
      let sent = 0;
      const pump = () => {
        while (sent < 100 && !res.destroyed) {
          sent++;
          if (!res.write(chunk)) return res.once("drain", pump);
        }
        res.end();
      };
      res.write("<DescribeInstancesResponse><x>");
      return pump();
    }
    case "slow": {
      res.writeHead(200, { "content-type": "text/xml", "content-length": 100000 });
      const t = setInterval(() => (res.destroyed ? clearInterval(t) : res.write("x")), 500);
      res.on("close", () => clearInterval(t));
      return;
    }
    default:
      return send(res, 500, "bad hostile mode " + mode, "text/plain");
  }
}

// One token from the action's bucket, refilled continuously since the last call.
function takeToken(action) {
  const lim = cfg.rate_limit[action];
  if (!lim) return true;
  const now = Date.now() / 1000;
  const b = st.buckets[action] || (st.buckets[action] = { tokens: lim.bucket, t: now });
  b.tokens = Math.min(lim.bucket, b.tokens + (now - b.t) * lim.refill_per_s);
  b.t = now;
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

function takeOne(table, action) {
  const h = table[action];
  if (!h) return null;
  const n = typeof h === "number" ? h : h.count ?? 1;
  if (n <= 0) return null;
  if (typeof h === "number") table[action] = n - 1;
  else h.count = n - 1;
  return h;
}

// ---- server ----

async function handleApi(req, res, body) {
  const p = new URLSearchParams(body);
  const action = p.get("Action") || "";
  if (cfg.timeline) {
    // Arrival = the whole request read; answer = the moment the answer is handed to the socket.
    const entry = { action, in_ms: Date.now(), out_ms: null, status: null };
    st.timeline.push(entry);
    res.on("finish", () => {
      entry.out_ms = Date.now();
      entry.status = res.statusCode;
    });
  }
  st.counts[action] = (st.counts[action] || 0) + 1;
  const isSts = action === "AssumeRoleWithWebIdentity";
  try {
    if (!(req.headers["content-type"] || "").startsWith("application/x-www-form-urlencoded")) {
      throw new ApiError(400, "InvalidParameterValue", "expected a form-urlencoded body");
    }
    if (isSts) {
      if (p.get("Version") !== "2011-06-15") throw new ApiError(400, "InvalidAction", "bad version");
    } else {
      if (p.get("Version") !== "2016-11-15") throw new ApiError(400, "InvalidAction", "bad version");
      await verify(req, body, "ec2");
      if (!takeToken(action)) throw new ApiError(503, "RequestLimitExceeded", "Request limit exceeded.");
    }
    if (cfg.latency_ms) await new Promise((r) => setTimeout(r, cfg.latency_ms));
    const h = takeOne(cfg.hostile, action);
    if (h && h.mode !== "late") return hostile(res, h.mode);
    if (!isSts) {
      if (takeOne(cfg.throttle, action) || (cfg.throttle_all > 0 && cfg.throttle_all--)) {
        throw new ApiError(503, "RequestLimitExceeded", "Request limit exceeded.");
      }
      const f = takeOne(cfg.fail, action);
      if (f) throw new ApiError(f.status || 400, f.code, f.message || "injected failure");
    }
    const fn = isSts ? assumeRoleWithWebIdentity : EC2[action];
    if (!fn) throw new ApiError(400, "InvalidAction", `The action ${action} is not valid for this web service.`);
    const answer = fn(p);
    if (h) return; // "late": done, but the answer never comes (the client times out)
    const delay = cfg.answer_delay_ms[action];
    if (delay) await new Promise((r) => setTimeout(r, delay));
    send(res, 200, answer);
  } catch (e) {
    if (!(e instanceof ApiError)) {
      console.error(e);
      e = new ApiError(500, "InternalError", "An internal error has occurred");
    }
    st.errors[e.code] = (st.errors[e.code] || 0) + 1;
    sendError(res, e, isSts);
  }
}

function stateJson() {
  [...st.instances.values()].forEach(tick);
  return {
    instances: [...st.instances.values()].map((i) => ({ id: i.id, state: i.state, type: i.type, image: i.image,
      private_ip: i.privateIp, public_ip: i.publicIp, tags: Object.fromEntries(i.tags), subnet: i.subnet, sgs: i.sgs,
      key_name: i.keyName, user_data: i.userData, sev_snp: i.sevSnp, launch_template: i.launchTemplate,
      root_volume: i.rootVolume, client_token: i.token, created_ms: i.createdAt ?? null, running_ms: i.runningAt })),
    addresses: st.addresses, enis: st.enis, counts: st.counts, errors: st.errors, sig_failures: st.sig_failures,
    sts_issued: st.sts_issued, imds_creds_issued: st.imds_creds_issued, imds_tokens: st.imds_tokens.size,
    imds_tokens_issued: st.imds_tokens_issued, imds_unauthorized: st.imds_unauthorized,
    max_in_flight: st.max_in_flight, timeline: st.timeline,
  };
}

function merge(dst, src) {
  for (const [k, v] of Object.entries(src)) {
    if (v && typeof v === "object" && !Array.isArray(v) && dst[k] && typeof dst[k] === "object" && !Array.isArray(dst[k])) merge(dst[k], v);
    else dst[k] = v;
  }
}

const server = http.createServer((req, res) => {
  const chunks = [];
  let size = 0;
  req.on("data", (c) => {
    size += c.length;
    if (size > 1 << 20) req.destroy();
    else chunks.push(c);
  });
  req.on("end", async () => {
    const body = Buffer.concat(chunks).toString("utf8");
    if (req.url.startsWith("/_fake/")) {
      if (req.url === "/_fake/state") return send(res, 200, JSON.stringify(stateJson()), "application/json");
      if (req.url === "/_fake/config" && req.method === "POST") {
        merge(cfg, JSON.parse(body || "{}"));
        return send(res, 200, "{}", "application/json");
      }
      if (req.url === "/_fake/reset" && req.method === "POST") {
        cfg = DEFAULT_CFG();
        resetState();
        return send(res, 200, "{}", "application/json");
      }
      if (req.url === "/_fake/plant" && req.method === "POST") {
        // {count, tags: [[key, value], ...], sandbox_tag}: running instances made without RunInstances
        // (the orphan-sweep bench), each with its own 64-hex value under sandbox_tag.
        const a = JSON.parse(body);
        for (let i = 0; i < a.count; i++) {
          const n = st.seq++;
          const id = "i-0" + hex(16);
          st.instances.set(id, {
            id, image: Object.keys(cfg.amis)[0], type: "m6a.large", state: "running", runningAt: 0,
            privateIp: `198.18.${(n >> 8) & 255}.${(n & 255) + 1}`, publicIp: null, wantsPublicIp: false,
            tags: [...a.tags, [a.sandbox_tag, n.toString(16).padStart(64, "0")], ["Name", `podvm-orphan-${n}`]],
            subnet: null, sgs: [], token: "",
          });
        }
        return send(res, 200, "{}", "application/json");
      }
      if (req.url === "/_fake/imds-revoke" && req.method === "POST") {
        st.imds_tokens.clear(); // as if every session token had expired
        return send(res, 200, "{}", "application/json");
      }
      if (req.url === "/_fake/address" && req.method === "POST") {
        const a = JSON.parse(body);
        st.addresses.push({ publicIp: a.public_ip, allocationId: a.allocation_id, associationId: a.association_id ?? null,
          instanceId: a.instance_id ?? null, networkInterfaceId: a.network_interface_id ?? null, tags: a.tags ?? [] });
        return send(res, 200, "{}", "application/json");
      }
      if (req.url === "/_fake/eni" && req.method === "POST") {
        // {tags: [[key, value], ...], instance_id?, delete_on_termination?}: an ENI made outside the adaptor,
        // attached at device index 2 when instance_id is given. Answers {id}.
        const a = JSON.parse(body);
        const eni = { id: "eni-" + hex(17), subnet: cfg.imds.subnet, sgs: [], tags: a.tags ?? [], privateIp: `10.0.3.${(st.seq++ % 250) + 1}`,
          attachment: a.instance_id ? { id: "eni-attach-" + hex(17), instanceId: a.instance_id, deviceIndex: 2,
            deleteOnTermination: !!a.delete_on_termination } : null };
        st.enis.push(eni);
        return send(res, 200, JSON.stringify({ id: eni.id }), "application/json");
      }
      return send(res, 404, "{}", "application/json");
    }
    if (req.url.startsWith("/latest/")) return imds(req, res);
    if (req.method !== "POST" || new URL(req.url, "http://x").pathname !== "/") return send(res, 404, "", "text/plain");
    st.in_flight++;
    st.max_in_flight = Math.max(st.max_in_flight, st.in_flight);
    res.on("close", () => st.in_flight--);
    await handleApi(req, res, body);
  });
});
server.keepAliveTimeout = 30000;
server.headersTimeout = 35000;
server.requestTimeout = 0;
server.maxConnections = 4096;
server.listen(+arg("--port", "0"), "127.0.0.1", () => {
  const port = server.address().port;
  const file = arg("--port-file");
  if (file) {
    writeFileSync(file + ".tmp", String(port));
    renameSync(file + ".tmp", file);
  }
  console.error(`fake-aws listening on 127.0.0.1:${port}`);
});
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
