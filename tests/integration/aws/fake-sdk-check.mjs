// Keeps the fake EC2/STS endpoint honest: the official AWS SDK for JavaScript
// (pinned) talks to it and must sign requests the fake accepts, read its
// answers to the values the fake reports in /_fake/state, and see AWS's
// error codes. Prints TAP.
//
//   node fake-sdk-check.mjs http://127.0.0.1:PORT
import {
  EC2Client, RunInstancesCommand, DescribeInstancesCommand, TerminateInstancesCommand,
  DescribeInstanceTypesCommand, DescribeImagesCommand, DescribeAddressesCommand, ReleaseAddressCommand,
  CreateNetworkInterfaceCommand, AttachNetworkInterfaceCommand, ModifyNetworkInterfaceAttributeCommand,
  DeleteNetworkInterfaceCommand, AllocateAddressCommand, AssociateAddressCommand, DescribeNetworkInterfacesCommand,
} from "@aws-sdk/client-ec2";
import { STSClient, AssumeRoleWithWebIdentityCommand } from "@aws-sdk/client-sts";

process.removeAllListeners("warning");
const url = process.argv[2];
let n = 0;
let failed = 0;
function ok(cond, name, detail) {
  n++;
  if (!cond) failed++;
  console.log(`${cond ? "ok" : "not ok"} ${n} - ${name}`);
  if (!cond && detail !== undefined) console.log("# " + JSON.stringify(detail));
}
const state = async () => (await fetch(url + "/_fake/state")).json();

const creds = { accessKeyId: "AKIDFAKESTATIC", secretAccessKey: "fake-static-secret" };
const ec2 = new EC2Client({ region: "us-east-1", endpoint: url, credentials: creds, maxAttempts: 1 });

const types = await ec2.send(new DescribeInstanceTypesCommand({ InstanceTypes: ["m6a.large", "g5.xlarge"] }));
const g5 = types.InstanceTypes.find((t) => t.InstanceType === "g5.xlarge");
ok(types.InstanceTypes.length === 2 && g5.VCpuInfo.DefaultVCpus === 4 && g5.MemoryInfo.SizeInMiB === 16384 &&
   g5.GpuInfo.Gpus[0].Count === 1, "DescribeInstanceTypes read by the SDK", types.InstanceTypes);

const imgs = await ec2.send(new DescribeImagesCommand({ ImageIds: ["ami-0fedcba9876543210"] }));
ok(imgs.Images[0].RootDeviceName === "/dev/sda1" && imgs.Images[0].BlockDeviceMappings[0].Ebs.VolumeSize === 40,
   "DescribeImages read by the SDK", imgs.Images);

const run = await ec2.send(new RunInstancesCommand({
  MinCount: 1, MaxCount: 1, ImageId: "ami-0123456789abcdef0", InstanceType: "m6a.large",
  SubnetId: "subnet-1", SecurityGroupIds: ["sg-1"], UserData: Buffer.from("#cloud-config\n").toString("base64"),
  CpuOptions: { AmdSevSnp: "enabled" }, MetadataOptions: { HttpTokens: "required" },
  TagSpecifications: [{ ResourceType: "instance", Tags: [{ Key: "Name", Value: "sdk <&> test" }, { Key: "caa.node", Value: "n" }] }],
  ClientToken: "sdk-check-token",
}));
const inst = run.Instances[0];
let st = await state();
const fi = st.instances.find((i) => i.id === inst.InstanceId);
ok(fi && inst.PrivateIpAddress === fi.private_ip && inst.State.Name === "pending" &&
   inst.NetworkInterfaces[0].Attachment.DeviceIndex === 0, "RunInstances answer read by the SDK", inst);
ok(fi && fi.tags.Name === "sdk <&> test" && fi.sev_snp === "enabled" && fi.client_token === "sdk-check-token",
   "the fake read the SDK's RunInstances parameters", fi);

const again = await ec2.send(new RunInstancesCommand({
  MinCount: 1, MaxCount: 1, ImageId: "ami-0123456789abcdef0", InstanceType: "m6a.large",
  SubnetId: "subnet-1", SecurityGroupIds: ["sg-1"], UserData: Buffer.from("#cloud-config\n").toString("base64"),
  CpuOptions: { AmdSevSnp: "enabled" }, MetadataOptions: { HttpTokens: "required" },
  TagSpecifications: [{ ResourceType: "instance", Tags: [{ Key: "Name", Value: "sdk <&> test" }, { Key: "caa.node", Value: "n" }] }],
  ClientToken: "sdk-check-token",
}));
ok(again.Instances[0].InstanceId === inst.InstanceId, "client token idempotency as EC2");

const desc = await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: "tag:caa.node", Values: ["n"] }] }));
const dinst = desc.Reservations.flatMap((r) => r.Instances);
ok(dinst.length === 1 && dinst[0].Tags.find((t) => t.Key === "Name").Value === "sdk <&> test",
   "DescribeInstances with a tag filter read by the SDK", dinst);

