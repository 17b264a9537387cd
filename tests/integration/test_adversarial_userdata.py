#!/usr/bin/env python3
"""Adversarial: hostile documents and files for process-user-data.

YAML alias bombs, anchors, duplicate keys, deep nesting, gzip bombs, NULs,
special files (FIFO, socket, directory, device symlink) and symlinks where
the cidata user-data is expected, and an output root whose entries are
symlinks pointing outside. Every run ends within its timeout with a clear
error and nothing is written outside the output root (the files around it,
including a canary a symlink points to, are byte for byte unchanged). The
amounts are fixed, the random garbage is seeded (CAA_ADV_SEED)."""
import base64
import gzip
import json
import os
import random
import shutil
import socket
import subprocess
import time

from caa_harness import check, run_main, tmpdir

PUD = os.environ.get("CAA_PROCESS_USER_DATA", "")
SEED = int(os.environ.get("CAA_ADV_SEED", "17"))


def cloud_config(files):
    return "#cloud-config\n" + json.dumps({"write_files": [{"path": p, "content": c} for p, c in files]})


def gzip_bomb(size):
    """size bytes of zeros, gzip'd (about 1000:1), base64: an initdata bomb."""
    return base64.b64encode(gzip.compress(b"\0" * size, 9)).decode()


def documents(rng):
    laughs = "#cloud-config\na: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
    for i in range(1, 10):
        laughs += "%s: &%s [%s]\n" % (chr(97 + i), chr(97 + i), ",".join(["*" + chr(96 + i)] * 9))
    laughs += "write_files: [{path: /run/peerpod/apf.json, content: *j}]\n"
    return {
        "alias bomb": laughs,
        "anchor on content": "#cloud-config\nwrite_files:\n- path: /run/peerpod/apf.json\n  content: &x '{}'\n",
        "alias as path": "#cloud-config\nx: &p /run/peerpod/apf.json\nwrite_files:\n- path: *p\n  content: '{}'\n",
        "merge key": "#cloud-config\nwrite_files:\n- <<: {path: /run/peerpod/apf.json}\n  content: '{}'\n",
        "duplicate write_files": "#cloud-config\nwrite_files: []\nwrite_files:\n- {path: /run/peerpod/apf.json, content: x}\n",
        "duplicate path key": "#cloud-config\nwrite_files:\n- {path: /run/peerpod/apf.json, path: /etc/x, content: x}\n",
        "deep flow nesting": "#cloud-config\nwrite_files: " + "[" * 20000 + "]" * 20000 + "\n",
        "deep block nesting": "#cloud-config\n" + "".join("  " * i + "k%d:\n" % i for i in range(3000)),
        "deep mapping in content": "#cloud-config\nwrite_files:\n- path: /run/peerpod/apf.json\n  content: "
                                   + "{a: " * 5000 + "1" + "}" * 5000 + "\n",
        "gzip bomb initdata": cloud_config([("/run/peerpod/initdata", gzip_bomb(256 << 20))]),
        "NUL in path": "#cloud-config\nwrite_files:\n- path: \"/run/peerpod/apf.json\\0/../../../etc/x\"\n  content: x\n",
        "tag": "#cloud-config\nwrite_files: !!python/object:os.system [id]\n",
        "garbage": "#cloud-config\n" + "".join(chr(rng.choice([9, 10, 32, 33, 34, 38, 42, 45, 58, 91, 93, 123, 125]
                                                             + list(range(97, 123)))) for _ in range(20000)),
        "not UTF-8": "#cloud-config\nwrite_files:\n- path: /run/peerpod/apf.json\n  content: \"\udcff\"\n",
    }


