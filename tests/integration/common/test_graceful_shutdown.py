"""A real service process drains and releases its resources on SIGTERM, then exits 0."""

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.processes import ServiceProcess


def test_sigterm_drains_and_exits_cleanly(tmp_path):
    users = ServiceProcess(
        "users", tmp_path, {"MESH_PASSWORD_HASH_PROFILE": "test", "MESH_GRACE_SECONDS": "1"}
    )
    try:
        with grpc.insecure_channel(users.target) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=10
            )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        code = users.terminate()
    finally:
        if users.running:
            users.kill()
    assert code == 0, "".join(users.output)
    messages = users.messages()
    assert "signal received, draining" in messages
    assert messages[-1] == "stopped"
