"""Every change and every login reaches the audit log through the services' outboxes."""

from __future__ import annotations

import uuid

import httpx

from tests.support.mesh import EMPLOYEE
from tests.support.waiting import eventually


def _query(client: httpx.Client, admin: dict[str, str], **filters: str) -> list[dict[str, object]]:
    response = client.get("/api/v2/query/events", headers=admin, params=filters)
    assert response.status_code == 200, response.text
    return list(response.json()["events"])


def test_a_schema_change_and_a_login_are_audited(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    branch = f"audited-{uuid.uuid4().hex[:8]}"
    assert client.post("/api/v1/branches", headers=admin, json={"name": branch}).status_code == 200
    created = client.post(f"/api/v1/schemas/{branch}/object-types", headers=admin, json=EMPLOYEE)
    assert created.status_code == 200, created.text

    schema_events = eventually(
        lambda: [
            e
            for e in _query(client, admin, type="oms.schema.created", source="/oms")
            if branch in str(e["subject"])
        ]
    )
    assert schema_events[0]["actor"] == "admin"
    branch_events = eventually(
        lambda: [
            e
            for e in _query(client, admin, type="oms.branch.created", source="/oms")
            if branch in str(e["subject"])
        ]
    )
    assert len(branch_events) == 1
    logins = eventually(lambda: _query(client, admin, type="users.auth.login_succeeded"))
    assert all(e["source"] == "/users" for e in logins)

    verified = client.get("/api/v2/events:verify", headers=admin)
    assert verified.status_code == 200, verified.text
    assert verified.json()["intact"] is True
