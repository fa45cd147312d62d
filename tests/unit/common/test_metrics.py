"""A server's /metrics over a real port: RPCs by method and code, and nothing but /metrics."""

import dataclasses
import socket

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from common import errors
from common.blocking import Blocking
from common.config import ConfigError, RuntimeSettings
from common.interceptors import PUBLIC
from common.server import ServiceRegistration, add_generic_handler, create_server
from tests.support.servers import running

SERVICE = "test.v1.Metered"


async def _echo(request, context):
    if request == b"missing":
        raise errors.NotFound("no such thing", reason="THING_NOT_FOUND")
    return request


def _identity(data: bytes) -> bytes:
    return data


def _server():
    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"Echo": grpc.unary_unary_rpc_method_handler(_echo, _identity, _identity)}
    )
    return create_server(
        "127.0.0.1:0",
        domain="test.mesh",
        services=[ServiceRegistration(SERVICE, add_generic_handler, handler)],
        policies={f"/{SERVICE}/Echo": PUBLIC},
        verifier=None,
        settings=dataclasses.replace(RuntimeSettings.from_env(), metrics_listen="127.0.0.1:0"),
        blocking=Blocking(1),
    )


@pytest.fixture(scope="module")
def metered():
    with running(_server) as server:
        yield server, f"http://127.0.0.1:{server.server.metrics_port}"


def _samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(f"{url}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def test_calls_are_counted_by_method_and_code(metered) -> None:
    server, url = metered
    with grpc.insecure_channel(server.target) as channel:
        echo = channel.unary_unary(f"/{SERVICE}/Echo", _identity, _identity)
        for _ in range(3):
            assert echo(b"hi", timeout=5) == b"hi"
        with pytest.raises(grpc.RpcError):
            echo(b"missing", timeout=5)
    labels = (("grpc_method", "Echo"), ("grpc_service", SERVICE), ("grpc_type", "unary"))

    def with_code(code: str) -> tuple[tuple[str, str], ...]:
        return tuple(sorted((*labels, ("grpc_code", code))))

    found = _samples(url)
    assert found[("grpc_server_handled_total", with_code("OK"))] == 3
    assert found[("grpc_server_handled_total", with_code("NOT_FOUND"))] == 1
    assert found[("grpc_server_started_total", labels)] == 4
    assert found[("grpc_server_handling_seconds_count", labels)] == 4
    assert found[("grpc_server_in_flight_rpcs", labels)] == 0
    assert found[("process_resident_memory_bytes", ())] > 0


def test_nothing_but_get_metrics_is_served(metered) -> None:
    _, url = metered
    assert httpx.get(f"{url}/", timeout=5).status_code == 404
    assert httpx.get(f"{url}/metrics/../admin", timeout=5).status_code == 404
    refused = httpx.post(f"{url}/metrics", timeout=5)
    assert refused.status_code == 405
    assert refused.headers["allow"] == "GET"
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.sendall(b"garbage\r\n\r\n")
        assert raw.recv(100).startswith(b"HTTP/1.1 400")


@pytest.mark.parametrize("value", ["8101", "host:", "127.0.0.1:http", "127.0.0.1:70000"])
def test_a_bad_metrics_address_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("MESH_OMS_METRICS_LISTEN", value)
    with pytest.raises(ConfigError, match="MESH_OMS_METRICS_LISTEN"):
        RuntimeSettings.from_env("oms")


def test_each_service_serves_metrics_on_loopback_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MESH_AUDIT_METRICS_LISTEN")
    assert RuntimeSettings.from_env("audit").metrics_listen == "127.0.0.1:8102"
    assert RuntimeSettings.from_env().metrics_listen == ""
