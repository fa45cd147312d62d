"""The User Service schema (SQLAlchemy Core) and its migrations; the same code runs on SQLite
and PostgreSQL.

Times are seconds since the epoch (floats), which both databases store and compare alike.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from common.outbox import OutboxEvent, append, outbox_table
from common.permissions import Permission

metadata = sa.MetaData()

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("display_name", sa.String(200), nullable=False, default=""),
    sa.Column("email", sa.String(320), nullable=False, default=""),
    sa.Column("password_hash", sa.String(512), nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("version", sa.Integer, nullable=False, default=1),
)

roles = sa.Table(
    "roles",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("description", sa.String(200), nullable=False),
    sa.Column("permissions", sa.Text, nullable=False),
)

user_roles = sa.Table(
    "user_roles",
    metadata,
    sa.Column(
        "user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("role", sa.String(64), sa.ForeignKey("roles.name"), primary_key=True),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column(
        "user_id",
        sa.String(36),
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("refreshed_at", sa.Float, nullable=False, index=True),
    # The one refresh token of the family that may still be spent; any other is a reuse.
    sa.Column("refresh_token_id", sa.String(36), nullable=False),
    sa.Column("revoked_at", sa.Float, nullable=True),
    sa.Column("revoke_reason", sa.String(32), nullable=True),
)

revocations = sa.Table(
    "revocations",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("session_id", sa.String(36), nullable=False),
    sa.Column("token_id", sa.String(36), nullable=True),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("revoked_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
    # Followers resume after the last sequence they saw; without AUTOINCREMENT SQLite would
    # hand out sequences again once housekeeping has emptied the table.
    sqlite_autoincrement=True,
)

login_attempts = sa.Table(
    "login_attempts",
    metadata,
    sa.Column("username", sa.String(64), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_failure_at", sa.Float, nullable=False, index=True),
    sa.Column("locked_until", sa.Float, nullable=True),
)

outbox = outbox_table(metadata)

BUILTIN_ROLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "admin": ("everything, including users and signing keys", (Permission.ALL,)),
    "editor": (
        "change the ontology on branches and run actions",
        (
            Permission.SCHEMA_READ,
            Permission.SCHEMA_WRITE,
            Permission.BRANCH_CREATE,
            Permission.BRANCH_MERGE,
            Permission.BRANCH_DELETE,
            Permission.ACTION_EXECUTE,
        ),
    ),
    "viewer": ("read the ontology", (Permission.SCHEMA_READ,)),
    "auditor": (
        "read the audit log and the ontology",
        (Permission.AUDIT_READ, Permission.SCHEMA_READ),
    ),
    "service": (
        "service accounts of the mesh calling each other",
        (
            Permission.AUDIT_WRITE,
            Permission.USERS_READ,
            Permission.SCHEMA_READ,
            Permission.REVOCATIONS_WATCH,
        ),
    ),
}


def _create_schema(conn: Connection) -> None:
    metadata.create_all(conn)


def _seed_roles(conn: Connection) -> None:
    conn.execute(
        roles.insert(),
        [
            {"name": name, "description": description, "permissions": json.dumps(list(perms))}
            for name, (description, perms) in BUILTIN_ROLES.items()
        ],
    )


def _never_reuse_revocation_sequences(conn: Connection) -> None:
    """Rebuild a revocation table created without SQLite's AUTOINCREMENT, keeping its rows."""
    if conn.dialect.name != "sqlite":
        return  # PostgreSQL sequences never go back
    ddl = conn.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'revocations'"
    ).scalar_one()
    if "AUTOINCREMENT" in ddl.upper():
        return
    rows = [dict(row._mapping) for row in conn.execute(sa.select(revocations))]
    revocations.drop(conn)
    revocations.create(conn)
    if rows:
        conn.execute(revocations.insert(), rows)


