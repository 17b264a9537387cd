#!/usr/bin/env python3
"""Boot data at CreateVM/StartVM: apf.json in the pod dir (0600, fields, a TLS
server certificate for the instance name that verifies against the daemon's
CA), the user-data the provider receives (cloud-config, write_files, initdata
gzip+base64 of the annotation, scratch marker), failures that leave nothing
behind (bad initdata, user-data over the provider's limit, bad TLS flags),
-disable-tls, -ca-cert-file, the CA kept across a restart, and logs free of
secrets."""
import base64
import gzip
import json
import os
import stat
import subprocess

import yaml

from caa_harness import Daemon, check, fail, pod_annotations, run_main, sandbox_id, tmpdir

INITDATA_MARK = "initdata-secret-0d5e7a"
INITDATA = ('algorithm = "sha384"\nversion = "0.1.0"\n\n[data]\n'
            '"aa.toml" = \'\'\'\n[token_configs]\n# %s\n\'\'\'\n"policy.rego" = "package agent_policy"\n'
            % INITDATA_MARK)
FLAG_MARK = "flag-initdata-77aa1c"
FLAG_TOML = 'algorithm = "sha256"\nversion = "0.1.0"\n\n[data]\n"cdh.toml" = "# %s"\n' % FLAG_MARK
FLAG_INITDATA = base64.b64encode(gzip.compress(FLAG_TOML.encode(), mtime=0)).decode()
ANN_INITDATA = "io.katacontainers.config.hypervisor.cc_init_data"
SUITES = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"


