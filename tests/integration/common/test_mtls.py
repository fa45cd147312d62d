"""Mutual TLS on the server factory's port, and health alone on a plaintext port beside it.

Certificates are made here: the mesh's CA and one from another CA, which must be refused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from common.blocking import Blocking
from common.config import RuntimeSettings
from common.server import MeshServer, create_server
from common.tls import DEFAULT_SERVER_NAME, MutualTls, blocking_channel
from tests.support.servers import RunningServer, running
from tests.support.tls import Certificates, make_certificates


def _mtls(certs: Certificates) -> MutualTls:
    return MutualTls(cert_file=certs.cert, key_file=certs.key, ca_file=certs.ca)


@pytest.fixture(scope="module")
def mesh_certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("mesh-ca"), hosts=(DEFAULT_SERVER_NAME,))


@pytest.fixture(scope="module")
def other_certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("other-ca"), hosts=(DEFAULT_SERVER_NAME,))


def _server(tls: MutualTls) -> MeshServer:
    return create_server(
        "127.0.0.1:0",
        domain="test.mesh",
        services=[],
        policies={},
        verifier=None,
        settings=dataclasses.replace(
            RuntimeSettings.from_env(), tls=tls, health_listen="127.0.0.1:0"
        ),
        blocking=Blocking(1),
    )


@pytest.fixture(scope="module")
def server(mesh_certs: Certificates) -> Iterator[RunningServer]:
    with running(lambda: _server(_mtls(mesh_certs))) as started:
        yield started


def _health(channel: grpc.Channel) -> int:
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    return int(reply.status)


def _refused(channel: grpc.Channel) -> grpc.StatusCode:
    """The code a health check on ``channel`` fails with."""
    with pytest.raises(grpc.RpcError) as refused:
        _health(channel)
    code: grpc.StatusCode = refused.value.code()
    return code


def test_a_client_with_the_mesh_certificate_is_served(
    server: RunningServer, mesh_certs: Certificates
) -> None:
    with blocking_channel(server.target, _mtls(mesh_certs)) as channel:
        assert _health(channel) == health_pb2.HealthCheckResponse.SERVING


def test_a_client_without_a_certificate_is_refused(
    server: RunningServer, mesh_certs: Certificates
) -> None:
    credentials = grpc.ssl_channel_credentials(root_certificates=mesh_certs.ca.read_bytes())
    options = _mtls(mesh_certs).channel_options
    with grpc.secure_channel(server.target, credentials, options=options) as channel:
        assert _refused(channel) == grpc.StatusCode.UNAVAILABLE


def test_a_client_certificate_of_another_ca_is_refused(
    server: RunningServer, mesh_certs: Certificates, other_certs: Certificates
) -> None:
    # It trusts the server; the server does not trust it.
    foreign = dataclasses.replace(_mtls(other_certs), ca_file=mesh_certs.ca)
    with blocking_channel(server.target, foreign) as channel:
        assert _refused(channel) == grpc.StatusCode.UNAVAILABLE


def test_a_server_of_another_ca_is_not_trusted(
    server: RunningServer, other_certs: Certificates
) -> None:
    with blocking_channel(server.target, _mtls(other_certs)) as channel:
        assert _refused(channel) == grpc.StatusCode.UNAVAILABLE


def test_a_server_certificate_without_the_server_name_is_not_trusted(tmp_path: Path) -> None:
    misnamed = _mtls(make_certificates(tmp_path, hosts=("elsewhere.internal",)))
    with running(lambda: _server(misnamed)) as started:
        with blocking_channel(started.target, misnamed) as channel:
            assert _refused(channel) == grpc.StatusCode.UNAVAILABLE
        named = dataclasses.replace(misnamed, server_name="elsewhere.internal")
        with blocking_channel(started.target, named) as channel:
            assert _health(channel) == health_pb2.HealthCheckResponse.SERVING


def test_plaintext_on_the_service_port_is_refused(server: RunningServer) -> None:
    with grpc.insecure_channel(server.target) as channel:
        assert _refused(channel) == grpc.StatusCode.UNAVAILABLE


def test_the_health_port_answers_health_in_plaintext_and_nothing_else(
    server: RunningServer,
) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{server.server.health_port}") as channel:
        assert _health(channel) == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        ask = reflection_pb2.ServerReflectionRequest(list_services="")
        with pytest.raises(grpc.RpcError) as refused:
            list(reflection.ServerReflectionInfo(iter([ask]), timeout=5))
    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_the_health_port_reports_the_drain(mesh_certs: Certificates) -> None:
    started = RunningServer(lambda: _server(_mtls(mesh_certs)))
    try:
        health_target = f"127.0.0.1:{started.server.health_port}"
        with grpc.insecure_channel(health_target) as channel:
            started.run(started.server.health.enter_graceful_shutdown())
            assert _health(channel) == health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        started.stop()