try {
  await ec2.send(new DescribeInstancesCommand({ InstanceIds: ["i-0000000000000dead"] }));
  ok(false, "unknown instance id must fail");
} catch (e) {
  ok(e.name === "InvalidInstanceID.NotFound" && e.$metadata.httpStatusCode === 400,
     "EC2 error document read by the SDK", { name: e.name, status: e.$metadata.httpStatusCode });
}

// external-net-via-pod-vm's second ENI, as upstream's createAddonNICforInstance calls it.
const nic = await ec2.send(new CreateNetworkInterfaceCommand({ SubnetId: "subnet-1", Groups: ["sg-1"],
  TagSpecifications: [{ ResourceType: "network-interface", Tags: [{ Key: "Name", Value: "nic-x" }] }] }));
const eniId = nic.NetworkInterface.NetworkInterfaceId;
ok(eniId.startsWith("eni-") && nic.NetworkInterface.SubnetId === "subnet-1", "CreateNetworkInterface read by the SDK",
   nic.NetworkInterface);
for (let i = 0; i < 200 && !(await state()).instances.find((x) => x.id === inst.InstanceId && x.state === "running"); i++)
  await new Promise((r) => setTimeout(r, 50));
const att = await ec2.send(new AttachNetworkInterfaceCommand({ InstanceId: inst.InstanceId, NetworkInterfaceId: eniId,
  DeviceIndex: 1 }));
ok(att.AttachmentId.startsWith("eni-attach-"), "AttachNetworkInterface read by the SDK", att);
await ec2.send(new ModifyNetworkInterfaceAttributeCommand({ NetworkInterfaceId: eniId,
  Attachment: { AttachmentId: att.AttachmentId, DeleteOnTermination: true } }));
const fe = (await state()).enis.find((x) => x.id === eniId);
ok(fe && fe.attachment.deviceIndex === 1 && fe.attachment.deleteOnTermination === true && fe.tags[0][1] === "nic-x",
   "the fake read the SDK's ENI parameters", fe);
try {
  await ec2.send(new DeleteNetworkInterfaceCommand({ NetworkInterfaceId: eniId }));
  ok(false, "an attached ENI must not be deletable");
} catch (e) {
  ok(e.name === "InvalidNetworkInterface.InUse", "deleting an attached ENI is refused with AWS's code", e.name);
}

const eip = await ec2.send(new AllocateAddressCommand({ Domain: "vpc",
  TagSpecifications: [{ ResourceType: "elastic-ip", Tags: [{ Key: "Name", Value: "eip-x" }] }] }));
const assoc = await ec2.send(new AssociateAddressCommand({ AllocationId: eip.AllocationId, AllowReassociation: true,
  NetworkInterfaceId: eniId }));
const fa = (await state()).addresses.find((a) => a.allocationId === eip.AllocationId);
ok(eip.AllocationId.startsWith("eipalloc-") && eip.PublicIp && assoc.AssociationId.startsWith("eipassoc-") &&
   fa && fa.networkInterfaceId === eniId && fa.instanceId === inst.InstanceId && fa.tags[0][1] === "eip-x",
   "AllocateAddress and AssociateAddress read by the SDK and the fake", { eip, assoc, fa });

// The orphan sweep's listings: this node's unattached ENIs by tag and status, paged; its Elastic IPs by tag.
const own = [{ Key: "caa.node", Value: "sdk-n" }, { Key: "caa.instance-name", Value: "podvm-x" }];
const made = [];
for (let i = 0; i < 6; i++) {
  const r = await ec2.send(new CreateNetworkInterfaceCommand({ SubnetId: "subnet-1", ClientToken: `sdk-eni-${i}`,
    TagSpecifications: [{ ResourceType: "network-interface", Tags: own }] }));
  made.push(r.NetworkInterface.NetworkInterfaceId);
}
const retried = await ec2.send(new CreateNetworkInterfaceCommand({ SubnetId: "subnet-1", ClientToken: "sdk-eni-0",
  TagSpecifications: [{ ResourceType: "network-interface", Tags: own }] }));
ok(retried.NetworkInterface.NetworkInterfaceId === made[0], "CreateNetworkInterface client token idempotency as EC2");
const seen = [];
let pages = 0;
let token;
do {
  const r = await ec2.send(new DescribeNetworkInterfacesCommand({ MaxResults: 5, NextToken: token,
    Filters: [{ Name: "tag:caa.node", Values: ["sdk-n"] }, { Name: "status", Values: ["available"] }] }));
  pages++;
  for (const n of r.NetworkInterfaces) seen.push([n.NetworkInterfaceId, n.Status, n.TagSet.find((t) => t.Key === "caa.instance-name")?.Value]);
  token = r.NextToken;
} while (token);
ok(pages === 2 && seen.length === 6 && seen.every(([id, status, name]) => made.includes(id) && status === "available" && name === "podvm-x"),
   "DescribeNetworkInterfaces with tag/status filters and NextToken read by the SDK", { pages, seen });
