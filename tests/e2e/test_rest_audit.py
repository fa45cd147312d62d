"""The Audit Service's REST paths of the brief, through the gateway, server-sent events included."""

from __future__ import annotations

import json
import uuid

import httpx


def _event(kind: str = "oms.schema.created", **extra: object) -> dict[str, object]:
    return {
        "id": str(uuid.uuid4()),
        "source": "e2e",
        "type": kind,
        "subject": "branches/main",
        "time": "2026-01-01T00:00:00Z",
        "actor": "admin",
        "data": {"object_type": "Employee", "count": 3},
        **extra,
    }


def test_publish_one_event(client: httpx.Client, admin: dict[str, str]) -> None:
    event = _event()
    response = client.post("/api/v2/events", headers=admin, json=event)
    assert response.status_code == 200, response.text
    stored = response.json()
    assert stored["id"] == event["id"]
    assert stored["data"] == event["data"]
    assert int(stored["sequence"]) >= 1
    assert len(stored["hash"]) == 64
    assert stored["name"] == f"events/{stored['sequence']}"
    again = client.get(f"/api/v2/{stored['name']}", headers=admin)
    assert again.status_code == 200, again.text
    assert again.json()["hash"] == stored["hash"]


def test_publish_a_batch_gives_a_result_per_event(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    events = [_event(), _event()]
    response = client.post(
        "/api/v2/events/batch", headers=admin, json={"events": [*events, events[0]]}
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["id"] for r in results] == [events[0]["id"], events[1]["id"], events[0]["id"]]
    assert [r["duplicate"] for r in results] == [False, False, True]


def test_query_filters_and_pages(client: httpx.Client, admin: dict[str, str]) -> None:
    subject = f"branches/{uuid.uuid4()}"
    for _ in range(3):
        client.post(
            "/api/v2/events", headers=admin, json=_event("oms.branch.created", subject=subject)
        )
    first = client.get(
        "/api/v2/query/events",
        headers=admin,
        params={"subject": subject, "type": "oms.branch.created", "page_size": 2},
    )
    assert first.status_code == 200, first.text
    page = first.json()
    assert len(page["events"]) == 2
    assert page["next_page_token"]
    rest = client.get(
        "/api/v2/query/events",
        headers=admin,
        params={
            "subject": subject,
            "type": "oms.branch.created",
            "page_token": page["next_page_token"],
        },
    )
    assert rest.status_code == 200, rest.text
    assert len(rest.json()["events"]) == 1
    seen = {e["id"] for e in page["events"]} | {e["id"] for e in rest.json()["events"]}
    assert len(seen) == 3


def test_subscribe_is_served_as_server_sent_events(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    subject = f"branches/{uuid.uuid4()}"
    published = [
        client.post("/api/v2/events", headers=admin, json=_event(subject=subject)).json()
        for _ in range(2)
    ]
    received: list[dict[str, object]] = []
    with client.stream(
        "GET", "/api/v2/events:subscribe", headers=admin, params={"subject": subject}, timeout=10
    ) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("data: "):
                received.append(json.loads(line.removeprefix("data: ")))
            if len(received) == len(published):
                break
    assert [e["id"] for e in received] == [e["id"] for e in published]


def test_verify_reports_an_intact_log(client: httpx.Client, admin: dict[str, str]) -> None:
    client.post("/api/v2/events", headers=admin, json=_event())
    response = client.get("/api/v2/events:verify", headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["intact"] is True
    assert int(response.json()["verified_count"]) >= 1
