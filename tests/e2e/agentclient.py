"""The Kata shim's side of the agent protocol, as far as the end-to-end runs need it.

caa-ctl speaks the hypervisor service and grpc.Health/Check only, so the pod's
containers are created through this small ttRPC client over the pod's agent
socket (<pods-dir>/<id>/agent.ttrpc), i.e. through the adaptor's agent proxy,
TLS, the VM's agent-protocol-forwarder and the test agent. The wire part is the
shared test client (tests/support/ttrpc_wire.py), which shares no code with the
C library under test.

Field numbers come from agent-protocol/proto/{agent,oci,health}.proto (the same
numbers as kata-agent's protocols).
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import ttrpc_wire as tw  # noqa: E402

# gRPC status codes used by the callers
OK = tw.GRPC_OK
CANCELLED = tw.GRPC_CANCELLED
UNKNOWN = tw.GRPC_UNKNOWN
NOT_FOUND = tw.GRPC_NOT_FOUND
UNAVAILABLE = tw.GRPC_UNAVAILABLE

pb = tw.msg
pb_decode = tw.decode
pb_get = tw.get


# ---------------------------------------------------------------- messages

def oci_spec(args, env=(), cwd="/", netns_path=None):
    """An OCI Spec with Process{Args, Env, Cwd} and, like the Kata shim sends it,
    Linux.Namespaces naming the worker-side network namespace (the forwarder
    replaces that with the VM's pod namespace)."""
    process = pb((4, list(args)), (5, list(env)), (6, cwd))
    spec = pb((1, "1.0.2"), (2, process))
    if netns_path is not None:
        namespaces = [pb((1, "ipc"), (2, "")), pb((1, "uts"), (2, "")), pb((1, "mount"), (2, "")),
                      pb((1, "network"), (2, netns_path))]
        spec += pb((8, pb((6, namespaces))))
    return spec


class RpcError(Exception):
    def __init__(self, method, code, message):
        super().__init__("%s: gRPC code %d: %s" % (method, code, message))
        self.code = code
        self.message = message


class AgentClient:
    """One ttRPC connection (the shared test client); calls are sequential."""

    def __init__(self, path, timeout=30.0):
        self.client = tw.Client(path, timeout)
        self.timeout = timeout

    def close(self):
        self.client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def call(self, service, method, payload=b"", timeout=None):
        """The response payload; RpcError for a non-OK status."""
        timeout = self.timeout if timeout is None else timeout
        r = self.client.call(service, method, payload, timeout, timeout_ns=int(timeout * 1e9))
        if r.code != OK:
            raise RpcError("%s/%s" % (service, method), r.code, r.message)
        return r.payload

    # ---- grpc.Health
    def health_check(self):
        """The ServingStatus number (1 = SERVING)."""
        return pb_get(self.call("grpc.Health", "Check"), 1, 0)

    # ---- grpc.AgentService
    def agent(self, method, payload=b"", timeout=None):
        return self.call("grpc.AgentService", method, payload, timeout)

    def create_sandbox(self, hostname, sandbox_id, dns=()):
        self.agent("CreateSandbox", pb((1, hostname), (2, list(dns)), (5, sandbox_id)))

    def create_container(self, cid, args, env=(), netns_path=None):
        self.agent("CreateContainer", pb((1, cid), (2, cid), (6, oci_spec(args, env, "/", netns_path))))

    def start_container(self, cid):
        self.agent("StartContainer", pb((1, cid)))

    def exec_process(self, cid, exec_id, args, env=()):
        self.agent("ExecProcess", pb((1, cid), (2, exec_id), (4, pb((4, list(args)), (5, list(env)), (6, "/")))))

    def wait_process(self, cid, exec_id, timeout=None):
        return pb_get(self.agent("WaitProcess", pb((1, cid), (2, exec_id)), timeout), 1, 0)

    def read_stdout(self, cid, exec_id):
        """Everything the process wrote to stdout, up to EOF."""
        out = b""
        while True:
            data = pb_get(self.agent("ReadStdout", pb((1, cid), (2, exec_id), (3, 65536))), 1, b"")
            if not data:
                return out
            out += data

    def remove_container(self, cid):
        self.agent("RemoveContainer", pb((1, cid)))

    def destroy_sandbox(self):
        self.agent("DestroySandbox")
