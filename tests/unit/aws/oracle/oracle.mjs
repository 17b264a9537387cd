// The official AWS SDK for JavaScript as a test oracle for the C provider.
//
//   node oracle.mjs sign  < cases.json   SigV4 with @smithy/signature-v4
//   node oracle.mjs build < cases.json   EC2/STS Query parameters the SDK sends
//   node oracle.mjs parse < cases.json   values the SDK reads from XML answers
//
// Input: a JSON array of cases in the neutral form that
// tests/unit/aws/aws-oracle-tool.c reads too; output: a JSON array of results
// in the same order. For "build", each neutral case is turned into the SDK
// call that upstream's Go provider makes for it (src/cloud-providers/aws),
// sent through a capturing request handler.
import { SignatureV4 } from "@smithy/signature-v4";
import { HttpRequest, HttpResponse } from "@smithy/protocol-http";
import { Sha256 } from "@aws-crypto/sha256-js";
import {
  EC2Client, RunInstancesCommand, TerminateInstancesCommand, DescribeInstancesCommand,
  DescribeInstanceTypesCommand, DescribeImagesCommand, DescribeAddressesCommand, ReleaseAddressCommand,
  DisassociateAddressCommand, CreateNetworkInterfaceCommand, AttachNetworkInterfaceCommand,
  ModifyNetworkInterfaceAttributeCommand, DeleteNetworkInterfaceCommand, AllocateAddressCommand,
  AssociateAddressCommand, DescribeNetworkInterfacesCommand,
} from "@aws-sdk/client-ec2";
import { STSClient, AssumeRoleWithWebIdentityCommand } from "@aws-sdk/client-sts";
import { Readable } from "node:stream";
import { readFileSync } from "node:fs";

process.removeAllListeners("warning"); // Node version notices on stderr are noise here

const CREDS = { accessKeyId: "AKIDORACLE", secretAccessKey: "oracle-secret" };

async function sign(c) {
  const query = {};
  for (const [k, v] of c.query || []) {
    if (k in query) query[k] = [].concat(query[k], v);
    else query[k] = v;
  }
  const headers = {};
  for (const [k, v] of c.headers || []) headers[k] = v;
  const req = new HttpRequest({
    method: c.method, protocol: "https:", hostname: c.host, path: c.path, query, headers,
    body: c.body === null || c.body === undefined ? undefined : c.body,
  });
  const credentials = { accessKeyId: c.access_key, secretAccessKey: c.secret_key };
  if (c.session_token) credentials.sessionToken = c.session_token;
  const signer = new SignatureV4({
    service: c.service, region: c.region, sha256: Sha256, uriEscapePath: true,
    applyChecksum: !!c.add_content_sha256, credentials,
  });
  const out = await signer.sign(req, { signingDate: new Date(c.time * 1000) });
  const h = {};
  for (const [k, v] of Object.entries(out.headers)) {
    const l = k.toLowerCase();
    if (["authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"].includes(l)) h[l] = v;
  }
  return { headers: h };
}

function decodeForm(body) {
  if (!body) return [];
  return body.split("&").map((kv) => {
    const i = kv.indexOf("=");
    return [decodeURIComponent(kv.slice(0, i)), decodeURIComponent(kv.slice(i + 1))];
  });
}

function capturing(kind) {
  const box = {};
  const handler = {
    handle: async (req) => {
      box.req = req;
      const xml = kind === "sts"
        ? "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult/></AssumeRoleWithWebIdentityResponse>"
        : "<Response/>";
      return {
        response: new HttpResponse({
          statusCode: 200, headers: { "content-type": "text/xml" }, body: Readable.from([Buffer.from(xml)]),
        }),
      };
    },
  };
  return { box, handler };
}

function ec2With(handler) {
  return new EC2Client({ region: "us-east-1", endpoint: "http://127.0.0.1:1", credentials: CREDS,
    requestHandler: handler, maxAttempts: 1 });
}

// The SDK call upstream makes for a neutral RunInstances description.
function runInput(r) {
  const tags = (r.tags || []).map(([Key, Value]) => ({ Key, Value }));
  const input = { MinCount: 1, MaxCount: 1 };
  if (r.launch_template) {
    input.LaunchTemplate = { LaunchTemplateName: r.launch_template };
  } else {
    input.ImageId = r.image_id;
    input.InstanceType = r.instance_type;
    if (r.public_ip) {
      const nic = { DeviceIndex: 0, AssociatePublicIpAddress: true, DeleteOnTermination: true };
      if (r.subnet_id) nic.SubnetId = r.subnet_id;
      if (r.sg_ids && r.sg_ids.length) nic.Groups = r.sg_ids;
      input.NetworkInterfaces = [nic];
    } else {
      if (r.subnet_id) input.SubnetId = r.subnet_id;
      if (r.sg_ids && r.sg_ids.length) input.SecurityGroupIds = r.sg_ids;
    }
    if (r.key_name) input.KeyName = r.key_name;
    if (r.sev_snp) input.CpuOptions = { AmdSevSnp: "enabled" };
  }
  if (r.root_volume_size > 0 && r.root_device_name) {
    input.BlockDeviceMappings = [{ DeviceName: r.root_device_name, Ebs: { VolumeSize: r.root_volume_size } }];
  }
  if (r.user_data_b64) input.UserData = r.user_data_b64;
  input.MetadataOptions = { HttpTokens: "required" };
  if (tags.length) input.TagSpecifications = [{ ResourceType: "instance", Tags: tags }];
  if (r.client_token) input.ClientToken = r.client_token;
  return input;
}

