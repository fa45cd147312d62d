"""A logout is enforced by the OMS within a second of the User Service coming back.

The User Service is stopped (SIGTERM) or killed (SIGKILL) while a hostile client holds every
stream it can open.
"""

from __future__ import annotations

import asyncio
import signal
import time

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.config import RuntimeSettings
from gateway.mesh import serving
from tests.support.mesh import ADMIN_PASSWORD, RunningMesh, bearer, login
from tests.support.servers import LoopThread
from tests.support.waiting import eventually
from users.v1 import auth_service_pb2 as auth_pb
from users.v1 import auth_service_pb2_grpc as auth_grpc

LIMIT = RuntimeSettings.from_env().max_streams
SHARE = RuntimeSettings.from_env().max_streams_per_caller


class Hostile:
    """Holds as many streams of the User Service as an anonymous caller can (its share).

    It also keeps asking for revocation streams, which it may not have.
    """

    def __init__(self, target: str) -> None:
        self._loop = LoopThread()
        self._target = target
        self.held = 0
        self.refused: set[grpc.StatusCode] = set()

    def occupy(self) -> None:
        self._loop.run(self._occupy())

    async def _occupy(self) -> None:
        self._channel = grpc.aio.insecure_channel(self._target)
        health = health_pb2_grpc.HealthStub(self._channel)
        self._watches = [health.Watch(health_pb2.HealthCheckRequest()) for _ in range(LIMIT + 1)]
        answers = await asyncio.gather(
            *(watch.read() for watch in self._watches), return_exceptions=True
        )
        self.held = sum(isinstance(a, health_pb2.HealthCheckResponse) for a in answers)
        self.refused |= {a.code() for a in answers if isinstance(a, grpc.aio.AioRpcError)}
        auth = auth_grpc.AuthServiceStub(self._channel)
        for _ in range(50):
            watch = auth.WatchRevocations(auth_pb.WatchRevocationsRequest())
            try:
                await watch.read()
            except grpc.aio.AioRpcError as exc:
                self.refused.add(exc.code())

    def leave(self) -> None:
        async def close() -> None:
            await self._channel.close()

        self._loop.run(close())
        self._loop.close()


def _oms_refuses(client: httpx.Client, token: str) -> bool:
    response = client.get("/api/v1/branches", headers=bearer(token))
    if response.status_code == 200:
        return False
    assert response.status_code == 401, response.text
    assert "TOKEN_REVOKED" in response.text
    return True


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_a_logout_after_a_restart_reaches_the_oms_within_a_second(
    mesh: RunningMesh, client: httpx.Client, signum: int
) -> None:
    target = mesh.endpoints.grpc_targets["users"]
    session = str(login(client, "admin", ADMIN_PASSWORD)["access_token"])
    assert not _oms_refuses(client, session)
    mesh.mesh.supervisor.restart("users", signum=signum)
    eventually(lambda: serving(target), timeout=30, what="the User Service comes back")
    hostile = Hostile(target)
    try:
        hostile.occupy()
        # Its address's whole share of Watch places and no more (Envoy's probes use Check).
        assert SHARE - 1 <= hostile.held <= SHARE
        assert grpc.StatusCode.RESOURCE_EXHAUSTED in hostile.refused
        assert grpc.StatusCode.UNAUTHENTICATED in hostile.refused  # no revocation stream
        assert not _oms_refuses(client, session)
        response = client.post("/auth/logout", headers=bearer(session))
        assert response.status_code == 200, response.text
        logged_out = time.monotonic()
        eventually(
            lambda: _oms_refuses(client, session),
            timeout=1.0,
            interval=0.02,
            what="the OMS refuses the revoked token",
        )
        print(f"enforced {time.monotonic() - logged_out:.3f} s after the logout")
    finally:
        hostile.leave()
    eventually(
        lambda: client.get("/health").status_code == 200,
        timeout=30,
        interval=0.1,
        what="the mesh is healthy again",
    )
