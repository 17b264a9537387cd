"""Network namespaces for the root-only integration tests: commands in a
namespace, namespaces named with the test's pid (other tests run at the same
time) and removed at exit, helpers ended by PID."""
import atexit
import json
import os
import re
import subprocess

_made = []
_helpers = []


def sh(*args, check_rc=True):
    p = subprocess.run(list(args), capture_output=True, text=True, timeout=30)
    if check_rc and p.returncode != 0:
        raise AssertionError("%s failed (%d): %s" % (" ".join(args), p.returncode, p.stderr.strip()))
    return p.stdout


def ns(name, *args, **kw):
    return sh("ip", "netns", "exec", name, *args, **kw)


def end_process(p, grace=10):
    """SIGTERM, then SIGKILL after grace seconds."""
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def add_helper(p):
    """A process (by its Popen) killed at exit, before the namespaces go."""
    _helpers.append(p)
    return p


def _cleanup():
    for p in reversed(_helpers):
        if p.poll() is None:
            p.kill()
            p.wait()
    for n in reversed(_made):
        subprocess.run(["ip", "netns", "del", n], capture_output=True)


atexit.register(_cleanup)


def sweep_stale(prefix):
    """Namespaces <prefix><pid>-* left by an earlier run that was killed (its pid is gone)."""
    for line in sh("ip", "netns", "list").splitlines():
        name = line.split()[0] if line.strip() else ""
        m = re.match(r"^%s(\d+)-" % re.escape(prefix), name)
        if m and not os.path.exists("/proc/%s" % m.group(1)):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


def make_netns(name):
    """A namespace with lo up, deleted at exit."""
    sh("ip", "netns", "add", name)
    _made.append(name)
    ns(name, "ip", "link", "set", "lo", "up")


def nft_rules(name, table):
    """The rules of an nft table in namespace name (parsed from nft -j)."""
    out = ns(name, "nft", "-j", "list", "ruleset")
    return [item["rule"] for item in json.loads(out)["nftables"]
            if item.get("rule") and item["rule"].get("table") == table]
