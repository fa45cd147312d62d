"""The login lockout through the gateway: keyed by the address Envoy saw, not one a client wrote."""

from __future__ import annotations

import uuid

import httpx

from tests.support.mesh import RunningMesh, login

PASSWORD = "violet tugboat ossifies slowly"


def _from(mesh: RunningMesh, address: str) -> httpx.Client:
    """A client whose connections to the gateway come from ``address`` (a loopback one)."""
    return httpx.Client(
        base_url=mesh.url, timeout=10, transport=httpx.HTTPTransport(local_address=address)
    )


def _reason(response: httpx.Response) -> str:
    return str(
        next(d["reason"] for d in response.json()["details"] if d["@type"].endswith("ErrorInfo"))
    )


def test_a_guesser_locks_only_their_own_address(
    mesh: RunningMesh, client: httpx.Client, admin: dict[str, str]
) -> None:
    name = f"lock-{uuid.uuid4().hex[:8]}"
    created = client.post(
        "/api/v1/users", headers=admin, json={"user": {"username": name}, "password": PASSWORD}
    )
    assert created.status_code == 200, created.text
    guess = {"username": name, "password": "wrong guess!"}
    with _from(mesh, "127.0.0.2") as guesser:
        for _ in range(5):
            refused = guesser.post("/auth/login", json=guess)
            assert refused.status_code == 401 and _reason(refused) == "INVALID_CREDENTIALS"
        right = {"username": name, "password": PASSWORD}
        locked = guesser.post("/auth/login", json=right)
        assert locked.status_code == 401 and _reason(locked) == "ACCOUNT_LOCKED"
        # Writing another address in x-forwarded-for changes nothing: Envoy appends its own.
        spoofed = guesser.post("/auth/login", json=right, headers={"x-forwarded-for": "127.0.0.1"})
        assert _reason(spoofed) == "ACCOUNT_LOCKED"
    assert login(client, name, PASSWORD)["user"]["username"] == name  # type: ignore[index]
    unlocked = client.post(
        f"/api/v1/users/{created.json()['user_id']}:unlock", headers=admin, json={}
    )
    assert unlocked.status_code == 200, unlocked.text
    with _from(mesh, "127.0.0.2") as guesser:
        assert guesser.post("/auth/login", json=right).status_code == 200