function commandFor(c) {
  switch (c.action) {
    case "RunInstances":
      return new RunInstancesCommand(runInput(c.run));
    case "TerminateInstances":
      return new TerminateInstancesCommand({ InstanceIds: [c.instance_id] });
    case "DescribeInstances": {
      const input = {};
      if (c.ids && c.ids.length) input.InstanceIds = c.ids;
      if (c.filters && c.filters.length) input.Filters = c.filters.map(([Name, Values]) => ({ Name, Values }));
      if (c.max_results) input.MaxResults = c.max_results;
      if (c.next_token) input.NextToken = c.next_token;
      return new DescribeInstancesCommand(input);
    }
    case "DescribeInstanceTypes": {
      const input = { InstanceTypes: c.types };
      if (c.next_token) input.NextToken = c.next_token;
      return new DescribeInstanceTypesCommand(input);
    }
    case "DescribeImages":
      return new DescribeImagesCommand({ ImageIds: c.image_ids });
    case "DescribeAddresses": {
      if (c.instance_id) return new DescribeAddressesCommand({ Filters: [{ Name: "instance-id", Values: [c.instance_id] }] });
      const input = {};
      if (c.allocation_id) input.AllocationIds = [c.allocation_id];
      if (c.filters && c.filters.length) input.Filters = c.filters.map(([Name, Values]) => ({ Name, Values }));
      return new DescribeAddressesCommand(input);
    }
    // the orphan sweep's listing of leftover add-on ENIs
    case "DescribeNetworkInterfaces": {
      const input = {};
      if (c.filters && c.filters.length) input.Filters = c.filters.map(([Name, Values]) => ({ Name, Values }));
      if (c.max_results) input.MaxResults = c.max_results;
      if (c.next_token) input.NextToken = c.next_token;
      return new DescribeNetworkInterfacesCommand(input);
    }
    case "ReleaseAddress":
      return new ReleaseAddressCommand({ AllocationId: c.allocation_id });
    case "DisassociateAddress":
      return new DisassociateAddressCommand({ AssociationId: c.association_id });
    // external-net-via-pod-vm's second ENI, as upstream's createAddonNICforInstance builds it
    case "CreateNetworkInterface":
      return new CreateNetworkInterfaceCommand({
        SubnetId: c.subnet_id, Groups: c.sg_ids,
        TagSpecifications: [{ ResourceType: "network-interface", Tags: c.tags.map(([Key, Value]) => ({ Key, Value })) }],
      });
    case "AttachNetworkInterface":
      return new AttachNetworkInterfaceCommand({
        InstanceId: c.instance_id, NetworkInterfaceId: c.eni_id, DeviceIndex: c.device_index,
      });
    case "ModifyNetworkInterfaceAttribute":
      return new ModifyNetworkInterfaceAttributeCommand({
        Attachment: { AttachmentId: c.attachment_id, DeleteOnTermination: true }, NetworkInterfaceId: c.eni_id,
      });
    case "DeleteNetworkInterface":
      return new DeleteNetworkInterfaceCommand({ NetworkInterfaceId: c.eni_id });
    case "AllocateAddress":
      return new AllocateAddressCommand({
        Domain: "vpc", TagSpecifications: [{ ResourceType: "elastic-ip", Tags: c.tags.map(([Key, Value]) => ({ Key, Value })) }],
      });
    case "AssociateAddress":
      return new AssociateAddressCommand({
        AllocationId: c.allocation_id, AllowReassociation: true, NetworkInterfaceId: c.eni_id,
      });
    default:
      throw new Error("unknown action " + c.action);
  }
}

async function build(c) {
  if (c.action === "AssumeRoleWithWebIdentity") {
    const { box, handler } = capturing("sts");
    const sts = new STSClient({ region: "us-east-1", endpoint: "http://127.0.0.1:1", requestHandler: handler,
      maxAttempts: 1 });
    await sts.send(new AssumeRoleWithWebIdentityCommand({
      RoleArn: c.role_arn, RoleSessionName: c.session_name, WebIdentityToken: c.token,
    })).catch(() => {});
    return { params: decodeForm(box.req.body), authorization: box.req.headers.authorization ?? null };
  }
  const { box, handler } = capturing("ec2");
  await ec2With(handler).send(commandFor(c)).catch(() => {});
  return { params: decodeForm(box.req.body) };
}

function cannedClient(status, xml) {
  return {
    handle: async () => ({
      response: new HttpResponse({
        statusCode: status, headers: { "content-type": "text/xml;charset=UTF-8" },
        body: Readable.from([Buffer.from(xml)]),
      }),
    }),
  };
}

