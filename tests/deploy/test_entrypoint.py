#!/usr/bin/python3
"""deploy/entrypoint.sh keeps upstream's Helm chart contract: provider from $1 or CLOUD_PROVIDER,
required variables checked per provider (named, values never printed), upstream's flag
translations, and a command line the real daemon accepts. The argv checks record the command
the script execs (CAA_DAEMON pointing at a recorder); the acceptance checks run the built
cloud-api-adaptor itself with -help appended, and its -help shows it reads every variable
upstream's script turned into a flag. TAP output."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import tap  # noqa: E402

SRC_ROOT = os.environ.get("CAA_SOURCE_ROOT", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD = os.environ.get("CAA_BUILD_ROOT", os.path.join(SRC_ROOT, "build"))
ENTRYPOINT = os.path.join(SRC_ROOT, "deploy", "entrypoint.sh")
DAEMON = os.path.join(BUILD, "adaptor", "cloud-api-adaptor")

AWS = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "very-secret-value"}
AZURE = {k: "x" for k in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP",
                          "AZURE_SUBNET_ID", "AZURE_IMAGE_ID")}
tests = []


def test(fn):
    tests.append(fn)
    return fn


class Recorder:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="caa-entrypoint-", dir="/tmp")
        self.path = os.path.join(self.dir, "record-argv")
        self.out = os.path.join(self.dir, "argv.json")
        with open(self.path, "w") as f:
            f.write("#!/usr/bin/python3\nimport json, os, sys\n"
                    f"json.dump(sys.argv[1:], open({self.out!r}, 'w'))\n"
                    f"json.dump(os.environ.get('GNUTLS_NO_IMPLICIT_INIT'), open({self.out!r} + '.gnutls', 'w'))\n")
        os.chmod(self.path, 0o755)

    def run(self, args=(), env=None):
        if os.path.exists(self.out):
            os.unlink(self.out)
        base = {"PATH": os.environ["PATH"], "CAA_DAEMON": self.path}
        r = subprocess.run([ENTRYPOINT, *args], env={**base, **(env or {})}, capture_output=True, text=True,
                           timeout=30)
        argv = json.load(open(self.out)) if os.path.exists(self.out) else None
        return r, argv

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


@test
def gnutls_implicit_init_off_unless_set(rec):
    aws = {"CLOUD_PROVIDER": "aws", **AWS}
    for env, want in (({}, "1"), ({"GNUTLS_NO_IMPLICIT_INIT": "0"}, "0")):
        r, argv = rec.run(env={**aws, **env})
        assert r.returncode == 0, r.stderr
        got = json.load(open(rec.out + ".gnutls"))
        assert got == want, (env, got)


@test
def provider_from_env_or_argument(rec):
    r, argv = rec.run(env={"CLOUD_PROVIDER": "libvirt", "LIBVIRT_URI": "qemu:///system"})
    assert r.returncode == 0, r.stderr
    assert argv == ["libvirt", "-pods-dir", "/run/peerpod/pods", "-socket", "/run/peerpod/hypervisor.sock",
                    "-data-dir", "/opt/data-dir"], argv
    r, argv = rec.run(["aws", "-log-level", "debug"], env={"CLOUD_PROVIDER": "libvirt", **AWS,
                                                          "PODS_DIR": "/p", "REMOTE_HYPERVISOR_ENDPOINT": "/s"})
    assert r.returncode == 0, r.stderr
    assert argv == ["aws", "-pods-dir", "/p", "-socket", "/s", "-log-level", "debug"], argv
    assert "very-secret-value" not in r.stderr + r.stdout


@test
def upstream_flag_translations(rec):
    r, argv = rec.run(env={"CLOUD_PROVIDER": "aws", **AWS, "PODVM_LAUNCHTEMPLATE_NAME": "lt-1",
                           "TAGS": " a=1,  b=2 "})
    assert r.returncode == 0, r.stderr
    assert argv[5:] == ["-use-lt", "-aws-lt-name", "lt-1", "-tags", "a=1,b=2"], argv
    r, argv = rec.run(env={"CLOUD_PROVIDER": "azure", **AZURE, "AZURE_INSTANCE_SIZES": "A, B,  C"})
    assert r.returncode == 0, r.stderr
    assert argv[5:] == ["-instance-sizes", "A,B,C"], argv


@test
def missing_variables_are_named(rec):
    r, argv = rec.run(env={"CLOUD_PROVIDER": "aws", "AWS_SECRET_ACCESS_KEY": "very-secret-value"})
    assert r.returncode == 1 and argv is None
    assert "$AWS_ACCESS_KEY_ID is NOT set" in r.stderr and "AWS_SECRET_ACCESS_KEY is NOT" not in r.stderr
    assert "very-secret-value" not in r.stderr
    r, argv = rec.run(env={"CLOUD_PROVIDER": "azure", **{k: v for k, v in AZURE.items() if k != "AZURE_IMAGE_ID"}})
    assert r.returncode == 1 and "$AZURE_IMAGE_ID is NOT set" in r.stderr, r.stderr
    r, argv = rec.run(env={"CLOUD_PROVIDER": "libvirt"})
    assert r.returncode == 1 and "$LIBVIRT_URI is NOT set" in r.stderr


@test
def unknown_and_unavailable_providers(rec):
    r, argv = rec.run(env={})
    assert r.returncode == 1 and argv is None and "Usage:" in r.stderr
    r, argv = rec.run(["gcp"])
    assert r.returncode == 1 and argv is None and 'cloud provider "gcp" is not available' in r.stderr
    r, argv = rec.run(["version"])
    assert r.returncode == 0 and argv == ["version"]


@test
def real_daemon_accepts_the_command_lines(rec):
    assert os.access(DAEMON, os.X_OK), f"{DAEMON} not built"
    cases = [("libvirt", {"LIBVIRT_URI": "test:///default"}),
             ("aws", {**AWS, "PODVM_LAUNCHTEMPLATE_NAME": "lt-1", "TAGS": "a=1, b=2"}),
             ("azure", {**AZURE, "AZURE_INSTANCE_SIZES": "A, B", "TAGS": "k=v"})]
    for provider, env in cases:
        r = subprocess.run([ENTRYPOINT, provider, "-help"], capture_output=True, text=True, timeout=30,
                           env={"PATH": os.environ["PATH"], "CAA_DAEMON": DAEMON, **env})
        out = r.stdout + r.stderr
        assert r.returncode == 0, f"{provider}: rc {r.returncode}: {out[-2000:]}"
        assert f"{provider} options:" in out, out[-2000:]
    r = subprocess.run([ENTRYPOINT, "version"], capture_output=True, text=True, timeout=30,
                       env={"PATH": os.environ["PATH"], "CAA_DAEMON": DAEMON})
    assert r.returncode == 0 and "cloud-api-adaptor version" in r.stdout + r.stderr, r


# Variables upstream's entrypoint.sh turns into flags; this image leaves them to the daemon, which
# must read each from the environment itself. (SECURE_COMMS* are gone upstream too.)
UPSTREAM_ENV = {
    "common": ["PAUSE_IMAGE", "TUNNEL_TYPE", "VXLAN_PORT", "CACERT_FILE", "CERT_FILE", "CERT_KEY", "TLS_SKIP_VERIFY",
               "PROXY_TIMEOUT", "INITDATA", "FORWARDER_PORT", "CLOUD_CONFIG_VERIFY", "PEERPODS_LIMIT_PER_NODE",
               "ENABLE_SCRATCH_SPACE", "PODS_DIR", "REMOTE_HYPERVISOR_ENDPOINT"],
    "aws": ["DISABLECVM", "AWS_SG_IDS", "PODVM_AMI_ID", "PODVM_INSTANCE_TYPE", "PODVM_INSTANCE_TYPES", "SSH_KP_NAME",
            "AWS_SUBNET_ID", "AWS_REGION", "TAGS", "USE_PUBLIC_IP", "ROOT_VOLUME_SIZE", "EXTERNAL_NETWORK_VIA_PODVM",
            "POD_SUBNET_CIDRS", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
    "azure": ["DISABLECVM", "SSH_USERNAME", "AZURE_INSTANCE_SIZES", "TAGS", "ENABLE_SECURE_BOOT", "USE_PUBLIC_IP",
              "ROOT_VOLUME_SIZE", "AZURE_SUBSCRIPTION_ID", "AZURE_REGION", "AZURE_INSTANCE_SIZE",
              "AZURE_RESOURCE_GROUP", "AZURE_SUBNET_ID", "AZURE_NSG_ID", "AZURE_IMAGE_ID", "AZURE_CLIENT_ID",
              "AZURE_TENANT_ID"],
    "libvirt": ["DISABLECVM", "LIBVIRT_URI", "LIBVIRT_NET", "LIBVIRT_POOL", "LIBVIRT_CPU", "LIBVIRT_MEMORY"],
}


@test
def daemon_reads_upstream_variables(rec):
    for provider in ("aws", "azure", "libvirt"):
        r = subprocess.run([DAEMON, provider, "-help"], capture_output=True, text=True, timeout=30)
        text = r.stdout + r.stderr
        missing = [v for v in UPSTREAM_ENV["common"] + UPSTREAM_ENV[provider] if f"(env {v})" not in text]
        assert not missing, f"{provider}: the daemon does not read {missing}"


def main():
    print(f"1..{len(tests)}")
    rec = Recorder()
    try:
        failed = tap.run(tests, rec)
    finally:
        rec.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
