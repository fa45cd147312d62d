"""``/health`` follows Envoy's gRPC health checks: 503 soon after a service dies, 200 on return."""

from __future__ import annotations

import os
import signal
import time

import httpx

from tests.support.mesh import RunningMesh
from tests.support.waiting import eventually

WITHIN_SECONDS = 10.0
"""Generous on a busy machine: checks run every second and two failures mark a service down."""


def _wait_for_status(client: httpx.Client, status: int, *, within: float) -> float:
    """Seconds until ``/health`` answers ``status``; fails after ``within`` seconds."""
    start = time.monotonic()
    eventually(
        lambda: client.get("/health").status_code == status,
        timeout=within,
        interval=0.1,
        what=f"/health answers {status}",
    )
    return time.monotonic() - start


def test_health_turns_503_when_a_service_dies_and_200_when_it_returns(
    mesh: RunningMesh, client: httpx.Client, admin: dict[str, str]
) -> None:
    assert client.get("/health").status_code == 200
    os.kill(mesh.mesh.supervisor.pid("audit"), signal.SIGKILL)
    try:
        elapsed = _wait_for_status(client, 503, within=WITHIN_SECONDS)
        print(f"/health turned 503 {elapsed:.1f} s after the Audit Service was killed")
        body = client.get("/health").json()
        assert body["code"] == 14
        assert body["message"] == "not every service is SERVING"
        down = client.get("/api/v2/query/events", headers=admin)
        assert down.status_code == 503
        assert down.json()["code"] == 14
    finally:
        mesh.mesh.supervisor.restart("audit")
    _wait_for_status(client, 200, within=30)
    assert client.get("/api/v2/query/events", headers=admin).status_code == 200
