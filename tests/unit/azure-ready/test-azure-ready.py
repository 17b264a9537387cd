#!/usr/bin/env python3
"""azure-ready against a fake Azure WireServer on loopback.

The fake serves what the WireServer serves (the versions and goal state
documents below are rendered by hand from Azure's documented formats, as
WALinuxAgent and upstream's cmd/azure-ready read them) and checks what
arrives: the request lines and paths, `x-ms-agent-name`, `x-ms-version`
(the negotiated one, only on the machine requests), the Content-Type of the
report, and the Health document itself, parsed with xml.etree and compared
element by element with the documented report (goal state incarnation,
container id, role instance id, State Ready). Nothing is sent to
168.63.129.16: every run passes -endpoint http://127.0.0.1:<port>.

Usage: test-azure-ready.py AZURE_READY. Output is TAP.
"""
import http.server
import subprocess
import sys
import threading
import traceback
import xml.etree.ElementTree as ET

BIN = sys.argv[1]

VERSIONS = """<?xml version="1.0" encoding="utf-8"?>
<Versions>
  <Preferred>
    <Version>2015-04-05</Version>
  </Preferred>
  <Supported>
    <Version>2015-04-05</Version>
    <Version>2012-11-30</Version>
    <Version>2012-09-15</Version>
  </Supported>
</Versions>
"""

