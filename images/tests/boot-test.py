#!/usr/bin/env python3
"""Builds podvm-base.qcow2 and boots it under QEMU (TCG, q35, OVMF) the way the libvirt provider
does: UEFI firmware, SATA root disk, SATA cdrom with a cidata ISO, virtio NIC on QEMU user
networking (restrict=on, so the guest reaches nothing outside QEMU). Asserts from the serial
console that the UKI booted, userspace ran, the NIC got 10.0.2.15 by DHCP (QEMU-internal
address), the cidata ISO was mounted with the user-data, and the services started in order.

Usage: boot-test.py --build-script images/build-podvm-base.sh [--agent BIN] [--forwarder BIN]
                    [--process-user-data BIN] [--keep]
Exit status: 0 pass, 1 fail, 77 skip (QEMU, OVMF or image tools missing).
"""
import argparse
import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time

OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"
BUILD_LIMIT_S = 180
BOOT_DEADLINE_S = float(os.environ.get("CAA_IMAGE_BOOT_TIMEOUT", "300"))

USER_DATA = """#cloud-config
write_files:
  - path: /run/peerpod/apf.json
    content: |
      {"pod-namespace": "default", "pod-name": "image-boot-test"}
"""


class Terminated(Exception):
    pass


def on_signal(signum, _frame):
    raise Terminated(f"signal {signum}")


def log(msg):
    print(msg, flush=True)


def skip(msg):
    log(f"SKIP: {msg}")
    sys.exit(77)


def check_prereqs():
    for tool in ("qemu-system-x86_64", "qemu-img", "genisoimage", "sfdisk"):
        if not shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"):
            skip(f"{tool} not installed (scripts/install-deps.sh installs it)")
    for f in (OVMF_CODE, OVMF_VARS):
        if not os.path.exists(f):
            skip(f"{f} missing (package ovmf)")


def build_image(args, tmp, token):
    cmd = [args.build_script, "--cmdline", f"console=ttyS0,115200 panic=-1 quiet podvm.test={token}"]
    if args.agent:
        cmd += ["--agent", args.agent, "--agent-args", "/run/kata-containers/agent.sock"]
    if args.forwarder:
        cmd += ["--forwarder", args.forwarder]
    if args.process_user_data:
        cmd += ["--process-user-data", args.process_user_data]
    out = os.path.join(tmp, "out")
    cmd.append(out)
    # The build must not need root: as root, build as user nobody (when setpriv exists).
    setpriv = shutil.which("setpriv")
    if os.geteuid() == 0 and setpriv:
        os.chmod(tmp, 0o755)
        os.mkdir(out)
        os.chown(out, 65534, 65534)
        cmd = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"] + cmd
        log("building as user nobody")
    t0 = time.monotonic()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    took = time.monotonic() - t0
    log(r.stdout.rstrip())
    if r.returncode == 1 and "missing tool" in r.stdout:
        skip("image build tools missing")
    if r.returncode != 0:
        raise AssertionError(f"build script failed with {r.returncode}")
    log(f"build-time: {took:.1f} s")
    if took > BUILD_LIMIT_S:
        raise AssertionError(f"image build took {took:.1f} s (limit {BUILD_LIMIT_S} s)")
    return os.path.join(out, "podvm-base.qcow2")


