#!/usr/bin/env python3
"""Runs fake-sdk-check.mjs (the official AWS SDK against the fake EC2/STS
endpoint) and passes its TAP through."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from aws_harness import Fake, Skip, setup_node  # noqa: E402


def main():
    try:
        fake = Fake()
        node_dir = setup_node()
    except Skip as e:
        print("1..0 # SKIP %s" % e)
        return 77
    subprocess.run(["cp", os.path.join(HERE, "fake-sdk-check.mjs"), node_dir], check=True)
    r = subprocess.run(["node", os.path.join(node_dir, "fake-sdk-check.mjs"), fake.url], timeout=120)
    fake.stop()
    return r.returncode


if __name__ == "__main__":
    sys.exit(main())
