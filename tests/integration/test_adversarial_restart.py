#!/usr/bin/env python3
"""Adversarial: SIGKILL/restart storm against the daemon with the test provider.

Seeded and bounded (CAA_ADV_SEED, default 17; fewer rounds under the
sanitizers). Each round starts the daemon, fires CreateVM/StartVM/StopVM on a
small pool of shared ids from several caa-ctl processes at once, plants what
a CreateVM killed before its first state leaves (an empty directory, apf.json,
temporary files of the atomic writes) and SIGKILLs the daemon after a random
delay. After every restart each directory is recovered or removed (never
"rejected"); at the end every id can be stopped, the pods dir is empty and no
instance is left."""
import os
import random
import subprocess
import time

from caa_harness import CTL, SANITIZED, Daemon, check, pod_annotations, run_main, sandbox_id, tmpdir

SEED = int(os.environ.get("CAA_ADV_SEED", "17"))
ROUNDS = 3 if SANITIZED else 8
POOL = [sandbox_id(1700 + i) for i in range(6)]


def plant_leftover(pods, rng, sid):
    """What a SIGKILL between mkdir and the first state.json leaves."""
    d = os.path.join(pods, sid)
    if os.path.exists(d):
        return False
    os.makedirs(d, mode=0o700)
    kind = rng.choice(["empty", "apf", "apf-tmp", "state-tmp"])
    names = {"empty": [], "apf": ["apf.json"], "apf-tmp": ["apf.json.tmp.q1W2e3"],
             "state-tmp": ["apf.json", "state.json.tmp.R4t5Y6"]}[kind]
    for n in names:
        with open(os.path.join(d, n), "w") as f:
            f.write("{}")
    return True


def storm(d, rng):
    procs = []
    for _ in range(rng.randint(4, 10)):
        sid = rng.choice(POOL)
        op = rng.choice(["create", "create", "start", "stop"])
        args = [op, sid] + (pod_annotations("p%s" % sid[-4:]) if op == "create" else [])
        procs.append(subprocess.Popen([CTL, "-socket", d.sock, "-pods-dir", d.pods] + args,
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        time.sleep(rng.uniform(0, 0.03))
    return procs


def reap(procs):
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def main():
    rng = random.Random(SEED)
    root = tmpdir()
    args = ["-test-create-delay", "50ms", "-test-delete-delay", "30ms"]
    planted = recovered_total = removed_total = 0
    for rnd in range(ROUNDS):
        d = Daemon(root=root, args=args).start()
        check(d.count_log(r"rejected pod directory") == 0, "round %d: rejected directories:\n%s" % (rnd, d.log()))
        # Every directory left by the previous round was recovered or removed.
        recovered = {l.split("sandbox=")[1].split()[0] for l in d.lines if "recovered pod" in l and "sandbox=" in l}
        for name in os.listdir(d.pods):
            check(name in recovered, "round %d: directory %s neither recovered nor removed:\n%s"
                  % (rnd, name, d.log()))
        recovered_total += len(recovered)
        removed_total += d.count_log(r"removed pod directory")
        for sid in POOL:
            if rng.random() < 0.3 and plant_leftover(d.pods, rng, sid):
                planted += 1
        procs = storm(d, rng)
        # The sanitizers slow the daemon down: let the storm get as far.
        time.sleep(rng.uniform(0.02, 0.4) * (4 if SANITIZED else 1))
        d.kill()  # SIGKILL
        reap(procs)

    d = Daemon(root=root, args=args).start()
    check(d.count_log(r"rejected pod directory") == 0, "final: rejected directories:\n%s" % d.log())
    # Planted leftovers in directories no pod used are removed at start or
    # by the StopVM below; each id can be stopped (or never existed).
    for sid in POOL:
        rc, _, err = d.ctl("stop", sid)
        check(rc == 0 or "does not exist" in err, "StopVM %s: %s\n%s" % (sid, err, d.log()))
    left = os.listdir(d.pods) if os.path.isdir(d.pods) else []
    check(left == [], "pods dir not empty: %s\n%s" % (left, d.log()))
    check(d.instances() == [], "instances leaked: %s" % d.instances())
    check(d.stop() == 0, "exit status")
    removed_total += d.count_log(r"removed pod directory")
    print("seed %d, %d rounds: %d leftover directories planted, %d removed at start, %d pods recovered"
          % (SEED, ROUNDS, planted, removed_total, recovered_total))

    # The shim's StopVM of an id whose directory a killed CreateVM left
    # (no state file) removes it, with the upstream answer.
    d = Daemon(root=root, args=args).start()
    sid = sandbox_id(1799)
    os.makedirs(os.path.join(d.pods, sid))
    with open(os.path.join(d.pods, sid, "apf.json"), "w") as f:
        f.write("{}")
    rc, _, err = d.ctl("stop", sid)
    check(rc == 1 and "UNKNOWN" in err and "does not exist" in err, "StopVM of a leftover: %s" % err)
    check(not os.path.exists(os.path.join(d.pods, sid)), "leftover directory not removed by StopVM")
    d.wait_log(r"sandbox=%s StopVM: removed the directory of an unfinished CreateVM \(it held: apf.json\)" % sid)
    # A directory with anything else in it is still left for an operator.
    keep = os.path.join(d.pods, sid, "agent.ttrpc")
    os.makedirs(os.path.dirname(keep))
    with open(keep, "w") as f:
        f.write("x")
    d.ctl("stop", sid)
    check(os.path.exists(keep), "StopVM removed a directory that holds other files")
    check(d.stop() == 0, "exit status")
    d = Daemon(root=root, args=args).start()
    check(d.count_log(r'rejected pod directory "%s"' % sid) == 1, "foreign directory not reported")
    check(os.path.exists(keep), "start-up scan removed a directory that holds other files")
    os.unlink(keep)
    check(d.stop() == 0, "exit status")


run_main(main)
