#!/usr/bin/env python3
"""process-user-data end to end: cidata directory, ISO 9660 image (loop mount
when possible), loopback Azure and AWS metadata servers, hostile user-data.

Usage: test-process-user-data.py PATH-TO-process-user-data [PATH-TO-make-cidata-iso]
Output: TAP. Every source the program knows is overridden in every run, so
nothing but 127.0.0.1 is ever contacted."""

import base64
import gzip
import hashlib
import http.server
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
import traceback

PUD = os.path.abspath(sys.argv[1])
TOML = (
    'algorithm = "sha512"\n'
    'version = "0.1.0"\n'
    "\n"
    "[data]\n"
    "\"aa.toml\" = '''\n"
    "[token_configs.kbs]\n"
    'url = "http://198.18.0.1:8080"\n'
    "'''\n"
    "\"cdh.toml\" = '''\n"
    "[kbc]\n"
    'name = "cc_kbc"\n'
    "'''\n"
    "\"policy.rego\" = '''\n"
    "package agent_policy\n"
    "'''\n"
).encode()
INITDATA = base64.b64encode(gzip.compress(TOML)).decode()
APF = '{"pod-network":{"podip":"10.244.1.7/24"},"pod-name":"nginx","tls-server-key":"KEY"}'
AUTH = '{"auths":{"quay.io":{"auth":"dXNlcjpwYXNz"}}}'
DEFAULT_DIGEST = "c0208fd1fb0315723e581bbbc1c57c03236f0cfb8215d8ea6578f6359bd5245b"
DEFAULT_TOML = b"algorithm = \"sha256\"\nversion = \"0.1.0\"\n\n[data]\n\"aa.toml\" = ''\n"

# Upstream's layout, literal blocks (what the adaptor sends).
GOOD = (
    "#cloud-config\n"
    "write_files:\n"
    "  - path: /run/peerpod/apf.json\n"
    "    content: |\n"
    f"      {APF}\n"
    "  - path: /run/peerpod/auth.json\n"
    "    content: |\n"
    f"      {AUTH}\n"
    "  - path: /run/peerpod/initdata\n"
    "    content: |\n"
    f"      {INITDATA}\n"
    "  - path: /run/peerpod/scratch-space.marker\n"
    '    content: ""\n'
)


def cloud_config(files):
    """JSON is YAML: a compact way to write arbitrary contents safely."""
    return "#cloud-config\n" + json.dumps({"write_files": [{"path": p, "content": c} for p, c in files]})


HOSTILE = {
    "unknown top-level key": cloud_config([("/run/peerpod/apf.json", "{}")])[:-1] + ', "runcmd": ["reboot"]}',
    "unknown item key": "#cloud-config\n"
    + json.dumps({"write_files": [{"path": "/run/peerpod/apf.json", "content": "{}", "permissions": "4755"}]}),
    "bad base64 initdata": cloud_config([("/run/peerpod/apf.json", "{}"), ("/run/peerpod/initdata", "%%%%")]),
    "bad gzip initdata": cloud_config([("/run/peerpod/initdata", base64.b64encode(b"plain text").decode())]),
    "duplicate TOML key": cloud_config(
        [("/run/peerpod/initdata", base64.b64encode(gzip.compress(TOML + b"\"aa.toml\" = 'again'\n")).decode())]
    ),
    "10 MB document": "#cloud-config\n" + "#" * (10 * 1000 * 1000),
}

# Upstream's process-user-data logs and skips paths off its list (and writes
# the rest); so do we. Nothing lands outside the output directory.
SKIPPED = {
    "path traversal": cloud_config([("/run/peerpod/apf.json", "{}"), ("/run/peerpod/../../etc/passwd", "x")]),
    "path outside the list": cloud_config([("/run/peerpod/apf.json", "{}"), ("/etc/cron.d/x", "* * * * * root id")]),
    "digest supplied": cloud_config([("/run/peerpod/apf.json", "{}"), ("/run/peerpod/initdata.digest", "0" * 64)]),
}

results = []


class Skip(Exception):
    pass


def case(fn):
    results.append(fn)
    return fn