def openssl(*args, data=None):
    p = subprocess.run(["openssl"] + list(args), input=data, capture_output=True, timeout=30)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def write(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def tls_material(d):
    path = os.path.join(d.pods, ".tls", "tls-material.json")
    with open(path) as f:
        return path, json.load(f)


def check_server_cert(work, cert_pem, key_pem, ca_pem, name):
    """SAN = name, verifies against the CA, key matches."""
    cert = write(os.path.join(work, name + ".crt"), cert_pem)
    ca = write(os.path.join(work, "ca.crt"), ca_pem)
    rc, out, err = openssl("x509", "-in", cert, "-noout", "-ext", "subjectAltName", "-subject")
    check(rc == 0, "openssl x509: %s" % err)
    check("DNS:%s" % name in out and out.count("DNS:") == 1, "SAN of the server certificate: %s" % out)
    check("CN = %s" % name in out, "CN of the server certificate: %s" % out)
    rc, out, err = openssl("verify", "-CAfile", ca, "-purpose", "sslserver", cert)
    check(rc == 0 and "OK" in out, "server certificate does not verify against the CA: %s %s" % (out, err))
    if key_pem is not None:
        rc1, pub_cert, _ = openssl("x509", "-in", cert, "-noout", "-pubkey")
        rc2, pub_key, _ = openssl("pkey", "-pubout", data=key_pem.encode())
        check(rc1 == 0 and rc2 == 0 and pub_cert == pub_key, "tls-server-key does not match tls-server-cert")


def parse_user_data(raw):
    text = raw.decode()
    check(text.startswith("#cloud-config\n"), "user-data does not start with #cloud-config: %r" % text[:40])
    doc = yaml.safe_load(text)
    check(isinstance(doc, dict) and list(doc) == ["write_files"], "cloud-config keys: %s" % doc)
    files = {}
    for item in doc["write_files"]:
        check(set(item) == {"path", "content"}, "write_files entry keys: %s" % item)
        files[item["path"]] = item["content"]
    return files


def check_no_secrets(d, secrets):
    log = d.log()
    for s in secrets:
        check(s not in log, "the daemon log contains %r" % s[:40])
    check("PRIVATE KEY" not in log, "the daemon log contains a private key")


def scenario_tls(work):
    """TLS on (built-in CA): apf.json fields and the certificate; restart keeps the CA."""
    root = tmpdir()
    args = ["-test-ip", "127.0.0.1", "-tls-min-version", "VersionTLS12", "-tls-cipher-suites", SUITES]
    d = Daemon(root=root, forwarder=False, args=args).start()
    # The material is made at the first use, not at start.
    d.ctl_ok("version")
    check(not os.path.exists(os.path.join(d.pods, ".tls", "tls-material.json")),
          "TLS material made before the first pod")
    sid = sandbox_id(1)
    d.ctl_ok("create", sid, *pod_annotations("nginx", "default", {ANN_INITDATA: INITDATA}))
    pod_dir = os.path.join(d.pods, sid)
    apf_path = os.path.join(pod_dir, "apf.json")
    check(mode_of(apf_path) == 0o600, "apf.json mode %o" % mode_of(apf_path))
    apf = d.apf(sid)
    st = d.pod_state(sid)
    name = st["instance_name"]
    check(apf["pod-name"] == "nginx" and apf["pod-namespace"] == "default", "apf.json names: %s" % apf)
    check(apf["pod-network"] is None, "no netns: pod-network must be null, got %s" % apf["pod-network"])
    check(apf["tls-min-version"] == "VersionTLS12", "tls-min-version %r" % apf["tls-min-version"])
    check(apf["tls-cipher-suites"] == SUITES.split(","), "tls-cipher-suites %s" % apf["tls-cipher-suites"])
    mat_path, mat = tls_material(d)
    check(mode_of(mat_path) == 0o600 and mode_of(os.path.dirname(mat_path)) == 0o700, "TLS material modes")
    check(st["tls_dir"] == os.path.dirname(mat_path), "state tls_dir %s" % st["tls_dir"])
    check(apf["tls-client-ca"] == mat["client_cert"], "tls-client-ca is not the daemon's client certificate")
    check("PRIVATE KEY" in apf["tls-server-key"], "tls-server-key missing")
    check_server_cert(work, apf["tls-server-cert"], apf["tls-server-key"], mat["ca_cert"], name)
    first_cert = apf["tls-server-cert"]
    secrets = [INITDATA_MARK, apf["tls-server-key"].split("\n")[1], mat["ca_key"].split("\n")[1],
               mat["client_key"].split("\n")[1]]
    check(d.instances() == [], "CreateVM must not create an instance")
    check(d.stop() == 0, "exit status")
    check_no_secrets(d, secrets)

    # Restart: the material is reloaded, not regenerated.
    with open(mat_path, "rb") as f:
        before = f.read()
    d = Daemon(root=root, forwarder=False, args=args).start()
    sid2 = sandbox_id(2)
    d.ctl_ok("create", sid2, *pod_annotations("web", "prod"))
    d.wait_log(r"using the CA kept in")
    with open(mat_path, "rb") as f:
        check(f.read() == before, "the TLS material changed across a restart")
    apf2 = d.apf(sid2)
    name2 = d.pod_state(sid2)["instance_name"]
    check_server_cert(work, apf2["tls-server-cert"], apf2["tls-server-key"], mat["ca_cert"], name2)
    # The certificate issued before the restart still verifies against the persisted CA.
    check_server_cert(work, first_cert, None, mat["ca_cert"], name)
    check(apf2["tls-client-ca"] == mat["client_cert"], "client certificate changed across a restart")
    d.ctl_ok("stop", sid)
    d.ctl_ok("stop", sid2)
    check(not os.path.exists(pod_dir), "pod dir left after StopVM")
    check(d.stop() == 0, "exit status")
    check_no_secrets(d, secrets + [apf2["tls-server-key"].split("\n")[1]])

    # A damaged TLS store stops the daemon (exit 1) and is left for an operator.
    write(mat_path, "{}")
    d = Daemon(root=root, forwarder=False, args=args).start(wait=False)
    rc = d.proc.wait(20)
    check(rc == 1 and "tls-material.json" in d.log(), "damaged TLS store: rc %d\n%s" % (rc, d.log()))
    check(os.path.exists(mat_path), "damaged TLS store was removed")

    # Keys that do not decode are found at the first use: CreateVM fails with the
    # file named, leaves no pod directory, the daemon serves on and the store is
    # left alone; once repaired, the next CreateVM succeeds.
    damaged = json.dumps(dict(mat, ca_key="junk"))
    write(mat_path, damaged)
    d = Daemon(root=root, forwarder=False, args=args).start()
    sid3 = sandbox_id(3)
    rc, _, err = d.ctl("create", sid3, *pod_annotations("web", "prod"))
    check(rc == 1 and "tls-material.json" in err and "junk" not in err, "CreateVM with damaged keys: %d %s" % (rc, err))
    check(not os.path.exists(os.path.join(d.pods, sid3)), "failed CreateVM left a pod directory")
    d.ctl_ok("version")
    with open(mat_path) as f:
        check(f.read() == damaged, "the damaged store was changed")
    write(mat_path, before.decode())
    d.ctl_ok("create", sid3, *pod_annotations("web", "prod"))
    check_server_cert(work, d.apf(sid3)["tls-server-cert"], None, mat["ca_cert"], d.pod_state(sid3)["instance_name"])
    d.ctl_ok("stop", sid3)
    check(d.stop() == 0, "exit status")
    check_no_secrets(d, secrets)


def scenario_user_data():
    """-disable-tls: user-data handed to the provider; initdata from the annotation and -initdata."""
    d = Daemon(args=["-enable-scratch-space", "-initdata", FLAG_INITDATA], log_level="debug").start()
    sid = sandbox_id(3)
    d.ctl_ok("create", sid, *pod_annotations("nginx", "default", {ANN_INITDATA: INITDATA}))
    apf = d.apf(sid)
    check(not apf.get("tls-server-key") and not apf.get("tls-server-cert") and "tls-client-ca" not in apf,
          "-disable-tls: apf.json carries TLS material: %s" % apf)
    check(d.pod_state(sid)["tls_dir"] is None, "-disable-tls: tls_dir must be null")
    check(not os.path.exists(os.path.join(d.pods, ".tls")), "-disable-tls: no TLS material is made")
    d.ctl_ok("start", sid)
    insts = d.instances()
    check(len(insts) == 1, "one instance: %s" % insts)
    raw = d.user_data(insts[0])
    check(d.instance(insts[0])["user_data_len"] == len(raw), "user_data_len and the stored user-data differ")
    files = parse_user_data(raw)
    check(list(files) == ["/run/peerpod/apf.json", "/run/peerpod/initdata", "/run/peerpod/scratch-space.marker"],
          "write_files paths: %s" % list(files))
    check(json.loads(files["/run/peerpod/apf.json"]) == apf, "apf.json in the user-data differs from the pod dir's")
    decoded = gzip.decompress(base64.b64decode(files["/run/peerpod/initdata"])).decode()
    check(decoded == INITDATA, "initdata does not decode to the annotation's TOML:\n%r" % decoded)
    check(files["/run/peerpod/scratch-space.marker"] == "", "scratch marker must be empty")

    # Without the annotation the daemon's -initdata is passed on unchanged.
    sid2 = sandbox_id(4)
    d.ctl_ok("create", sid2, *pod_annotations("plain", "default"))
    d.ctl_ok("start", sid2)
    inst2 = [i for i in d.instances() if d.instance(i)["sandbox_id"] == sid2]
    files2 = parse_user_data(d.user_data(inst2[0]))
    check(files2["/run/peerpod/initdata"].strip() == FLAG_INITDATA, "-initdata was not passed on unchanged")
    user_data_text = raw.decode()
    d.ctl_ok("stop", sid)
    d.ctl_ok("stop", sid2)
    check(d.instances() == [] and not [f for f in os.listdir(d.state) if f.endswith(".user-data")],
          "instances or user-data left after StopVM: %s" % os.listdir(d.state))

    # A bad cc_init_data annotation fails CreateVM; nothing is left.
    sid3 = sandbox_id(5)
    bad = 'algorithm = "md5"\nversion = "0.1.0"\n'
    rc, _, err = d.ctl("create", sid3, *pod_annotations("bad", "default", {ANN_INITDATA: bad}))
    check(rc == 1 and "INVALID_ARGUMENT" in err and "cc_init_data" in err, "bad initdata: %s" % err)
    check(not os.path.exists(os.path.join(d.pods, sid3)), "a failed CreateVM left its pod dir")
    check(d.stop() == 0, "exit status")
    long_lines = [l.strip() for l in user_data_text.splitlines() if len(l.strip()) > 30]
    check(long_lines, "user-data has no long lines to look for")
    check_no_secrets(d, [INITDATA_MARK, FLAG_MARK, FLAG_INITDATA] + long_lines)


def scenario_boot_data_on_disk():
    """An idle pod keeps its user-data only in start-request.json: StartVM reads it
    back, and fails clearly (no instance, the daemon serves on) when it is gone."""
    d = Daemon().start()
    sid = sandbox_id(7)
    d.ctl_ok("create", sid, *pod_annotations("nginx", "default"))
    os.unlink(os.path.join(d.pods, sid, "start-request.json"))
    rc, _, err = d.ctl("start", sid)
    check(rc == 1 and "start-request.json" in err, "StartVM without its start request: %d %s" % (rc, err))
    check(d.instances() == [], "an instance was made without boot data: %s" % d.instances())
    check(d.pod_state(sid)["state"] == "created", "state after the refused StartVM: %s" % d.pod_state(sid))
    d.ctl_ok("version")
    d.ctl_ok("stop", sid)
    check(d.stop() == 0, "exit status")


def scenario_size_limit():
    """A provider limit (validate_spec) fails CreateVM with INVALID_ARGUMENT and leaves nothing."""
    d = Daemon(args=["-test-user-data-limit", "300"]).start()
    ok = sandbox_id(6)
    d.ctl_ok("create", ok, *pod_annotations("small", "default"))
    big = sandbox_id(7)
    rc, _, err = d.ctl("create", big, *pod_annotations("big", "default", {ANN_INITDATA: INITDATA}))
    check(rc == 1 and "INVALID_ARGUMENT" in err and "over the limit of 300 bytes" in err,
          "over-limit user-data: rc %d %s" % (rc, err))
    check(not os.path.exists(os.path.join(d.pods, big)), "an over-limit CreateVM left its pod dir")
    check(d.instances() == [], "no instance for an over-limit pod")
    d.ctl_ok("start", ok)
    d.ctl_ok("stop", ok)
    check(d.stop() == 0, "exit status")


def scenario_user_ca(work):
    """-ca-cert-file: no server certificate in apf.json, no client CA shipped."""
    ca_key = os.path.join(work, "user-ca.key")
    ca_crt = os.path.join(work, "user-ca.crt")
    rc, _, err = openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                         "-keyout", ca_key, "-out", ca_crt, "-days", "2", "-subj", "/O=user-ca")
    check(rc == 0, "openssl req: %s" % err)
    d = Daemon(forwarder=False, args=["-test-ip", "127.0.0.1", "-ca-cert-file", ca_crt]).start()
    sid = sandbox_id(8)
    d.ctl_ok("create", sid, *pod_annotations())
    apf = d.apf(sid)
    check(not apf.get("tls-server-cert") and not apf.get("tls-server-key") and "tls-client-ca" not in apf,
          "-ca-cert-file: apf.json must carry no certificates: %s" % apf)
    d.ctl_ok("stop", sid)
    check(d.stop() == 0, "exit status")


