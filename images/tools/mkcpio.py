#!/usr/bin/env python3
"""Writes a newc cpio archive (the Linux initramfs format) from a gen_init_cpio-style spec.

Why not GNU cpio: a normal user cannot create /dev/console with mknod, and the kernel needs that
node in the initramfs to give /init a console. Writing the archive directly needs no root, and
fixed owners and mtimes make the output reproducible.

Spec lines (the format of the kernel's usr/gen_init_cpio):
    dir   <name> <mode> <uid> <gid>
    file  <name> <source> <mode> <uid> <gid>
    slink <name> <target> <mode> <uid> <gid>
    nod   <name> <mode> <uid> <gid> <c|b> <major> <minor>
Blank lines and lines starting with '#' are ignored. Modes are octal.

Usage: mkcpio.py SPEC OUTPUT   (mtime: $SOURCE_DATE_EPOCH, default 0)
"""
import os
import stat
import sys


class Writer:
    def __init__(self, out, mtime):
        self.out = out
        self.mtime = mtime
        self.ino = 1
        self.seen = set()

    def _pad(self, n):
        self.out.write(b"\0" * ((4 - n % 4) % 4))

    def entry(self, name, mode, uid, gid, data=b"", rdev=(0, 0), nlink=1):
        name = name.lstrip("/")
        if name != "TRAILER!!!":
            if not name or name in self.seen:
                raise ValueError(f"empty or duplicate entry {name!r}")
            self.seen.add(name)
        bname = name.encode() + b"\0"
        fields = [self.ino, mode, uid, gid, nlink, self.mtime, len(data), 0, 0, rdev[0], rdev[1], len(bname), 0]
        self.ino += 1
        header = b"070701" + b"".join(b"%08X" % f for f in fields)
        self.out.write(header + bname)
        self._pad(len(header) + len(bname))
        self.out.write(data)
        self._pad(len(data))


def parse_mode(text):
    mode = int(text, 8)
    if mode & ~0o7777:
        raise ValueError(f"mode {text} has type bits")
    return mode


def build(spec_path, out_path, mtime):
    tmp = out_path + ".tmp"
    with open(spec_path) as spec, open(tmp, "wb") as out:
        w = Writer(out, mtime)
        for lineno, line in enumerate(spec, 1):
            f = line.split()
            if not f or f[0].startswith("#"):
                continue
            try:
                kind = f[0]
                if kind == "dir" and len(f) == 5:
                    w.entry(f[1], stat.S_IFDIR | parse_mode(f[2]), int(f[3]), int(f[4]), nlink=2)
                elif kind == "file" and len(f) == 6:
                    with open(f[2], "rb") as src:
                        data = src.read()
                    w.entry(f[1], stat.S_IFREG | parse_mode(f[3]), int(f[4]), int(f[5]), data)
                elif kind == "slink" and len(f) == 6:
                    w.entry(f[1], stat.S_IFLNK | parse_mode(f[3]), int(f[4]), int(f[5]), f[2].encode())
                elif kind == "nod" and len(f) == 8 and f[5] in ("c", "b"):
                    ftype = stat.S_IFCHR if f[5] == "c" else stat.S_IFBLK
                    w.entry(f[1], ftype | parse_mode(f[2]), int(f[3]), int(f[4]), rdev=(int(f[6]), int(f[7])))
                else:
                    raise ValueError("unknown or malformed line")
            except (ValueError, OSError) as e:
                raise SystemExit(f"{spec_path}:{lineno}: {e}")
        w.entry("TRAILER!!!", 0, 0, 0)
    os.replace(tmp, out_path)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    build(sys.argv[1], sys.argv[2], int(os.environ.get("SOURCE_DATE_EPOCH", "0")))