def run(tmp, *, cidata_dir="", cidata_device="", fstype="iso9660", azure="", aws="", gcp="", alibaba="",
        timeout="10", retry="1", expect=0, extra=()):
    out = os.path.join(tmp, "run", "peerpod")
    cmd = [
        PUD,
        "provision-files",
        "-t",
        timeout,
        "--retry-interval",
        retry,
        "--cidata-dir",
        cidata_dir,
        "--cidata-device",
        cidata_device,
        "--cidata-fstype",
        fstype,
        "--azure-imds-url",
        azure,
        "--aws-imds-url",
        aws,
        "--gcp-imds-url",
        gcp,
        "--alibaba-imds-url",
        alibaba,
        "--output-dir",
        out,
        "--log-level",
        "debug",
        *extra,
    ]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if p.returncode != expect:
        raise AssertionError(f"exit {p.returncode}, expected {expect}; stderr:\n{p.stderr}")
    return out, p.stderr


def read(out, name):
    with open(os.path.join(out, name), "rb") as f:
        return f.read()


def mode(out, name):
    st = os.lstat(os.path.join(out, name))
    assert stat.S_ISREG(st.st_mode), name
    return stat.S_IMODE(st.st_mode)


def check_good_output(out):
    assert read(out, "apf.json") == (APF + "\n").encode()
    assert mode(out, "apf.json") == 0o600
    assert read(out, "auth.json") == (AUTH + "\n").encode()
    assert mode(out, "auth.json") == 0o600
    assert base64.b64decode(read(out, "initdata")) == base64.b64decode(INITDATA)
    assert read(out, "aa.toml") == b'[token_configs.kbs]\nurl = "http://198.18.0.1:8080"\n'
    assert read(out, "cdh.toml") == b'[kbc]\nname = "cc_kbc"\n'
    assert read(out, "policy.rego") == b"package agent_policy\n"
    assert read(out, "scratch-space.marker") == b""
    assert read(out, "initdata.digest") == hashlib.sha512(TOML).hexdigest().encode()
    for name in ("aa.toml", "cdh.toml", "policy.rego", "initdata", "initdata.digest"):
        assert mode(out, name) == 0o644, name
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o755
    assert sorted(os.listdir(out)) == sorted(
        ["apf.json", "auth.json", "initdata", "aa.toml", "cdh.toml", "policy.rego", "scratch-space.marker",
         "initdata.digest"]
    )


def cidata_dir_with(tmp, doc):
    d = os.path.join(tmp, "cidata")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "user-data"), "w" if isinstance(doc, str) else "wb") as f:
        f.write(doc)
    return d


# ---- cidata directory ----


@case
def cidata_directory(tmp):
    out, _ = run(tmp, cidata_dir=cidata_dir_with(tmp, GOOD))
    check_good_output(out)


@case
def cidata_without_initdata_writes_default(tmp):
    doc = cloud_config([("/run/peerpod/apf.json", APF)])
    out, _ = run(tmp, cidata_dir=cidata_dir_with(tmp, doc))
    assert read(out, "apf.json") == APF.encode()
    assert read(out, "aa.toml") == b""
    assert read(out, "initdata.digest") == DEFAULT_DIGEST.encode()
    # the default document is left behind as the initdata file, as upstream's program does
    assert gzip.decompress(base64.b64decode(read(out, "initdata"))) == DEFAULT_TOML


@case
def skipped_paths_are_logged(tmp):
    for name, doc in SKIPPED.items():
        out, err = run(tmp, cidata_dir=cidata_dir_with(tmp, doc), timeout="30")
        assert read(out, "apf.json") == b"{}", name
        assert "is not allowed, skipped" in err, f"{name}: {err}"
        assert read(out, "initdata.digest") == DEFAULT_DIGEST.encode(), name
        assert "* * *" not in err, f"{name}: {err}"
        shutil.rmtree(out)


@case
def no_source_times_out(tmp):
    empty = os.path.join(tmp, "empty")
    os.makedirs(empty)
    out, err = run(tmp, cidata_dir=empty, timeout="1", retry="1", expect=1)
    assert "no user-data" in err and "after 1 s" in err, err
    assert not os.path.exists(out)


@case
def hostile_user_data_writes_nothing(tmp):
    for name, doc in HOSTILE.items():
        d = cidata_dir_with(tmp, doc)
        out, err = run(tmp, cidata_dir=d, timeout="30", expect=1)
        assert not os.path.exists(out), f"{name}: {os.listdir(out)}"
        assert "nothing written" in err or "larger than" in err, f"{name}: {err}"
        # File contents must not be echoed into the log (paths and key names may be).
        assert "reboot" not in err and "* * *" not in err and "4755" not in err, f"{name}: {err}"


