"""Clients that hold a connection of the gateway without using it are let go.

A client trickling its headers, or keeping a connection with nothing on it, would otherwise
hold one of Envoy's connections for an hour or more, and enough of them every connection.
A subscription is a request in progress: however quiet, it is not cut.
"""

from __future__ import annotations

import dataclasses
import socket
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from gateway.settings import MeshSettings
from tests.support.mesh import ADMIN_PASSWORD, RunningMesh, bearer, login, running_mesh

HEADERS_SECONDS = 2
IDLE_SECONDS = 3


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningMesh]:
    settings = dataclasses.replace(
        MeshSettings.on_free_ports(),
        headers_timeout_seconds=HEADERS_SECONDS,
        idle_timeout_seconds=IDLE_SECONDS,
    )
    with running_mesh(settings, tmp_path_factory.mktemp("quick-mesh")) as running:
        yield running


def _connect(mesh: RunningMesh) -> socket.socket:
    address = urlsplit(mesh.url)
    return socket.create_connection((address.hostname, address.port), timeout=30)


def _answer_and_close(sock: socket.socket, *, trickle: bool) -> bytes:
    """What the gateway sends before it closes the connection, trickling a header meanwhile."""
    received = b""
    sock.settimeout(0.5)
    deadline = time.monotonic() + 30  # far past either timeout: a hang fails the test
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            if trickle and not received:
                sock.sendall(b"x-slow: 1\r\n")
            continue
        except ConnectionResetError:  # what a client still sending to a closed socket gets
            return received
        if not chunk:
            return received
        received += chunk
    pytest.fail(f"the gateway kept the connection open; it sent {received!r}")


def test_a_client_trickling_its_headers_is_answered_408_and_let_go(quick: RunningMesh) -> None:
    with _connect(quick) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: mesh\r\n")
        answer = _answer_and_close(sock, trickle=True)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert httpx.get(f"{quick.url}/health", timeout=10).status_code == 200


def test_a_connection_with_nothing_on_it_is_closed(quick: RunningMesh) -> None:
    with _connect(quick) as silent, _connect(quick) as kept_alive:
        kept_alive.sendall(b"GET /health HTTP/1.1\r\nHost: mesh\r\n\r\n")
        assert kept_alive.recv(4096).startswith(b"HTTP/1.1 200")
        assert _answer_and_close(silent, trickle=False) == b""
        assert _answer_and_close(kept_alive, trickle=False) == b""  # idle after its answer


def test_a_quiet_subscription_outlives_the_idle_timeout(quick: RunningMesh) -> None:
    with httpx.Client(base_url=quick.url, timeout=10) as client:
        admin = bearer(str(login(client, "admin", ADMIN_PASSWORD)["access_token"]))
        subject = f"quiet/{uuid.uuid4()}"
        with client.stream(
            "GET", "/api/v2/events:subscribe", headers=admin, params={"subject": subject}
        ) as stream:
            assert stream.status_code == 200
            time.sleep(IDLE_SECONDS * 2)
            event = {
                "id": str(uuid.uuid4()),
                "source": "e2e",
                "type": "tests.quiet.sent",
                "subject": subject,
            }
            assert client.post("/api/v2/events", headers=admin, json=event).status_code == 200
            data = next(line for line in stream.iter_lines() if line.startswith("data: "))
    assert event["id"] in data
