"""History through the gateway: resolutions, rebase, revert, tags, refs, the commit header."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.support.errors import rest_details, rest_reason
from tests.support.mesh import EMPLOYEE, new_branch

KEY = "object-types/Employee"


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def head(client: httpx.Client, admin: dict[str, str], branch: str) -> str:
    return str(ok(client.get(f"/api/v1/branches/{branch}", headers=admin))["head"])


def employee(client: httpx.Client, admin: dict[str, str], branch: str, ref: str = "") -> Any:
    query = f"?revision={ref}" if ref else ""
    path = f"/api/v1/schemas/{branch}/object-types/Employee{query}"
    return ok(client.get(path, headers=admin))


def update(client: httpx.Client, admin: dict[str, str], branch: str, **fields: Any) -> Any:
    body = {**EMPLOYEE, **fields}
    mask = ",".join(fields)
    path = f"/api/v1/schemas/{branch}/object-types/Employee?update_mask={mask}"
    return client.patch(path, headers=admin, json=body)


OURS = frozenset({"Employee", "Office", "Project"})
"""The object types these tests create: main is shared, and other tests add theirs to it."""


def names(client: httpx.Client, admin: dict[str, str], branch: str, ref: str = "") -> list[str]:
    query = f"?revision={ref}&page_size=1000" if ref else "?page_size=1000"
    found = ok(client.get(f"/api/v1/schemas/{branch}/object-types{query}", headers=admin))
    return sorted(t["api_name"] for t in found["object_types"] if t["api_name"] in OURS)


def create(client: httpx.Client, admin: dict[str, str], branch: str, name: str) -> httpx.Response:
    body = {**EMPLOYEE, "api_name": name, "display_name": name}
    response = client.post(f"/api/v1/schemas/{branch}/object-types", headers=admin, json=body)
    assert response.status_code == 200, response.text
    return response


def branch_of(client: httpx.Client, admin: dict[str, str], source: str) -> str:
    name = f"side-{uuid.uuid4().hex[:8]}"
    ok(client.post("/api/v1/branches", headers=admin, json={"name": name, "source": source}))
    return name


@pytest.fixture
def trunk(client: httpx.Client, admin: dict[str, str]) -> str:
    """A branch of main holding Employee, to merge into (main is shared and protected)."""
    name = new_branch(client, admin)
    create(client, admin, name, "Employee")
    return name


def typed(base: str) -> list[dict[str, Any]]:
    """Employee's properties with ``name`` of the given base type."""
    key = {**EMPLOYEE["properties"][0], "display_name": "id"}
    return [key, {"api_name": "name", "display_name": "name", "data_type": {"base": base}}]


@pytest.mark.parametrize(
    ("choice", "value", "expected"),
    [
        ("RESOLUTION_CHOICE_OURS", None, "BASE_TYPE_LONG"),
        ("RESOLUTION_CHOICE_THEIRS", None, "BASE_TYPE_TEXT"),
        ("RESOLUTION_CHOICE_VALUE", {"base": "BASE_TYPE_INTEGER"}, "BASE_TYPE_INTEGER"),
    ],
)
def test_a_merge_conflict_is_resolved_by_ours_theirs_or_a_value(
    client: httpx.Client,
    admin: dict[str, str],
    trunk: str,
    choice: str,
    value: Any,
    expected: str,
) -> None:
    feature = branch_of(client, admin, trunk)
    ok(update(client, admin, feature, properties=typed("BASE_TYPE_TEXT")))
    ok(update(client, admin, trunk, properties=typed("BASE_TYPE_LONG")))
    merge = f"/api/v1/branches/{feature}/merge"
    refused = client.post(merge, headers=admin, json={"target": trunk})
    assert refused.status_code == 400, refused.text
    assert rest_reason(refused.json()) == "MERGE_CONFLICT"
    (conflict,) = rest_details(refused.json(), "MergeConflict")
    path = "properties[name].data_type"
    assert (conflict["resource"], conflict["path"]) == (KEY, path)
    assert conflict["ours"]["base"] == "BASE_TYPE_LONG"
    assert conflict["theirs"]["base"] == "BASE_TYPE_TEXT"
    stray = client.post(
        merge,
        headers=admin,
        json={
            "target": trunk,
            "resolutions": [{"resource": KEY, "path": "description", "choice": choice}],
        },
    )
    assert stray.status_code == 400 and rest_reason(stray.json()) == "INVALID_ARGUMENT"
    resolution: dict[str, Any] = {"resource": KEY, "path": path, "choice": choice}
    if value is not None:
        resolution["value"] = value
    merged = ok(
        client.post(merge, headers=admin, json={"target": trunk, "resolutions": [resolution]})
    )
    assert merged["outcome"] == "MERGE_OUTCOME_MERGE_COMMIT"
    kept_ours = choice == "RESOLUTION_CHOICE_OURS"
    assert [c["resource"] for c in merged["commit"]["changes"]] == ([] if kept_ours else [KEY])
    properties = {p["api_name"]: p for p in employee(client, admin, trunk)["properties"]}
    assert properties["name"]["data_type"]["base"] == expected


