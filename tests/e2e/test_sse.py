"""Server-sent events through the real gateway, as a browser's EventSource follows the log.

Each event has an ``id:`` line (its sequence), and a reconnect with ``Last-Event-ID`` resumes
right after it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Sse:
    """One server-sent event: its ``id:`` and its ``data:``."""

    id: str
    data: str


def _event(subject: str) -> dict[str, object]:
    return {"id": str(uuid.uuid4()), "source": "e2e", "type": "tests.sse.sent", "subject": subject}


def _publish(client: httpx.Client, admin: dict[str, str], subject: str, count: int) -> list[dict]:
    stored = []
    for _ in range(count):
        response = client.post("/api/v2/events", headers=admin, json=_event(subject))
        assert response.status_code == 200, response.text
        stored.append(response.json())
    return stored


def _read(
    client: httpx.Client, count: int, *, headers: dict[str, str], **params: object
) -> list[Sse]:
    """The first ``count`` events of a subscription, then the connection is closed."""
    received: list[Sse] = []
    fields: dict[str, str] = {}
    with client.stream(
        "GET", "/api/v2/events:subscribe", headers=headers, params=params, timeout=10
    ) as stream:
        assert stream.status_code == 200, stream.read()
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line:
                name, _, value = line.partition(": ")
                assert name not in fields, f"{name} twice in one event"
                fields[name] = value
                continue
            received.append(Sse(id=fields.get("id", ""), data=fields["data"]))
            fields = {}
            if len(received) == count:
                break
    return received


def test_every_event_has_its_sequence_as_id(client: httpx.Client, admin: dict[str, str]) -> None:
    subject = f"sse/{uuid.uuid4()}"
    stored = _publish(client, admin, subject, 3)
    received = _read(client, 3, headers=admin, subject=subject)
    assert [e.id for e in received] == [s["sequence"] for s in stored]
    assert all(f'"name":"events/{e.id}"' in e.data for e in received)


def test_last_event_id_resumes_without_gap_or_repeat(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    subject = f"sse/{uuid.uuid4()}"
    before = _publish(client, admin, subject, 1)[0]
    stored = _publish(client, admin, subject, 3)
    opened = {"subject": subject, "after_sequence": before["sequence"]}
    first = _read(client, 2, headers=admin, **opened)
    assert [e.id for e in first] == [s["sequence"] for s in stored[:2]]
    stored += _publish(client, admin, subject, 2)
    # EventSource reconnects to the URL it first opened, with the last id it received.
    again = _read(client, 3, headers={**admin, "Last-Event-ID": first[-1].id}, **opened)
    assert [e.id for e in again] == [s["sequence"] for s in stored[2:]]


def test_a_malformed_last_event_id_is_refused(client: httpx.Client, admin: dict[str, str]) -> None:
    response = client.get(
        "/api/v2/events:subscribe", headers={**admin, "Last-Event-ID": "abc"}, timeout=10
    )
    assert response.status_code == 400, response.text
    violations = [
        v["field"]
        for d in response.json()["details"]
        for v in d.get("field_violations", d.get("fieldViolations", []))
    ]
    assert violations == ["Last-Event-ID"]
