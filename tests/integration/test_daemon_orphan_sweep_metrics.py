#!/usr/bin/env python3
"""The orphan sweep's counters in /metrics (parsed by prometheus_client, as
the scrapers do): an orphan found and deleted, a deletion that fails, and the
last run's count going back to 0 once the orphan is gone."""
from caa_harness import Daemon, check, free_port, probe_metrics, run_main, tmpdir
from test_daemon_orphan_sweep import plant


def sweep_metrics(port):
    return {k[0]: v for k, v in probe_metrics(port).items() if k[0].startswith("caa_orphan_sweep_")}


def sweep_daemon(root, *extra):
    port = free_port()
    d = Daemon(root=root, args=["-orphan-sweep-interval", "1s", "-orphan-sweep-grace", "0", "-probe-port",
                                str(port), *extra])
    return d, port


def main():
    root = tmpdir()
    # Deletions fail: found every run, a failure counted, nothing deleted.
    d, port = sweep_daemon(root, "-test-fail-delete")
    orphan = plant(d, 9, "podvm-lost-5a5a0009")[:-5]
    d.start()
    d.wait_log(r"orphan sweep: deleting instance %s failed" % orphan)
    d.wait_log(r"orphan sweep: 1 unknown instance\(s\); 0 deleted, 1 failed so far")
    m = sweep_metrics(port)
    check(m["caa_orphan_sweep_runs_total"] >= 1 and m["caa_orphan_sweep_found_total"] >= 1, "counted: %r" % m)
    check(m["caa_orphan_sweep_delete_failures_total"] >= 1 and m["caa_orphan_sweep_deleted_total"] == 0,
          "the failed deletion: %r" % m)
    check(m["caa_orphan_sweep_last_found"] == 1, "the last run saw the orphan: %r" % m)
    check(d.stop() == 0, "exit status")

    # Deletions work: the orphan goes, the next run finds nothing.
    d, port = sweep_daemon(root)
    d.start()
    d.wait_log(r"orphan sweep: deleted instance %s" % orphan)
    d.wait_log(r"orphan sweep: 0 unknown instance\(s\); 1 deleted", timeout=15)
    m = sweep_metrics(port)
    check(m["caa_orphan_sweep_deleted_total"] == 1 and m["caa_orphan_sweep_delete_failures_total"] == 0,
          "one deletion: %r" % m)
    check(m["caa_orphan_sweep_found_total"] == 1 and m["caa_orphan_sweep_runs_total"] >= 2, "found once: %r" % m)
    check(m["caa_orphan_sweep_last_found"] == 0 and m["caa_orphan_sweep_list_failures_total"] == 0,
          "the last run found nothing: %r" % m)
    check(d.instances() == [], "nothing left: %r" % d.instances())
    check(d.stop() == 0, "exit status")
    print("ok: the orphan sweep's counters are in /metrics")


if __name__ == "__main__":
    run_main(main)
