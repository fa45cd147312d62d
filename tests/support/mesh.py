"""The running mesh as the end-to-end tests see it, and the calls every one of them makes."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from common.db import Database
from gateway.mesh import Endpoints, Mesh, StartError
from gateway.settings import MeshSettings
from users.keystore import Sealer, key_encryption_key
from users.sql_store import SqlUserStore

ADMIN_PASSWORD = "e2e-admin-password"

EMPLOYEE = {
    "api_name": "Employee",
    "display_name": "Employee",
    "primary_key": "id",
    "properties": [
        {"api_name": "id", "data_type": {"base": "BASE_TYPE_STRING"}, "required": True},
        {"api_name": "name", "data_type": {"base": "BASE_TYPE_STRING"}},
    ],
}
"""An object type as a REST body: what most end-to-end tests create first."""


TICKET_SECONDS = 3.0
"""How long a subscription ticket lasts in the test mesh: short, so that expiry is seen."""


def mesh_env() -> dict[str, str]:
    """The test process's environment, with what makes the test mesh quick to check.

    Cheap password hashing, a known admin password and short-lived subscription tickets.
    """
    return {
        **os.environ,
        "MESH_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "MESH_PASSWORD_HASH_PROFILE": "test",
        "MESH_LOG_LEVEL": "WARNING",
        "MESH_AUDIT_TICKET_SECONDS": str(TICKET_SECONDS),
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
        """The User Service's current signing key, opened from its database, to forge with."""
        jwks = httpx.get(f"{self.url}/.well-known/jwks.json", timeout=5).json()
        kid = jwks["keys"][0]["kid"]
        data = self.endpoints.data_dir
        store = SqlUserStore(Database(f"sqlite:///{data / 'users.db'}"))
        try:
            with store.read() as reads:
                sealed = next(k.sealed for k in reads.signing_keys() if k.kid == kid)
        finally:
            store.close()
        return kid, Sealer(key_encryption_key(data)).open(kid, sealed)


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
        "/api/v1/users",
        headers=admin,
        json={"user": {"username": name}, "password": password, "roles": roles},
    )
    assert created.status_code == 200, created.text
    return str(created.json()["user_id"]), bearer(
        str(login(client, name, password)["access_token"])
    )


def new_branch(client: httpx.Client, headers: dict[str, str]) -> str:
    """A branch of ``main`` of its own, so that what a test creates leaves ``main`` as it was."""
    name = f"test-{uuid.uuid4().hex[:8]}"
    response = client.post("/api/v1/branches", headers=headers, json={"name": name})
    assert response.status_code == 200, response.text
    return name


def mesh_audit(token: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``mesh audit ARGS`` in a process of its own, as a witness runs it, with ``MESH_TOKEN``."""
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "audit", *args],
        env={**os.environ, "MESH_TOKEN": token},
        capture_output=True,
        text=True,
        timeout=120,
    )


def error_reason(response: httpx.Response) -> str:
    """The ErrorInfo reason of a refused call's JSON error body."""
    details = response.json()["details"]
    return str(next(d["reason"] for d in details if d["@type"].endswith("ErrorInfo")))


@contextlib.contextmanager
def running_mesh(
    settings: MeshSettings, data: Path, *, ready_timeout: float | None = None
) -> Iterator[RunningMesh]:
    """``mesh up``'s own code with ``settings`` in ``data``, its output in ``data/mesh.log``.

    A mesh that does not start fails the test with the log's tail; one that did is stopped.
    """
    log = data / "mesh.log"
    timeout = {} if ready_timeout is None else {"ready_timeout": ready_timeout}
    with log.open("w") as out:
        running = Mesh(settings, data_dir=data, out=out, env=mesh_env(), **timeout)
        try:
            endpoints = running.up()
        except StartError as exc:
            out.flush()
            pytest.fail(f"the mesh did not start: {exc}\n{log.read_text()[-5000:]}")
        try:
            yield RunningMesh(mesh=running, endpoints=endpoints, log=log)
        finally:
            running.down()
