"""Custom roles through the gateway: defined over REST, enforced by every service of the mesh."""

from __future__ import annotations

import uuid

import httpx

from tests.support.mesh import EMPLOYEE, bearer, login, new_user


def _role(client: httpx.Client, admin: dict[str, str], *permissions: str) -> dict[str, object]:
    name = f"role-{uuid.uuid4().hex[:8]}"
    created = client.post(
        "/api/v1/roles",
        headers=admin,
        json={"name": name, "description": "made by a test", "permissions": list(permissions)},
    )
    assert created.status_code == 200, created.text
    return dict(created.json())


def _reason(response: httpx.Response) -> str:
    return str(response.json()["details"][0]["reason"])


def test_the_permissions_a_role_may_grant_are_published(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    listed = client.get("/api/v1/permissions", headers=admin)
    assert listed.status_code == 200, listed.text
    by_name = {p["name"]: p["description"] for p in listed.json()["permissions"]}
    assert {"*", "schema:read", "audit:read", "users:write", "tokens:introspect"} <= set(by_name)
    assert all(by_name.values())


def test_a_role_with_audit_read_reads_the_log_and_nothing_else(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    role = _role(client, admin, "audit:read")
    assert role["builtin"] is False and role["permissions"] == ["audit:read"]
    _, reader = new_user(client, admin, roles=[str(role["name"])], prefix="log-reader")
    assert client.get("/api/v2/query/events", headers=reader).status_code == 200
    refused = client.get("/api/v1/schemas/main/object-types", headers=reader)
    assert (refused.status_code, _reason(refused)) == (403, "MISSING_PERMISSION")


def test_schema_read_reads_schemas_and_cannot_write_them(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    role = _role(client, admin, "schema:read")
    _, viewer = new_user(client, admin, roles=[str(role["name"])], prefix="schema-reader")
    assert client.get("/api/v1/schemas/main/object-types", headers=viewer).status_code == 200
    refused = client.post("/api/v1/schemas/main/object-types", headers=viewer, json=EMPLOYEE)
    assert (refused.status_code, _reason(refused)) == (403, "MISSING_PERMISSION")
    assert client.get("/api/v2/query/events", headers=viewer).status_code == 403


def test_an_update_reaches_a_token_at_its_refresh(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    role = _role(client, admin, "schema:read")
    name = f"grower-{uuid.uuid4().hex[:8]}"
    created = client.post(
        "/api/v1/users",
        headers=admin,
        json={"user": {"username": name}, "password": f"{name}-password", "roles": [role["name"]]},
    )
    assert created.status_code == 200, created.text
    session = login(client, name, f"{name}-password")
    updated = client.patch(
        f"/api/v1/roles/{role['name']}",
        headers=admin,
        params={"update_mask": "permissions"},
        json={"permissions": ["schema:read", "audit:read"], "etag": role["etag"]},
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["permissions"] == ["audit:read", "schema:read"]
    old = bearer(str(session["access_token"]))
    assert client.get("/api/v2/query/events", headers=old).status_code == 403
    refreshed = client.post("/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    new = bearer(refreshed.json()["access_token"])
    assert client.get("/api/v2/query/events", headers=new).status_code == 200
    stale = client.patch(
        f"/api/v1/roles/{role['name']}",
        headers=admin,
        params={"update_mask": "description"},
        json={"description": "late", "etag": role["etag"]},
    )
    assert (stale.status_code, _reason(stale)) == (409, "ETAG_MISMATCH")


def test_built_in_roles_and_unknown_permissions_are_refused(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    deleted = client.delete("/api/v1/roles/viewer", headers=admin)
    assert (deleted.status_code, _reason(deleted)) == (400, "ROLE_BUILTIN")
    changed = client.patch(
        "/api/v1/roles/admin",
        headers=admin,
        params={"update_mask": "description"},
        json={"description": "mine now"},
    )
    assert (changed.status_code, _reason(changed)) == (400, "ROLE_BUILTIN")
    unknown = client.post(
        "/api/v1/roles", headers=admin, json={"name": "wizards", "permissions": ["magic:cast"]}
    )
    assert unknown.status_code == 400
    bad_request = next(d for d in unknown.json()["details"] if "field_violations" in d)
    (violation,) = bad_request["field_violations"]
    assert violation["field"] == "role.permissions[0]"
    assert "schema:read" in violation["description"]


def test_a_role_still_granted_is_not_deleted(client: httpx.Client, admin: dict[str, str]) -> None:
    role = _role(client, admin, "schema:read")
    user_id, _ = new_user(client, admin, roles=[str(role["name"])], prefix="holder")
    refused = client.delete(f"/api/v1/roles/{role['name']}", headers=admin)
    assert (refused.status_code, _reason(refused)) == (400, "ROLE_IN_USE")
    cleared = client.post(f"/api/v1/users/{user_id}:setRoles", headers=admin, json={"roles": []})
    assert cleared.status_code == 200, cleared.text
    assert client.delete(f"/api/v1/roles/{role['name']}", headers=admin).status_code == 200
    gone = client.delete(f"/api/v1/roles/{role['name']}", headers=admin)
    assert (gone.status_code, _reason(gone)) == (404, "ROLE_NOT_FOUND")


def test_create_user_refuses_roles_inside_the_user(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    refused = client.post(
        "/api/v1/users",
        headers=admin,
        json={
            "user": {"username": f"ambiguous-{uuid.uuid4().hex[:8]}", "roles": ["editor"]},
            "password": "a long enough password for this",
        },
    )
    assert refused.status_code == 400, refused.text
    bad_request = next(d for d in refused.json()["details"] if "field_violations" in d)
    assert [v["field"] for v in bad_request["field_violations"]] == ["user.roles"]
