"""The password lifecycle through the gateway: own change, admin reset, reset tokens."""

from __future__ import annotations

import uuid

import httpx

from tests.support.mesh import bearer, login

FIRST = "violet tugboat ossifies slowly"
SECOND = "amber glacier hums at noon"
THIRD = "seventeen quiet lanterns drift"


def _person(client: httpx.Client, admin: dict[str, str]) -> tuple[str, str]:
    """A fresh viewer with FIRST as password: its id and username."""
    name = f"pw-{uuid.uuid4().hex[:8]}"
    created = client.post(
        "/api/v1/users",
        headers=admin,
        json={"user": {"username": name}, "password": FIRST, "roles": ["viewer"]},
    )
    assert created.status_code == 200, created.text
    return str(created.json()["user_id"]), name


def _reasons(response: httpx.Response) -> tuple[str, list[str]]:
    """The ErrorInfo reason and the fields of the BadRequest of an error body."""
    details = response.json()["details"]
    reason = next(d["reason"] for d in details if d["@type"].endswith("ErrorInfo"))
    fields = [
        v["field"]
        for d in details
        if d["@type"].endswith("BadRequest")
        for v in d["field_violations"]
    ]
    return reason, fields


def test_a_change_over_rest_ends_the_old_session(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    _, name = _person(client, admin)
    old = str(login(client, name, FIRST)["access_token"])
    short = client.post(
        "/auth/password:change",
        headers=bearer(old),
        json={"current_password": FIRST, "new_password": "short"},
    )
    assert short.status_code == 400
    assert _reasons(short) == ("PASSWORD_TOO_SHORT", ["new_password"])
    changed = client.post(
        "/auth/password:change",
        headers=bearer(old),
        json={"current_password": FIRST, "new_password": SECOND},
    )
    assert changed.status_code == 200, changed.text
    fresh = changed.json()
    assert fresh["required_action"] == "REQUIRED_ACTION_UNSPECIFIED"
    assert client.get("/auth/validate", headers=bearer(fresh["access_token"])).status_code == 200
    refused = client.get("/auth/validate", headers=bearer(old))
    assert refused.status_code == 401 and _reasons(refused)[0] == "TOKEN_REVOKED"


def test_after_an_admin_reset_the_login_can_only_change_the_password(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    user_id, name = _person(client, admin)
    reset = client.post(
        f"/api/v1/users/{user_id}:setPassword", headers=admin, json={"password": SECOND}
    )
    assert reset.status_code == 200, reset.text
    assert reset.json()["password_change_required"] is True
    answer = login(client, name, SECOND)
    assert answer["required_action"] == "REQUIRED_ACTION_CHANGE_PASSWORD"
    assert answer["refresh_token"] == ""
    only_change = bearer(str(answer["access_token"]))
    # The OMS and the User Service's other methods refuse it.
    oms = client.get("/api/v1/schemas/main/object-types", headers=only_change)
    assert oms.status_code == 401 and _reasons(oms)[0] == "TOKEN_TYPE_MISMATCH"
    assert client.get(f"/users/{user_id}", headers=only_change).status_code == 401
    changed = client.post(
        "/auth/password:change",
        headers=only_change,
        json={"current_password": SECOND, "new_password": THIRD},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["refresh_token"]
    assert login(client, name, THIRD)["required_action"] == "REQUIRED_ACTION_UNSPECIFIED"


def test_a_reset_token_needs_no_bearer_and_works_once(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    user_id, name = _person(client, admin)
    issued = client.post(f"/api/v1/users/{user_id}:issuePasswordResetToken", headers=admin, json={})
    assert issued.status_code == 200, issued.text
    token = issued.json()["reset_token"]
    assert issued.json()["expire_time"].endswith("Z")
    body = {"reset_token": token, "new_password": SECOND}
    assert client.post("/auth/password:reset", json=body).status_code == 200
    assert login(client, name, SECOND)["user"]["user_id"] == user_id  # type: ignore[index]
    again = client.post("/auth/password:reset", json={**body, "new_password": THIRD})
    assert again.status_code == 401 and _reasons(again)[0] == "RESET_TOKEN_INVALID"
