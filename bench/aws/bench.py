#!/usr/bin/env python3
"""N concurrent creates through the AWS provider's ops table against the
fake EC2 endpoint with an injected latency per call; reports wall time,
request rate, the driver's peak RSS and CPU time. Run by run.sh."""
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.environ["CAA_SOURCE_ROOT"], "tests", "integration", "aws"))
from aws_harness import Driver, Fake, base_args, base_env  # noqa: E402


def one_run(fake, pods, latency, conc, limit=None):
    fake.reset(latency_ms=latency, pending_ms=0)
    if limit:
        fake.config(rate_limit={"RunInstances": {"bucket": limit[0], "refill_per_s": limit[1]}})
    d = Driver(fake, base_args(**{"-aws-max-concurrent-requests": str(conc)}), env=base_env(fake))
    r = d.cmd("verify", timeout=120)  # startup calls, not timed
    assert r["status"] == 0, r
    before = d.cmd("rusage")
    res = d.cmd("create-many %d" % pods, timeout=600)
    after = d.cmd("rusage")
    assert limit or res["ok"] == pods, res
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
        "ok": res["ok"],
        "throttled": st["errors"].get("RequestLimitExceeded", 0),
        "first_error": res["errors"][0] if res["errors"] else "",
    }


def main():
    pods, latency, conc, runs = (int(x) for x in sys.argv[1:5])
    # Optional: RunInstances token bucket "BUCKET:REFILL_PER_S" in the fake (storm mode).
    limit = tuple(float(x) for x in sys.argv[5].split(":")) if len(sys.argv) > 5 and sys.argv[5] else None
    fake = Fake()
    results = [one_run(fake, pods, latency, conc, limit) for _ in range(runs)]
    fake.stop()
    print("pods=%d latency=%dms max-concurrent=%d runs=%d" % (pods, latency, conc, runs))
    if limit:
        # What the cloud allows: the bucket at once, the rest at the refill rate, plus one latency.
        allowed = latency / 1000 + max(0, pods - limit[0]) / limit[1]
        print("rate limit: RunInstances bucket %g, refill %g/s -> the limit allows all %d in %.2f s" %
              (limit[0], limit[1], pods, allowed))
        for r in results:
            print("run: %d of %d created in %.2f s (%.2f x allowed), %d throttled answers%s" %
                  (r["ok"], pods, r["wall_s"], r["wall_s"] / allowed, r["throttled"],
                   ", first error: " + r["first_error"] if r["first_error"] else ""))
    for k, unit in (("wall_s", "s"), ("rps", "req/s"), ("peak_rss_mib", "MiB"), ("rss_anon_mib", "MiB"),
                    ("rss_file_mib", "MiB"), ("cpu_ms", "ms"),
                    ("max_in_flight", ""), ("calls", ""), ("ok", ""), ("throttled", "")):
        vals = [r[k] for r in results]
        print("%-14s median %9.2f  min %9.2f  max %9.2f %s" % (k, statistics.median(vals), min(vals), max(vals), unit))


if __name__ == "__main__":
    main()
