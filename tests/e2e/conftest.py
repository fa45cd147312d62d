"""The one running mesh of the end-to-end tests: ``mesh up``'s own code, on free ports.

It runs the real services and the real Envoy in a scratch data folder for the whole session;
its processes' output goes to ``mesh.log`` in that folder, quoted when the mesh fails to start.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from gateway.settings import MeshSettings
from tests.support.mesh import ADMIN_PASSWORD, RunningMesh, bearer, login, running_mesh


@pytest.fixture(scope="session")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningMesh]:
    data = tmp_path_factory.mktemp("mesh")
    with running_mesh(MeshSettings.on_free_ports(), data) as running:
        yield running


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
