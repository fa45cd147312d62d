"""Objects, links and actions through the gateway: load, link, act, merge, read as of it, audit."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.support.errors import rest_reason
from tests.support.mesh import new_user
from tests.support.waiting import eventually


def _string(name: str, **extra: object) -> dict[str, object]:
    return {"api_name": name, "data_type": {"base": "BASE_TYPE_STRING"}, **extra}


def _audited(client: httpx.Client, admin: dict[str, str], kind: str, branch: str) -> list[dict]:
    """This test's events of ``kind``: the newest ones, since other tests share the log."""
    params = {"type": kind, "order": "newest", "page_size": 1000}
    response = client.get("/api/v2/query/events", headers=admin, params=params)
    assert response.status_code == 200, response.text
    return [e for e in response.json()["events"] if f"branches/{branch}/" in str(e["subject"])]


def test_objects_live_on_a_branch_merge_and_are_audited(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    suffix = uuid.uuid4().hex[:6]
    branch, person, place = f"data-{suffix}", f"Person{suffix}", f"Place{suffix}"
    lives_in = f"livesIn{suffix}"
    _, editor = new_user(client, admin, roles=["editor"], prefix="loader")
    _, viewer = new_user(client, admin, roles=["viewer"], prefix="reader")
    assert client.post("/api/v1/branches", headers=editor, json={"name": branch}).status_code == 200
    for api_name, extra in (
        (person, [{"api_name": "age", "data_type": {"base": "BASE_TYPE_INTEGER"}}]),
        (place, []),
    ):
        body = {
            "api_name": api_name,
            "primary_key": "id",
            "properties": [_string("id", required=True), *extra],
        }
        created = client.post(f"/api/v1/schemas/{branch}/object-types", headers=editor, json=body)
        assert created.status_code == 200, created.text
    link = {
        "api_name": lives_in,
        "from_object_type": person,
        "to_object_type": place,
        "cardinality": "CARDINALITY_MANY_TO_ONE",
    }
    assert (
        client.post(f"/api/v1/schemas/{branch}/link-types", headers=editor, json=link).status_code
        == 200
    )

    for pk, age in (("ann", 31), ("bob", 45)):
        created = client.post(
            f"/api/v1/objects/{branch}/{person}",
            headers=editor,
            json={"properties": {"id": pk, "age": age}},
        )
        assert created.status_code == 200, created.text
        assert created.headers["x-mesh-commit"] and created.json()["etag"]
    assert (
        client.post(
            f"/api/v1/objects/{branch}/{place}", headers=editor, json={"properties": {"id": "oslo"}}
        ).status_code
        == 200
    )
    linked = client.post(
        f"/api/v1/links/{branch}/{lives_in}",
        headers=editor,
        json={"from_primary_key": "ann", "to_primary_key": "oslo"},
    )
    assert linked.status_code == 200, linked.text

    bad = client.post(
        f"/api/v1/objects/{branch}/{person}",
        headers=editor,
        json={"properties": {"id": "cy", "age": "old", "shoe": 1}},
    )
    assert bad.status_code == 400, bad.text
    second = client.post(
        f"/api/v1/links/{branch}/{lives_in}",
        headers=editor,
        json={"from_primary_key": "ann", "to_primary_key": "oslo"},
    )
    assert second.status_code == 409, second.text
    assert (
        client.post(
            f"/api/v1/objects/{branch}/{place}", headers=viewer, json={"properties": {"id": "rome"}}
        ).status_code
        == 403
    )

    listed = client.get(
        f"/api/v1/objects/{branch}/{person}", headers=viewer, params={"filter": "age > 40"}
    )
    assert listed.status_code == 200, listed.text
    assert [o["primary_key"] for o in listed.json()["objects"]] == ["bob"]
    residents = client.get(
        f"/api/v1/objects/{branch}/{place}/oslo/links/{lives_in}", headers=viewer
    )
    assert [o["primary_key"] for o in residents.json()["objects"]] == ["ann"]

    birthday = {
        "api_name": f"birthday{suffix}",
        "parameters": [
            {"api_name": "person", "object_type": person, "required": True},
            {"api_name": "age", "data_type": {"base": "BASE_TYPE_INTEGER"}, "required": True},
        ],
        "rules": [
            {
                "kind": "ACTION_RULE_KIND_MODIFY_OBJECT",
                "object_type": person,
                "object_parameter": "person",
                "values": {"age": "age"},
            }
        ],
        "submission_criteria": [
            {"parameter": "age", "operator": "<=", "value": 120, "message": "nobody is that old"}
        ],
    }
    created = client.post(f"/api/v1/schemas/{branch}/action-types", headers=editor, json=birthday)
    assert created.status_code == 200, created.text
    execute = f"/api/v1/branches/{branch}/actions/birthday{suffix}:execute"
    ran = client.post(execute, headers=editor, json={"parameters": {"person": "ann", "age": 32}})
    assert ran.status_code == 200, ran.text
    (edit,) = ran.json()["edits"]
    assert (edit["resource"], edit["before"]["age"], edit["after"]["age"]) == (
        f"objects/{person}/ann",
        31,
        32,
    )
    assert ran.headers["x-mesh-commit"] == ran.json()["commit"]
    refused = client.post(
        execute, headers=editor, json={"parameters": {"person": "bob", "age": 200}}
    )
    assert (
        refused.status_code == 400 and rest_reason(refused.json()) == "SUBMISSION_CRITERIA_FAILED"
    )

    merged = client.post(
        f"/api/v1/branches/{branch}/merge", headers=editor, json={"target": "main"}
    )
    assert merged.status_code == 200, merged.text
    merge_commit = merged.json()["commit"]["id"]
    on_main = client.get(
        f"/api/v1/objects/main/{person}/ann", headers=viewer, params={"revision": merge_commit}
    )
    assert on_main.status_code == 200, on_main.text
    assert on_main.json()["properties"] == {"id": "ann", "age": 32}

    (link_event,) = eventually(lambda: _audited(client, admin, "oms.link.created", branch))
    assert link_event["data"]["from"] == "ann" and link_event["data"]["to"] == "oslo"
    created_events = _audited(client, admin, "oms.object.created", branch)  # shipped in order
    assert sorted(e["data"]["primary_key"] for e in created_events) == ["ann", "bob", "oslo"]
    assert {e["actor"] for e in created_events} == {link_event["actor"]}
    assert link_event["actor"].startswith("loader-")
    failed = eventually(lambda: _audited(client, admin, "oms.action.failed", branch))
    executed = _audited(client, admin, "oms.action.executed", branch)
    assert [e["actor"] for e in executed + failed] == [link_event["actor"]] * 2
    assert failed[0]["data"]["reason"] == "SUBMISSION_CRITERIA_FAILED"


def test_large_objects_go_through_the_gateway_on_pages_bounded_in_bytes(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    """The transcoder buffers what a call and its answer take, well past Envoy's 1 MiB default.

    A JSON body of small numbers is twice as large as a message. A page stops growing past
    2 MiB of its items, however many were asked for, and its token goes on from there: a page
    of a thousand large objects would otherwise outgrow any buffer.
    """
    suffix = uuid.uuid4().hex[:6]
    branch, item = f"big-{suffix}", f"Bulky{suffix}"
    assert client.post("/api/v1/branches", headers=admin, json={"name": branch}).status_code == 200
    numbers = {"api_name": "numbers", "data_type": {"base": "BASE_TYPE_INTEGER", "array": True}}
    body = {
        "api_name": item,
        "primary_key": "id",
        "properties": [_string("id", required=True), numbers],
    }
    created = client.post(f"/api/v1/schemas/{branch}/object-types", headers=admin, json=body)
    assert created.status_code == 200, created.text
    values = list(range(100_000))  # about 600 KB of JSON, over 1 MiB as a message
    for n in range(3):
        response = client.post(
            f"/api/v1/objects/{branch}/{item}",
            headers=admin,
            json={"properties": {"id": f"o{n}", "numbers": values}},
            timeout=60,
        )
        assert response.status_code == 200, response.text[:300]

    def every_page(**params: str) -> tuple[list[int], list[dict[str, Any]]]:
        sizes, listed, token = [], [], ""
        while True:
            page = client.get(
                f"/api/v1/objects/{branch}/{item}",
                headers=admin,
                params={"page_size": 1000, "page_token": token, **params},
                timeout=60,
            )
            assert page.status_code == 200, page.text[:300]
            sizes.append(len(page.json()["objects"]))
            listed.extend(page.json()["objects"])
            token = page.json()["next_page_token"]
            if not token:
                return sizes, listed

    sizes, listed = every_page()
    assert sizes == [1, 1, 1]  # each over a mebibyte as a message, so two pass the bound
    assert [o["primary_key"] for o in listed] == ["o0", "o1", "o2"]
    assert all(o["properties"]["numbers"] == values for o in listed)
    sizes, listed = every_page(order_by="id desc")  # pages by offset go on from the cut too
    assert (sizes, [o["primary_key"] for o in listed]) == ([1, 1, 1], ["o2", "o1", "o0"])
