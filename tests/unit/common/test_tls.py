"""The mutual TLS settings: off by default, all three files or none, and the health port."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.config import ConfigError, RuntimeSettings
from common.tls import (
    CA_FILE,
    CERT_FILE,
    DEFAULT_SERVER_NAME,
    KEY_FILE,
    SERVER_NAME,
    MutualTls,
    tls_env,
)

NAMES = (CERT_FILE, KEY_FILE, CA_FILE)


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*NAMES, SERVER_NAME, "MESH_USERS_HEALTH_LISTEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    paths = {name: tmp_path / f"{name.lower()}.pem" for name in NAMES}
    for name, path in paths.items():
        path.write_text("pem")
        monkeypatch.setenv(name, str(path))
    return paths


def test_off_by_default() -> None:
    assert MutualTls.from_env() is None
    settings = RuntimeSettings.from_env("users")
    assert settings.tls is None
    assert settings.health_listen == ""


def test_the_three_files_turn_it_on(files: dict[str, Path]) -> None:
    tls = MutualTls.from_env()
    assert tls == MutualTls(
        cert_file=files[CERT_FILE], key_file=files[KEY_FILE], ca_file=files[CA_FILE]
    )
    assert tls.server_name == DEFAULT_SERVER_NAME
    assert RuntimeSettings.from_env("oms").tls == tls


def test_the_server_name_is_a_setting(
    files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SERVER_NAME, "services.mesh.svc")
    tls = MutualTls.from_env()
    assert tls is not None
    assert tls.server_name == "services.mesh.svc"
    assert tls.channel_options == [("grpc.ssl_target_name_override", "services.mesh.svc")]


@pytest.mark.parametrize("unset", NAMES)
def test_a_partial_set_is_refused_naming_what_is_missing(
    files: dict[str, Path], monkeypatch: pytest.MonkeyPatch, unset: str
) -> None:
    monkeypatch.delenv(unset)
    with pytest.raises(ConfigError, match=unset):
        MutualTls.from_env()


def test_a_file_that_is_not_there_is_refused(
    files: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(KEY_FILE, str(tmp_path / "absent.pem"))
    with pytest.raises(ConfigError, match=f"{KEY_FILE}: no file"):
        MutualTls.from_env()


def test_the_environment_round_trips(
    files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    tls = MutualTls.from_env()
    monkeypatch.setenv(SERVER_NAME, "other")
    for name, value in tls_env(tls).items():
        monkeypatch.setenv(name, value)
    assert MutualTls.from_env() == tls
    for name, value in tls_env(None).items():
        monkeypatch.setenv(name, value)
    assert MutualTls.from_env() is None


def test_the_health_port_is_per_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESH_USERS_HEALTH_LISTEN", "0.0.0.0:8200")
    assert RuntimeSettings.from_env("users").health_listen == "0.0.0.0:8200"
    assert RuntimeSettings.from_env("oms").health_listen == ""
    assert RuntimeSettings.from_env().health_listen == ""


def test_a_health_port_that_is_not_host_port_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESH_USERS_HEALTH_LISTEN", "8200")
    with pytest.raises(ConfigError, match="MESH_USERS_HEALTH_LISTEN"):
        RuntimeSettings.from_env("users")
