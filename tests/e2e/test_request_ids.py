"""The request id Envoy assigns is returned, quoted in every error, and a client's trace kept.

With no exporter configured, the mesh passes a client's ``traceparent`` on unchanged: the audit
event of the change it caused carries it.
"""

from __future__ import annotations

import uuid

import httpx

from tests.support.mesh import EMPLOYEE, new_branch
from tests.support.waiting import eventually

REQUEST_INFO = "type.googleapis.com/google.rpc.RequestInfo"
TRACEPARENT = "00-{}-b7ad6b7169203331-01"


def _quoted(response: httpx.Response) -> str:
    (info,) = [d for d in response.json()["details"] if d["@type"] == REQUEST_INFO]
    return str(info["request_id"])


def test_a_services_error_quotes_the_request_id_of_its_response(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    missing = client.get("/api/v1/schemas/main/object-types/NoSuchType", headers=admin)
    assert missing.status_code == 404
    request_id = missing.headers["x-request-id"]
    assert len(request_id) == 36
    assert _quoted(missing) == request_id
    again = client.get("/api/v1/schemas/main/object-types/NoSuchType", headers=admin)
    assert again.headers["x-request-id"] != request_id


def test_the_gateways_own_errors_quote_it_too(client: httpx.Client) -> None:
    refused = client.get("/api/v1/branches", headers={"x-request-id": "chosen-by-client"})
    assert refused.status_code == 401
    request_id = refused.headers["x-request-id"]
    assert request_id != "chosen-by-client"  # a client cannot pick the id the logs record
    assert _quoted(refused) == request_id


def test_a_success_returns_the_request_id(client: httpx.Client, admin: dict[str, str]) -> None:
    assert client.get("/api/v1/branches", headers=admin).headers["x-request-id"]


def test_the_audit_event_of_a_change_carries_the_clients_traceparent(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    name, branch = f"Parented{uuid.uuid4().hex[:8]}", new_branch(client, admin)
    traceparent = TRACEPARENT.format(uuid.uuid4().hex)
    created = client.post(
        f"/api/v1/schemas/{branch}/object-types",
        json={**EMPLOYEE, "api_name": name},
        headers={**admin, "traceparent": traceparent},
    )
    assert created.status_code == 200, created.text

    def recorded() -> list[dict[str, object]]:
        page = client.get(
            "/api/v2/query/events",
            headers=admin,
            params={"subject": f"branches/{branch}/object-types/{name}"},
        ).json()
        return list(page.get("events", []))

    (event,) = eventually(recorded, timeout=30, what="the change's audit event")
    assert event["type"] == "oms.schema.created"
    assert event["traceparent"] == traceparent
