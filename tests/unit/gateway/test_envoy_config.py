"""The Envoy configuration: Envoy accepts it, and it routes, times out and exempts as intended."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.tls import DEFAULT_SERVER_NAME, MutualTls
from gateway import descriptors, envoy, envoy_config
from gateway.settings import MeshSettings, TraceExport
from tests.support.tls import make_certificates

ROOT = Path(__file__).resolve().parents[3]


def _validate(config: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        envoy.validate_command(config),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def services() -> list[descriptors.Service]:
    return descriptors.services(descriptors.load())


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return envoy_config.render(descriptors.load(), MeshSettings())


def _hcm(config: dict[str, Any]) -> dict[str, Any]:
    listener = config["static_resources"]["listeners"][0]
    return dict(listener["filter_chains"][0]["filters"][0]["typed_config"])


def _filter(config: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f["typed_config"] for f in _hcm(config)["http_filters"] if f["name"] == name)


def test_the_committed_envoy_yaml_validates() -> None:
    result = _validate(ROOT / "envoy.yaml", ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout


def test_the_committed_envoy_yaml_is_the_default_rendering(config: dict[str, Any]) -> None:
    assert yaml.safe_load((ROOT / "envoy.yaml").read_text()) == config


def test_a_rendering_with_other_ports_validates(tmp_path: Path) -> None:
    settings = MeshSettings(gateway_port=18080, admin_port=19901, users_port=18000)
    path = envoy.write_config(settings, tmp_path)
    result = _validate(path, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    rendered = json.loads(path.read_text())
    assert rendered["admin"]["address"]["socket_address"] == {
        "address": "127.0.0.1",
        "port_value": 19901,
    }
    users = next(c for c in rendered["static_resources"]["clusters"] if c["name"] == "users")
    endpoint = users["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"]["socket_address"]["port_value"] == 18000


def test_every_service_is_routed_to_its_backend_with_streams_untimed(
    config: dict[str, Any], services: list[descriptors.Service]
) -> None:
    routes = _hcm(config)["route_config"]["virtual_hosts"][0]["routes"]
    by_name = {route["name"]: route for route in routes}
    for service in services:
        prefix = by_name[service.name]
        assert prefix["match"]["prefix"] == f"/{service.name}/"
        assert prefix["route"]["cluster"] == service.backend
        assert prefix["route"]["timeout"] == "30s"
        for method in service.methods:
            if method.streaming:
                stream = by_name[method.grpc_path]
                assert stream["route"]["timeout"] == "0s"
                assert stream["route"]["idle_timeout"] == "0s"
                assert routes.index(stream) < routes.index(prefix)
    subscribe = by_name["/audit.v1.AuditService/SubscribeEvents"]
    assert subscribe["route"]["cluster"] == "audit"


def test_replicas_are_endpoints_of_their_service_s_cluster_and_it_still_validates(
    tmp_path: Path,
) -> None:
    settings = MeshSettings.on_free_ports(replicas=2, database_url="postgresql://db/mesh")
    path = envoy.write_config(settings, tmp_path)
    result = _validate(path, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    rendered = json.loads(path.read_text())
    clusters = {c["name"]: c for c in rendered["static_resources"]["clusters"]}
    for backend in descriptors.BACKENDS:
        endpoints = clusters[backend]["load_assignment"]["endpoints"][0]["lb_endpoints"]
        ports = [e["endpoint"]["address"]["socket_address"]["port_value"] for e in endpoints]
        assert ports == settings.service_ports(backend) and len(set(ports)) == 2
        assert clusters[backend]["health_checks"][0]["grpc_health_check"] == {}
        assert clusters[backend]["outlier_detection"]["max_ejection_percent"] == 50
    health = _filter(rendered, "envoy.filters.http.health_check")
    assert health["cluster_min_healthy_percentages"]["oms"] == {"value": 50}


def test_idempotent_calls_are_retried_on_another_replica_and_other_writes_only_when_unsent(
    config: dict[str, Any], services: list[descriptors.Service]
) -> None:
    routes = _hcm(config)["route_config"]["virtual_hosts"][0]["routes"]

    def policy(path: str) -> set[str]:
        route = next(
            r
            for r in routes
            if r["match"].get("path") == path or path.startswith(r["match"].get("prefix", "\0"))
        )
        return set(route["route"].get("retry_policy", {}).get("retry_on", "").split(","))

    unsent = {"connect-failure", "refused-stream"}
    retried = unsent | {"reset", "unavailable", "cancelled"}
    assert policy("/oms.v1.SchemaService/GetObjectType") == retried
    assert policy("/users.v1.AuthService/ValidateToken") == retried
    assert policy("/audit.v1.AuditService/PublishEvent") == retried
    assert policy("/oms.v1.BranchService/CreateBranch") == unsent
    assert policy("/users.v1.AuthService/Login") == unsent
    methods = {m.grpc_path: m for s in services for m in s.methods}
    assert methods["/audit.v1.AuditService/PublishEvents"].idempotent
    assert not methods["/oms.v1.BranchService/MergeBranch"].idempotent


def test_transcoder_settings_of_the_brief(config: dict[str, Any]) -> None:
    transcoder = _filter(config, "envoy.filters.http.grpc_json_transcoder")
    assert transcoder["print_options"] == {
        "preserve_proto_field_names": True,
        "always_print_primitive_fields": True,
        "stream_sse_style_delimited": True,
    }
    assert transcoder["request_validation_options"] == {
        "reject_unknown_query_parameters": True,
        "reject_binding_body_field_collisions": True,
    }
    assert transcoder["convert_grpc_status"] is True
    assert {"users.v1.AuthService", "audit.v1.AuditService", "oms.v1.BranchService"} <= set(
        transcoder["services"]
    )


def test_jwt_exempts_both_forms_of_the_public_calls_and_requires_it_elsewhere(
    config: dict[str, Any],
) -> None:
    jwt = _filter(config, "envoy.filters.http.jwt_authn")
    exempt = {rule["match"].get("path") for rule in jwt["rules"] if "requires" not in rule}
    assert {
        "/auth/login",
        "/auth/refresh",
        "/auth/validate",
        "/.well-known/jwks.json",
        "/health",
        "/users.v1.AuthService/Login",
        "/users.v1.AuthService/RefreshToken",
        "/users.v1.AuthService/ValidateToken",
        "/users.v1.AuthService/GetJwks",
    } <= exempt
    assert "/users.v1.AuthService/Logout" not in exempt
    assert jwt["rules"][-1] == {"match": {"prefix": "/"}, "requires": {"provider_name": "mesh"}}
    provider = jwt["providers"]["mesh"]
    assert provider["from_headers"] == [{"name": "Authorization", "value_prefix": "Bearer "}]
    assert provider["issuer"] == provider["audiences"][0] == "ontology-mesh"
    assert provider["remote_jwks"]["http_uri"]["uri"].endswith("/.well-known/jwks.json")


def test_health_needs_every_backend(config: dict[str, Any]) -> None:
    health = _filter(config, "envoy.filters.http.health_check")
    assert health["cluster_min_healthy_percentages"] == {
        "users": {"value": 100},
        "oms": {"value": 100},
        "audit": {"value": 100},
    }
    for cluster in config["static_resources"]["clusters"]:
        if cluster["name"] in descriptors.BACKENDS:
            check = cluster["health_checks"][0]
            assert check["no_traffic_interval"] == "1s"
            assert "grpc_health_check" in check


def test_only_a_ticket_lets_a_subscription_past_the_edge_without_a_token(
    config: dict[str, Any],
) -> None:
    jwt = _filter(config, "envoy.filters.http.jwt_authn")
    subscribe = [
        rule for rule in jwt["rules"] if rule["match"].get("path") == "/api/v2/events:subscribe"
    ]
    assert subscribe == [
        {
            "match": {
                "path": "/api/v2/events:subscribe",
                "query_parameters": [{"name": "ticket", "present_match": True}],
            }
        }
    ]


def test_only_the_event_stream_numbers_its_server_sent_events(config: dict[str, Any]) -> None:
    names = [f["name"] for f in _hcm(config)["http_filters"]]
    # Before the transcoder, so that on the way out it sees what the transcoder wrote.
    assert names.index(envoy_config.SSE_FILTER) < names.index(
        "envoy.filters.http.grpc_json_transcoder"
    )
    routes = _hcm(config)["route_config"]["virtual_hosts"][0]["routes"]
    numbered = [
        route["name"]
        for route in routes
        if envoy_config.SSE_FILTER in route.get("typed_per_filter_config", {})
    ]
    assert numbered == ["/audit.v1.AuditService/SubscribeEvents"]
    lua = _filter(config, envoy_config.SSE_FILTER)
    assert "default_source_code" not in lua  # nothing runs on the other routes


def test_without_an_exporter_envoy_traces_nothing_but_returns_request_ids(
    config: dict[str, Any],
) -> None:
    assert "tracing" not in _hcm(config)
    assert _hcm(config)["always_set_request_id_in_response"] is True
    assert "otlp" not in {c["name"] for c in config["static_resources"]["clusters"]}


@pytest.mark.parametrize(
    ("env", "sink"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}, "grpc_service"),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                "OTEL_TRACES_SAMPLER_ARG": "0.25",
            },
            "http_service",
        ),
    ],
)
def test_an_otlp_exporter_makes_envoy_start_traces_and_send_them_there(
    tmp_path: Path, env: dict[str, str], sink: str
) -> None:
    traces = TraceExport.from_env(env)
    assert traces is not None
    settings = dataclasses.replace(MeshSettings(), traces=traces)
    rendered = envoy_config.render(descriptors.load(), settings)
    tracing = _hcm(rendered)["tracing"]
    provider = tracing["provider"]["typed_config"]
    assert provider["service_name"] == "mesh-gateway"
    assert sink in provider
    if sink == "http_service":
        assert provider[sink]["http_uri"]["uri"] == "http://collector:4318/v1/traces"
        assert tracing["random_sampling"]["value"] == 25.0
    otlp = next(c for c in rendered["static_resources"]["clusters"] if c["name"] == "otlp")
    address = otlp["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
    assert address["socket_address"] == {
        "address": "collector",
        "port_value": 4317 if sink == "grpc_service" else 4318,
    }
    path = tmp_path / "envoy.json"
    path.write_text(json.dumps(rendered))
    result = _validate(path, ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_metrics_listener_is_on_loopback_and_routes_stats_alone(
    config: dict[str, Any],
) -> None:
    listener = next(
        entry for entry in config["static_resources"]["listeners"] if entry["name"] == "metrics"
    )
    assert listener["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 8180}
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    routes = manager["route_config"]["virtual_hosts"][0]["routes"]
    forwarded = [r for r in routes if "route" in r]
    assert [(r["match"]["path"], r["route"]["cluster"]) for r in forwarded] == [
        ("/stats/prometheus", "admin")
    ]
    assert all(r["direct_response"]["status"] == 404 for r in routes if "route" not in r)


def test_a_rendering_with_tls_serves_the_files_and_fetches_the_jwks_over_tls(
    tmp_path: Path,
) -> None:
    certs = make_certificates(tmp_path)
    settings = MeshSettings(tls_cert_file=str(certs.cert), tls_key_file=str(certs.key))
    path = envoy.write_config(settings, tmp_path)
    result = _validate(path, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    rendered = json.loads(path.read_text())
    chain = rendered["static_resources"]["listeners"][0]["filter_chains"][0]
    assert chain["transport_socket_connect_timeout"] == "10s"
    context = chain["transport_socket"]["typed_config"]["common_tls_context"]
    assert context["tls_certificates"] == [
        {
            "certificate_chain": {"filename": str(certs.cert)},
            "private_key": {"filename": str(certs.key)},
        }
    ]
    assert context["alpn_protocols"] == ["h2", "http/1.1"]
    jwks = _filter(rendered, "envoy.filters.http.jwt_authn")["providers"]["mesh"]["remote_jwks"]
    assert jwks["http_uri"]["uri"].startswith("https://127.0.0.1:8080/")
    clusters = {c["name"]: c for c in rendered["static_resources"]["clusters"]}
    assert "transport_socket" in clusters["gateway_self"]
    assert "transport_socket" not in clusters["users"]


def test_with_mutual_tls_the_service_clusters_present_envoy_s_certificate_and_check_theirs(
    tmp_path: Path,
) -> None:
    certs = make_certificates(tmp_path, hosts=(DEFAULT_SERVER_NAME,))
    mtls = MutualTls(cert_file=certs.cert, key_file=certs.key, ca_file=certs.ca)
    path = envoy.write_config(MeshSettings(mtls=mtls), tmp_path)
    result = _validate(path, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    clusters = {c["name"]: c for c in json.loads(path.read_text())["static_resources"]["clusters"]}
    for name in ("users", "oms", "audit"):
        tls = clusters[name]["transport_socket"]["typed_config"]
        assert tls["sni"] == DEFAULT_SERVER_NAME
        context = tls["common_tls_context"]
        assert context["tls_certificates"] == [
            {
                "certificate_chain": {"filename": str(certs.cert)},
                "private_key": {"filename": str(certs.key)},
            }
        ]
        assert context["validation_context"] == {
            "trusted_ca": {"filename": str(certs.ca)},
            "match_typed_subject_alt_names": [
                {"san_type": "DNS", "matcher": {"exact": DEFAULT_SERVER_NAME}}
            ],
        }
        assert context["alpn_protocols"] == ["h2"]
        # The health checks have no transport socket of their own: they use the cluster's.
        assert "transport_socket_match_criteria" not in clusters[name]["health_checks"][0]
    assert "transport_socket" not in clusters["reflection"]
    assert "transport_socket" not in clusters["gateway_self"]


def test_without_tls_the_listener_is_plain(config: dict[str, Any]) -> None:
    chain = config["static_resources"]["listeners"][0]["filter_chains"][0]
    assert "transport_socket" not in chain
    jwks = _filter(config, "envoy.filters.http.jwt_authn")["providers"]["mesh"]["remote_jwks"]
    assert jwks["http_uri"]["uri"].startswith("http://")


def test_services_named_by_host_are_dns_clusters_and_the_rest_stay_static() -> None:
    rendered = envoy_config.render(
        descriptors.load(), MeshSettings(), hosts={"users": "users", "oms": "oms.mesh.svc"}
    )
    clusters = {c["name"]: c for c in rendered["static_resources"]["clusters"]}

    def endpoint(name: str) -> dict[str, Any]:
        lb = clusters[name]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
        return dict(lb["endpoint"]["address"]["socket_address"])

    assert clusters["users"]["type"] == clusters["oms"]["type"] == "STRICT_DNS"
    assert endpoint("users") == {"address": "users", "port_value": 8000}
    assert endpoint("oms") == {"address": "oms.mesh.svc", "port_value": 8001}
    assert clusters["audit"]["type"] == clusters["reflection"]["type"] == "STATIC"
    assert endpoint("audit")["address"] == "127.0.0.1"
