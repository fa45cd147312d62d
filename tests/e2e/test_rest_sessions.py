"""Sessions through the gateway: listed with where they came from, ended across the mesh."""

from __future__ import annotations

import uuid

import httpx

from tests.support.mesh import bearer
from tests.support.waiting import eventually

PASSWORD = "violet tugboat ossifies slowly"
SCHEMA = "/api/v1/schemas/main/object-types"


def test_an_ended_session_is_refused_by_the_oms_within_a_second(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    name = f"sess-{uuid.uuid4().hex[:8]}"
    created = client.post(
        "/api/v1/users",
        headers=admin,
        json={"user": {"username": name}, "password": PASSWORD, "roles": ["viewer"]},
    )
    assert created.status_code == 200, created.text
    user_id = created.json()["user_id"]
    tokens = {}
    for agent in ("laptop-browser/1.0", "phone-app/2.0"):
        answer = client.post(
            "/auth/login",
            json={"username": name, "password": PASSWORD},
            headers={"user-agent": agent},
        )
        assert answer.status_code == 200, answer.text
        tokens[agent] = answer.json()["access_token"]
    laptop, phone = bearer(tokens["laptop-browser/1.0"]), bearer(tokens["phone-app/2.0"])
    assert client.get(SCHEMA, headers=phone).status_code == 200

    listed = client.get(f"/api/v1/users/{user_id}/sessions", headers=laptop)
    assert listed.status_code == 200, listed.text
    sessions = listed.json()["sessions"]
    assert [s["user_agent"] for s in sessions] == ["laptop-browser/1.0", "phone-app/2.0"]
    # The address Envoy appended (for a loopback client, this host's), never empty.
    (address,) = {s["client_address"] for s in sessions}
    assert address
    assert [s["current"] for s in sessions] == [True, False]
    assert all(s["create_time"].endswith("Z") and s["refresh_time"] for s in sessions)

    ended = client.delete(
        f"/api/v1/users/{user_id}/sessions/{sessions[1]['session_id']}", headers=laptop
    )
    assert ended.status_code == 200, ended.text
    eventually(
        lambda: client.get(SCHEMA, headers=phone).status_code == 401,
        timeout=1.0,
        what="the OMS refuses the ended session",
    )
    refused = client.get(SCHEMA, headers=phone).json()
    assert refused["details"][0]["reason"] == "TOKEN_REVOKED"
    assert client.get(SCHEMA, headers=laptop).status_code == 200
