"""The User Service's REST paths of the brief, through the gateway."""

from __future__ import annotations

import httpx

from tests.support.mesh import ADMIN_PASSWORD, bearer, login, new_user


def test_login_returns_a_token_pair_and_the_user(client: httpx.Client) -> None:
    body = login(client, "admin", ADMIN_PASSWORD)
    assert body["token_type"] == "Bearer"
    assert str(body["access_token"]).count(".") == 2
    assert str(body["refresh_token"]).count(".") == 2
    # JSON numbers, as RFC 6749 section 5.1 has them, not the strings of int64 fields.
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
    assert isinstance(body["refresh_expires_in"], int)
    assert body["refresh_expires_in"] > body["expires_in"]
    user = body["user"]
    assert isinstance(user, dict)
    assert user["username"] == "admin"


def test_validate_accepts_the_header_or_the_query_parameter(
    client: httpx.Client, admin_login: dict[str, object]
) -> None:
    token = str(admin_login["access_token"])
    by_header = client.get("/auth/validate", headers=bearer(token))
    by_query = client.get("/auth/validate", params={"token": token})
    for response in (by_header, by_query):
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["valid"] is True
        assert body["username"] == "admin"
        assert body["roles"] == ["admin"]
        assert body["permissions"] == ["*"]
        assert body["expires_at"].endswith("Z")
        assert body["user_id"] == admin_login["user"]["user_id"]  # type: ignore[index]


def test_validate_rejects_a_bad_token_with_a_reason(client: httpx.Client) -> None:
    response = client.get("/auth/validate", params={"token": "not-a-jwt"})
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == 16
    assert body["details"][0]["reason"] == "TOKEN_MALFORMED"


def test_refresh_rotates_and_a_spent_token_revokes_the_family(client: httpx.Client) -> None:
    first = login(client, "admin", ADMIN_PASSWORD)
    refreshed = client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    pair = refreshed.json()
    assert pair["refresh_token"] != first["refresh_token"]
    assert isinstance(pair["expires_in"], int) and isinstance(pair["refresh_expires_in"], int)
    assert client.get("/auth/validate", headers=bearer(pair["access_token"])).status_code == 200

    reused = client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401
    assert reused.json()["code"] == 16
    family = client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert family.status_code == 401


def test_logout_ends_the_session(client: httpx.Client) -> None:
    session = login(client, "admin", ADMIN_PASSWORD)
    headers = bearer(str(session["access_token"]))
    response = client.post("/auth/logout", headers=headers, json={})
    assert response.status_code == 200, response.text
    assert response.json()["session_id"]
    after = client.get("/auth/validate", headers=headers)
    assert after.status_code == 401
    assert after.json()["details"][0]["reason"] == "TOKEN_REVOKED"
    refresh = client.post("/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert refresh.status_code == 401


def test_get_user_and_permissions(
    client: httpx.Client, admin: dict[str, str], admin_login: dict[str, object]
) -> None:
    user_id = admin_login["user"]["user_id"]  # type: ignore[index]
    user = client.get(f"/users/{user_id}", headers=admin)
    assert user.status_code == 200, user.text
    assert user.json()["username"] == "admin"
    assert user.json()["disabled"] is False
    permissions = client.get(f"/users/{user_id}/permissions", headers=admin)
    assert permissions.status_code == 200, permissions.text
    assert permissions.json() == {"user_id": user_id, "roles": ["admin"], "permissions": ["*"]}


def test_a_user_reads_themself_but_not_others(
    client: httpx.Client, admin: dict[str, str], admin_login: dict[str, object]
) -> None:
    own_id, headers = new_user(client, admin, roles=["viewer"], prefix="reader")
    assert client.get(f"/users/{own_id}", headers=headers).status_code == 200
    mine = client.get(f"/users/{own_id}/permissions", headers=headers).json()
    assert sorted(mine["permissions"]) == ["object:read", "schema:read"]
    admin_id = admin_login["user"]["user_id"]  # type: ignore[index]
    other = client.get(f"/users/{admin_id}", headers=headers)
    assert other.status_code == 403
    assert other.json()["code"] == 7


def test_jwks_is_public_and_lists_es256_keys(client: httpx.Client) -> None:
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert keys
    assert {key["alg"] for key in keys} == {"ES256"}
    assert all(key["kty"] == "EC" and key["crv"] == "P-256" for key in keys)


def test_health_is_public_and_ok(client: httpx.Client) -> None:
    assert client.get("/health").status_code == 200


def test_the_earlier_admin_path_still_answers_as_the_one_it_became(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    current = client.get("/api/v1/users", headers=admin, params={"page_size": 1000})
    earlier = client.get("/v1/users", headers=admin, params={"page_size": 1000})
    assert current.status_code == earlier.status_code == 200, earlier.text
    assert earlier.json() == current.json()