GOAL_STATE = """<?xml version="1.0" encoding="utf-8"?>
<GoalState xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="goalstate10.xsd">
  <Version>2015-04-05</Version>
  <Incarnation>{incarnation}</Incarnation>
  <Machine>
    <ExpectedState>Started</ExpectedState>
    <StopRolesDeadlineHint>300000</StopRolesDeadlineHint>
    <ExpectHealthReport>FALSE</ExpectHealthReport>
  </Machine>
  <Container>
    <ContainerId>{container}</ContainerId>
    <RoleInstanceList>
      <RoleInstance>
        <InstanceId>{instance}</InstanceId>
        <State>Started</State>
      </RoleInstance>
    </RoleInstanceList>
  </Container>
</GoalState>
"""


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Fake:
    """A WireServer on 127.0.0.1 that records and checks every request."""

    def __init__(self, versions=VERSIONS, goal=None, fail_first=0, reject_health=0):
        self.versions = versions
        self.goal = goal or {"incarnation": "3", "container": "c6d5526c-5ac2-4200-b6e2-56f2b70c5ab2",
                             "instance": "7d2798bb72a0413d9a60b355277df726.podvm-nginx-1a2b3c4d"}
        self.fail_first = fail_first
        self.reject_health = reject_health
        self.requests = []
        self.problems = []
        self.reports = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def reply(self, code, body=b"", ctype="text/xml; charset=utf-8"):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)

            def check_headers(self, want_version):
                if self.headers.get("x-ms-agent-name") != "azure-ready":
                    fake.problems.append("%s %s: x-ms-agent-name %r" % (self.command, self.path,
                                                                         self.headers.get("x-ms-agent-name")))
                got = self.headers.get("x-ms-version")
                if got != want_version:
                    fake.problems.append("%s %s: x-ms-version %r, want %r" % (self.command, self.path, got,
                                                                               want_version))

            def do_GET(self):
                fake.requests.append(("GET", self.path))
                if fake.fail_first > 0:
                    fake.fail_first -= 1
                    return self.reply(503, b"busy")
                if self.path == "/?comp=versions":
                    self.check_headers(None)
                    return self.reply(200, fake.versions.encode())
                if self.path == "/machine/?comp=goalstate":
                    self.check_headers(fake.expected_version())
                    g = {k: esc(v) for k, v in fake.goal.items()}
                    return self.reply(200, GOAL_STATE.format(**g).encode())
                fake.problems.append("unexpected GET %s" % self.path)
                self.reply(404)

            def do_POST(self):
                fake.requests.append(("POST", self.path))
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path != "/machine?comp=health":
                    fake.problems.append("unexpected POST %s" % self.path)
                    return self.reply(404)
                self.check_headers(fake.expected_version())
                ctype = self.headers.get("Content-Type")
                if ctype != "text/xml; charset=utf-8":
                    fake.problems.append("report Content-Type %r" % ctype)
                fake.reports.append(body)
                if fake.reject_health > 0:
                    fake.reject_health -= 1
                    return self.reply(400, b"<Error>bad</Error>")
                self.reply(200, b"")

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()
        self.url = "http://127.0.0.1:%d" % self.srv.server_address[1]

    def expected_version(self):
        root = ET.fromstring(self.versions)
        supported = [v.text for v in root.findall("./Supported/Version")]
        return "2015-04-05" if "2015-04-05" in supported else supported[0]

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def run(fake, *extra, expect=0):
    p = subprocess.run([BIN, "-endpoint", fake.url + "/", "-timeout", "5s", "-retry-interval", "100ms", *extra],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == expect, "exit %d, want %d\n%s" % (p.returncode, expect, p.stderr)
    assert not fake.problems, "\n".join(fake.problems)
    return p.stderr


def check_report(body, goal):
    """The documented Health report, element by element."""
    text = body.decode("utf-8")
    assert text.startswith('<?xml version="1.0" encoding="utf-8"?>'), text[:60]
    root = ET.fromstring(body)
    assert root.tag == "Health", root.tag
    assert [c.tag for c in root] == ["GoalStateIncarnation", "Container"], [c.tag for c in root]
    assert root.findtext("GoalStateIncarnation") == goal["incarnation"]
    container = root.find("Container")
    assert [c.tag for c in container] == ["ContainerId", "RoleInstanceList"]
    assert container.findtext("ContainerId") == goal["container"]
    roles = container.findall("RoleInstanceList/Role")
    assert len(roles) == 1 and [c.tag for c in roles[0]] == ["InstanceId", "Health"]
    assert roles[0].findtext("InstanceId") == goal["instance"]
    assert [c.tag for c in roles[0].find("Health")] == ["State"]
    assert roles[0].findtext("Health/State") == "Ready"


results = []


def case(fn):
    results.append(fn)
    return fn


@case
def reports_ready(tmp=None):
    f = Fake()
    try:
        err = run(f, "-v")
        assert f.requests == [("GET", "/?comp=versions"), ("GET", "/machine/?comp=goalstate"),
                              ("POST", "/machine?comp=health")], f.requests
        assert len(f.reports) == 1
        check_report(f.reports[0], f.goal)
        assert "reported Ready" in err, err
    finally:
        f.close()


@case
def values_are_escaped(tmp=None):
    goal = {"incarnation": "7", "container": "a&b<c>", "instance": "x\"y'z&amp;"}
    f = Fake(goal=goal)
    try:
        run(f)
        check_report(f.reports[0], goal)
    finally:
        f.close()


@case
def other_version_negotiated(tmp=None):
    versions = VERSIONS.replace("<Version>2015-04-05</Version>\n    <Version>2012-11-30</Version>",
                                "<Version>2012-11-30</Version>")
    f = Fake(versions=versions)
    try:
        run(f)  # the fake checks x-ms-version 2012-11-30
        assert len(f.reports) == 1
    finally:
        f.close()


@case
def retries_until_the_wireserver_answers(tmp=None):
    f = Fake(fail_first=3, reject_health=1)
    try:
        err = run(f, "-retries", "10")
        assert err.count("failed") == 4, err
        assert len(f.reports) == 2
        check_report(f.reports[-1], f.goal)
    finally:
        f.close()


@case
def incomplete_goal_state_gives_up(tmp=None):
    f = Fake(goal={"incarnation": "1", "container": "", "instance": "i"})
    try:
        err = run(f, "-retries", "2", expect=1)
        assert "no ContainerId" in err and "giving up after 2 attempts" in err, err
        assert f.reports == []
    finally:
        f.close()


@case
def nothing_listening_gives_up(tmp=None):
    f = Fake()
    url = f.url
    f.close()
    p = subprocess.run([BIN, "-endpoint", url, "-retries", "2", "-retry-interval", "10ms", "-timeout", "2s"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "giving up" in p.stderr, p.stderr


@case
def bad_flags(tmp=None):
    p = subprocess.run([BIN, "-retries", "0"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 2, p.stderr
    p = subprocess.run([BIN, "-version"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0 and p.stdout.startswith("azure-ready version"), p.stdout


def main():
    print("1..%d" % len(results))
    failed = 0
    for i, fn in enumerate(results, 1):
        try:
            fn()
            print("ok %d - %s" % (i, fn.__name__))
        except Exception:
            failed += 1
            print("not ok %d - %s" % (i, fn.__name__))
            for line in traceback.format_exc().splitlines():
                print("# " + line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