def test_a_rebase_replays_a_branch_on_its_base_head(
    client: httpx.Client, admin: dict[str, str], trunk: str
) -> None:
    feature = branch_of(client, admin, trunk)
    create(client, admin, feature, "Project")
    create(client, admin, trunk, "Office")
    onto = head(client, admin, trunk)
    rebased = ok(client.post(f"/api/v1/branches/{feature}/rebase", headers=admin, json={}))
    assert rebased["outcome"] == "REBASE_OUTCOME_REBASED"
    assert rebased["onto_commit"] == onto
    assert rebased["commit"]["parents"] == [onto]
    assert [c["resource"] for c in rebased["commit"]["changes"]] == ["object-types/Project"]
    assert names(client, admin, feature) == ["Employee", "Office", "Project"]
    merged = ok(client.post(f"/api/v1/branches/{feature}/merge", headers=admin, json={}))
    assert merged["outcome"] == "MERGE_OUTCOME_FAST_FORWARD"


def test_a_revert_undoes_a_commit_and_resolves_a_later_change(
    client: httpx.Client, admin: dict[str, str], trunk: str
) -> None:
    create(client, admin, trunk, "Project")
    added = head(client, admin, trunk)
    ok(update(client, admin, trunk, description="one"))
    described = head(client, admin, trunk)
    ok(update(client, admin, trunk, description="two"))
    revert = f"/api/v1/branches/{trunk}/revert"
    undone = ok(client.post(revert, headers=admin, json={"commit": added[:8]}))
    assert undone["message"].startswith(f"Revert {added[:12]}")
    assert [(c["resource"], c["change_type"]) for c in undone["changes"]] == [
        ("object-types/Project", "CHANGE_TYPE_DELETED")
    ]
    assert names(client, admin, trunk) == ["Employee"]
    refused = client.post(revert, headers=admin, json={"commit": described})
    assert refused.status_code == 400 and rest_reason(refused.json()) == "MERGE_CONFLICT"
    (conflict,) = rest_details(refused.json(), "MergeConflict")
    assert (conflict["base"], conflict["ours"], conflict["theirs"]) == ("one", "two", "")
    resolved = {"resource": KEY, "path": "description", "choice": "RESOLUTION_CHOICE_THEIRS"}
    ok(client.post(revert, headers=admin, json={"commit": described, "resolutions": [resolved]}))
    assert employee(client, admin, trunk)["description"] == ""


def test_tags_short_ids_and_ancestors_name_commits_in_reads_and_diffs(
    client: httpx.Client, admin: dict[str, str], trunk: str
) -> None:
    tagged = head(client, admin, trunk)
    tag = f"rel-{uuid.uuid4().hex[:8]}"
    created = ok(
        client.post(
            "/api/v1/tags", headers=admin, json={"name": tag, "target": trunk, "message": "v1"}
        )
    )
    assert (created["commit"], created["target_commit"]["id"]) == (tagged, tagged)
    create(client, admin, trunk, "Project")
    now = head(client, admin, trunk)
    assert ok(client.get(f"/api/v1/tags/{tag}", headers=admin))["commit"] == tagged
    assert tag in [
        t["name"] for t in ok(client.get("/api/v1/tags?page_size=1000", headers=admin))["tags"]
    ]
    assert names(client, admin, trunk, ref=tag) == ["Employee"]
    assert names(client, admin, trunk, ref=f"{trunk}~1") == ["Employee"]
    assert names(client, admin, trunk, ref=now[:7]) == ["Employee", "Project"]
    assert employee(client, admin, trunk, ref=tagged[:10])["api_name"] == "Employee"
    diff = ok(client.get(f"/api/v1/diff?base={tag}&head={now[:7]}", headers=admin))
    assert (diff["base_commit"], diff["head_commit"]) == (tagged, now)
    assert [c["resource"] for c in diff["changes"]] == ["object-types/Project"]
    parent = ok(client.get(f"/api/v1/commits/{trunk}~1", headers=admin))
    assert parent["id"] == tagged
    log = ok(client.get(f"/api/v1/branches/{now[:9]}~1/commits?page_size=1", headers=admin))
    assert log["commits"][0]["id"] == tagged
    unknown = client.get(f"/api/v1/diff?base={tag}-nope&head={trunk}", headers=admin)
    assert unknown.status_code == 404 and rest_reason(unknown.json()) == "REF_NOT_FOUND"
    again = client.post("/api/v1/tags", headers=admin, json={"name": tag, "target": trunk})
    assert again.status_code == 409 and rest_reason(again.json()) == "TAG_EXISTS"
    ok(client.delete(f"/api/v1/tags/{tag}", headers=admin))
    gone = client.get(f"/api/v1/tags/{tag}", headers=admin)
    assert gone.status_code == 404 and rest_reason(gone.json()) == "TAG_NOT_FOUND"


def test_a_single_write_names_its_commit_in_a_response_header(
    client: httpx.Client, admin: dict[str, str], trunk: str
) -> None:
    created = create(client, admin, trunk, "Project")
    assert created.headers["x-mesh-commit"] == head(client, admin, trunk)
    updated = update(client, admin, trunk, description="changed")
    assert updated.status_code == 200, updated.text
    assert updated.headers["x-mesh-commit"] == head(client, admin, trunk)
    deleted = client.delete(f"/api/v1/schemas/{trunk}/object-types/Project", headers=admin)
    assert deleted.status_code == 200, deleted.text
    assert deleted.headers["x-mesh-commit"] == head(client, admin, trunk)
    commit = ok(client.get(f"/api/v1/commits/{deleted.headers['x-mesh-commit']}", headers=admin))
    assert [(c["resource"], c["change_type"]) for c in commit["changes"]] == [
        ("object-types/Project", "CHANGE_TYPE_DELETED")
    ]
    assert (commit["change_count"], commit["changes_truncated"]) == (1, False)
