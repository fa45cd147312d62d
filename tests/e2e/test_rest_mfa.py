"""TOTP second factors through the gateway, computed with pyotp as an authenticator would.

Enrolment and login, a replayed code, single-use recovery codes, an admin's MFA reset (and
its audit event), a role that requires MFA, and the OAuth password grant that must not skip
the second factor.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support.mesh import bearer, login
from tests.support.mfa import totp_code
from tests.support.waiting import eventually

PASSWORD = "violet tugboat ossifies slowly"
SPOOFED = {"X-Forwarded-For": "198.51.100.23"}


def _person(client: httpx.Client, admin: dict[str, str], role: str = "viewer") -> tuple[str, str]:
    """A fresh user with PASSWORD: its id and username."""
    name = f"mfa-{uuid.uuid4().hex[:8]}"
    created = client.post(
        "/api/v1/users",
        headers=admin,
        json={"user": {"username": name}, "password": PASSWORD, "roles": [role]},
    )
    assert created.status_code == 200, created.text
    return str(created.json()["user_id"]), name


def _reason(response: httpx.Response) -> str:
    return str(
        next(d["reason"] for d in response.json()["details"] if d["@type"].endswith("ErrorInfo"))
    )


def _enrol(client: httpx.Client, token: str) -> tuple[str, dict[str, object]]:
    """Enrol and confirm TOTP with ``token`` as the bearer: the secret and the confirmation."""
    enrolled = client.post("/auth/totp:enroll", headers=bearer(token), json={})
    assert enrolled.status_code == 200, enrolled.text
    secret = str(enrolled.json()["secret"])
    confirmed = client.post(
        "/auth/totp:confirm", headers=bearer(token), json={"totp_code": totp_code(secret)}
    )
    assert confirmed.status_code == 200, confirmed.text
    return secret, dict(confirmed.json())


def _second_factor(client: httpx.Client, name: str, **code: str) -> httpx.Response:
    """Log in with PASSWORD, then answer the MFA ticket with ``code``."""
    ticket = login(client, name, PASSWORD)
    assert ticket["required_action"] == "REQUIRED_ACTION_VERIFY_SECOND_FACTOR"
    return client.post("/auth/login/mfa", headers=bearer(str(ticket["access_token"])), json=code)


@pytest.fixture
def enrolled(client: httpx.Client, admin: dict[str, str]) -> tuple[str, str, str, list[str]]:
    """A viewer with confirmed TOTP: id, username, secret and recovery codes."""
    user_id, name = _person(client, admin)
    secret, confirmed = _enrol(client, str(login(client, name, PASSWORD)["access_token"]))
    codes = confirmed["recovery_codes"]
    assert isinstance(codes, list)
    return user_id, name, secret, [str(c) for c in codes]


def test_enrolment_shows_a_qr_code_and_login_then_asks_for_a_code(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    _, name = _person(client, admin)
    token = str(login(client, name, PASSWORD)["access_token"])
    enrolled = client.post("/auth/totp:enroll", headers=bearer(token), json={})
    assert enrolled.status_code == 200, enrolled.text
    body = enrolled.json()
    assert body["provisioning_uri"].startswith(f"otpauth://totp/ontology-mesh:{name}?")
    assert body["qr_code_svg"].startswith("<svg")
    confirmed = client.post(
        "/auth/totp:confirm", headers=bearer(token), json={"totp_code": totp_code(body["secret"])}
    )
    assert confirmed.status_code == 200, confirmed.text
    assert len(confirmed.json()["recovery_codes"]) == 10
    # Login now answers a ticket, which is no access token at the services.
    ticket = login(client, name, PASSWORD)
    assert ticket["required_action"] == "REQUIRED_ACTION_VERIFY_SECOND_FACTOR"
    assert ticket["refresh_token"] == ""
    refused = client.get("/api/v1/branches", headers=bearer(str(ticket["access_token"])))
    assert refused.status_code == 401 and _reason(refused) == "TOKEN_TYPE_MISMATCH"
    session = client.post(
        "/auth/login/mfa",
        headers=bearer(str(ticket["access_token"])),
        json={"totp_code": totp_code(body["secret"], steps_ahead=1)},
    )
    assert session.status_code == 200, session.text
    assert session.json()["required_action"] == "REQUIRED_ACTION_UNSPECIFIED"
    assert session.json()["user"]["mfa_enrolled"] is True
    assert (
        client.get("/api/v1/branches", headers=bearer(session.json()["access_token"])).status_code
        == 200
    )


def test_a_code_cannot_be_replayed_inside_its_window(
    client: httpx.Client, enrolled: tuple[str, str, str, list[str]]
) -> None:
    _, name, secret, _ = enrolled
    code = totp_code(secret, steps_ahead=1)
    assert _second_factor(client, name, totp_code=code).status_code == 200
    replay = _second_factor(client, name, totp_code=code)
    assert replay.status_code == 401 and _reason(replay) == "MFA_CODE_REUSED"
    wrong = _second_factor(client, name, totp_code="000000")
    assert wrong.status_code == 401 and _reason(wrong) == "MFA_CODE_INVALID"


def test_a_recovery_code_logs_in_once(
    client: httpx.Client, enrolled: tuple[str, str, str, list[str]]
) -> None:
    _, name, _, codes = enrolled
    first = _second_factor(client, name, recovery_code=codes[0].upper())
    assert first.status_code == 200, first.text
    again = _second_factor(client, name, recovery_code=codes[0])
    assert again.status_code == 401 and _reason(again) == "MFA_CODE_INVALID"
    assert _second_factor(client, name, recovery_code=codes[1]).status_code == 200


def test_a_bad_second_factor_request_is_a_400_naming_the_field(
    client: httpx.Client, enrolled: tuple[str, str, str, list[str]]
) -> None:
    _, name, _, _ = enrolled
    neither = _second_factor(client, name)
    assert neither.status_code == 400 and _reason(neither) == "INVALID_ARGUMENT"
    fields = [
        v["field"]
        for d in neither.json()["details"]
        if d["@type"].endswith("BadRequest")
        for v in d["field_violations"]
    ]
    assert fields == ["totp_code"]


def test_an_admin_mfa_reset_is_audited_with_actor_and_client_address(
    client: httpx.Client, admin: dict[str, str], enrolled: tuple[str, str, str, list[str]]
) -> None:
    user_id, name, _, _ = enrolled
    reset = client.post(f"/api/v1/users/{user_id}:resetMfa", headers={**admin, **SPOOFED}, json={})
    assert reset.status_code == 200, reset.text
    assert reset.json()["mfa_enrolled"] is False
    plain = login(client, name, PASSWORD)
    assert plain["required_action"] == "REQUIRED_ACTION_UNSPECIFIED" and plain["refresh_token"]
    again = client.post(f"/api/v1/users/{user_id}:resetMfa", headers=admin, json={})
    assert again.status_code == 400 and _reason(again) == "MFA_NOT_ENROLLED"
    sessions = client.get(
        f"/api/v1/users/{user_id}/sessions", headers=bearer(str(plain["access_token"]))
    )
    assert sessions.status_code == 200, sessions.text
    (this_host,) = {s["client_address"] for s in sessions.json()["sessions"]}

    def recorded() -> list[dict[str, object]]:
        found = client.get(
            "/api/v2/query/events",
            headers=admin,
            params={"type": "users.user.mfa_reset", "subject": f"users/{user_id}"},
        )
        assert found.status_code == 200, found.text
        return list(found.json()["events"])

    (event,) = eventually(recorded)
    assert (event["source"], event["actor"]) == ("/users", "admin")
    data = event["data"]
    assert isinstance(data, dict)
    assert (data["username"], data["was_confirmed"]) == (name, True)
    # The address Envoy saw, not the one the client wrote.
    assert data["client_address"] == this_host != SPOOFED["X-Forwarded-For"]


@pytest.fixture
def auditors_need_mfa(client: httpx.Client, admin: dict[str, str]) -> Iterator[None]:
    """The auditor role requires MFA for the test, and no longer after it."""
    path = "/api/v1/roles/auditor:setMfaRequired"
    required = client.post(path, headers=admin, json={"mfa_required": True})
    assert required.status_code == 200, required.text
    assert required.json()["mfa_required"] is True
    try:
        yield
    finally:
        lifted = client.post(path, headers=admin, json={"mfa_required": False})
        assert lifted.status_code == 200, lifted.text


def test_a_role_that_requires_mfa_makes_login_configure_totp(
    client: httpx.Client, admin: dict[str, str], auditors_need_mfa: None
) -> None:
    _, name = _person(client, admin, role="auditor")
    answer = login(client, name, PASSWORD)
    assert answer["required_action"] == "REQUIRED_ACTION_CONFIGURE_TOTP"
    assert answer["refresh_token"] == ""
    ticket = str(answer["access_token"])
    assert client.get("/api/v2/query/events", headers=bearer(ticket)).status_code == 401
    _, confirmed = _enrol(client, ticket)
    session = confirmed["session"]
    assert isinstance(session, dict)
    assert session["required_action"] == "REQUIRED_ACTION_UNSPECIFIED"
    assert (
        client.get("/api/v2/query/events", headers=bearer(str(session["access_token"]))).status_code
        == 200
    )
    # From now on the role's holder logs in with a code.
    assert login(client, name, PASSWORD)["required_action"] == (
        "REQUIRED_ACTION_VERIFY_SECOND_FACTOR"
    )


def test_the_oauth_password_grant_refuses_an_account_with_mfa(
    client: httpx.Client, enrolled: tuple[str, str, str, list[str]]
) -> None:
    _, name, _, _ = enrolled
    refused = client.post(
        "/oauth/token",
        data={"grant_type": "password", "username": name, "password": PASSWORD},
    )
    assert refused.status_code == 400, refused.text
    body = refused.json()
    assert body["error"] == "invalid_grant"
    assert "/auth/login/mfa" in body["error_description"]


def test_introspection_refuses_a_password_alone_for_an_account_with_mfa(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    """An admin may introspect, but not with the password of an account that has TOTP."""
    _, name = _person(client, admin, role="admin")
    _enrol(client, str(login(client, name, PASSWORD)["access_token"]))
    token = admin["Authorization"].removeprefix("Bearer ")
    refused = client.post("/oauth/introspect", data={"token": token}, auth=(name, PASSWORD))
    assert refused.status_code == 401, refused.text
    assert refused.json()["error"] == "invalid_client"
    assert "second factor" in refused.json().get("error_description", "")
