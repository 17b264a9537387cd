#!/usr/bin/env python3
"""One orphan sweep over N unknown instances in the AWS or Azure fake, timed
from the daemon's log (as bench.py does for the test provider).

Each run plants N running instances of this node with ownership tags (each its
own sandbox id, which no pod knows) in a fresh fake (POST /_fake/plant), then
starts the real daemon (cloud-api-adaptor aws|azure) twice against it:
  dry run  - list (every page) + classify
  delete   - list + classify + N deletes (grace 0)
and checks the fake afterwards: N found, N deleted, nothing of this node left.
Pagination is the real APIs': DescribeInstances with the provider's
MaxResults (1000, the API's maximum) and NextToken; ARM VM list pages with
nextLink (page size given, the fake's default is 50).

  clouds.py aws|azure N RUNS [ARM page size]
Needs CAA_DAEMON, CAA_SOURCE_ROOT (and CAA_BUILD_ROOT for the AWS fake's SDK)."""
import os
import sys
import tempfile
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ["CAA_SOURCE_ROOT"]
sys.path[:0] = [HERE, os.path.join(SRC, "tests", "integration"), os.path.join(SRC, "tests", "integration", "aws"),
                os.path.join(SRC, "tests", "integration", "azure")]
from bench import report, sweep_once  # noqa: E402

SWEEP = ["-orphan-sweep-interval", "1h", "-orphan-sweep-grace", "0"]


class Aws:
    def __init__(self):
        import aws_harness
        self.h = aws_harness
        self.fake = aws_harness.Fake()

    def plant(self, n):
        self.fake.reset()
        self.fake.plant(n, [["caa.node", self.h.NODE]], "caa.sandbox-id")

    def cmd(self, root, extra):
        from test_aws_daemon import AwsDaemon
        d = AwsDaemon(root=root, forwarder=False, env={}, extra=SWEEP + extra)
        return d.cmdline(), self.h.base_env(self.fake)

    def calls(self):
        c = self.fake.state()["counts"]
        return {k: c.get(k, 0) for k in ("DescribeInstances", "TerminateInstances")}

    def left(self):
        return len(self.fake.alive())

    def close(self):
        self.fake.stop()


# ARM's documented subscription limits (token bucket size, refill per second), for CAA_BENCH_ARM_LIMITS=1.
ARM_LIMITS = {"reads": {"bucket": 250, "refill_per_s": 25}, "writes": {"bucket": 200, "refill_per_s": 10},
              "deletes": {"bucket": 200, "refill_per_s": 10}}


class Azure:
    def __init__(self, page_size):
        from test_daemon_azure import Fake
        self.fake = Fake()
        self.page_size = page_size
        self.limits = ARM_LIMITS if os.environ.get("CAA_BENCH_ARM_LIMITS") == "1" else {}

    def plant(self, n):
        self.fake.call("/_fake/reset", {"page_size": self.page_size, "rate_limit": self.limits})
        self.fake.call("/_fake/plant", {"count": n, "tags": {"caa-node": "worker-7"}, "sandbox_tag": "caa-sandbox-id"})

    def cmd(self, root, extra):
        from test_daemon_azure import AzureDaemon

        class NoForwarder:
            port = 1

        # With ARM's limits, the daemon's default cap on a Retry-After wait (the test daemon's is 100 ms).
        paced = ["-retry-max-delay", "60s"] if self.limits else []
        d = AzureDaemon(self.fake, NoForwarder(), root=root, args=SWEEP + extra + paced)
        return d.cmdline(), dict(os.environ, AZURE_CLIENT_SECRET="s3cr3t-value")

    def calls(self):
        log = self.fake.state()["log"]
        return {"VM list pages": sum(1 for m, p, _ in log if m == "GET" and p.endswith("/virtualMachines")),
                "VM DELETE": sum(1 for m, _, _ in log if m == "DELETE"),
                "answered 429": self.fake.state()["stats"]["rate_limited"]}

    def left(self):
        return len(self.fake.state()["vms"])

    def close(self):
        self.fake.close()


def main():
    cloud, n, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    c = Aws() if cloud == "aws" else Azure(int(sys.argv[4]) if len(sys.argv) > 4 else 50)
    dry, full = [], []
    try:
        for _ in range(runs):
            root = tempfile.mkdtemp(prefix="caa-orphan-bench-")
            try:
                c.plant(n)
                cmd, env = c.cmd(root, ["-orphan-sweep-dry-run"])
                t, deleted = sweep_once(cmd, n, env)
                if deleted != 0 or c.left() != n:
                    raise SystemExit("dry run deleted something")
                dry.append(t)
                listed = c.calls()
                cmd, env = c.cmd(root, [])
                t, deleted = sweep_once(cmd, n, env)
                if deleted != n or c.left() != 0:
                    raise SystemExit("deleted %d of %d, %d left" % (deleted, n, c.left()))
                full.append(t)
                print("calls (dry run): %s; both runs: %s" % (listed, c.calls()))
            finally:
                shutil.rmtree(root, ignore_errors=True)
    finally:
        c.close()
    print("%s fake:" % cloud)
    report(n, runs, dry, full)


if __name__ == "__main__":
    main()
