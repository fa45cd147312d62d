"""One spelling of each thing through the gateway: a resource's key is the tail of its URL.

Keys in commits, diffs, history filters, findings and batch deletes read
``object-types/Employee``, as ``/api/v1/schemas/{branch}/object-types/Employee`` does; the
camelCase keys of earlier releases (``objectTypes/Employee``) are still understood in requests.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.errors import rest_details, rest_reason
from tests.support.mesh import EMPLOYEE, new_branch

SHARED = {
    "api_name": "costCentre",
    "display_name": "Cost centre",
    "data_type": {"base": "BASE_TYPE_STRING"},
}
WORKS_IN = {
    "api_name": "worksIn",
    "display_name": "Works in",
    "from_object_type": "Employee",
    "to_object_type": "Office",
    "cardinality": "CARDINALITY_MANY_TO_ONE",
}
OFFICE = {**EMPLOYEE, "api_name": "Office", "display_name": "Office"}


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def _commit(client: httpx.Client, admin: dict[str, str], branch: str, *changes: Any) -> Any:
    body = {"changes": list(changes), "message": "naming"}
    return client.post(f"/api/v1/schemas/{branch}:commit", headers=admin, json=body)


def _keys_of_head(client: httpx.Client, admin: dict[str, str], branch: str) -> list[str]:
    head = ok(client.get(f"/api/v1/branches/{branch}", headers=admin))["head"]
    return [
        c["resource"] for c in ok(client.get(f"/api/v1/commits/{head}", headers=admin))["changes"]
    ]


def test_every_key_a_commit_and_a_diff_name_is_the_path_of_its_resource(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    branch = new_branch(client, admin)
    base = ok(client.get(f"/api/v1/branches/{branch}", headers=admin))["head"]
    upserts = [
        {"upsert": {"object_type": EMPLOYEE}},
        {"upsert": {"object_type": OFFICE}},
        {"upsert": {"link_type": WORKS_IN}},
        {"upsert": {"shared_property": SHARED}},
    ]
    assert _commit(client, admin, branch, *upserts).status_code == 200
    keys = _keys_of_head(client, admin, branch)
    assert sorted(keys) == [
        "link-types/worksIn",
        "object-types/Employee",
        "object-types/Office",
        "shared-properties/costCentre",
    ]
    for key in keys:
        found = ok(client.get(f"/api/v1/schemas/{branch}/{key}", headers=admin))
        assert found["api_name"] == key.partition("/")[2]

    diff = ok(client.get(f"/api/v1/diff?base={base}&head={branch}", headers=admin))
    assert sorted(c["resource"] for c in diff["changes"]) == sorted(keys)


def test_a_finding_names_its_resource_by_the_same_key(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    branch = new_branch(client, admin)
    assert _commit(client, admin, branch, {"upsert": {"object_type": EMPLOYEE}}).status_code == 200
    narrowed = {**EMPLOYEE, "properties": EMPLOYEE["properties"][:1]}
    assert _commit(client, admin, branch, {"upsert": {"object_type": narrowed}}).status_code == 200
    head = ok(client.get(f"/api/v1/branches/{branch}", headers=admin))["head"]
    checked = ok(
        client.post(
            "/api/v1/validation/check",
            headers=admin,
            json={"branch": branch, "against": f"{head}~1", "mode": "COMPATIBILITY_MODE_BACKWARD"},
        )
    )
    paths = [f["path"] for f in checked["findings"]]
    assert paths and all(p.startswith("object-types/Employee.") for p in paths), paths


def test_keys_in_the_earlier_camel_case_are_still_understood(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    branch = new_branch(client, admin)
    assert _commit(client, admin, branch, {"upsert": {"object_type": EMPLOYEE}}).status_code == 200
    commits = f"/api/v1/branches/{branch}/commits"
    current = ok(client.get(f"{commits}?resource=object-types/Employee", headers=admin))["commits"]
    legacy = ok(client.get(f"{commits}?resource=objectTypes/Employee", headers=admin))["commits"]
    assert [c["id"] for c in legacy] == [c["id"] for c in current] != []

    deleted = _commit(client, admin, branch, {"delete": "objectTypes/Employee"})
    assert deleted.status_code == 200, deleted.text
    assert _keys_of_head(client, admin, branch) == ["object-types/Employee"]
    gone = client.get(f"/api/v1/schemas/{branch}/object-types/Employee", headers=admin)
    assert gone.status_code == 404, gone.text


def test_a_history_filter_that_is_no_key_says_what_a_key_looks_like(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    response = client.get("/api/v1/branches/main/commits?resource=Employee", headers=admin)
    assert response.status_code == 400, response.text
    assert rest_reason(response.json()) == "INVALID_RESOURCE_KEY"
    (bad,) = rest_details(response.json(), "BadRequest")
    (violation,) = bad["field_violations"]
    assert violation["field"] == "resource"
    assert "object-types/Employee" in violation["description"]
