#!/usr/bin/env python3
"""Sets the COFF TimeDateStamp of a PE image and recomputes its optional-header checksum.

objcopy (binutils 2.40) stamps PE output with the current time, which makes every UKI build
differ; this makes the stamp $SOURCE_DATE_EPOCH (default 0) so builds are reproducible.

Usage: pe-fix-timestamp.py FILE
"""
import os
import struct
import sys


def pe_checksum(data, checksum_off):
    total = 0
    padded = data + b"\0" * (len(data) % 2)
    for i in range(0, len(padded), 2):
        if checksum_off <= i < checksum_off + 4:
            continue
        total += padded[i] | padded[i + 1] << 8
        total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return (total + len(data)) & 0xFFFFFFFF


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    path = sys.argv[1]
    with open(path, "rb") as f:
        data = bytearray(f.read())
    if data[:2] != b"MZ":
        raise SystemExit(f"{path}: not a PE image")
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    if data[pe : pe + 4] != b"PE\0\0":
        raise SystemExit(f"{path}: no PE signature")
    coff = pe + 4
    stamp = int(os.environ.get("SOURCE_DATE_EPOCH", "0")) & 0xFFFFFFFF
    struct.pack_into("<I", data, coff + 4, stamp)
    checksum_off = coff + 20 + 64  # optional header, CheckSum field (PE32 and PE32+ alike)
    struct.pack_into("<I", data, checksum_off, 0)
    struct.pack_into("<I", data, checksum_off, pe_checksum(bytes(data), checksum_off))
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, os.stat(path).st_mode & 0o7777)
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
