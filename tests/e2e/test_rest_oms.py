"""The OMS's REST paths of the brief, through the gateway."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.support.mesh import EMPLOYEE, new_user


@pytest.fixture
def branch(client: httpx.Client, admin: dict[str, str]) -> str:
    name = f"feature-{uuid.uuid4().hex[:8]}"
    response = client.post("/api/v1/branches", headers=admin, json={"name": name})
    assert response.status_code == 200, response.text
    assert response.json()["name"] == name
    assert response.json()["base_branch"] == "main"
    return name


def test_object_types_are_created_and_listed_on_a_branch(
    client: httpx.Client, admin: dict[str, str], branch: str
) -> None:
    created = client.post(f"/api/v1/schemas/{branch}/object-types", headers=admin, json=EMPLOYEE)
    assert created.status_code == 200, created.text
    assert created.json()["api_name"] == "Employee"
    assert created.json()["etag"]
    listed = client.get(f"/api/v1/schemas/{branch}/object-types?page_size=1000", headers=admin)
    assert listed.status_code == 200, listed.text
    main = client.get("/api/v1/schemas/main/object-types?page_size=1000", headers=admin).json()
    on_main = [t["api_name"] for t in main["object_types"]]
    assert "Employee" not in on_main  # other tests share main; only its absence matters here
    assert [t["api_name"] for t in listed.json()["object_types"]] == sorted([*on_main, "Employee"])


def test_validation_check_then_merge_into_main(
    client: httpx.Client, admin: dict[str, str], branch: str
) -> None:
    api_name = f"Thing{uuid.uuid4().hex[:6]}"
    body = {**EMPLOYEE, "api_name": api_name, "display_name": api_name}
    assert (
        client.post(f"/api/v1/schemas/{branch}/object-types", headers=admin, json=body).status_code
        == 200
    )
    check = client.post("/api/v1/validation/check", headers=admin, json={"branch": branch})
    assert check.status_code == 200, check.text
    assert check.json()["passed"] is True
    assert any(f["rule_id"] == "OBJECT_TYPE_ADDED" for f in check.json()["findings"])
    merged = client.post(f"/api/v1/branches/{branch}/merge", headers=admin, json={"target": "main"})
    assert merged.status_code == 200, merged.text
    assert merged.json()["outcome"] in ("MERGE_OUTCOME_FAST_FORWARD", "MERGE_OUTCOME_MERGE_COMMIT")
    main = client.get("/api/v1/schemas/main/object-types", headers=admin).json()
    assert api_name in [t["api_name"] for t in main["object_types"]]


def test_a_second_branch_of_the_same_name_is_409(
    client: httpx.Client, admin: dict[str, str], branch: str
) -> None:
    again = client.post("/api/v1/branches", headers=admin, json={"name": branch})
    assert again.status_code == 409
    assert again.json()["code"] == 6


def test_a_reader_cannot_write_the_schema(
    client: httpx.Client, admin: dict[str, str], branch: str
) -> None:
    _, reader = new_user(client, admin, roles=["viewer"], prefix="reader")
    assert client.get(f"/api/v1/schemas/{branch}/object-types", headers=reader).status_code == 200
    denied = client.post(f"/api/v1/schemas/{branch}/object-types", headers=reader, json=EMPLOYEE)
    assert denied.status_code == 403
    assert denied.json()["code"] == 7


def test_patch_and_delete_take_force_and_a_reason_as_commit_does(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    """A breaking PATCH or DELETE on protected main is refused, then forced with a reason."""
    name = f"Forced{uuid.uuid4().hex[:6]}"
    body = {**EMPLOYEE, "api_name": name, "display_name": name}
    created = client.post("/api/v1/schemas/main/object-types", headers=admin, json=body)
    assert created.status_code == 200, created.text
    path = f"/api/v1/schemas/main/object-types/{name}"
    narrowed = {**body, "properties": [{**p, "required": True} for p in body["properties"]]}
    refused = client.patch(f"{path}?update_mask=properties", headers=admin, json=narrowed)
    assert refused.status_code == 400, refused.text
    forced = client.patch(
        f"{path}?update_mask=properties&force=true&force_reason=backfilled%20first",
        headers=admin,
        json=narrowed,
    )
    assert forced.status_code == 200, forced.text
    commit = client.get(f"/api/v1/commits/{forced.headers['x-mesh-commit']}", headers=admin)
    assert (commit.json()["forced"], commit.json()["force_reason"]) == (True, "backfilled first")

    assert client.delete(path, headers=admin).status_code == 400
    deleted = client.delete(f"{path}?force=true&force_reason=retired", headers=admin)
    assert deleted.status_code == 200, deleted.text
    gone = client.get(f"/api/v1/commits/{deleted.headers['x-mesh-commit']}", headers=admin)
    assert gone.json()["force_reason"] == "retired"
