"""Mutual TLS between Envoy and the services and between the services, with certificates made here.

A login goes from Envoy to the User Service, a branch from Envoy to the OMS, which checks the
token against the User Service's keys and revocations and ships its event to the Audit
Service, whose query needs the User Service too: every hop of the mesh, each over mutual TLS.
A client that is not of the mesh is refused by the services themselves.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.tls import DEFAULT_SERVER_NAME, MutualTls, blocking_channel
from gateway.settings import MeshSettings
from tests.support.mesh import (
    ADMIN_PASSWORD,
    RunningMesh,
    bearer,
    login,
    mesh_audit,
    new_branch,
    running_mesh,
)
from tests.support.tls import Certificates, make_certificates
from tests.support.waiting import eventually


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("mesh-ca"), hosts=(DEFAULT_SERVER_NAME,))


def _mtls(certs: Certificates) -> MutualTls:
    return MutualTls(cert_file=certs.cert, key_file=certs.key, ca_file=certs.ca)


@pytest.fixture(scope="module")
def mtls_mesh(
    tmp_path_factory: pytest.TempPathFactory, certs: Certificates
) -> Iterator[RunningMesh]:
    data = tmp_path_factory.mktemp("mtls-mesh")
    settings = dataclasses.replace(MeshSettings.on_free_ports(), mtls=_mtls(certs))
    with running_mesh(settings, data) as running:
        yield running


def test_a_login_a_write_and_the_audit_trail_pass_every_hop(mtls_mesh: RunningMesh) -> None:
    with httpx.Client(base_url=mtls_mesh.url, timeout=10) as client:
        assert client.get("/health").status_code == 200
        admin = bearer(str(login(client, "admin", ADMIN_PASSWORD)["access_token"]))
        branch = new_branch(client, admin)
        assert client.get(f"/api/v1/branches/{branch}", headers=admin).status_code == 200

        def audited() -> list[object]:
            response = client.get(
                "/api/v2/query/events", headers=admin, params={"type": "oms.branch.created"}
            )
            assert response.status_code == 200, response.text
            return [e for e in response.json()["events"] if branch in str(e["subject"])]

        assert eventually(audited)


def _check(channel: grpc.Channel) -> grpc.StatusCode:
    try:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    except grpc.RpcError as exc:
        code: grpc.StatusCode = exc.code()
        return code
    return grpc.StatusCode.OK


@pytest.mark.parametrize("service", ["users", "oms", "audit"])
def test_a_service_answers_the_mesh_certificate_only(
    mtls_mesh: RunningMesh,
    certs: Certificates,
    tmp_path_factory: pytest.TempPathFactory,
    service: str,
) -> None:
    target = mtls_mesh.endpoints.grpc_targets[service]
    with blocking_channel(target, _mtls(certs)) as channel:
        assert _check(channel) == grpc.StatusCode.OK
    with grpc.insecure_channel(target) as channel:
        assert _check(channel) == grpc.StatusCode.UNAVAILABLE
    no_certificate = grpc.ssl_channel_credentials(root_certificates=certs.ca.read_bytes())
    options = _mtls(certs).channel_options
    with grpc.secure_channel(target, no_certificate, options=options) as channel:
        assert _check(channel) == grpc.StatusCode.UNAVAILABLE
    other = make_certificates(tmp_path_factory.mktemp("other-ca"), hosts=(DEFAULT_SERVER_NAME,))
    foreign = dataclasses.replace(_mtls(other), ca_file=certs.ca)
    with blocking_channel(target, foreign) as channel:
        assert _check(channel) == grpc.StatusCode.UNAVAILABLE


def test_mesh_audit_reaches_the_audit_service_with_the_mesh_certificate_only(
    mtls_mesh: RunningMesh, certs: Certificates, tmp_path: Path
) -> None:
    with httpx.Client(base_url=mtls_mesh.url, timeout=10) as client:
        token = str(login(client, "admin", ADMIN_PASSWORD)["access_token"])
        key = client.get("/api/v2/checkpoints:verifierKey").json()["verifier_key"]
    target = ("--target", mtls_mesh.endpoints.grpc_targets["audit"], "--key", key)
    state = ("--state", str(tmp_path / "witness.json"))
    ca = ("--ca-file", str(certs.ca), "--server-name", DEFAULT_SERVER_NAME)
    identity = ("--cert-file", str(certs.cert), "--key-file", str(certs.key))
    mutual = mesh_audit(token, "witness", *target, *state, *ca, *identity)
    assert mutual.returncode == 0, mutual.stderr
    anonymous = mesh_audit(token, "witness", *target, *state, *ca)
    assert (anonymous.returncode, "UNAVAILABLE" in anonymous.stderr) == (2, True)