const nul = (v) => (v === undefined ? null : v);

function instanceOut(i) {
  return {
    id: nul(i.InstanceId),
    state: nul(i.State?.Name ?? i.CurrentState?.Name),
    type: nul(i.InstanceType),
    private_ip: nul(i.PrivateIpAddress),
    public_ip: nul(i.PublicIpAddress),
    nics: (i.NetworkInterfaces || []).map((n) => ({
      private_ip: nul(n.PrivateIpAddress),
      public_ip: nul(n.Association?.PublicIp),
      device_index: n.Attachment?.DeviceIndex ?? -1,
    })),
    tags: (i.Tags || []).map((t) => [t.Key ?? "", t.Value ?? ""]),
  };
}

function rootVolumeSize(img) {
  const maps = img.BlockDeviceMappings || [];
  const root = maps.find((m) => m.DeviceName !== undefined && m.DeviceName === img.RootDeviceName);
  const m = root ?? maps[0];
  return m?.Ebs?.VolumeSize ?? 0;
}

async function parse(c) {
  const status = c.status ?? 200;
  try {
    if (c.action === "AssumeRoleWithWebIdentity") {
      const sts = new STSClient({ region: "us-east-1", endpoint: "http://127.0.0.1:1",
        requestHandler: cannedClient(status, c.xml), maxAttempts: 1 });
      const out = await sts.send(new AssumeRoleWithWebIdentityCommand({
        RoleArn: "arn:aws:iam::1:role/r", RoleSessionName: "s", WebIdentityToken: "t" }));
      const cr = out.Credentials || {};
      return { credentials: {
        access_key_id: nul(cr.AccessKeyId), secret_access_key: nul(cr.SecretAccessKey),
        session_token: nul(cr.SessionToken),
        expiration: cr.Expiration ? Math.floor(cr.Expiration.getTime() / 1000) : null,
      } };
    }
    const client = new EC2Client({ region: "us-east-1", endpoint: "http://127.0.0.1:1", credentials: CREDS,
      requestHandler: cannedClient(status, c.xml), maxAttempts: 1 });
    const out = await client.send(commandFor(c.request));
    switch (c.request.action) {
      case "RunInstances":
        return { instances: (out.Instances || []).map(instanceOut) };
      case "DescribeInstances":
        return {
          instances: (out.Reservations || []).flatMap((r) => (r.Instances || []).map(instanceOut)),
          next_token: nul(out.NextToken),
        };
      case "TerminateInstances":
        return { instances: (out.TerminatingInstances || []).map((i) => ({ id: nul(i.InstanceId),
          state: nul(i.CurrentState?.Name) })) };
      case "DescribeInstanceTypes":
        return {
          types: (out.InstanceTypes || []).map((t) => ({
            name: nul(t.InstanceType), vcpus: t.VCpuInfo?.DefaultVCpus ?? 0,
            memory_mib: t.MemoryInfo?.SizeInMiB ?? 0,
            gpus: (t.GpuInfo?.Gpus || []).reduce((a, g) => a + (g.Count ?? 0), 0),
          })),
          next_token: nul(out.NextToken),
        };
      case "DescribeImages":
        return { images: (out.Images || []).map((i) => ({ id: nul(i.ImageId),
          root_device_name: nul(i.RootDeviceName), root_volume_size: rootVolumeSize(i) })) };
      case "DescribeAddresses":
        return { addresses: (out.Addresses || []).map((a) => ({ public_ip: nul(a.PublicIp),
          allocation_id: nul(a.AllocationId), association_id: nul(a.AssociationId),
          instance_id: nul(a.InstanceId), network_interface_id: nul(a.NetworkInterfaceId),
          tags: (a.Tags || []).map((t) => [t.Key ?? "", t.Value ?? ""]) })) };
      case "DescribeNetworkInterfaces":
        return { enis: (out.NetworkInterfaces || []).map((n) => ({ id: nul(n.NetworkInterfaceId),
          status: nul(n.Status), attached_instance_id: nul(n.Attachment?.InstanceId),
          attachment_id: nul(n.Attachment?.AttachmentId), delete_on_termination: n.Attachment?.DeleteOnTermination === true,
          tags: (n.TagSet || []).map((t) => [t.Key ?? "", t.Value ?? ""]) })),
          next_token: nul(out.NextToken) };
      default:
        return { ok: true };
    }
  } catch (e) {
    if (status >= 300 && e.$metadata) {
      return { error: { code: e.name === "Error" ? null : e.name, message: nul(e.message),
        request_id: nul(e.$metadata.requestId) } };
    }
    return { fail: true };
  }
}

const mode = process.argv[2];
const cases = JSON.parse(readFileSync(0, "utf8"));
const fn = { sign, build, parse }[mode];
if (!fn) {
  console.error("usage: oracle.mjs sign|build|parse < cases.json");
  process.exit(2);
}
const out = [];
for (const c of cases) out.push(await fn(c));
process.stdout.write(JSON.stringify(out));