@case
def command_line_as_upstream(tmp):
    """upstream's cobra command: -v/--version print the version, no command prints
    the help (exit 0), provision-files accepts the persistent -v."""
    for args in (["-v"], ["--version"], ["version"]):
        p = subprocess.run([PUD] + args, capture_output=True, text=True, timeout=10)
        assert p.returncode == 0 and p.stdout.startswith("process-user-data "), (args, p.stdout, p.stderr)
    p = subprocess.run([PUD], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0 and "provision-files" in p.stdout, (p.stdout, p.stderr)
    doc = cloud_config([("/run/peerpod/apf.json", APF)])
    out, _ = run(tmp, cidata_dir=cidata_dir_with(tmp, doc), extra=["-v"])
    assert read(out, "apf.json") == APF.encode()


def closed_port_url():
    """A loopback URL nobody listens on (bound, then closed)."""
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


@case
def no_provider_writes_initdata_only(tmp):
    """As upstream: no cidata and no known cloud (no IMDS URL given, detection says
    neither Azure nor AWS): no user-data provider; the default initdata, its
    digest and aa.toml are written and the program succeeds at once."""
    vendor = os.path.join(tmp, "sys_vendor")
    with open(vendor, "w") as f:
        f.write("QEMU\n")
    out = os.path.join(tmp, "run", "peerpod")
    empty = os.path.join(tmp, "no-cidata")
    os.makedirs(empty)
    # The GCP probe of a KVM guest goes to a closed loopback port (refused).
    p = subprocess.run([PUD, "provision-files", "-t", "30", "--cidata-dir", empty, "--cidata-device", "",
                        "--hypervisor-vendor", "KVMKVMKVM", "--sys-vendor-file", vendor, "--output-dir", out,
                        "--detect-cloud", "--gcp-imds-url", closed_port_url()],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, p.stderr
    assert "no user-data provider" in p.stderr and "cloud: none" in p.stderr, p.stderr
    assert sorted(os.listdir(out)) == ["aa.toml", "initdata", "initdata.digest"], os.listdir(out)
    assert read(out, "initdata.digest") == DEFAULT_DIGEST.encode()
    # A configured cidata device that is not there (yet) gets a grace period
    # (bounded by -t) before the same outcome.
    shutil.rmtree(out)
    t0 = time.monotonic()
    p = subprocess.run([PUD, "provision-files", "-t", "1", "--cidata-dir", empty, "--cidata-device",
                        os.path.join(tmp, "no-such-device"), "--hypervisor-vendor", "KVMKVMKVM",
                        "--sys-vendor-file", vendor, "--output-dir", out, "--detect-cloud", "--gcp-imds-url",
                        closed_port_url()], capture_output=True, text=True, timeout=20)
    took = time.monotonic() - t0
    assert p.returncode == 0 and 0.9 <= took < 10, (p.returncode, took, p.stderr)
    assert sorted(os.listdir(out)) == ["aa.toml", "initdata", "initdata.digest"], os.listdir(out)


@case
def symlinked_user_data_refused(tmp):
    real = os.path.join(tmp, "real-user-data")
    with open(real, "w") as f:
        f.write(GOOD)
    d = os.path.join(tmp, "cidata")
    os.makedirs(d)
    os.symlink(real, os.path.join(d, "user-data"))
    out, err = run(tmp, cidata_dir=d, expect=1)
    assert not os.path.exists(out)


# ---- ISO 9660 ----


def make_iso(tmp, doc):
    tool = shutil.which("genisoimage") or shutil.which("xorrisofs") or shutil.which("mkisofs")
    if not tool:
        raise Skip("genisoimage/xorriso not installed")
    src = os.path.join(tmp, "iso-src")
    os.makedirs(src)
    for name, content in (("user-data", doc), ("meta-data", "local-hostname: podvm-test\n"), ("vendor-data", "")):
        with open(os.path.join(src, name), "w") as f:
            f.write(content)
    iso = os.path.join(tmp, "cidata.iso")
    subprocess.run([tool, "-quiet", "-output", iso, "-volid", "cidata", "-joliet", "-rock", src], check=True)
    return iso


def iso_label_and_user_data(iso):
    """Reads the ISO without the kernel: primary volume id and the user-data file."""
    with open(iso, "rb") as f:
        data = f.read()
    pvd = data[16 * 2048 : 17 * 2048]
    assert pvd[0] == 1 and pvd[1:6] == b"CD001", "no primary volume descriptor"
    label = pvd[40:72].decode().rstrip()
    if shutil.which("isoinfo"):
        ud = subprocess.run(["isoinfo", "-R", "-i", iso, "-x", "/user-data"], check=True, capture_output=True).stdout
    else:
        ud = None
    return label, ud


def mount_skip_reason(fstype):
    if os.geteuid() != 0:
        return "not root"
    with open("/proc/filesystems") as f:
        if fstype not in f.read().split():
            return f"kernel has no {fstype} file system"
    if not shutil.which("losetup"):
        return "no losetup"
    return None


def read_device_via_program(tmp, image, fstype="iso9660"):
    """The program's own path: a labelled device present, the mount point without user-data;
    it must mount, read, and unmount."""
    reason = mount_skip_reason(fstype)
    if reason:
        raise Skip(f"loop mount of the {fstype} image not possible here ({reason})")
    loop = subprocess.run(["losetup", "--find", "--show", "--read-only", image], capture_output=True, text=True)
    if loop.returncode != 0:
        raise Skip(f"loop mount of the {fstype} image not possible here (losetup: {loop.stderr.strip()})")
    dev = loop.stdout.strip()
    mnt = os.path.join(tmp, "media", "cidata")
    try:
        by_label = os.path.join(tmp, "by-label")
        os.makedirs(by_label)
        os.symlink(dev, os.path.join(by_label, "cidata"))
        out, err = run(tmp, cidata_dir=mnt, cidata_device=os.path.join(by_label, "cidata"), fstype=fstype)
        assert f"mounted {os.path.join(by_label, 'cidata')}" in err, err
        assert not os.path.ismount(mnt), "left mounted"
        return out
    finally:
        if os.path.ismount(mnt):
            subprocess.run(["umount", mnt], capture_output=True)
        subprocess.run(["losetup", "--detach", dev], capture_output=True)


@case
def cidata_device_mount(tmp):
    """The mount path with a file system this kernel surely has (ext4), labelled cidata."""
    if not shutil.which("mkfs.ext4"):
        raise Skip("mkfs.ext4 not installed")
    src = os.path.join(tmp, "fs-src")
    os.makedirs(src)
    with open(os.path.join(src, "user-data"), "w") as f:
        f.write(GOOD)
    image = os.path.join(tmp, "cidata.img")
    with open(image, "wb") as f:
        f.truncate(4 * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", "-L", "cidata", "-d", src, image], check=True)
    check_good_output(read_device_via_program(tmp, image, "ext4"))


@case
def iso_image_contents(tmp):
    iso = make_iso(tmp, GOOD)
    label, ud = iso_label_and_user_data(iso)
    assert label == "cidata", label
    if ud is not None:
        assert ud.decode() == GOOD
        out, _ = run(tmp, cidata_dir=cidata_dir_with(tmp, ud))
        check_good_output(out)


@case
def iso_image_loop_mount(tmp):
    iso = make_iso(tmp, GOOD)
    check_good_output(read_device_via_program(tmp, iso))


def libvirt_iso(tmp):
    builder = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else None
    if not builder:
        raise Skip("libvirt provider not built: no cidata ISO builder")
    iso = os.path.join(tmp, "libvirt-cidata.iso")
    with open(os.path.join(tmp, "ud"), "w") as f:
        f.write(GOOD)
    subprocess.run([builder, os.path.join(tmp, "ud"), iso], check=True)
    return iso


@case
def libvirt_iso_contents(tmp):
    """The adaptor's in-memory ISO (providers/libvirt/cidata-iso.c): label and file read back."""
    iso = libvirt_iso(tmp)
    label, ud = iso_label_and_user_data(iso)
    assert label == "cidata", label
    if ud is None:
        raise Skip("isoinfo not installed")
    assert ud.decode() == GOOD
    out, _ = run(tmp, cidata_dir=cidata_dir_with(tmp, ud))
    check_good_output(out)


@case
def libvirt_iso_loop_mount(tmp):
    check_good_output(read_device_via_program(tmp, libvirt_iso(tmp)))


# ---- metadata servers ----


class Server:
    def __init__(self, handler_fn):
        self.requests = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def _do(self):
                outer.requests.append((self.command, self.path, dict(self.headers)))
                status, body = handler_fn(self.command, self.path, self.headers, len(outer.requests))
                if isinstance(body, str):
                    body = body.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up on an oversized answer, as it should

            do_GET = do_PUT = _do

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


AZURE_PATH = "/metadata/instance/compute/userData?api-version=2021-01-01&format=text"


def azure_handler(doc):
    def h(method, path, headers, n):
        if method != "GET" or path != AZURE_PATH:
            return 404, "not found"
        if headers.get("Metadata") != "true":
            return 400, "Required metadata header not specified"
        # Azure returns the base64 it was given, wrapped here to check whitespace tolerance.
        b = base64.b64encode(doc.encode() if isinstance(doc, str) else doc).decode()
        return 200, "\n".join(b[i : i + 76] for i in range(0, len(b), 76))

    return h


@case
def azure_imds(tmp):
    srv = Server(azure_handler(GOOD))
    try:
        empty = os.path.join(tmp, "empty")
        os.makedirs(empty)
        out, err = run(tmp, cidata_dir=empty, azure=srv.url)
        check_good_output(out)
        assert "user-data from azure" in err, err
        assert srv.requests[0][2].get("Metadata") == "true"
    finally:
        srv.close()


# GCP (upstream's GcpImdsURL / GcpUserDataImdsURL): the probe and the user-data
# both need "Metadata-Flavor: Google"; the user-data attribute is base64 (upstream
# decodes it, imdsGet b64=true), as the GCP provider stores it.
GCP_PROBE = "/computeMetadata/v1/instance"
GCP_USER_DATA = "/computeMetadata/v1/instance/attributes/user-data"


def gcp_handler(doc):
    def h(method, path, headers, n):
        if method != "GET" or path not in (GCP_PROBE, GCP_USER_DATA):
            return 404, "not found"
        if headers.get("Metadata-Flavor") != "Google":
            return 403, "Missing Metadata-Flavor:Google header."
        if path == GCP_PROBE:
            return 200, "attributes/\nhostname\nid\n"
        return 200, base64.b64encode(doc.encode()).decode()

    return h


def vendor_file(tmp, text):
    path = os.path.join(tmp, "sys_vendor")
    with open(path, "w") as f:
        f.write(text + "\n")
    return path


@case
def gcp_detected_and_fetched(tmp):
    """A KVM guest whose metadata server answers is GCP (upstream's isGCPVM); the
    user-data comes from the GCP attribute. Azure/AWS/Alibaba are not asked."""
    srv = Server(gcp_handler(GOOD))
    other = Server(lambda *a: (500, "must not be asked"))
    try:
        empty = os.path.join(tmp, "empty")
        os.makedirs(empty)
        out, err = run(tmp, cidata_dir=empty, gcp=srv.url, azure=other.url, aws=other.url, alibaba=other.url,
                       extra=["--detect-cloud", "--hypervisor-vendor", "KVMKVMKVM", "--sys-vendor-file",
                              vendor_file(tmp, "Google")])
        check_good_output(out)
        assert "cloud: gcp" in err and "user-data from gcp" in err, err
        paths = [p for _, p, _ in srv.requests]
        assert paths[0] == GCP_PROBE and GCP_USER_DATA in paths, paths
        assert all(h.get("Metadata-Flavor") == "Google" for _, _, h in srv.requests)
        assert other.requests == [], other.requests
    finally:
        srv.close()
        other.close()


@case
def gcp_probe_only_on_kvm(tmp):
    """Not a KVM guest: no probe at all (upstream checks the CPUID vendor first);
    a KVM guest whose probe fails is not GCP."""
    srv = Server(gcp_handler(GOOD))
    try:
        empty = os.path.join(tmp, "empty")
        os.makedirs(empty)
        for hv in ("", "VMwareVMware"):
            _, err = run(tmp, cidata_dir=empty, gcp=srv.url, extra=["--detect-cloud", "--hypervisor-vendor", hv,
                                                                      "--sys-vendor-file", vendor_file(tmp, "QEMU")])
            assert "cloud: none" in err, err
        assert srv.requests == [], srv.requests
        _, err = run(tmp, cidata_dir=empty, gcp=closed_port_url(),
                     extra=["--detect-cloud", "--hypervisor-vendor", "KVMKVMKVM", "--sys-vendor-file",
                            vendor_file(tmp, "Google")])
        assert "cloud: none" in err, err
    finally:
        srv.close()


def alibaba_handler(doc):
    def h(method, path, headers, n):
        if method == "GET" and path == "/latest/user-data":
            return 200, doc
        return 404, "not found"

    return h


@case
def alibaba_detected_and_fetched(tmp):
    """DMI "Alibaba Cloud" (upstream's isAlibabaCloudVM): plain user-data from
    100.100.100.200/latest/user-data (here a loopback server). On KVM the GCP
    probe comes first (upstream's order) and finds nothing."""
    srv = Server(alibaba_handler(GOOD))
    try:
        empty = os.path.join(tmp, "empty")
        os.makedirs(empty)
        out, err = run(tmp, cidata_dir=empty, gcp=srv.url, alibaba=srv.url,
                       extra=["--detect-cloud", "--hypervisor-vendor", "KVMKVMKVM", "--sys-vendor-file",
                              vendor_file(tmp, "Alibaba Cloud")])
        check_good_output(out)
        assert "cloud: alibaba" in err and "user-data from alibaba" in err, err
        paths = [p for _, p, _ in srv.requests]
        assert paths[0] == GCP_PROBE and paths[-1] == "/latest/user-data", paths
    finally:
        srv.close()


TOKEN = "AQAEAExampleTokenValue=="


def aws_handler(doc, *, v1_only=False, ready_after=1):
    def h(method, path, headers, n):
        if path == "/latest/api/token":
            if v1_only:
                return 403, "Forbidden"
            if method != "PUT" or "X-aws-ec2-metadata-token-ttl-seconds" not in headers:
                return 400, "Bad Request"
            return 200, TOKEN
        if path == "/latest/user-data" and method == "GET":
            if not v1_only and headers.get("X-aws-ec2-metadata-token") != TOKEN:
                return 401, "Unauthorized"
            if n < ready_after:
                return 404, "Not Found"
            return 200, doc
        return 404, "Not Found"

    return h


@case
def aws_imdsv2(tmp):
    srv = Server(aws_handler(GOOD))
    try:
        import urllib.error
        import urllib.request

        # The server really requires the token.
        try:
            urllib.request.urlopen(srv.url + "/latest/user-data", timeout=5)
            raise AssertionError("user-data served without a token")
        except urllib.error.HTTPError as e:
            assert e.code == 401
        srv.requests.clear()
        empty = os.path.join(tmp, "empty")
        os.makedirs(empty)
        # Azure pointed at the AWS server: 404 there, then AWS is tried.
        out, err = run(tmp, cidata_dir=empty, azure=srv.url, aws=srv.url)
        check_good_output(out)
        assert "user-data from aws" in err, err
        methods = [(m, p) for m, p, _ in srv.requests]
        assert ("PUT", "/latest/api/token") in methods, methods
        put = next(h for m, p, h in srv.requests if m == "PUT")
        assert put.get("X-aws-ec2-metadata-token-ttl-seconds") == "60"
        get = next(h for m, p, h in srv.requests if p == "/latest/user-data")
        assert get.get("X-aws-ec2-metadata-token") == TOKEN
        assert TOKEN not in err, "token logged"
    finally:
        srv.close()


@case
def aws_retries_until_ready(tmp):
    # 404 for the first user-data requests (not yet available), then served.
    srv = Server(aws_handler(GOOD, ready_after=5))
    try:
        out, err = run(tmp, aws=srv.url, retry="1", timeout="20")
        check_good_output(out)
        gets = [p for m, p, _ in srv.requests if p == "/latest/user-data"]
        assert len(gets) >= 2, srv.requests
    finally:
        srv.close()


@case
def aws_imdsv1_fallback(tmp):
    srv = Server(aws_handler(GOOD, v1_only=True))
    try:
        out, _ = run(tmp, aws=srv.url)
        check_good_output(out)
    finally:
        srv.close()


@case
def imds_hostile_and_oversized(tmp):
    for name in ("unknown top-level key", "unknown item key", "10 MB document"):
        srv = Server(aws_handler(HOSTILE[name]))
        try:
            out, err = run(tmp, aws=srv.url, timeout="30", expect=1)
            assert not os.path.exists(out), name
        finally:
            srv.close()
    srv = Server(azure_handler("#" * (3 * 1000 * 1000)))
    try:
        out, err = run(tmp, azure=srv.url, timeout="30", expect=1)
        assert not os.path.exists(out)
        assert "larger than" in err, err
    finally:
        srv.close()


def main():
    print(f"1..{len(results)}")
    failed = 0
    for i, fn in enumerate(results, 1):
        tmp = tempfile.mkdtemp(prefix="caa-pud-")
        try:
            fn(tmp)
            print(f"ok {i} - {fn.__name__}")
        except Skip as e:
            print(f"ok {i} - {fn.__name__} # SKIP {e}")
        except Exception:
            failed += 1
            print(f"not ok {i} - {fn.__name__}")
            for line in traceback.format_exc().splitlines():
                print(f"# {line}")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
