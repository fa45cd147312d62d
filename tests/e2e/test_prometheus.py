"""A real Prometheus scrapes every service and Envoy while the test drives traffic.

Its HTTP API must then answer what the test sent: requests and errors per method, as the
services and Envoy counted them, and the outbox's depth while the Audit Service is frozen.
"""

from __future__ import annotations

import json
import os
import re
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.mesh import EMPLOYEE, RunningMesh, new_branch
from tests.support.prometheus import Prometheus, running_prometheus
from tests.support.waiting import eventually

FOUND, MISSING, WRITES = 7, 3, 4


@pytest.fixture(scope="module")
def prometheus(mesh: RunningMesh, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    folder: Path = tmp_path_factory.mktemp("prometheus")
    with running_prometheus(mesh.endpoints.metrics_urls, folder) as server:
        yield server


def _scraped(url: str, name: str, by: str, **labels: str) -> dict[str, float]:
    """The samples of ``name`` with ``labels`` now, straight from an endpoint, summed by ``by``.

    The parser names every counter's samples ``_total``, as Envoy's are not.
    """
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(url, timeout=10).text):
        for sample in family.samples:
            named = sample.name.removesuffix("_total") == name.removesuffix("_total")
            if named and labels.items() <= sample.labels.items():
                key = sample.labels.get(by, "")
                found[key] = found.get(key, 0.0) + sample.value
    return found


def _object_type(name: str) -> dict[str, object]:
    return {**EMPLOYEE, "api_name": name, "display_name": name}


def test_prometheus_scrapes_every_service_and_envoy(prometheus: Prometheus) -> None:
    assert prometheus.targets_up() == dict.fromkeys(["users", "oms", "audit", "gateway"], "up")
    for job in ("users", "oms", "audit"):
        assert prometheus.value(f'process_resident_memory_bytes{{job="{job}"}}')
    assert prometheus.value('envoy_server_live{job="gateway"}') == 1


def test_requests_and_errors_per_method_are_what_was_sent(
    mesh: RunningMesh, client: httpx.Client, admin: dict[str, str], prometheus: Prometheus
) -> None:
    name, branch = f"Metric{uuid.uuid4().hex[:8]}", new_branch(client, admin)
    types = f"/api/v1/schemas/{branch}/object-types"
    created = client.post(types, json=_object_type(name), headers=admin)
    assert created.status_code == 200, created.text
    found, gone = f"{types}/{name}", f"{types}/{name}Gone"
    # Both series exist and are scraped before the traffic: a rate needs two samples of them.
    assert client.get(found, headers=admin).is_success
    assert client.get(gone, headers=admin).status_code == 404
    oms, gateway = mesh.endpoints.metrics_urls["oms"], mesh.endpoints.metrics_urls["gateway"]
    handled = "grpc_server_handled_total"
    before = _scraped(oms, handled, "grpc_code", grpc_method="GetObjectType")
    by_code = f'sum by (grpc_code) ({handled}{{job="oms",grpc_method="GetObjectType"}})'
    eventually(
        lambda: prometheus.values(by_code, "grpc_code") == before,
        timeout=30,
        interval=0.5,
        what="Prometheus to scrape the counts before the traffic",
    )
    rejected = "envoy_http_downstream_rq_xx"
    gateway_4xx = _scraped(
        gateway,
        rejected,
        "envoy_response_code_class",
        envoy_http_conn_manager_prefix="gateway",
        envoy_response_code_class="4",
    )
    for _ in range(FOUND):
        assert client.get(found, headers=admin).is_success
    for _ in range(MISSING):
        assert client.get(gone, headers=admin).status_code == 404

    expected = {
        **before,
        "OK": before["OK"] + FOUND,
        "NOT_FOUND": before["NOT_FOUND"] + MISSING,
    }
    eventually(
        lambda: prometheus.values(by_code, "grpc_code") == expected,
        timeout=30,
        interval=0.5,
        what=f"Prometheus to count {expected}",
    )

    rates = prometheus.values(
        f'sum by (grpc_method) (rate({handled}{{job="oms"}}[1m]))', "grpc_method"
    )
    assert rates["GetObjectType"] > 0
    errors = prometheus.values(
        f'sum by (grpc_method) (rate({handled}{{job="oms",grpc_code!="OK"}}[1m]))', "grpc_method"
    )
    assert errors["GetObjectType"] > 0
    share = prometheus.value(
        f'sum({handled}{{job="oms",grpc_method="GetObjectType",grpc_code!="OK"}})'
        f' / sum({handled}{{job="oms",grpc_method="GetObjectType"}})'
    )
    refused = sum(count for code, count in expected.items() if code != "OK")
    assert share == pytest.approx(refused / sum(expected.values()))

    expected_4xx = sum(gateway_4xx.values()) + MISSING
    envoy_4xx = (
        f'sum({rejected}{{job="gateway",envoy_http_conn_manager_prefix="gateway",'
        f'envoy_response_code_class="4"}})'
    )
    eventually(
        lambda: prometheus.value(envoy_4xx) == expected_4xx,
        timeout=30,
        interval=0.5,
        what=f"Envoy's 4xx answers to reach {expected_4xx}",
    )