const attached = await ec2.send(new DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: [eniId] }));
ok(attached.NetworkInterfaces[0].Status === "in-use" && attached.NetworkInterfaces[0].Attachment.InstanceId === inst.InstanceId &&
   attached.NetworkInterfaces[0].Attachment.DeleteOnTermination === true, "an attached ENI read by the SDK",
   attached.NetworkInterfaces[0]);
for (const id of made) await ec2.send(new DeleteNetworkInterfaceCommand({ NetworkInterfaceId: id }));
const tagged = await ec2.send(new AllocateAddressCommand({ Domain: "vpc",
  TagSpecifications: [{ ResourceType: "elastic-ip", Tags: own }] }));
const byTag = await ec2.send(new DescribeAddressesCommand({ Filters: [{ Name: "tag:caa.node", Values: ["sdk-n"] }] }));
const byId = await ec2.send(new DescribeAddressesCommand({ AllocationIds: [eip.AllocationId] }));
ok(byTag.Addresses.length === 1 && byTag.Addresses[0].AllocationId === tagged.AllocationId &&
   byTag.Addresses[0].Tags.find((t) => t.Key === "caa.instance-name").Value === "podvm-x" && !byTag.Addresses[0].AssociationId &&
   byId.Addresses.length === 1 && byId.Addresses[0].NetworkInterfaceId === eniId && byId.Addresses[0].AssociationId === assoc.AssociationId,
   "DescribeAddresses by tag and by allocation id read by the SDK", { byTag: byTag.Addresses, byId: byId.Addresses });
try {
  await ec2.send(new DescribeAddressesCommand({ AllocationIds: ["eipalloc-0000000000000dead"] }));
  ok(false, "an unknown allocation id must fail");
} catch (e) {
  ok(e.name === "InvalidAllocationID.NotFound", "an unknown allocation id is refused with AWS's code", e.name);
}
await ec2.send(new ReleaseAddressCommand({ AllocationId: tagged.AllocationId }));

const term = await ec2.send(new TerminateInstancesCommand({ InstanceIds: [inst.InstanceId] }));
ok(term.TerminatingInstances[0].CurrentState.Name === "shutting-down" &&
   ["pending", "running"].includes(term.TerminatingInstances[0].PreviousState.Name), "TerminateInstances read by the SDK",
   term.TerminatingInstances);

await fetch(url + "/_fake/address", { method: "POST", body: JSON.stringify({ public_ip: "198.51.100.9",
  allocation_id: "eipalloc-1", association_id: "eipassoc-1", instance_id: inst.InstanceId }) });
const addrs = await ec2.send(new DescribeAddressesCommand({ Filters: [{ Name: "instance-id", Values: [inst.InstanceId] }] }));
ok(addrs.Addresses.length === 2 && addrs.Addresses.some((a) => a.AllocationId === "eipalloc-1") &&
   addrs.Addresses.some((a) => a.AllocationId === eip.AllocationId),
   "DescribeAddresses read by the SDK", addrs.Addresses);

const bad = new EC2Client({ region: "us-east-1", endpoint: url, maxAttempts: 1,
  credentials: { accessKeyId: "AKIDFAKESTATIC", secretAccessKey: "not-the-secret" } });
try {
  await bad.send(new DescribeImagesCommand({ ImageIds: ["ami-0123456789abcdef0"] }));
  ok(false, "a wrong secret must be refused");
} catch (e) {
  ok(e.name === "SignatureDoesNotMatch", "a wrong signature is refused with AWS's code", e.name);
}

const sts = new STSClient({ region: "us-east-1", endpoint: url, maxAttempts: 1 });
const role = await sts.send(new AssumeRoleWithWebIdentityCommand({
  RoleArn: "arn:aws:iam::123456789012:role/caa-test", RoleSessionName: "s", WebIdentityToken: "fake-web-identity-token" }));
ok(role.Credentials.AccessKeyId.startsWith("ASIA") && role.Credentials.Expiration instanceof Date,
   "AssumeRoleWithWebIdentity read by the SDK", role.Credentials);
const temp = new EC2Client({ region: "us-east-1", endpoint: url, maxAttempts: 1, credentials: {
  accessKeyId: role.Credentials.AccessKeyId, secretAccessKey: role.Credentials.SecretAccessKey,
  sessionToken: role.Credentials.SessionToken } });
const viaTemp = await temp.send(new DescribeImagesCommand({ ImageIds: ["ami-0123456789abcdef0"] }));
ok(viaTemp.Images.length === 1, "temporary credentials with a session token accepted");
try {
  await sts.send(new AssumeRoleWithWebIdentityCommand({ RoleArn: "arn:aws:iam::123456789012:role/caa-test",
    RoleSessionName: "s", WebIdentityToken: "wrong" }));
  ok(false, "a wrong web identity token must be refused");
} catch (e) {
  ok(e.name === "InvalidIdentityTokenException", "STS error document read by the SDK", e.name);
}

st = await state();
ok(st.sig_failures === 1, "exactly the one bad signature was refused", st.sig_failures);
console.log(`1..${n}`);
process.exit(failed ? 1 : 0);
