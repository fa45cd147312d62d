"""A real service process drains and releases its resources on SIGTERM, then exits 0."""

import signal

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.processes import ServiceProcess
from tests.support.waiting import eventually
from users.v1 import auth_service_pb2, auth_service_pb2_grpc


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


def test_with_a_drain_notice_it_reports_not_serving_while_it_still_serves(tmp_path):
    """What lets a load balancer move calls elsewhere before the replica refuses them."""
    users = ServiceProcess(
        "users",
        tmp_path,
        {
            "MESH_PASSWORD_HASH_PROFILE": "test",
            "MESH_GRACE_SECONDS": "1",
            "MESH_DRAIN_NOTICE_SECONDS": "6",
        },
    )
    try:
        with grpc.insecure_channel(users.target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            auth = auth_service_pb2_grpc.AuthServiceStub(channel)
            users.process.send_signal(signal.SIGTERM)
            eventually(
                lambda: (
                    health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
                    == health_pb2.HealthCheckResponse.NOT_SERVING
                ),
                what="NOT_SERVING after SIGTERM",
            )
            assert auth.GetJwks(auth_service_pb2.GetJwksRequest(), timeout=5).keys
        code = users.terminate()
    finally:
        if users.running:
            users.kill()
    assert code == 0, "".join(users.output)
