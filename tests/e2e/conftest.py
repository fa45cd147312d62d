"""The one running mesh of the end-to-end tests: ``mesh up``'s own code, on free ports.

It runs the real services and the real Envoy in a scratch data folder for the whole session;
its processes' output goes to ``mesh.log`` in that folder, quoted when the mesh fails to start.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from gateway.mesh import Mesh, StartError
from gateway.settings import MeshSettings
from tests.support.mesh import ADMIN_PASSWORD, RunningMesh, bearer, login, mesh_env


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


@pytest.fixture(scope="session")
def admin_login(client: httpx.Client) -> dict[str, object]:
    return login(client, "admin", ADMIN_PASSWORD)


@pytest.fixture(scope="session")
def admin(admin_login: dict[str, object]) -> dict[str, str]:
    """Headers of an admin session that no test ends."""
    return bearer(str(admin_login["access_token"]))
