"""OMS settings, read once from the environment at start (see docs/oms.md)."""

from __future__ import annotations

from dataclasses import dataclass

from common.config import RuntimeSettings, data_dir, env_int, env_str
from common.db import database_url


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the OMS needs to run; tests build one directly."""

    listen: str
    """Address to bind (``MESH_OMS_LISTEN``, ``127.0.0.1:8001``); port 0 picks a free one."""
    database_url: str
    """``MESH_OMS_DATABASE_URL``, default SQLite ``oms.db`` in ``MESH_DATA_DIR``."""
    users_addr: str
    """User Service address for signing keys and revocations (``MESH_USERS_ADDR``)."""
    cache_entries: int = 50_000
    """Parsed blobs (resources, buckets, roots) and commits kept in memory, each
    (``MESH_OMS_CACHE_ENTRIES``, 50000); a 20-property object type takes about 15 KB."""
    runtime: RuntimeSettings

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            listen=env_str("MESH_OMS_LISTEN", "127.0.0.1:8001"),
            database_url=database_url("MESH_OMS_DATABASE_URL", data_dir(), "oms.db"),
            users_addr=env_str("MESH_USERS_ADDR", "127.0.0.1:8000"),
            cache_entries=env_int("MESH_OMS_CACHE_ENTRIES", 50_000, minimum=100),
            runtime=RuntimeSettings.from_env("oms"),
        )
