#!/usr/bin/python3
"""A fake Trustee KBS on loopback for secure comms' Trustee mode (run with Debian's
/usr/bin/python3: python3-jwt with Ed25519 through python3-cryptography).

Admin API, as the KBS serves it to its admin (the daemon):
  POST   /kbs/v0/resource/<repo>/<type>/<tag>   body: the resource bytes
  DELETE /kbs/v0/resource/<repo>/<type>/<tag>
each with "Authorization: Bearer <JWT>", checked by PyJWT against the admin public
key: algorithm EdDSA only; exp, iat and nbf required and checked (no leeway); the
claims upstream's client sent (issued_at, expires_at, invalid_before) must agree.
Anything else is 401 and stores nothing.

Resource API, as CDH would use it through the VM's KBS tunnel:
  GET /kbs/v0/resource/<repo>/<type>/<tag>
The attestation that a real KBS requires first cannot happen on loopback: this fake
serves the resource as is (the test checks which paths were asked for).

Test hooks: GET /test/resources (JSON: path -> length), GET /test/log (JSON list of
"METHOD path status"). --skew seconds shifts the KBS clock (expired tokens);
--lose-answer REGEX: a POST whose resource matches is stored, then answered 500 (a write
that landed although the client saw a failure).
Prints "fake-kbs listening on PORT" once ready."""
import argparse
import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key

RESOURCE = re.compile(r"^/kbs/v0/resource/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+)$")
MAX_BODY = 64 * 1024


class State:
    def __init__(self, public_key, skew, lose_answer):
        self.public_key = public_key
        self.skew = skew
        self.lose_answer = re.compile(lose_answer) if lose_answer else None
        self.resources = {}
        self.log = []
        self.lock = threading.Lock()


def check_token(state, header):
    if not header or not header.startswith("Bearer "):
        return "no bearer token"
    token = header[len("Bearer "):]
    try:
        if jwt.get_unverified_header(token).get("alg") != "EdDSA":
            return "algorithm is not EdDSA"
        now = time.time() + state.skew
        # PyJWT checks the times against its own clock: shift by checking with leeway
        # against the skewed clock ourselves after the signature check.
        claims = jwt.decode(token, state.public_key, algorithms=["EdDSA"],
                            options={"require": ["exp", "iat", "nbf"], "verify_exp": False, "verify_nbf": False,
                                     "verify_iat": False})
    except jwt.PyJWTError as e:
        return "%s: %s" % (type(e).__name__, e)
    if not (claims["nbf"] <= now < claims["exp"]) or claims["iat"] > now:
        return "token expired or not yet valid (now %d, nbf %d, exp %d)" % (now, claims["nbf"], claims["exp"])
    if (claims.get("issued_at"), claims.get("expires_at"), claims.get("invalid_before")) != \
            (claims["iat"], claims["exp"], claims["nbf"]):
        return "upstream's claims disagree with the registered ones"
    return None


def make_handler(state):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def answer(self, status, body=b"", ctype="application/octet-stream"):
            with state.lock:
                state.log.append("%s %s %d" % (self.command, self.path, status))
            print("fake-kbs: %s %s -> %d" % (self.command, self.path, status), flush=True)
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/test/resources":
                with state.lock:
                    body = json.dumps({k: len(v) for k, v in state.resources.items()}).encode()
                return self.answer(200, body, "application/json")
            if self.path == "/test/log":
                with state.lock:
                    body = json.dumps(state.log).encode()
                return self.answer(200, body, "application/json")
            m = RESOURCE.match(self.path)
            if not m:
                return self.answer(404, b"no such path")
            with state.lock:
                data = state.resources.get("/".join(m.groups()))
            if data is None:
                return self.answer(404, b"no such resource")
            return self.answer(200, data)

        def admin(self):
            m = RESOURCE.match(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self.close_connection = True
                return None, None, self.answer(413, b"too large")
            body = self.rfile.read(length) if length else b""
            why = check_token(state, self.headers.get("Authorization"))
            if why:
                print("fake-kbs: refused %s %s: %s" % (self.command, self.path, why), flush=True)
                return None, None, self.answer(401, ("unauthorized: %s" % why).encode())
            if not m:
                return None, None, self.answer(404, b"no such path")
            return "/".join(m.groups()), body, None

        def do_POST(self):
            key, body, done = self.admin()
            if key is None:
                return done
            with state.lock:
                state.resources[key] = body
            if state.lose_answer and state.lose_answer.search(key):
                return self.answer(500, b"stored, answer lost")
            return self.answer(200)

        def do_DELETE(self):
            key, _, done = self.admin()
            if key is None:
                return done
            with state.lock:
                found = state.resources.pop(key, None) is not None
            return self.answer(200 if found else 404)

    return Handler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--admin-public-key", required=True)
    ap.add_argument("--skew", type=int, default=0)
    ap.add_argument("--lose-answer", default="")
    a = ap.parse_args()
    with open(a.admin_public_key, "rb") as f:
        pub = load_pem_public_key(f.read())
    server = ThreadingHTTPServer(("127.0.0.1", a.port), make_handler(State(pub, a.skew, a.lose_answer)))
    server.daemon_threads = True
    print("fake-kbs listening on %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
