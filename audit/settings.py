"""Audit Service settings, read once from the environment at start (see docs/audit.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from common.config import ConfigError, RuntimeSettings, data_dir, env_float, env_int, env_str
from common.db import database_url
from common.users_client import users_address


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the Audit Service needs to run."""

    listen: str
    """Address to bind (``MESH_AUDIT_LISTEN``, ``127.0.0.1:8002``); port 0 picks a free one."""
    database_url: str
    """``MESH_AUDIT_DATABASE_URL``, default SQLite ``audit.db`` in ``MESH_DATA_DIR``."""
    users_addr: str
    """User Service address for its signing keys and revocations (``MESH_USERS_ADDR``)."""
    jwks_file: Path | None
    """``MESH_JWKS_FILE``: verify tokens with this fixed JWKS instead of asking the User Service."""
    max_batch: int
    """Most events one transaction commits (``MESH_AUDIT_MAX_BATCH``, 1000)."""
    queue_limit: int
    """Most calls and stream messages awaiting a commit before ingest pushes back
    (``MESH_AUDIT_QUEUE_LIMIT``, 10000)."""
    stream_window: int
    """Most unacked messages per StreamEvents call (``MESH_AUDIT_STREAM_WINDOW``, 256)."""
    subscribe_poll_seconds: float
    """While anyone subscribes, how often the log's tail is read for commits made by other
    replicas sharing the database (``MESH_AUDIT_SUBSCRIBE_POLL_SECONDS``, 1.0); this replica's
    own commits reach subscribers at once, and nothing is read while nobody subscribes."""
    log_origin: str
    """The log's identity in its checkpoints and its key's name (``MESH_AUDIT_LOG_ORIGIN``,
    ``mesh.local/audit``): give every log its own."""
    log_key_file: Path
    """The Ed25519 key checkpoints are signed with (``MESH_AUDIT_LOG_KEY_FILE``,
    ``audit-log-key.pem`` in ``MESH_DATA_DIR``), made at first start; kept out of the database."""
    checkpoint_seconds: float
    """Longest wait between a commit and a checkpoint covering it
    (``MESH_AUDIT_CHECKPOINT_SECONDS``, 5.0)."""
    ticket_seconds: float
    """How long a subscription ticket opens subscriptions (``MESH_AUDIT_TICKET_SECONDS``, 60)."""
    runtime: RuntimeSettings
    """What every server of the mesh shares: blocking threads, stream limits, grace period, token
    issuer and audience."""

    @classmethod
    def from_env(cls) -> Settings:
        jwks = env_str("MESH_JWKS_FILE", "")
        poll = env_float("MESH_AUDIT_SUBSCRIBE_POLL_SECONDS", 1.0)
        if not poll > 0:
            raise ConfigError(f"MESH_AUDIT_SUBSCRIBE_POLL_SECONDS must be > 0, got {poll}")
        checkpoint_seconds = env_float("MESH_AUDIT_CHECKPOINT_SECONDS", 5.0)
        if not checkpoint_seconds > 0:
            raise ConfigError(
                f"MESH_AUDIT_CHECKPOINT_SECONDS must be > 0, got {checkpoint_seconds}"
            )
        origin = env_str("MESH_AUDIT_LOG_ORIGIN", "mesh.local/audit")
        if any(c.isspace() or c == "+" for c in origin):
            raise ConfigError(f"MESH_AUDIT_LOG_ORIGIN must hold no spaces or '+', got {origin!r}")
        ticket_seconds = env_float("MESH_AUDIT_TICKET_SECONDS", 60.0)
        if not ticket_seconds > 0:
            raise ConfigError(f"MESH_AUDIT_TICKET_SECONDS must be > 0, got {ticket_seconds}")
        return cls(
            listen=env_str("MESH_AUDIT_LISTEN", "127.0.0.1:8002"),
            database_url=database_url("MESH_AUDIT_DATABASE_URL", data_dir(), "audit.db"),
            users_addr=users_address(),
            jwks_file=Path(jwks) if jwks else None,
            max_batch=env_int("MESH_AUDIT_MAX_BATCH", 1000, minimum=1),
            queue_limit=env_int("MESH_AUDIT_QUEUE_LIMIT", 10_000, minimum=1),
            stream_window=env_int("MESH_AUDIT_STREAM_WINDOW", 256, minimum=1),
            subscribe_poll_seconds=poll,
            log_origin=origin,
            log_key_file=Path(
                env_str("MESH_AUDIT_LOG_KEY_FILE", str(data_dir() / "audit-log-key.pem"))
            ),
            checkpoint_seconds=checkpoint_seconds,
            ticket_seconds=ticket_seconds,
            runtime=RuntimeSettings.from_env("audit"),
        )
