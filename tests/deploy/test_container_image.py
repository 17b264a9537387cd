#!/usr/bin/python3
"""The container image, built here with no registry (deploy/build-image.sh: Debian root
filesystem by mmdebstrap + this build's programs, imported with podman) and run with podman
--network none: every library resolves, `cloud-api-adaptor version` and `<provider> -help` work
for each provider, the entrypoint keeps upstream's contract inside the image, and the daemon
really serves its hypervisor socket in the container (libvirt provider on libvirt's in-process
test driver); the OCI archive written for registries carries the same image. Podman uses private storage under the build directory, removed at the end; the
Debian root filesystem is cached there (keyed by the package set) so later runs skip mmdebstrap.
TAP output; skipped (TAP plan 1..0) in sanitizer builds, whose binaries need the compiler's runtime."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import tap  # noqa: E402

SRC_ROOT = os.environ.get("CAA_SOURCE_ROOT", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD = os.environ.get("CAA_BUILD_ROOT", os.path.join(SRC_ROOT, "build"))
TAG = f"localhost/caa-image-test:{os.getpid()}"
# This machine: no CAP_SYS_RESOURCE (so no raised rlimits), cgroup v1 + unified hybrid (crun refuses
# it, runc copes), no systemd (cgroupfs manager, file events). Harmless where those are fine.
RUN_OPTS = ["--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]
tests = []


def test(fn):
    tests.append(fn)
    return fn


class Podman:
    def __init__(self, base, runroot):
        self.base = base
        # podman refuses a runroot path longer than 50 characters: a short one in /tmp.
        self.cmd = ["podman", "--root", os.path.join(base, "storage"), "--runroot", runroot,
                    "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "file"]

    def __call__(self, *args, timeout=120, check=True):
        r = subprocess.run(self.cmd + list(args), capture_output=True, text=True, timeout=timeout)
        if check:
            assert r.returncode == 0, f"podman {' '.join(args)}: rc {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r

    def run(self, *args, entrypoint=None, env=None, timeout=60, check=True):
        opts = ["run", "--rm", "--network", "none", *RUN_OPTS]
        if entrypoint:
            opts += ["--entrypoint", entrypoint]
        for k, v in (env or {}).items():
            opts += ["-e", f"{k}={v}"]
        return self(*opts, TAG, *args, timeout=timeout, check=check)


@test
def image_config_and_libraries(pm):
    cfg = json.loads(pm("image", "inspect", TAG).stdout)[0]["Config"]
    assert cfg["Entrypoint"] == ["/usr/local/bin/entrypoint.sh"], cfg
    script = ("set -e; for f in /usr/local/bin/cloud-api-adaptor /usr/local/bin/caa-ctl "
              "/usr/local/lib/*/cloud-api-adaptor/providers/caa-provider-*.so; do echo \"== $f\"; "
              "/lib64/ld-linux-x86-64.so.2 --list \"$f\"; done")
    out = pm.run("-c", script, entrypoint="/bin/bash").stdout
    assert out.count("== ") == 5, out
    assert "not found" not in out, out
    assert pm.run("-c", "test -s /etc/ssl/certs/ca-certificates.crt", entrypoint="/bin/bash", check=False) \
        .returncode == 0, "no CA bundle in the image"


@test
def version_and_help_per_provider(pm):
    out = pm.run("version", entrypoint="/usr/local/bin/cloud-api-adaptor")
    assert "cloud-api-adaptor version" in out.stdout + out.stderr, out
    for provider in ("libvirt", "aws", "azure"):
        r = pm.run(provider, "-help", entrypoint="/usr/local/bin/cloud-api-adaptor")
        text = r.stdout + r.stderr
        assert "cloud-api-adaptor options:" in text and f"{provider} options:" in text, text[-1500:]
    r = pm.run("version")  # through the entrypoint, as `docker run image version`
    assert "cloud-api-adaptor version" in r.stdout + r.stderr


@test
def entrypoint_contract_in_image(pm):
    r = pm.run(env={"CLOUD_PROVIDER": "aws", "AWS_SECRET_ACCESS_KEY": "dont-print-me"}, check=False)
    assert r.returncode == 1 and "$AWS_ACCESS_KEY_ID is NOT set" in r.stderr, r
    assert "dont-print-me" not in r.stdout + r.stderr
    r = pm.run(check=False)
    assert r.returncode == 1 and "Usage:" in r.stderr
    r = pm.run("azure", "-help", env={k: "x" for k in (
        "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZURE_SUBNET_ID",
        "AZURE_IMAGE_ID")})
    assert "azure options:" in r.stdout + r.stderr


@test
def daemon_serves_socket_in_container(pm):
    """CLOUD_PROVIDER=libvirt with libvirt's test driver: the daemon starts from the entrypoint and
    creates /run/peerpod/hypervisor.sock (bind-mounted so the host sees it, as the Kata shim will)."""
    d = tempfile.mkdtemp(prefix="caa-image-run-", dir="/tmp")
    name = f"caa-image-test-{os.getpid()}"
    try:
        pm("run", "-d", "--name", name, "--network", "none", *RUN_OPTS, "-v", f"{d}:/run/peerpod",
           "-e", "CLOUD_PROVIDER=libvirt", "-e", "LIBVIRT_URI=test:///default", "-e", "LOG_LEVEL=debug", TAG)
        sock = os.path.join(d, "hypervisor.sock")
        end = time.monotonic() + 30
        while time.monotonic() < end and not os.path.exists(sock):
            time.sleep(0.2)
        logs = pm("logs", name, check=False)
        assert os.path.exists(sock), f"no socket; logs:\n{logs.stdout}\n{logs.stderr}"
        assert oct(os.stat(sock).st_mode & 0o777) == "0o600"
        state = json.loads(pm("inspect", name).stdout)[0]["State"]
        assert state["Running"], state
    finally:
        pm("rm", "-f", "-t", "2", name, check=False)
        shutil.rmtree(d, ignore_errors=True)


@test
def oci_archive_for_registries(pm):
    """The -o archive (what one pushes from elsewhere) is an OCI image layout with the same config."""
    import tarfile

    with tarfile.open(pm.oci) as t:
        index = json.load(t.extractfile("index.json"))
        (desc,) = index["manifests"]
        assert desc["mediaType"] == "application/vnd.oci.image.manifest.v1+json", desc

        def blob(d):
            algo, digest = d["digest"].split(":")
            return json.load(t.extractfile(f"blobs/{algo}/{digest}"))

        manifest = blob(desc)
        config = blob(manifest["config"])
        assert config["config"]["Entrypoint"] == ["/usr/local/bin/entrypoint.sh"], config["config"]
        assert config["os"] == "linux" and config["architecture"] == "amd64"
        assert len(manifest["layers"]) == 1


def main():
    if os.environ.get("CAA_SANITIZED", "none") not in ("", "none"):
        print("1..0 # SKIP sanitizer build: its binaries need the compiler runtime, not in the image")
        return 0
    missing = [t for t in ("podman", "mmdebstrap", "runc") if not shutil.which(t)]
    print(f"1..{len(tests)}")
    if missing or os.getuid() != 0:
        why = f"missing {' '.join(missing)} (scripts/install-deps.sh)" if missing else "needs root"
        for i, fn in enumerate(tests, 1):
            print(f"not ok {i} - {fn.__name__} # {why}")
        return 1
    base = tempfile.mkdtemp(prefix="caa-podman-", dir=BUILD)
    runroot = tempfile.mkdtemp(prefix="caa-pr-", dir="/tmp")
    pm = Podman(base, runroot)
    try:
        t0 = time.monotonic()
        env = dict(os.environ, PODMAN=" ".join(pm.cmd))
        pm.oci = os.path.join(base, "image.oci.tar")
        r = subprocess.run([os.path.join(SRC_ROOT, "deploy", "build-image.sh"), "-B", BUILD, "-t", TAG,
                            "-c", os.path.join(BUILD, "image-rootfs-cache"), "-o", pm.oci],
                           capture_output=True, text=True, env=env, timeout=600)
        print(f"# build-image.sh: rc {r.returncode} in {time.monotonic() - t0:.1f} s")
        for line in (r.stdout + r.stderr).splitlines()[-15:]:
            print("# " + line)
        if r.returncode != 0:
            for i, fn in enumerate(tests, 1):
                print(f"not ok {i} - {fn.__name__} # image build failed")
            return 1
        failed = tap.run(tests, pm)
    finally:
        pm("rmi", "-f", TAG, check=False)
        subprocess.run(pm.cmd + ["system", "reset", "-f"], capture_output=True, timeout=120)
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(runroot, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
