"""Server-sent events through the real gateway, as a browser's EventSource follows the log.

Each event has an ``id:`` line (its sequence), a reconnect with ``Last-Event-ID`` resumes right
after it, and a short-lived ticket in the URL stands in for the header a browser cannot set.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import httpx

from tests.support.mesh import TICKET_SECONDS, RunningMesh
from tests.support.waiting import eventually


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


def _refused(client: httpx.Client, **params: object) -> httpx.Response:
    response = client.get("/api/v2/events:subscribe", params=params, timeout=10)
    assert response.status_code == 401, response.text
    return response


def _reasons(response: httpx.Response) -> list[str]:
    details = response.json()["details"]
    return [d["reason"] for d in details if d["@type"].endswith("google.rpc.ErrorInfo")]


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


def _ticket(client: httpx.Client, headers: dict[str, str]) -> str:
    response = client.post("/api/v2/events:ticket", headers=headers, json={})
    assert response.status_code == 200, response.text
    return str(response.json()["ticket"])


def test_a_ticket_opens_the_stream_without_a_bearer_token(
    mesh: RunningMesh, client: httpx.Client, admin: dict[str, str]
) -> None:
    subject = f"sse/{uuid.uuid4()}"
    stored = _publish(client, admin, subject, 2)
    ticket = _ticket(client, admin)
    for _ in range(2):  # EventSource reconnects with the same URL, so the same ticket
        received = _read(client, 2, headers={}, subject=subject, ticket=ticket)
        assert [e.id for e in received] == [s["sequence"] for s in stored]
    eventually(
        lambda: '"path":"/api/v2/events:subscribe"' in mesh.log.read_text(),
        timeout=10,
        what="the gateway logs the subscriptions once they end",
    )
    assert ticket not in mesh.log.read_text(), "a ticket was written to a log"


def test_forged_tickets_and_tokens_as_tickets_are_refused(
    client: httpx.Client, admin: dict[str, str], admin_login: dict[str, object]
) -> None:
    ticket = _ticket(client, admin)
    payload, mac = ticket.split(".")
    for forged in (f"{payload}.{mac[::-1]}", str(admin_login["access_token"]), "x"):
        assert _reasons(_refused(client, ticket=forged)) == ["TICKET_INVALID"]


def test_a_ticket_opens_nothing_else(client: httpx.Client, admin: dict[str, str]) -> None:
    ticket = _ticket(client, admin)
    # The edge lets a ticket through on the subscription's path only.
    query = client.get("/api/v2/query/events", params={"ticket": ticket}, timeout=10)
    assert query.status_code == 401, query.text
    as_bearer = client.get(
        "/api/v2/query/events", headers={"Authorization": f"Bearer {ticket}"}, timeout=10
    )
    assert as_bearer.status_code == 401, as_bearer.text
    assert client.post("/api/v2/events:ticket", json={}).status_code == 401


def test_an_expired_ticket_is_refused(client: httpx.Client, admin: dict[str, str]) -> None:
    ticket = _ticket(client, admin)
    time.sleep(TICKET_SECONDS + 0.5)
    assert _reasons(_refused(client, ticket=ticket)) == ["TICKET_EXPIRED"]