def check_disk_layout(image, tmp):
    info = json.loads(subprocess.check_output(["qemu-img", "info", "--output=json", image]))
    if info["format"] != "qcow2":
        raise AssertionError(f"image format {info['format']}")
    raw = os.path.join(tmp, "layout.raw")
    subprocess.check_call(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", image, raw])
    sfdisk = shutil.which("sfdisk", path="/usr/sbin:/sbin:" + os.environ.get("PATH", ""))
    table = json.loads(subprocess.check_output([sfdisk, "--json", raw]))["partitiontable"]
    os.unlink(raw)
    parts = table["partitions"]
    if table["label"] != "gpt" or len(parts) != 1:
        raise AssertionError(f"expected one GPT partition, got {table}")
    if parts[0]["type"].upper() != "C12A7328-F81F-11D2-BA4B-00A0C93EC93B":
        raise AssertionError(f"partition is not an EFI system partition: {parts[0]}")
    log(f"PASS: qcow2 ({info['virtual-size'] // 1048576} MiB virtual) with one GPT EFI system partition")


def make_cidata(tmp):
    d = os.path.join(tmp, "cidata")
    os.mkdir(d)
    files = {"user-data": USER_DATA, "meta-data": "local-hostname: podvm-image-test\n", "vendor-data": ""}
    for name, content in files.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(content)
    iso = os.path.join(tmp, "cidata.iso")
    subprocess.check_call(["genisoimage", "-quiet", "-output", iso, "-volid", "cidata", "-joliet", "-rock"]
                          + [os.path.join(d, n) for n in files])
    return iso


def qemu_command(image, iso, vars_fd):
    return [
        "qemu-system-x86_64", "-accel", "tcg", "-machine", "q35", "-m", "512", "-smp", "1",
        "-nodefaults", "-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot",
        "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
        "-drive", f"if=pflash,format=raw,unit=1,file={vars_fd}",
        # q35's built-in AHCI controller: ide.0 = root disk (sda), ide.1 = cdrom, as libvirt's bus='sata'
        "-drive", f"if=none,id=root,format=qcow2,file={image}",
        "-device", "ide-hd,bus=ide.0,drive=root,bootindex=1",
        "-drive", f"if=none,id=cd,format=raw,media=cdrom,readonly=on,file={iso}",
        "-device", "ide-cd,bus=ide.1,drive=cd",
        "-netdev", "user,id=n0,restrict=on",
        "-device", "virtio-net-pci,netdev=n0",
    ]


def expectations(args, token):
    """(name, regex) in the order they must appear on the console."""
    exp = [
        ("firmware boots the disk", r"BdsDxe: starting Boot\d+ .*HARDDISK"),
        ("userspace started", r"podvm: userspace started uptime="),
        ("command line from the UKI", r"podvm: cmdline: .*podvm\.test=" + token),
        ("modules loaded", r"podvm: modules loaded: \d+"),
        ("netns podns created", r"podvm: netns podns created"),
        ("DHCP address", r"podvm: dhcp: eth0 bound 10\.0\.2\.15/24"),
        ("cidata ISO mounted", r"podvm: cidata mounted from /dev/sr0: .*user-data"),
        ("user-data visible", r"podvm: user-data present \(%d bytes\)" % len(USER_DATA.encode())),
        ("sysinit done", r"podvm: sysinit done"),
        ("process-user-data ran", r"podvm: starting process-user-data"),
    ]
    if args.process_user_data:
        exp.append(("process-user-data succeeded", r"podvm: process-user-data exited rc=0"))
        exp.append(("apf.json written from the user-data", r"podvm: apf\.json present"))
    else:
        exp.append(("process-user-data placeholder", r"podvm: missing process-user-data \(placeholder\)"))
    exp.append(("agent started", r"podvm: starting kata-agent"))
    if args.agent:
        exp.append(("agent socket ready", r"podvm: agent socket ready"))
    else:
        return exp + [("agent placeholder", r"podvm: missing kata-agent \(placeholder\)")]
    exp.append(("forwarder started", r"podvm: starting agent-protocol-forwarder"))
    if not args.forwarder:
        exp.append(("forwarder placeholder", r"podvm: missing agent-protocol-forwarder \(placeholder\)"))
    return exp


FATAL = re.compile(r"Kernel panic|podvm: insmod .* failed|podvm: .* failed|not syncing|BdsDxe: failed")


def watch_console(proc, exp, console_path):
    """Reads the serial console until every expectation was met in order; returns marker times."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    t0 = proc.t0
    deadline = t0 + BOOT_DEADLINE_S
    times = {}
    pending = list(exp)
    buf = b""
    agent_line = None
    with open(console_path, "w") as console:
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timeout after {BOOT_DEADLINE_S:.0f} s waiting for: {pending[0][0]}")
            if not sel.select(timeout=left):
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                raise AssertionError(f"QEMU exited (status {proc.wait()}) before: {pending[0][0]}")
            buf += chunk
            *lines, buf = buf.split(b"\n")
            now = time.monotonic() - t0
            for raw in lines:
                line = raw.decode("utf-8", "replace").rstrip("\r")
                console.write(f"{now:7.2f} {line}\n")
                if FATAL.search(line):
                    raise AssertionError(f"fatal console line: {line}")
                if "socket-stub: listening" in line:
                    agent_line = line
                if pending and re.search(pending[0][1], line):
                    name = pending.pop(0)[0]
                    times[name] = now
                    log(f"PASS: {name} ({now:.2f} s) | {line.strip()[:120]}")
                    continue
                # A later step showing up first means an earlier one was skipped: fail now
                # instead of at the deadline.
                for name, pattern in pending[1:]:
                    if re.search(pattern, line):
                        raise AssertionError(f"'{name}' came before '{pending[0][0]}': {line}")
    if exp and any(n == "agent socket ready" for n, _ in exp) and agent_line is None:
        raise AssertionError("the stub agent (a dynamically linked binary) never printed its marker")
    return times


def stop_qemu(proc):
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-script", required=True)
    ap.add_argument("--agent")
    ap.add_argument("--forwarder")
    ap.add_argument("--process-user-data")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    for opt in ("agent", "forwarder", "process_user_data"):
        path = getattr(args, opt) or os.environ.get("PODVM_" + opt.upper(), "")
        setattr(args, opt, path if path and os.path.exists(path) else None)

    check_prereqs()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    base = os.environ.get("CAA_BUILD_ROOT") or None
    tmp = tempfile.mkdtemp(prefix="podvm-image-test.", dir=base)
    proc = None
    ok = False
    try:
        token = os.urandom(4).hex()
        image = build_image(args, tmp, token)
        check_disk_layout(image, tmp)
        iso = make_cidata(tmp)
        vars_fd = os.path.join(tmp, "OVMF_VARS.fd")
        shutil.copyfile(OVMF_VARS, vars_fd)
        # The VM writes only to an overlay, so the built image stays pristine.
        overlay = os.path.join(tmp, "overlay.qcow2")
        subprocess.check_call(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", image, overlay])
        proc = subprocess.Popen(qemu_command(overlay, iso, vars_fd), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        proc.t0 = time.monotonic()
        log(f"qemu pid {proc.pid}")
        times = watch_console(proc, expectations(args, token), os.path.join(tmp, "console.log"))
        log("boot-time: firmware hands over to the disk at %.2f s, userspace at %.2f s, "
            "DHCP lease at %.2f s, sysinit done at %.2f s (from QEMU start)"
            % (times["firmware boots the disk"], times["userspace started"], times["DHCP address"],
               times["sysinit done"]))
        ok = True
    except (AssertionError, subprocess.CalledProcessError, Terminated, OSError) as e:
        log(f"FAIL: {e}")
    finally:
        stop_qemu(proc)
        console = os.path.join(tmp, "console.log")
        if not ok and os.path.exists(console):
            with open(console) as f:
                tail = f.readlines()[-40:]
            log("---- console (last 40 lines) ----\n" + "".join(tail).rstrip())
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    log("1 passed, 0 failed" if ok else "0 passed, 1 failed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
