"""The ttRPC client that drives caa-test-agent: the shared test client
(tests/support/ttrpc_wire.py) plus the agent service shorthand.

Requests can be pipelined: send() returns the stream id, wait() blocks for
that stream's Response while keeping any other Response that arrives.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import ttrpc_wire  # noqa: E402
from ttrpc_wire import (GRPC_CANCELLED, GRPC_FAILED_PRECONDITION, GRPC_INTERNAL,  # noqa: E402
                        GRPC_INVALID_ARGUMENT, GRPC_NOT_FOUND, GRPC_OK, GRPC_PERMISSION_DENIED,
                        GRPC_UNIMPLEMENTED, GRPC_UNKNOWN, Reply, decode, field, get, msg, varint)

__all__ = ["Client", "Reply", "decode", "field", "get", "msg", "varint", "GRPC_CANCELLED",
           "GRPC_FAILED_PRECONDITION", "GRPC_INTERNAL", "GRPC_INVALID_ARGUMENT", "GRPC_NOT_FOUND", "GRPC_OK",
           "GRPC_PERMISSION_DENIED", "GRPC_UNIMPLEMENTED", "GRPC_UNKNOWN"]


class Client(ttrpc_wire.Client):
    def agent(self, method, payload=b"", timeout=None):
        return self.call("grpc.AgentService", method, payload, timeout)
