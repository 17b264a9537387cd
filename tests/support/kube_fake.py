"""Start and drive tests/support/fake-kube-apiserver.py from a test (python3 stdlib only).

    with FakeKube(token="t1", tls=True) as kube:
        kube.url                      # https://127.0.0.1:<port>
        kube.kubeconfig(path)         # a kubeconfig for it (server, certificate-authority, token)
        kube.fault(method="PATCH", path="/nodes/", status=429, retry_after=1, count=3)
        kube.requests()               # the request log
        kube.objects("peerpods")      # what the fake holds
        kube.set_token("t2")          # token rotation

The fake is killed by PID when the block ends, also on failure; its temporary directory
(certificates, seed) is removed.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "fake-kube-apiserver.py")


def make_tls(dirname, cn="127.0.0.1", client_cn=None):
    """A CA and a server certificate for 127.0.0.1 (and optionally a client certificate), with openssl."""

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    ca_key, ca = os.path.join(dirname, "ca.key"), os.path.join(dirname, "ca.crt")
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
        "-subj", "/CN=fake-kube-ca", "-keyout", ca_key, "-out", ca)
    out = {"ca": ca}
    names = [("server", cn, "subjectAltName=IP:127.0.0.1,DNS:localhost")]
    if client_cn:
        names.append(("client", client_cn, "extendedKeyUsage=clientAuth"))
    for kind, subject, ext in names:
        key, csr, crt = (os.path.join(dirname, f"{kind}.{e}") for e in ("key", "csr", "crt"))
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", f"/CN={subject}",
            "-keyout", key, "-out", csr)
        extfile = os.path.join(dirname, f"{kind}.ext")
        with open(extfile, "w") as f:
            f.write(ext + "\n")
        run("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-days", "2",
            "-extfile", extfile, "-out", crt)
        out[kind + "_cert"], out[kind + "_key"] = crt, key
    return out


class FakeKube:
    def __init__(self, token=None, tls=False, client_cert_cn=None, seed=None, crds=(), extra_args=(),
                 python=None):
        self.token, self.tls, self.client_cert_cn = token, tls, client_cert_cn
        self.seed, self.crds, self.extra_args = seed, list(crds), list(extra_args)
        self.python = python or sys.executable
        self.proc = None
        self.dir = None
        self.certs = {}
        self.port = None

    # lifecycle --------------------------------------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="caa-fake-kube-", dir="/tmp")
        cmd = [self.python, FAKE, "--port", "0"]
        if self.token:
            cmd += ["--token", self.token]
        if self.tls:
            self.certs = make_tls(self.dir, client_cn=self.client_cert_cn)
            cmd += ["--tls-cert", self.certs["server_cert"], "--tls-key", self.certs["server_key"]]
            if self.client_cert_cn:
                cmd += ["--client-ca", self.certs["ca"]]
        if self.seed is not None:
            path = os.path.join(self.dir, "seed.json")
            with open(path, "w") as f:
                json.dump(self.seed, f)
            cmd += ["--seed", path]
        for i, crd in enumerate(self.crds):
            path = os.path.join(self.dir, f"crd{i}.json")
            with open(path, "w") as f:
                json.dump(crd, f)
            cmd += ["--crd", path]
        self.proc = subprocess.Popen(cmd + self.extra_args, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"fake-kube-apiserver did not start (got {line!r})")
        self.port = int(line.split()[1])

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc.stdout.close()
            self.proc = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    # addresses and client configuration ----------------------------------------------------

    @property
    def url(self):
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def control_url(self):
        return self.url

    def kubeconfig(self, path, token=None, client_cert=False):
        """Writes a kubeconfig (JSON is valid YAML) for this server; returns the path."""
        user = {}
        if token or self.token:
            user["token"] = token or self.token
        if client_cert:
            user["client-certificate"] = self.certs["client_cert"]
            user["client-key"] = self.certs["client_key"]
        cluster = {"server": self.url}
        if self.tls:
            cluster["certificate-authority"] = self.certs["ca"]
        cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "fake",
               "clusters": [{"name": "fake", "cluster": cluster}],
               "users": [{"name": "fake", "user": user}],
               "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}]}
        with open(path, "w") as f:
            json.dump(cfg, f)
        os.chmod(path, 0o600)
        return path

    # control endpoints -----------------------------------------------------------------------

    def _control(self, method, path, body=None):
        import ssl

        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        ctx = ssl.create_default_context(cafile=self.certs["ca"]) if self.tls else None
        with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
            return json.loads(r.read() or b"{}")

    def fault(self, path, status=0, method="", count=1, retry_after=None, delay=0.0, body=None, message=None,
              status_json=False):
        """Next `count` requests (-1: all) whose method matches and whose path?query matches the regex get
        `status` (a real-looking Status; 429 is plain text as from the API server's throttling filters
        unless status_json), optionally after `delay` s, with `body` truncate/garbage/empty/close."""
        f = {"path": path, "status": status, "method": method, "count": count, "delay": delay,
             "statusJson": status_json}
        for k, v in (("retryAfter", retry_after), ("body", body), ("message", message)):
            if v is not None:
                f[k] = v
        return self._control("POST", "/_fake/faults", f)

    def clear_faults(self):
        return self._control("DELETE", "/_fake/faults")

    def requests(self, since=0):
        return self._control("GET", f"/_fake/requests?since={since}")["requests"]

    def clear_requests(self):
        return self._control("DELETE", "/_fake/requests")

    def objects(self, resource=""):
        return self._control("GET", f"/_fake/objects?resource={resource}")["items"]

    def put_objects(self, objs):
        """Stores objects as given, without validation (like writing to etcd directly)."""
        return self._control("POST", "/_fake/objects", objs)["items"]

    def set_token(self, *tokens):
        return self._control("POST", "/_fake/token", {"tokens": list(tokens)})

    def set_rbac(self, rules):
        """Grant only these PolicyRules (list, or a ClusterRole object); None allows everything again."""
        return self._control("POST", "/_fake/rbac", {"rules": rules})

    def compact(self):
        """Forget the watch history: watches from older resourceVersions get 410 Expired."""
        return self._control("POST", "/_fake/compact")

    def wait_for(self, pred, timeout=10.0, interval=0.05):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            v = pred()
            if v:
                return v
            time.sleep(interval)
        return None
