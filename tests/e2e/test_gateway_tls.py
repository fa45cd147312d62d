"""TLS at the gateway: a mesh whose Envoy serves certificates made here, reached with their CA.

The JWKS that Envoy checks tokens with comes through its own listener, so an authenticated
call passing shows that the gateway reaches itself over TLS too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import httpx
import pytest

from gateway.settings import MeshSettings
from tests.support.mesh import ADMIN_PASSWORD, RunningMesh, bearer, login, mesh_audit, running_mesh
from tests.support.tls import Certificates, make_certificates
from users.v1 import auth_service_pb2, auth_service_pb2_grpc


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


HANDSHAKE_SECONDS = 2
"""How long the mesh here lets a client take over its handshake (and over its headers)."""


@pytest.fixture(scope="module")
def tls_mesh(
    tmp_path_factory: pytest.TempPathFactory, certs: Certificates
) -> Iterator[RunningMesh]:
    data = tmp_path_factory.mktemp("tls-mesh")
    settings = dataclasses.replace(
        MeshSettings.on_free_ports(),
        tls_cert_file=str(certs.cert),
        tls_key_file=str(certs.key),
        headers_timeout_seconds=HANDSHAKE_SECONDS,
    )
    with running_mesh(settings, data) as running:
        yield running


def _client(mesh: RunningMesh, ca: Path) -> httpx.Client:
    return httpx.Client(base_url=mesh.url, verify=ssl.create_default_context(cafile=ca))


def test_rest_over_tls_with_the_ca_logs_in_and_calls_with_the_token(
    tls_mesh: RunningMesh, certs: Certificates
) -> None:
    assert tls_mesh.url.startswith("https://")
    with _client(tls_mesh, certs.ca) as client:
        assert client.get("/health").status_code == 200
        token = str(login(client, "admin", ADMIN_PASSWORD)["access_token"])
        branches = client.get("/api/v1/branches", headers=bearer(token))
        assert branches.status_code == 200, branches.text
        assert client.get("/api/v1/branches").status_code == 401


def test_native_grpc_over_tls_with_the_ca(tls_mesh: RunningMesh, certs: Certificates) -> None:
    credentials = grpc.ssl_channel_credentials(root_certificates=certs.ca.read_bytes())
    with grpc.secure_channel(tls_mesh.gateway_target, credentials) as channel:
        reply = auth_service_pb2_grpc.AuthServiceStub(channel).Login(
            auth_service_pb2.LoginRequest(username="admin", password=ADMIN_PASSWORD), timeout=10
        )
    assert reply.access_token


def test_a_client_without_the_ca_is_refused_the_handshake(tls_mesh: RunningMesh) -> None:
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{tls_mesh.url}/health", timeout=5)


def test_plain_http_on_the_tls_port_gets_no_answer(tls_mesh: RunningMesh) -> None:
    plain = tls_mesh.url.replace("https://", "http://")
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{plain}/health", timeout=5)


def test_a_handshake_begun_and_never_finished_is_let_go(tls_mesh: RunningMesh) -> None:
    address = urlsplit(tls_mesh.url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
        sock.sendall(b"\x16\x03\x01")  # the first bytes of a ClientHello, and no more
        with contextlib.suppress(ConnectionResetError):  # closed either way
            assert sock.recv(4096) == b""  # a hang fails the test at the timeout


def test_mesh_audit_witnesses_over_tls_with_the_ca_and_not_without(
    tls_mesh: RunningMesh, certs: Certificates, tmp_path: Path
) -> None:
    with _client(tls_mesh, certs.ca) as client:
        token = str(login(client, "admin", ADMIN_PASSWORD)["access_token"])
        key = client.get("/api/v2/checkpoints:verifierKey").json()["verifier_key"]
    state = tmp_path / "witness.json"
    target = ("--target", tls_mesh.gateway_target, "--state", str(state), "--key", key)
    trusted = mesh_audit(token, "witness", *target, "--ca-file", str(certs.ca))
    assert trusted.returncode == 0, trusted.stderr
    assert state.exists()
    plain = mesh_audit(token, "witness", *target)
    assert (plain.returncode, "UNAVAILABLE" in plain.stderr) == (2, True), plain.stderr
    half = mesh_audit(token, "witness", *target, "--cert-file", str(certs.cert))
    assert (half.returncode, "need --ca-file" in half.stderr) == (2, True), half.stderr