def test_the_outbox_depth_counts_the_events_audit_has_not_taken(
    mesh: RunningMesh, client: httpx.Client, admin: dict[str, str], prometheus: Prometheus
) -> None:
    depth = 'mesh_outbox_depth{job="oms",producer="oms"}'
    delivered = 'mesh_outbox_relay_delivered_total{job="oms",producer="oms"}'
    branch = new_branch(client, admin)
    oms = mesh.endpoints.metrics_urls["oms"]

    def settled() -> float | None:
        """Deliveries so far, once the outbox is empty and Prometheus has scraped as much."""
        if _scraped(oms, "mesh_outbox_depth", "producer") != {"oms": 0}:
            return None
        now = _scraped(oms, "mesh_outbox_relay_delivered_total", "producer")["oms"]
        return now if prometheus.value(delivered) == now else None

    before = eventually(settled, timeout=30, interval=0.5, what="an empty outbox, scraped")
    audit = mesh.mesh.supervisor.pid("audit")
    os.kill(audit, signal.SIGSTOP)
    try:
        for _ in range(WRITES):
            name = f"Queued{uuid.uuid4().hex[:8]}"
            created = client.post(
                f"/api/v1/schemas/{branch}/object-types", json=_object_type(name), headers=admin
            )
            assert created.status_code == 200, created.text
        eventually(
            lambda: prometheus.value(depth) == WRITES,
            timeout=30,
            interval=0.5,
            what=f"an outbox of {WRITES} events",
        )
        age = prometheus.value('mesh_outbox_oldest_age_seconds{job="oms"}')
        assert age is not None and age > 0
        assert prometheus.targets_up()["oms"] == "up"
    finally:
        os.kill(audit, signal.SIGCONT)
    eventually(lambda: prometheus.value(depth) == 0, timeout=30, interval=0.5, what="delivery")
    eventually(
        lambda: prometheus.value(delivered) == before + WRITES,
        timeout=30,
        interval=0.5,
        what=f"{WRITES} more deliveries",
    )


DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana-dashboard.json"
OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
_METRIC = re.compile(r"\b(?:grpc_server|mesh|envoy|process|python)_[a-z0-9_]+")
_LABELS = re.compile(r"\{[^}]*\}|\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")


def metric_names(expr: str) -> set[str]:
    """The metrics a PromQL expression reads (label names and matchers left out)."""
    return set(_METRIC.findall(_LABELS.sub(" ", expr)))


def test_every_metric_the_dashboard_and_the_alerts_use_is_scraped(prometheus: Prometheus) -> None:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    used = {name for p in panels for t in p["targets"] for name in metric_names(t["expr"])}
    rules = yaml.safe_load(OPERATIONS.read_text().split("```yaml\n")[1].split("```")[0])
    alerts = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    used |= {name for expr in alerts for name in metric_names(expr)}
    assert len(used) > 20
    response = httpx.get(f"{prometheus.url}/api/v1/label/__name__/values", timeout=10)
    known = set(response.json()["data"])
    assert used - known == set()
    for expr in alerts:
        prometheus.query(expr)  # every alert parses and evaluates


def test_the_gateway_metrics_port_passes_on_nothing_else_of_the_admin_interface(
    mesh: RunningMesh,
) -> None:
    url = mesh.endpoints.metrics_urls["gateway"]
    root = url.removesuffix("/stats/prometheus")
    assert httpx.get(url, timeout=10).status_code == 200
    for path in ("/quitquitquit", "/stats", "/config_dump", "/stats/prometheus/../../clusters"):
        assert httpx.get(f"{root}{path}", timeout=10).status_code == 404, path
    assert httpx.post(f"{root}/reset_counters", timeout=10).status_code == 404
    assert httpx.post(url, timeout=10).status_code == 404
    assert httpx.get(f"{mesh.url}/health", timeout=10).status_code == 200  # Envoy lives on