def _services_watch_revocations(conn: Connection) -> None:
    """Give the built-in ``service`` role the permission the revocation stream now needs."""
    row = conn.execute(sa.select(roles.c.permissions).where(roles.c.name == "service")).first()
    if row is None:
        return
    granted = list(json.loads(row.permissions))
    if Permission.REVOCATIONS_WATCH not in granted:
        conn.execute(
            roles.update()
            .where(roles.c.name == "service")
            .values(permissions=json.dumps([*granted, Permission.REVOCATIONS_WATCH.value]))
        )


MIGRATIONS = (
    _create_schema,
    _seed_roles,
    _never_reuse_revocation_sequences,
    _services_watch_revocations,
)


@dataclass(frozen=True)
class UserRecord:
    """A user as stored, with role names; the password hash never leaves the domain layer."""

    user_id: str
    username: str
    display_name: str
    email: str
    password_hash: str = field(repr=False)
    disabled: bool
    created_at: float
    updated_at: float
    version: int
    roles: tuple[str, ...]

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'


def load_user(
    conn: Connection,
    *,
    user_id: str | None = None,
    username: str | None = None,
    lock: bool = False,
) -> UserRecord | None:
    """One user by id or username, with roles; ``lock`` holds the row until the transaction
    ends (PostgreSQL; SQLite write transactions are serial anyway)."""
    condition = users.c.id == user_id if user_id is not None else users.c.username == username
    query = sa.select(users).where(condition)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        return None
    return _record(row, roles_by_user(conn, [row.id]).get(row.id, ()))


def list_users(conn: Connection, *, after_username: str, limit: int) -> list[UserRecord]:
    rows = conn.execute(
        sa.select(users)
        .where(users.c.username > after_username)
        .order_by(users.c.username)
        .limit(limit)
    ).all()
    granted = roles_by_user(conn, [row.id for row in rows])
    return [_record(row, granted.get(row.id, ())) for row in rows]


def _record(row: sa.Row[Any], granted: tuple[str, ...]) -> UserRecord:
    return UserRecord(
        user_id=row.id,
        username=row.username,
        display_name=row.display_name,
        email=row.email,
        password_hash=row.password_hash,
        disabled=row.disabled,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=row.version,
        roles=granted,
    )


def roles_by_user(conn: Connection, user_ids: list[str]) -> dict[str, tuple[str, ...]]:
    if not user_ids:
        return {}
    granted: dict[str, list[str]] = {}
    for row in conn.execute(
        sa.select(user_roles)
        .where(user_roles.c.user_id.in_(user_ids))
        .order_by(user_roles.c.user_id, user_roles.c.role)
    ):
        granted.setdefault(row.user_id, []).append(row.role)
    return {user_id: tuple(names) for user_id, names in granted.items()}


def all_roles(conn: Connection) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Every role: name -> (description, permissions)."""
    return {
        row.name: (row.description, tuple(json.loads(row.permissions)))
        for row in conn.execute(sa.select(roles).order_by(roles.c.name))
    }


def set_roles(conn: Connection, user_id: str, names: Iterable[str]) -> None:
    conn.execute(user_roles.delete().where(user_roles.c.user_id == user_id))
    rows = [{"user_id": user_id, "role": name} for name in sorted(set(names))]
    if rows:
        conn.execute(user_roles.insert(), rows)


def live_session_ids(conn: Connection, user_id: str) -> list[str]:
    return list(
        conn.execute(
            sa.select(sessions.c.id).where(
                sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None)
            )
        ).scalars()
    )


def count_enabled_admins(conn: Connection) -> int:
    return int(
        conn.execute(
            sa.select(sa.func.count())
            .select_from(users.join(user_roles, users.c.id == user_roles.c.user_id))
            .where(user_roles.c.role == "admin", users.c.disabled == sa.false())
        ).scalar_one()
    )


def emit(conn: Connection, type_: str, *, subject: str, actor: str, **data: Any) -> None:
    """Write an event to the outbox in the caller's transaction, so it commits with the change."""
    append(conn, outbox, OutboxEvent(type=type_, subject=subject, actor=actor, data=data))