def scenario_bad_flags():
    """TLS and initdata flags are checked at start."""
    cases = [
        (["-tls-min-version", "VersionTLS11"], 2, "tls-min-version"),
        (["-tls-cipher-suites", "TLS_RSA_WITH_RC4_128_SHA,TLS_BOGUS"], 2, "TLS_BOGUS"),
        (["-cert-file", "/nonexistent/c.crt"], 2, "-cert-key"),
        (["-cert-file", "/nonexistent/c.crt", "-cert-key", "/nonexistent/c.key"], 1, "/nonexistent/c.crt"),
        (["-ca-cert-file", "/nonexistent/ca.crt"], 1, "/nonexistent/ca.crt"),
        (["-initdata", "bm90LWd6aXA="], 2, "-initdata"),
    ]
    for args, want_rc, needle in cases:
        d = Daemon(forwarder=False, args=args).start(wait=False)
        try:
            rc = d.proc.wait(20)
        except Exception:
            d.kill()
            fail("daemon with %s did not exit" % args)
        d.reader.join(5)
        log = d.log()
        check(rc == want_rc and needle in log, "%s: rc %d (want %d), output:\n%s" % (args, rc, want_rc, log))


def main():
    work = tmpdir()
    scenario_bad_flags()
    scenario_tls(work)
    scenario_user_data()
    scenario_boot_data_on_disk()
    scenario_size_limit()
    scenario_user_ca(work)


run_main(main)
