#!/usr/bin/env python3
"""N concurrent creates through the AWS provider's ops table against the
fake EC2 endpoint with an injected latency per call; reports wall time,
request rate, the driver's peak RSS and CPU time. Run by run.sh."""
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.environ["CAA_SOURCE_ROOT"], "tests", "integration", "aws"))
from aws_harness import Driver, Fake, base_args, base_env  # noqa: E402


def one_run(fake, pods, latency, conc):
    fake.reset(latency_ms=latency, pending_ms=0)
    d = Driver(fake, base_args(**{"-aws-max-concurrent-requests": str(conc)}), env=base_env(fake))
    r = d.cmd("verify", timeout=120)  # startup calls, not timed
    assert r["status"] == 0, r
    before = d.cmd("rusage")
    res = d.cmd("create-many %d" % pods, timeout=600)
    after = d.cmd("rusage")
    assert res["ok"] == pods, res
    st = fake.state()
    d.close()
    calls = st["counts"].get("RunInstances", 0)
    return {
        "wall_s": res["ms"] / 1000,
        "rps": calls / (res["ms"] / 1000),
        "peak_rss_mib": after["vm_hwm_kib"] / 1024,
        "rss_anon_mib": after["rss_anon_kib"] / 1024,
        "rss_file_mib": after["rss_file_kib"] / 1024,
        "cpu_ms": 1000 * ((after["utime_s"] + after["stime_s"]) - (before["utime_s"] + before["stime_s"])),
        "max_in_flight": st["max_in_flight"],
        "calls": calls,
    }


def main():
    pods, latency, conc, runs = (int(x) for x in sys.argv[1:5])
    fake = Fake()
    results = [one_run(fake, pods, latency, conc) for _ in range(runs)]
    fake.stop()
    print("pods=%d latency=%dms max-concurrent=%d runs=%d" % (pods, latency, conc, runs))
    for k, unit in (("wall_s", "s"), ("rps", "req/s"), ("peak_rss_mib", "MiB"), ("rss_anon_mib", "MiB"),
                    ("rss_file_mib", "MiB"), ("cpu_ms", "ms"),
                    ("max_in_flight", ""), ("calls", "")):
        vals = [r[k] for r in results]
        print("%-14s median %9.2f  min %9.2f  max %9.2f %s" % (k, statistics.median(vals), min(vals), max(vals), unit))


if __name__ == "__main__":
    main()
