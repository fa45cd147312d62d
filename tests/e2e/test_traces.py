"""One REST call that changes the ontology is one trace, from Envoy to the audit log and back.

A mesh of its own exports its spans over OTLP/HTTP to a receiver in the test: Envoy's, the
OMS handler's, the outbox relay's delivery and the Audit Service's append share the trace,
the audit event carries its id, and the call's log line names its request id and trace.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.mesh import Mesh
from gateway.settings import MeshSettings, TraceExport
from tests.support.mesh import ADMIN_PASSWORD, EMPLOYEE, bearer, login, mesh_env
from tests.support.otlp import Collector, Span, running_collector
from tests.support.waiting import eventually


@dataclasses.dataclass
class TracedMesh:
    url: str
    log: Path
    collector: Collector


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TracedMesh]:
    data = tmp_path_factory.mktemp("traced")
    with running_collector() as collector:
        env = {
            **mesh_env(),
            "MESH_LOG_LEVEL": "INFO",
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        settings = dataclasses.replace(
            MeshSettings.on_free_ports(), traces=TraceExport.from_env(env)
        )
        log = data / "mesh.log"
        with log.open("w") as out, Mesh(settings, data_dir=data, out=out, env=env) as endpoints:
            yield TracedMesh(endpoints.gateway_url, log, collector)


def _one(collector: Collector, name: str, **attributes: object) -> Span:
    return eventually(
        lambda: collector.find(name, **attributes),
        timeout=30,
        interval=0.2,
        what=f"a span {name} with {attributes}",
    )


def test_a_change_is_one_trace_from_the_gateway_to_the_audit_log(traced: TracedMesh) -> None:
    with httpx.Client(base_url=traced.url, timeout=10) as client:
        admin = bearer(str(login(client, "admin", ADMIN_PASSWORD)["access_token"]))
        name = f"Traced{uuid.uuid4().hex[:8]}"
        created = client.post(
            "/api/v1/schemas/main/object-types",
            json={**EMPLOYEE, "api_name": name},
            headers=admin,
        )
        assert created.status_code == 200, created.text
        request_id = created.headers["x-request-id"]
        handler = _one(
            traced.collector,
            "oms.v1.SchemaService/CreateObjectType",
            **{"mesh.request_id": request_id},
        )
        trace_id = handler.trace_id
        gateway = _one(traced.collector, "ingress", **{"guid:x-request-id": request_id})
        assert gateway.service == "mesh-gateway"
        assert gateway.trace_id == trace_id
        assert handler.parent_id == gateway.span_id
        delivery = _one(
            traced.collector, "outbox.deliver", **{"cloudevents.event_type": "oms.schema.created"}
        )
        assert (delivery.service, delivery.trace_id) == ("mesh-oms", trace_id)
        assert delivery.parent_id == handler.span_id
        append = eventually(
            lambda: next(
                (s for s in traced.collector.trace(trace_id) if s.name == "audit.append"), None
            ),
            timeout=30,
            interval=0.2,
            what="the Audit Service's append in the trace",
        )
        assert append.service == "mesh-audit"
        assert append.parent_id == handler.span_id

        sequence = append.attributes["mesh.audit_sequence"]
        event = client.get(f"/api/v2/events/{sequence}", headers=admin).json()
        assert event["traceparent"] == f"00-{trace_id}-{handler.span_id}-01"
        assert event["subject"].endswith(name)

    lines = [
        json.loads(line.split("| ", 1)[1])
        for line in traced.log.read_text().splitlines()
        if line.startswith("oms") and '"msg": "rpc"' in line
    ]
    (logged,) = [line for line in lines if line.get("request_id") == request_id]
    assert logged["method"] == "/oms.v1.SchemaService/CreateObjectType"
    assert (logged["trace_id"], logged["span_id"]) == (trace_id, handler.span_id)
