"""Configuration from environment variables, the mesh's one config mechanism.

Every setting has a documented default (see README, "Configuration"); services build a frozen
settings object from these helpers once, at start, and pass it down explicitly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


class ConfigError(ValueError):
    """A setting is present but cannot be used; raised at start so the process fails fast."""


def env_str(name: str, default: str) -> str:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be a boolean (true/false), got {raw!r}")


def data_dir() -> Path:
    """The folder holding every service's embedded database and keys (``MESH_DATA_DIR``)."""
    path = Path(env_str("MESH_DATA_DIR", ".mesh")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True, kw_only=True)
class RuntimeSettings:
    """Settings every gRPC server of the mesh shares."""

    max_workers: int
    """Thread pool size (``MESH_GRPC_MAX_WORKERS``, 64); each open stream holds a thread."""
    grace_seconds: float
    """Drain period after SIGTERM before RPCs are cancelled (``MESH_GRACE_SECONDS``, 5)."""
    log_level: str
    """Log level (``MESH_LOG_LEVEL``, default INFO)."""
    issuer: str
    """Token issuer every service expects (``MESH_TOKEN_ISSUER``, default ``ontology-mesh``)."""
    audience: str
    """Token audience every service expects (``MESH_TOKEN_AUDIENCE``, default ``ontology-mesh``)."""

    @classmethod
    def from_env(cls) -> RuntimeSettings:
        return cls(
            max_workers=env_int("MESH_GRPC_MAX_WORKERS", 64, minimum=4),
            grace_seconds=env_float("MESH_GRACE_SECONDS", 5.0),
            log_level=env_str("MESH_LOG_LEVEL", "INFO").upper(),
            issuer=env_str("MESH_TOKEN_ISSUER", "ontology-mesh"),
            audience=env_str("MESH_TOKEN_AUDIENCE", "ontology-mesh"),
        )
