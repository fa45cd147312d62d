"""The one running mesh of the end-to-end tests: ``mesh up``'s own code, on free ports.

It runs the real services and the real Envoy in a scratch data folder for the whole session;
its processes' output goes to ``mesh.log`` in that folder, quoted when the mesh fails to start.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.mesh import Endpoints, Mesh, StartError
from gateway.settings import MeshSettings

ADMIN_PASSWORD = "e2e-admin-password"


def mesh_env() -> dict[str, str]:
    """The test process's environment plus cheap password hashing and a known admin password."""
    return {
        **os.environ,
        "MESH_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "MESH_PASSWORD_HASH_PROFILE": "test",
        "MESH_LOG_LEVEL": "WARNING",
    }


@dataclass
class RunningMesh:
    mesh: Mesh
    endpoints: Endpoints
    log: Path

    @property
    def url(self) -> str:
        return self.endpoints.gateway_url

    @property
    def gateway_target(self) -> str:
        return self.endpoints.grpc_targets["gateway"]

    def signing_key(self) -> tuple[str, ec.EllipticCurvePrivateKey]:
        """The User Service's current signing key, read from its data folder, to forge with."""
        jwks = httpx.get(f"{self.url}/.well-known/jwks.json", timeout=5).json()
        kid = jwks["keys"][0]["kid"]
        pem = (self.endpoints.data_dir / "keys" / f"{kid}.pem").read_bytes()
        key = serialization.load_pem_private_key(pem, password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return kid, key


@pytest.fixture(scope="session")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningMesh]:
    data = tmp_path_factory.mktemp("mesh")
    log = data / "mesh.log"
    with log.open("w") as out:
        running = Mesh(MeshSettings.on_free_ports(), data_dir=data, out=out, env=mesh_env())
        try:
            endpoints = running.up()
        except StartError as exc:
            out.flush()
            pytest.fail(f"the mesh did not start: {exc}\n{log.read_text()[-5000:]}")
        try:
            yield RunningMesh(mesh=running, endpoints=endpoints, log=log)
        finally:
            running.down()


@pytest.fixture(scope="session")
def client(mesh: RunningMesh) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mesh.url, timeout=10) as http:
        yield http


def login(client: httpx.Client, username: str, password: str) -> dict[str, object]:
    response = client.post("/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return dict(response.json())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_user(
    client: httpx.Client, admin: dict[str, str], *, roles: list[str], prefix: str = "user"
) -> tuple[str, dict[str, str]]:
    """A fresh user with ``roles``: its id, and the headers of a session of its own."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    password = f"{name}-password"
    created = client.post(
        "/v1/users",
        headers=admin,
        json={"user": {"username": name}, "password": password, "roles": roles},
    )
    assert created.status_code == 200, created.text
    return str(created.json()["user_id"]), bearer(
        str(login(client, name, password)["access_token"])
    )


@pytest.fixture(scope="session")
def admin_login(client: httpx.Client) -> dict[str, object]:
    return login(client, "admin", ADMIN_PASSWORD)


@pytest.fixture(scope="session")
def admin(admin_login: dict[str, object]) -> dict[str, str]:
    """Headers of an admin session that no test ends."""
    return bearer(str(admin_login["access_token"]))
