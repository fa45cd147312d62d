"""Streams cost no thread: a thousand subscriptions and a thousand revocation followers at once.

The subscriptions go through the gateway; unary calls are served meanwhile, and every place
is given back.
"""

from __future__ import annotations

import asyncio
import json
import resource
import socket
import uuid

import grpc
import httpx
import pytest

from common.config import RuntimeSettings
from common.users_client import SERVICE_ACCOUNTS_FILE
from common.users_client import bearer as grpc_bearer
from tests.support.mesh import ADMIN_PASSWORD, RunningMesh, bearer, login, new_user
from tests.support.waiting import eventually
from users.v1 import auth_service_pb2 as auth_pb
from users.v1 import auth_service_pb2_grpc as auth_grpc

HELD = 1000
LIMIT = RuntimeSettings.from_env().max_streams
"""Open calls each streaming method allows (``MESH_MAX_STREAMS``), the mesh's default here."""
SHARE = RuntimeSettings.from_env().max_streams_per_caller
"""Of those, what one caller may hold (``MESH_MAX_STREAMS_PER_CALLER``)."""


@pytest.fixture(scope="module", autouse=True)
def enough_file_descriptors() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 2 * LIMIT + 200
    if soft < needed:
        if hard < needed:
            pytest.skip(f"needs {needed} open files, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


class Subscription:
    """One server-sent-events subscription on a socket of its own, as a browser holds one."""

    def __init__(self, mesh: RunningMesh, headers: dict[str, str], subject: str) -> None:
        host, port = mesh.gateway_target.rsplit(":", 1)
        self.socket = socket.create_connection((host, int(port)), timeout=10)
        self.socket.sendall(
            f"GET /api/v2/events:subscribe?subject={subject} HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: {headers['Authorization']}\r\n\r\n".encode()
        )
        self.received = b""

    def status(self) -> bytes:
        """The status line's start: a subscription answers its headers once it holds a place."""
        while b"\r\n" not in self.received:
            chunk = self.socket.recv(4096)
            if not chunk:
                break
            self.received += chunk
        return self.received[:12]

    def wait_for(self, needle: bytes) -> bool:
        while needle not in self.received:
            chunk = self.socket.recv(65536)
            if not chunk:
                return False
            self.received += chunk
        return True

    def close(self) -> None:
        self.socket.shutdown(socket.SHUT_RDWR)
        self.socket.close()


def _subscribe_all(
    mesh: RunningMesh, callers: list[dict[str, str]], subject: str, start: int, stop: int
) -> list[Subscription]:
    """Subscriptions ``start`` to ``stop``: the n-th by caller ``n // SHARE``, a full share each."""
    held = []
    try:
        for n in range(start, stop):
            held.append(Subscription(mesh, callers[n // SHARE], subject))
        for subscription in held:
            assert subscription.status() == b"HTTP/1.1 200", subscription.received[:300]
    except BaseException:
        _close_all(held)
        raise
    return held


def _close_all(held: list[Subscription]) -> None:
    for subscription in held:
        subscription.close()


def _refused_subscription(client: httpx.Client, headers: dict[str, str]) -> httpx.Response | None:
    """The answer to one more subscription if it was refused; None if it was admitted."""
    try:
        with client.stream(
            "GET",
            "/api/v2/events:subscribe",
            headers=headers,
            params={"subject": "none"},
            timeout=1,
        ) as response:
            response.read()
            return response
    except httpx.ReadTimeout:
        return None


def _refused_for(client: httpx.Client, headers: dict[str, str]) -> str:
    """The scope of the limit one more subscription met: ``caller`` or ``server``."""
    refused = _refused_subscription(client, headers)
    assert refused is not None, "a subscription beyond the limit was admitted"
    assert refused.status_code == 429
    (info,) = [d for d in refused.json()["details"] if d.get("reason") == "TOO_MANY_STREAMS"]
    return str(info["metadata"]["scope"])


def test_a_thousand_subscriptions_through_the_gateway_while_unary_calls_go_on(
    mesh: RunningMesh, client: httpx.Client, admin: dict[str, str]
) -> None:
    subject = f"streams/{uuid.uuid4()}"
    callers = [
        new_user(client, admin, roles=["auditor"], prefix="subscriber")[1]
        for _ in range(-(-LIMIT // SHARE) + 1)
    ]
    held = _subscribe_all(mesh, callers, subject, 0, HELD)
    try:
        assert client.get("/auth/validate", headers=admin).status_code == 200
        assert client.get("/api/v1/branches", headers=admin).status_code == 200
        published = client.post(
            "/api/v2/events",
            headers=admin,
            json={
                "id": str(uuid.uuid4()),
                "source": "/tests",
                "type": "tests.streams.published",
                "subject": subject,
                "time": "2026-01-01T00:00:00Z",
            },
        )
        assert published.status_code == 200, published.text
        # One commit, offered to every subscriber by one fan-out.
        assert all(s.wait_for(b"tests.streams.published") for s in held)
        # A caller holding its share is refused one more, while others are not.
        assert _refused_for(client, callers[0]) == "caller"
        # Up to the server's limit, then anyone's one more is refused with 429 and the reason.
        held += _subscribe_all(mesh, callers, subject, HELD, LIMIT)
        assert _refused_for(client, callers[-1]) == "server"
    finally:
        _close_all(held)
    # Every place is given back: as many subscriptions as before can be held again.
    eventually(
        lambda: _refused_subscription(client, callers[0]) is None,
        timeout=20,
        interval=0.2,
        what="places are given back after clients left",
    )
    _close_all(_subscribe_all(mesh, callers, subject, 0, HELD))


def _service_password(mesh: RunningMesh) -> str:
    accounts = json.loads((mesh.endpoints.data_dir / SERVICE_ACCOUNTS_FILE).read_text())
    return str(accounts["svc-oms"])


async def _followers(target: str, token: str, count: int) -> tuple[list, grpc.aio.Channel]:
    channel = grpc.aio.insecure_channel(target)
    stub = auth_grpc.AuthServiceStub(channel)
    calls = [
        stub.WatchRevocations(auth_pb.WatchRevocationsRequest(), metadata=grpc_bearer(token))
        for _ in range(count)
    ]
    firsts = await asyncio.gather(*(call.read() for call in calls))
    assert all(first.caught_up for first in firsts)
    return calls, channel


def test_a_thousand_revocation_followers_while_unary_calls_go_on(
    mesh: RunningMesh, client: httpx.Client
) -> None:
    target = mesh.endpoints.grpc_targets["users"]
    service = login(client, "svc-oms", _service_password(mesh))
    session = login(client, "admin", ADMIN_PASSWORD)

    async def scenario() -> None:
        calls, channel = await _followers(target, str(service["access_token"]), HELD)
        try:
            stub = auth_grpc.AuthServiceStub(channel)
            checked = await stub.ValidateToken(
                auth_pb.ValidateTokenRequest(token=str(session["access_token"])), timeout=10
            )
            assert checked.username == "admin"
            await stub.Logout(
                auth_pb.LogoutRequest(), metadata=grpc_bearer(str(session["access_token"]))
            )
            live = await asyncio.gather(*(call.read() for call in calls))
            assert all(
                [r.session_id for r in batch.revocations] == [checked.session_id] for batch in live
            )
        finally:
            for call in calls:
                call.cancel()
            await channel.close()
        # The places are back: as many followers again (the OMS and Audit hold two more).
        again, channel = await _followers(target, str(service["access_token"]), HELD)
        for call in again:
            call.cancel()
        await channel.close()

    asyncio.run(scenario())
    assert client.get("/auth/validate", headers=bearer(str(service["access_token"]))).json()[
        "valid"
    ]