def snapshot(root, skip):
    """{relative path: (type, content or link target)} for everything under root but skip."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) != skip]
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                out[rel] = ("link", os.readlink(p))
            elif os.path.isfile(p):
                with open(p, "rb") as f:
                    out[rel] = ("file", f.read())
            else:
                out[rel] = ("other", os.lstat(p).st_mode)
    return out


def run(root, cidata, timeout=3):
    out = os.path.join(root, "run", "peerpod")
    cmd = [PUD, "provision-files", "-t", str(timeout), "--retry-interval", "1", "--cidata-dir", cidata,
           "--cidata-device", "", "--azure-imds-url", "", "--aws-imds-url", "", "--output-dir", out]
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, timeout=timeout + 30, stdin=subprocess.DEVNULL)
    return p.returncode, p.stderr.decode("utf-8", "replace"), time.monotonic() - t0, out


def main():
    if not PUD:
        print("CAA_PROCESS_USER_DATA not set")
        raise SystemExit(77)
    rng = random.Random(SEED)
    root = tmpdir()
    canary = os.path.join(root, "canary")
    with open(canary, "w") as f:
        f.write("untouched")
    cidata = os.path.join(root, "cidata")
    os.makedirs(cidata)
    ud = os.path.join(cidata, "user-data")
    out_root = os.path.join(root, "run", "peerpod")
    os.makedirs(os.path.dirname(out_root))

    def outcome(name, expect_fail=True, timeout=3):
        before = snapshot(root, out_root)
        rc, err, dt, out = run(root, cidata, timeout)
        after = snapshot(root, out_root)
        check(before == after, "%s: something outside the output root changed: %s"
              % (name, sorted(set(after.items()) ^ set(before.items()))[:5]))
        check(dt < timeout + 5, "%s: took %.1f s with a %d s timeout" % (name, dt, timeout))
        if expect_fail:
            check(rc != 0, "%s: accepted" % name)
            wrote = os.listdir(out) if os.path.isdir(out) else []
            check(wrote == [], "%s: wrote %s" % (name, wrote))
        check("Traceback" not in err and "AddressSanitizer" not in err and "runtime error" not in err,
              "%s: %s" % (name, err[-2000:]))
        return rc, err

    for name, doc in documents(rng).items():
        with open(ud, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(doc)
        outcome(name)
        os.unlink(ud)

    # The same file twice is not hostile: upstream writes the items in order, so
    # the later one wins (issue 14); nothing else may change.
    twice = cloud_config([("/run/peerpod/apf.json", '{"pod-name": "first"}'),
                          ("/run/peerpod/apf.json", '{"pod-name": "second"}')])
    with open(ud, "w") as f:
        f.write(twice)
    rc, err = outcome("same file twice", expect_fail=False)
    check(rc == 0, "same file twice: refused: %s" % err[-500:])
    with open(os.path.join(out_root, "apf.json")) as f:
        check(json.load(f).get("pod-name") == "second", "same file twice: the later item did not win")
    os.unlink(ud)
    shutil.rmtree(out_root)

    # A path outside the allowed files (here a traversal) is skipped with a
    # log line, as upstream does (issue 14): nothing of it is written anywhere.
    with open(ud, "w") as f:
        f.write(cloud_config([("/run/peerpod/../peerpod/../../tmp/escape", "x")]))
    rc, err = outcome("traversal", expect_fail=False)
    check("not allowed, skipped" in err, "traversal: no log line: %s" % err[-500:])
    for dirpath, _dirs, files in os.walk(root):
        check("escape" not in files, "traversal: wrote %s" % os.path.join(dirpath, "escape"))
    check(not os.path.exists("/tmp/escape"), "traversal: wrote /tmp/escape")
    os.unlink(ud)
    shutil.rmtree(out_root, ignore_errors=True)

    # Special files where the user-data is expected: refused at once, never a hang in open().
    os.mkfifo(ud)
    rc, err = outcome("FIFO as user-data")
    check("not a regular file" in err, "FIFO: %s" % err)
    os.unlink(ud)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(ud)
    outcome("socket as user-data")
    srv.close()
    os.unlink(ud)
    os.mkdir(ud)
    outcome("directory as user-data")
    os.rmdir(ud)
    for target in ("/dev/zero", canary, "/proc/self/environ"):
        os.symlink(target, ud)
        outcome("symlink to %s as user-data" % target)
        os.unlink(ud)

    # An output root whose entries are symlinks to the outside: written files
    # replace the links (or fail), never write through them.
    with open(ud, "w") as f:
        f.write(cloud_config([("/run/peerpod/apf.json", "{}"), ("/run/peerpod/auth.json", "{}")]))
    os.makedirs(out_root)
    os.symlink(canary, os.path.join(out_root, "apf.json"))
    os.symlink(root, os.path.join(out_root, "auth.json"))
    rc, _ = outcome("symlinks in the output root", expect_fail=False)
    for name in ("apf.json", "auth.json"):
        p = os.path.join(out_root, name)
        check(rc != 0 or not os.path.islink(p), "%s is still a symlink after a success" % name)
    with open(canary) as f:
        check(f.read() == "untouched", "canary changed")


run_main(main)
