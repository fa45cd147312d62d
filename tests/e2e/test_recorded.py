"""Through the gateway, changes and refusals reach the audit log with an address nobody chose.

Envoy appends the address of the connection it accepted to ``x-forwarded-for``; what a client
wrote there itself is kept in front of it and never recorded as the client address. For a
client on its own host (a loopback connection, as here) Envoy appends the host's address.
"""

from __future__ import annotations

import socket
import uuid
from ipaddress import ip_address

import httpx

from tests.support.mesh import new_user
from tests.support.waiting import eventually

SPOOFED = {"X-Forwarded-For": "198.51.100.7"}


def _this_host(address: object) -> bool:
    """Whether ``address`` is one of this machine's (a socket can bind to it)."""
    family = socket.AF_INET6 if ip_address(str(address)).version == 6 else socket.AF_INET
    with socket.socket(family) as probe:
        try:
            probe.bind((str(address), 0))
        except OSError:
            return False
    return True


def _events(client: httpx.Client, admin: dict[str, str], **filters: str) -> list[dict[str, object]]:
    response = client.get("/api/v2/query/events", headers=admin, params=filters)
    assert response.status_code == 200, response.text
    return list(response.json()["events"])


def test_a_branch_setting_reaches_the_log_with_the_real_address(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    branch = f"settings-{uuid.uuid4().hex[:8]}"
    assert client.post("/api/v1/branches", headers=admin, json={"name": branch}).status_code == 200
    updated = client.patch(
        f"/api/v1/branches/{branch}",
        headers={**admin, **SPOOFED},
        params={"update_mask": "compatibility_mode"},
        json={"compatibility_mode": "COMPATIBILITY_MODE_FULL"},
    )
    assert updated.status_code == 200, updated.text
    (event,) = eventually(
        lambda: _events(client, admin, type="oms.branch.updated", subject=f"branches/{branch}")
    )
    assert (event["source"], event["actor"]) == ("/oms", "admin")
    data = event["data"]
    assert isinstance(data, dict)
    assert (data["before"], data["after"]) == (
        {"compatibility_mode": "BACKWARD"},
        {"compatibility_mode": "FULL"},
    )
    assert data["client_address"] != SPOOFED["X-Forwarded-For"]
    assert _this_host(data["client_address"])


def test_a_refused_call_through_the_gateway_is_audited_with_its_caller(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    _, viewer = new_user(client, admin, roles=["viewer"], prefix="refused")
    username = client.get("/auth/validate", headers=viewer).json()["username"]
    refused = client.post("/api/v1/signingKeys:rotate", headers={**viewer, **SPOOFED}, json={})
    assert refused.status_code == 403, refused.text
    (event,) = eventually(lambda: _events(client, admin, type="users.call.denied", actor=username))
    assert (event["source"], event["subject"]) == (
        "/users",
        "rpcs/users.v1.AuthService/RotateSigningKey",
    )
    data = event["data"]
    assert isinstance(data, dict)
    assert (data["code"], data["reason"]) == ("PERMISSION_DENIED", "MISSING_PERMISSION")
    assert data["client_address"] != SPOOFED["X-Forwarded-For"]
    assert _this_host(data["client_address"])
