"""Mesh settings from the environment: defaults, round trip, and refusals at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.config import ConfigError, RuntimeSettings
from common.tls import MutualTls
from gateway.settings import MeshSettings
from gateway.supervisor import port_is_free


def test_defaults_are_the_ports_of_the_brief() -> None:
    assert MeshSettings().ports() == {
        "users": 8000,
        "oms": 8001,
        "audit": 8002,
        "reflection": 8003,
        "gateway": 8080,
        "gateway-admin": 9901,
        "users-metrics": 8100,
        "oms-metrics": 8101,
        "audit-metrics": 8102,
        "gateway-metrics": 8180,
    }


def test_settings_survive_the_trip_through_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = MeshSettings(
        gateway_port=18080, users_port=18000, issuer="other", jwks_cache_seconds=9
    )
    for key, value in settings.to_env().items():
        monkeypatch.setenv(key, value)
    assert MeshSettings.from_env() == settings


def test_mutual_tls_survives_the_trip_to_the_children(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("cert", "key", "ca"):
        (tmp_path / f"{name}.pem").write_text("pem")
    settings = MeshSettings(
        mtls=MutualTls(
            cert_file=tmp_path / "cert.pem",
            key_file=tmp_path / "key.pem",
            ca_file=tmp_path / "ca.pem",
            server_name="services.internal",
        )
    )
    for key, value in settings.to_env().items():
        monkeypatch.setenv(key, value)
    assert MeshSettings.from_env() == settings
    assert RuntimeSettings.from_env("users").tls == settings.mtls
    for key, value in MeshSettings().to_env().items():
        monkeypatch.setenv(key, value)
    assert MeshSettings.from_env().mtls is None


def test_two_processes_on_one_port_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESH_OMS_PORT", "8000")
    with pytest.raises(ConfigError, match="own port"):
        MeshSettings.from_env()


@pytest.mark.parametrize("value", ["http", "0", "70000"])
def test_a_bad_port_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("MESH_GATEWAY_PORT", value)
    with pytest.raises(ConfigError, match="MESH_GATEWAY_PORT"):
        MeshSettings.from_env()


def test_the_gateway_is_reached_on_loopback_when_it_listens_everywhere() -> None:
    assert MeshSettings().gateway_local_host == "127.0.0.1"
    assert MeshSettings(gateway_host="10.1.2.3").gateway_local_host == "10.1.2.3"


def test_a_mesh_on_free_ports_is_on_loopback_with_a_port_each() -> None:
    settings = MeshSettings.on_free_ports()
    assert settings.gateway_host == settings.upstream_host == "127.0.0.1"
    assert len(set(settings.ports().values())) == len(settings.ports())
    assert all(port_is_free(port) for port in settings.ports().values())


@pytest.mark.parametrize("name", ["MESH_GATEWAY_TLS_CERT_FILE", "MESH_GATEWAY_TLS_KEY_FILE"])
def test_a_tls_file_without_the_other_is_refused(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(name, "/etc/envoy/tls/file.pem")
    with pytest.raises(ConfigError, match="go together"):
        MeshSettings.from_env()


def test_tls_is_on_with_both_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESH_GATEWAY_TLS_CERT_FILE", "/tls/tls.crt")
    monkeypatch.setenv("MESH_GATEWAY_TLS_KEY_FILE", "/tls/tls.key")
    settings = MeshSettings.from_env()
    assert settings.tls
    assert settings.gateway_scheme == "https"
    assert not MeshSettings().tls


def test_replicas_take_ports_ten_apart_and_need_a_shared_postgresql_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MESH_REPLICAS", "2")
    with pytest.raises(ConfigError, match="PostgreSQL"):
        MeshSettings.from_env()
    monkeypatch.setenv("MESH_DATABASE_URL", "postgresql://postgres@127.0.0.1/mesh")
    settings = MeshSettings.from_env()
    assert settings.replicas == 2
    assert settings.service_ports("users") == [8000, 8010]
    assert settings.ports()["audit-2"] == 8012
    assert settings.ports()["oms-2-metrics"] == 8111
    assert settings.to_env()["MESH_DATABASE_URL"] == "postgresql://postgres@127.0.0.1/mesh"


def test_replicas_on_free_ports_each_have_their_own() -> None:
    settings = MeshSettings.on_free_ports(replicas=3, database_url="postgresql://db/mesh")
    ports = settings.ports()
    assert len(ports) == 10 + 2 * 6
    assert len(set(ports.values())) == len(ports)
