"""Proposals and branch rules through the gateway, with real users and the real audit log.

``main`` requires proposals for this module only (an admin turns the rule on, with a reason,
and off again at the end), so the other modules keep writing to it directly.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.mesh import EMPLOYEE, error_reason, new_branch, new_user
from tests.support.waiting import eventually

EMAIL = {"api_name": "email", "data_type": {"base": "BASE_TYPE_STRING"}}


def _set_main(client: httpx.Client, admin: dict[str, str], reason: str, **settings: Any) -> None:
    response = client.patch(
        "/api/v1/branches/main",
        headers=admin,
        params={"update_mask": ",".join(settings), "reason": reason},
        json=settings,
    )
    assert response.status_code == 200, response.text


@pytest.fixture(scope="module", autouse=True)
def main_requires_proposals(client: httpx.Client, admin: dict[str, str]) -> Iterator[None]:
    _set_main(client, admin, "e2e: main takes reviewed changes", requires_proposal=True)
    try:
        yield
    finally:
        _set_main(client, admin, "e2e: back to direct writes", requires_proposal=False)


@pytest.fixture(scope="module")
def author(client: httpx.Client, admin: dict[str, str]) -> dict[str, str]:
    return new_user(client, admin, roles=["editor"], prefix="author")[1]


@pytest.fixture(scope="module")
def reviewer(client: httpx.Client, admin: dict[str, str]) -> dict[str, str]:
    return new_user(client, admin, roles=["editor"], prefix="reviewer")[1]


def _username(client: httpx.Client, headers: dict[str, str]) -> str:
    return str(client.get("/auth/validate", headers=headers).json()["username"])


def _type(name: str, *extra: dict[str, Any]) -> dict[str, Any]:
    return {**EMPLOYEE, "api_name": name, "properties": [*EMPLOYEE["properties"], *extra]}


def _propose(
    client: httpx.Client, headers: dict[str, str], source: str, **fields: Any
) -> dict[str, Any]:
    body = {"title": f"Change from {source}", "source": source, "target": "main", **fields}
    response = client.post("/api/v1/proposals", headers=headers, json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _review(
    client: httpx.Client, headers: dict[str, str], proposal: str, verdict: str = "APPROVE"
) -> httpx.Response:
    return client.post(
        f"/api/v1/proposals/{proposal}:review",
        headers=headers,
        json={"verdict": f"REVIEW_VERDICT_{verdict}", "comment": "reviewed"},
    )


def _get(client: httpx.Client, headers: dict[str, str], proposal: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/proposals/{proposal}", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _main_types(client: httpx.Client, headers: dict[str, str]) -> list[str]:
    listed = client.get("/api/v1/schemas/main/object-types?page_size=1000", headers=headers)
    return [t["api_name"] for t in listed.json().get("object_types", [])]


def _events(client: httpx.Client, admin: dict[str, str], **filters: str) -> list[dict[str, Any]]:
    response = client.get("/api/v2/query/events", headers=admin, params=filters)
    assert response.status_code == 200, response.text
    return list(response.json()["events"])


def test_two_people_take_a_change_into_protected_main(
    client: httpx.Client, author: dict[str, str], reviewer: dict[str, str]
) -> None:
    name = f"Staff{uuid.uuid4().hex[:6]}"
    direct = client.post("/api/v1/schemas/main/object-types", headers=author, json=_type(name))
    assert (direct.status_code, error_reason(direct)) == (400, "BRANCH_REQUIRES_PROPOSAL")
    branch = new_branch(client, author)
    created = client.post(
        f"/api/v1/schemas/{branch}/object-types", headers=author, json=_type(name)
    )
    assert created.status_code == 200, created.text
    merge = client.post(f"/api/v1/branches/{branch}/merge", headers=author, json={"target": "main"})
    assert (merge.status_code, error_reason(merge)) == (400, "BRANCH_REQUIRES_PROPOSAL")

    proposal = _propose(client, author, branch, reviewers=[_username(client, reviewer)])
    shown = _get(client, reviewer, proposal["id"])
    assert shown["state"] == "PROPOSAL_STATE_OPEN"
    assert [c["resource"] for c in shown["changes"]] == [f"object-types/{name}"]
    assert shown["validation"]["passed"] is True
    own = _review(client, author, proposal["id"])
    assert (own.status_code, error_reason(own)) == (403, "SELF_APPROVAL_NOT_ALLOWED")
    early = client.post(f"/api/v1/proposals/{proposal['id']}:merge", headers=author, json={})
    assert (early.status_code, error_reason(early)) == (400, "APPROVALS_REQUIRED")

    comment = client.post(
        f"/api/v1/proposals/{proposal['id']}/comments", headers=reviewer, json={"body": "ok?"}
    )
    assert comment.status_code == 200, comment.text
    approved = _review(client, reviewer, proposal["id"])
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "PROPOSAL_STATE_APPROVED"
    merged = client.post(f"/api/v1/proposals/{proposal['id']}:merge", headers=author, json={})
    assert merged.status_code == 200, merged.text
    assert merged.json()["proposal"]["state"] == "PROPOSAL_STATE_MERGED"
    assert name in _main_types(client, author)
    thread = client.get(f"/api/v1/proposals/{proposal['id']}/comments", headers=author).json()
    assert [c["kind"] for c in thread["comments"]] == [
        "COMMENT_KIND_COMMENT",
        "COMMENT_KIND_APPROVE",
    ]


def test_a_new_source_commit_withdraws_the_approval(
    client: httpx.Client, author: dict[str, str], reviewer: dict[str, str]
) -> None:
    branch = new_branch(client, author)
    first = f"First{uuid.uuid4().hex[:6]}"
    client.post(f"/api/v1/schemas/{branch}/object-types", headers=author, json=_type(first))
    proposal = _propose(client, author, branch)
    assert _review(client, reviewer, proposal["id"]).json()["state"] == "PROPOSAL_STATE_APPROVED"
    second = f"Second{uuid.uuid4().hex[:6]}"
    client.post(f"/api/v1/schemas/{branch}/object-types", headers=author, json=_type(second))
    withdrawn = _get(client, author, proposal["id"])
    assert withdrawn["state"] == "PROPOSAL_STATE_OPEN"
    assert withdrawn.get("approved_by", []) == []
    refused = client.post(f"/api/v1/proposals/{proposal['id']}:merge", headers=author, json={})
    assert (refused.status_code, error_reason(refused)) == (400, "APPROVALS_REQUIRED")
    assert first not in _main_types(client, author)


def test_lowering_main_needs_a_reason_is_audited_once_and_spares_open_proposals(
    client: httpx.Client, admin: dict[str, str], author: dict[str, str], reviewer: dict[str, str]
) -> None:
    name = f"Person{uuid.uuid4().hex[:6]}"
    setup = new_branch(client, author)
    client.post(f"/api/v1/schemas/{setup}/object-types", headers=author, json=_type(name, EMAIL))
    first = _propose(client, author, setup)
    _review(client, reviewer, first["id"])
    assert client.post(f"/api/v1/proposals/{first['id']}:merge", headers=author, json={}).is_success
    breaking = new_branch(client, author)
    response = client.patch(
        f"/api/v1/schemas/{breaking}/object-types/{name}", headers=author, json=_type(name)
    )
    assert response.status_code == 200, response.text
    proposal = _propose(client, author, breaking)
    assert _get(client, author, proposal["id"])["validation"]["passed"] is False
    _review(client, reviewer, proposal["id"])

    no_reason = client.patch(
        "/api/v1/branches/main",
        headers=admin,
        params={"update_mask": "compatibility_mode"},
        json={"compatibility_mode": "COMPATIBILITY_MODE_NONE"},
    )
    assert no_reason.status_code == 400, no_reason.text
    reason = f"e2e: one-off cleanup {uuid.uuid4().hex[:6]}"
    try:
        _set_main(client, admin, reason, compatibility_mode="COMPATIBILITY_MODE_NONE")
        held = client.post(f"/api/v1/proposals/{proposal['id']}:merge", headers=author, json={})
        assert (held.status_code, error_reason(held)) == (400, "BREAKING_CHANGES")
        revalidated = client.post(
            f"/api/v1/proposals/{proposal['id']}:revalidate", headers=author, json={}
        )
        assert revalidated.status_code == 200, revalidated.text
        assert revalidated.json()["rules"]["compatibility_mode"] == "COMPATIBILITY_MODE_NONE"
        merged = client.post(f"/api/v1/proposals/{proposal['id']}:merge", headers=author, json={})
        assert merged.status_code == 200, merged.text
    finally:
        _set_main(
            client, admin, f"{reason}: done", compatibility_mode="COMPATIBILITY_MODE_BACKWARD"
        )

    def lowering() -> list[dict[str, Any]]:
        found = _events(client, admin, type="oms.branch.settings_changed", subject="branches/main")
        return [e for e in found if e["data"]["reason"] == reason]

    (event,) = eventually(lowering)
    assert event["actor"] == "admin"
    assert (event["data"]["before"], event["data"]["after"]) == (
        {"compatibility_mode": "BACKWARD"},
        {"compatibility_mode": "NONE"},
    )


def test_forcing_a_breaking_proposal_takes_a_second_admin(
    client: httpx.Client, admin: dict[str, str], author: dict[str, str], reviewer: dict[str, str]
) -> None:
    _, second_admin = new_user(client, admin, roles=["admin"], prefix="admin2")
    name = f"Client{uuid.uuid4().hex[:6]}"
    setup = new_branch(client, author)
    client.post(f"/api/v1/schemas/{setup}/object-types", headers=author, json=_type(name, EMAIL))
    first = _propose(client, author, setup)
    _review(client, admin, first["id"])
    assert client.post(f"/api/v1/proposals/{first['id']}:merge", headers=author, json={}).is_success
    branch = new_branch(client, admin)
    client.patch(f"/api/v1/schemas/{branch}/object-types/{name}", headers=admin, json=_type(name))
    proposal = _propose(client, admin, branch)
    force = {"force": True, "force_reason": "email moves to Contact"}
    unreviewed = client.post(f"/api/v1/proposals/{proposal['id']}:merge", headers=admin, json=force)
    assert (unreviewed.status_code, error_reason(unreviewed)) == (400, "APPROVALS_REQUIRED")
    assert _review(client, reviewer, proposal["id"]).status_code == 200
    alone = client.post(f"/api/v1/proposals/{proposal['id']}:merge", headers=admin, json=force)
    assert (alone.status_code, error_reason(alone)) == (400, "SECOND_APPROVAL_REQUIRED")
    assert _review(client, second_admin, proposal["id"]).status_code == 200
    merged = client.post(f"/api/v1/proposals/{proposal['id']}:merge", headers=admin, json=force)
    assert merged.status_code == 200, merged.text
    commit = merged.json()["merge"]["commit"]
    assert (commit["author"], commit["forced"], commit["force_reason"]) == (
        "admin",
        True,
        "email moves to Contact",
    )
    assert commit["force_approved_by"] == [_username(client, second_admin)]
