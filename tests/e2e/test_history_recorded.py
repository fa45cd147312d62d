"""Every history operation through the gateway reaches the Audit Service exactly once.

Tags, a rebase, a revert refused for a conflict and the same revert resolved: each is found
in the audit log by its type and subject, with the caller as actor and what happened.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.support.errors import rest_details
from tests.support.mesh import EMPLOYEE, new_branch
from tests.support.waiting import eventually


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def recorded(
    client: httpx.Client, admin: dict[str, str], kind: str, subject: str
) -> list[dict[str, Any]]:
    """The events of ``kind`` about ``subject`` once at least one has arrived."""

    def found() -> list[dict[str, Any]]:
        params = {"type": kind, "subject": subject}
        response = client.get("/api/v2/query/events", headers=admin, params=params)
        return list(ok(response)["events"])

    return list(eventually(found))


def described(client: httpx.Client, admin: dict[str, str], branch: str, text: str) -> str:
    """Change Employee's description on ``branch``; the commit the write made."""
    path = f"/api/v1/schemas/{branch}/object-types/Employee?update_mask=description"
    response = client.patch(path, headers=admin, json={**EMPLOYEE, "description": text})
    ok(response)
    return response.headers["x-mesh-commit"]


def test_tags_rebases_and_reverts_are_each_recorded_once(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    trunk = new_branch(client, admin)
    ok(client.post(f"/api/v1/schemas/{trunk}/object-types", headers=admin, json=EMPLOYEE))
    feature = f"side-{uuid.uuid4().hex[:8]}"
    ok(client.post("/api/v1/branches", headers=admin, json={"name": feature, "source": trunk}))
    described(client, admin, trunk, "on the trunk")
    tag = f"v-{uuid.uuid4().hex[:8]}"
    ok(client.post("/api/v1/tags", headers=admin, json={"name": tag, "target": trunk}))
    ok(client.delete(f"/api/v1/tags/{tag}", headers=admin))
    rebased = ok(client.post(f"/api/v1/branches/{feature}/rebase", headers=admin, json={}))
    undone = described(client, admin, feature, "to undo")
    described(client, admin, feature, "changed since")
    revert = f"/api/v1/branches/{feature}/revert"
    conflicted = client.post(revert, headers=admin, json={"commit": undone})
    assert conflicted.status_code == 400, conflicted.text
    (conflict,) = rest_details(conflicted.json(), "MergeConflict")
    settled = {"resource": conflict["resource"], "path": conflict["path"]}
    resolutions = [{**settled, "choice": "RESOLUTION_CHOICE_THEIRS"}]
    reverted = ok(
        client.post(revert, headers=admin, json={"commit": undone, "resolutions": resolutions})
    )

    (created,) = recorded(client, admin, "oms.tag.created", f"tags/{tag}")
    (deleted,) = recorded(client, admin, "oms.tag.deleted", f"tags/{tag}")
    assert created["actor"] == deleted["actor"] == "admin"
    assert created["data"]["commit"] == deleted["data"]["commit"]

    (rebase,) = recorded(client, admin, "oms.branch.rebased", f"branches/{feature}")
    assert rebase["data"]["onto"] == trunk
    assert rebase["data"]["outcome"] == rebased["outcome"].removeprefix("REBASE_OUTCOME_")

    (refused,) = recorded(client, admin, "oms.commit.revert_refused", f"branches/{feature}")
    assert refused["data"]["reason"] == "MERGE_CONFLICT"
    (revert_event,) = recorded(client, admin, "oms.commit.reverted", f"branches/{feature}")
    assert revert_event["data"]["reverted"] == undone
    assert revert_event["data"]["commit"] == reverted["id"]
    assert revert_event["actor"] == refused["actor"] == "admin"
