"""User Service configuration, read once from the environment (see ``docs/users.md``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from common.config import ConfigError, RuntimeSettings, data_dir, env_int, env_str
from common.db import database_url
from users.keystore import key_encryption_key

PASSWORD_HASH_PROFILES = ("owasp", "rfc9106", "test")
MAX_SCORE = 4
"""zxcvbn's best score."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the User Service needs to start; tests build one with ``dataclasses.replace``."""

    runtime: RuntimeSettings
    """Shared server settings (workers, grace, log level, issuer, audience)."""
    listen: str
    """Address to bind (``MESH_USERS_LISTEN``, ``127.0.0.1:8000``); port 0 picks a free one."""
    data_dir: Path
    """Folder of the database, keys and first-start secrets (``MESH_DATA_DIR``)."""
    database_url: str
    """SQLAlchemy URL (``MESH_USERS_DATABASE_URL``, SQLite ``users.db`` in the data folder)."""
    keys_dir: Path
    """Where a ring kept as files before (``MESH_USERS_KEYS_DIR``, ``<data folder>/keys``):
    imported into the database at its first start, then deleted."""
    key_encryption_key: bytes
    """Seals the private signing keys in the database (``MESH_KEY_ENCRYPTION_KEY`` or
    ``MESH_KEY_ENCRYPTION_KEY_FILE``, else ``key-encryption-key`` in the data folder); see
    :mod:`users.keystore`."""
    access_token_seconds: int
    """Access token lifetime (``MESH_ACCESS_TOKEN_SECONDS``, 900)."""
    refresh_token_seconds: int
    """Refresh token lifetime, renewed by each refresh (``MESH_REFRESH_TOKEN_SECONDS``, 7 days)."""
    session_max_seconds: int
    """Absolute session lifetime from login, however often it is refreshed
    (``MESH_SESSION_MAX_SECONDS``, 30 days): a stolen refresh token cannot live forever."""
    login_max_failures: int
    """Failed logins from one client address that lock the username there
    (``MESH_LOGIN_MAX_FAILURES``, 5)."""
    lockout_seconds: int
    """How long the first lock lasts; each further one twice as long (``MESH_LOCKOUT_SECONDS``,
    900)."""
    login_max_locks: int
    """The lock that is hard, until an admin unlocks it (``MESH_LOGIN_MAX_LOCKS``, 3; 0 for
    none)."""
    login_failure_reset_seconds: int
    """Failures and locks are forgotten this long after the last failure
    (``MESH_LOGIN_FAILURE_RESET_SECONDS``, 43200)."""
    password_hash_profile: str
    """argon2id cost: ``owasp`` (default), ``rfc9106`` (stronger), ``test`` (cheap, tests only)
    (``MESH_PASSWORD_HASH_PROFILE``)."""
    password_min_length: int
    """Fewest characters of a new password (``MESH_PASSWORD_MIN_LENGTH``, 12)."""
    password_min_score: int
    """zxcvbn score, 0 to 4, a new password must reach (``MESH_PASSWORD_MIN_SCORE``, 3)."""
    password_history: int
    """A new password must differ from this many last ones, the current one included
    (``MESH_PASSWORD_HISTORY``, 5; 0 for no check)."""
    reset_token_seconds: int
    """Lifetime of a password reset token (``MESH_PASSWORD_RESET_SECONDS``, 900)."""
    mfa_ticket_seconds: int
    """How long Login's MFA ticket is good for the second factor or the enrolment a role
    requires (``MESH_MFA_TICKET_SECONDS``, 300)."""
    public_url: str
    """Where clients reach the gateway, for the endpoints the discovery document names
    (``MESH_PUBLIC_URL``, ``http://127.0.0.1:8080``; ``mesh up`` sets its gateway's)."""
    admin_password: str | None
    """Password of the first admin, used once at first start (``MESH_ADMIN_PASSWORD``)."""
    revocation_poll_seconds: float
    """How often the revocation log is read for rows written by other replicas sharing a
    PostgreSQL database, in case an announcement was lost (1 s; never on SQLite, which no other
    process writes); this replica's own revocations reach its view as they commit."""

    @classmethod
    def from_env(cls) -> Settings:
        root = data_dir()
        profile = env_str("MESH_PASSWORD_HASH_PROFILE", "owasp").lower()
        if profile not in PASSWORD_HASH_PROFILES:
            raise ConfigError(
                f"MESH_PASSWORD_HASH_PROFILE must be one of {', '.join(PASSWORD_HASH_PROFILES)}"
            )
        min_score = env_int("MESH_PASSWORD_MIN_SCORE", 3, minimum=0)
        if min_score > MAX_SCORE:
            raise ConfigError(f"MESH_PASSWORD_MIN_SCORE must be 0 to {MAX_SCORE}")
        return cls(
            runtime=RuntimeSettings.from_env("users"),
            listen=env_str("MESH_USERS_LISTEN", "127.0.0.1:8000"),
            data_dir=root,
            database_url=database_url("MESH_USERS_DATABASE_URL", root, "users.db"),
            keys_dir=Path(env_str("MESH_USERS_KEYS_DIR", str(root / "keys"))),
            key_encryption_key=key_encryption_key(root),
            access_token_seconds=env_int("MESH_ACCESS_TOKEN_SECONDS", 900, minimum=30),
            refresh_token_seconds=env_int("MESH_REFRESH_TOKEN_SECONDS", 7 * 86400, minimum=60),
            session_max_seconds=env_int("MESH_SESSION_MAX_SECONDS", 30 * 86400, minimum=60),
            login_max_failures=env_int("MESH_LOGIN_MAX_FAILURES", 5, minimum=1),
            lockout_seconds=env_int("MESH_LOCKOUT_SECONDS", 900, minimum=1),
            login_max_locks=env_int("MESH_LOGIN_MAX_LOCKS", 3, minimum=0),
            login_failure_reset_seconds=env_int(
                "MESH_LOGIN_FAILURE_RESET_SECONDS", 43200, minimum=1
            ),
            password_hash_profile=profile,
            password_min_length=env_int("MESH_PASSWORD_MIN_LENGTH", 12, minimum=8),
            password_min_score=min_score,
            password_history=env_int("MESH_PASSWORD_HISTORY", 5, minimum=0),
            reset_token_seconds=env_int("MESH_PASSWORD_RESET_SECONDS", 900, minimum=60),
            mfa_ticket_seconds=env_int("MESH_MFA_TICKET_SECONDS", 300, minimum=30),
            public_url=env_str("MESH_PUBLIC_URL", "http://127.0.0.1:8080").rstrip("/"),
            admin_password=env_str("MESH_ADMIN_PASSWORD", "") or None,
            revocation_poll_seconds=1.0,
        )
