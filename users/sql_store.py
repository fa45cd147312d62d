"""The User Service's store on SQLite or PostgreSQL (SQLAlchemy Core), and its migrations.

Moments are BIGINT nanoseconds since the epoch, which both databases store and compare alike.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from common.db import Database, add_column, columns, mark, replace_column, rows_after
from common.outbox import (
    OutboxEvent,
    append,
    outbox_table,
    outbox_times_in_nanoseconds,
    outbox_traceparent,
)
from common.permissions import Permission
from users.roles import BUILTIN_ROLES
from users.store import (
    MAX_USER_AGENT,
    Forgotten,
    LoginAttempts,
    NewUser,
    ResetTokenRecord,
    Revocation,
    RoleDefinition,
    RoleTaken,
    SessionRecord,
    StoredKey,
    TotpRecord,
    UsernameTaken,
    UserRecord,
)

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
    sa.Column("created_ns", sa.BigInteger, nullable=False),
    sa.Column("updated_ns", sa.BigInteger, nullable=False),
    sa.Column("version", sa.Integer, nullable=False, default=1),
    sa.Column("password_change_required", sa.Boolean, nullable=False, default=False),
)

password_history = sa.Table(
    "password_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "user_id",
        sa.String(36),
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("password_hash", sa.String(512), nullable=False),
    sa.Column("replaced_ns", sa.BigInteger, nullable=False),
)

password_reset_tokens = sa.Table(
    "password_reset_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column(
        "user_id",
        sa.String(36),
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("created_ns", sa.BigInteger, nullable=False),
    sa.Column("expires_ns", sa.BigInteger, nullable=False, index=True),
    sa.Column("used_ns", sa.BigInteger, nullable=True),
)

roles = sa.Table(
    "roles",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("description", sa.String(200), nullable=False),
    sa.Column("permissions", sa.Text, nullable=False),
    sa.Column("mfa_required", sa.Boolean, nullable=False, default=False),
    sa.Column("builtin", sa.Boolean, nullable=False, default=False),
    sa.Column("version", sa.Integer, nullable=False, default=1),
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
    sa.Column("created_ns", sa.BigInteger, nullable=False),
    sa.Column("refreshed_ns", sa.BigInteger, nullable=False, index=True),
    sa.Column("refresh_token_id", sa.String(36), nullable=False),
    sa.Column("revoked_ns", sa.BigInteger, nullable=True),
    sa.Column("revoke_reason", sa.String(32), nullable=True),
    sa.Column("client_address", sa.String(64), nullable=False, default=""),
    sa.Column("user_agent", sa.String(MAX_USER_AGENT), nullable=False, default=""),
)


revocations = sa.Table(
    "revocations",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("session_id", sa.String(36), nullable=False),
    sa.Column("token_id", sa.String(36), nullable=True),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("revoked_ns", sa.BigInteger, nullable=False),
    sa.Column("expires_ns", sa.BigInteger, nullable=False, index=True),
    # Followers resume after the last sequence they saw; without AUTOINCREMENT SQLite would
    # hand out sequences again once housekeeping has emptied the table.
    sqlite_autoincrement=True,
)

login_attempts = sa.Table(
    "login_attempts",
    metadata,
    sa.Column("username", sa.String(64), primary_key=True),
    sa.Column("client_address", sa.String(64), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_failure_ns", sa.BigInteger, nullable=False, index=True),
    sa.Column("locked_until_ns", sa.BigInteger, nullable=True),
    sa.Column("locks", sa.Integer, nullable=False, default=0),
    sa.Column("hard_locked", sa.Boolean, nullable=False, default=False),
)

totp_credentials = sa.Table(
    "totp_credentials",
    metadata,
    sa.Column(
        "user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("created_ns", sa.BigInteger, nullable=False),
    sa.Column("confirmed_ns", sa.BigInteger, nullable=True),
    sa.Column("last_step", sa.BigInteger, nullable=True),
)

recovery_codes = sa.Table(
    "recovery_codes",
    metadata,
    sa.Column(
        "user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("code_hash", sa.String(64), primary_key=True),
    sa.Column("used_ns", sa.BigInteger, nullable=True),
)

spent_tickets = sa.Table(
    "spent_tickets",
    metadata,
    sa.Column("ticket_id", sa.String(36), primary_key=True),
    sa.Column("expires_ns", sa.BigInteger, nullable=False, index=True),
)

signing_keys = sa.Table(
    "signing_keys",
    metadata,
    sa.Column("kid", sa.String(64), primary_key=True),
    sa.Column("sealed", sa.Text, nullable=False),
    sa.Column("created_ns", sa.BigInteger, nullable=False),
    sa.Column("retired_ns", sa.BigInteger, nullable=True),
    sa.Column("upcoming", sa.Boolean, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
)

outbox = outbox_table(metadata)

REVOCATIONS_TOPIC = "revocations"
"""Marked by every revocation written, so watchers run once its transaction commits."""
SIGNING_KEYS_TOPIC = "signing_keys"
"""Marked by every change of the key ring, so every replica reloads it once it commits."""


def _create_schema(conn: Connection) -> None:
    metadata.create_all(conn)


def _seed_roles(conn: Connection) -> None:
    conn.execute(
        roles.insert(),
        [
            {
                "name": role.name,
                "description": role.description,
                "permissions": json.dumps(list(role.permissions)),
            }
            for role in BUILTIN_ROLES.values()
        ],
    )


def _never_reuse_revocation_sequences(conn: Connection) -> None:
    """Rebuild a revocation table created without SQLite's AUTOINCREMENT, keeping its rows.

    Such a table predates moments in nanoseconds, so it is rebuilt as it was then; the
    migration to nanoseconds converts it afterwards.
    """
    if conn.dialect.name != "sqlite":
        return  # PostgreSQL sequences never go back
    ddl = conn.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'revocations'"
    ).scalar_one()
    if "AUTOINCREMENT" in ddl.upper():
        return
    then = sa.Table(
        "revocations",
        sa.MetaData(),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("session_id", sa.String(36), nullable=False),
        sa.Column("token_id", sa.String(36), nullable=True),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("revoked_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False, index=True),
        sqlite_autoincrement=True,
    )
    rows = [dict(row._mapping) for row in conn.execute(sa.select(then))]
    then.drop(conn)
    then.create(conn)
    if rows:
        conn.execute(then.insert(), rows)


def _grant(conn: Connection, role: str, permission: Permission) -> None:
    """Give a built-in role a permission a new method of the mesh needs."""
    row = conn.execute(sa.select(roles.c.permissions).where(roles.c.name == role)).first()
    if row is None:
        return
    granted = list(json.loads(row.permissions))
    if permission not in granted:
        conn.execute(
            roles.update()
            .where(roles.c.name == role)
            .values(permissions=json.dumps([*granted, permission.value]))
        )


def _services_watch_revocations(conn: Connection) -> None:
    """Give the built-in ``service`` role the permission the revocation stream now needs."""
    _grant(conn, "service", Permission.REVOCATIONS_WATCH)


def _times_in_nanoseconds(conn: Connection) -> None:
    """Float seconds become integer nanoseconds (:mod:`common.times`), in every table.

    Rounded to the microsecond: all a float of seconds since the epoch holds exactly.
    """
    nanos = "CAST(ROUND({} * 1000000) AS BIGINT) * 1000".format
    for table, old, new, nullable, indexed in (
        ("users", "created_at", "created_ns", False, False),
        ("users", "updated_at", "updated_ns", False, False),
        ("sessions", "created_at", "created_ns", False, False),
        ("sessions", "refreshed_at", "refreshed_ns", False, True),
        ("sessions", "revoked_at", "revoked_ns", True, False),
        ("revocations", "revoked_at", "revoked_ns", False, False),
        ("revocations", "expires_at", "expires_ns", False, True),
        ("login_attempts", "last_failure_at", "last_failure_ns", False, True),
        ("login_attempts", "locked_until", "locked_until_ns", True, False),
    ):
        replace_column(conn, table, old, new, nanos(old), nullable=nullable, indexed=indexed)
    outbox_times_in_nanoseconds(conn)


def _password_lifecycle(conn: Connection) -> None:
    """Whether a user must change their password, earlier passwords, reset tokens."""
    add_column(conn, "users", "password_change_required", "BOOLEAN NOT NULL DEFAULT FALSE")
    metadata.create_all(conn, tables=[password_history, password_reset_tokens])


def _lockout_per_address(conn: Connection) -> None:
    """Key login attempts by username and client address, with progressive and hard locks.

    Counts kept per username alone cannot be split by address; they start over, as after a
    successful login.
    """
    if "client_address" in columns(conn, "login_attempts"):
        return
    conn.exec_driver_sql("DROP TABLE login_attempts")
    login_attempts.create(conn)


def _session_origins(conn: Connection) -> None:
    """Where each session's login came from, and with which user agent."""
    for column, size in (("client_address", 64), ("user_agent", MAX_USER_AGENT)):
        add_column(conn, "sessions", column, f"VARCHAR({size}) NOT NULL DEFAULT ''")


def _second_factors(conn: Connection) -> None:
    """TOTP secrets, recovery codes, spent MFA tickets, and roles that require a second factor."""
    add_column(conn, "roles", "mfa_required", "BOOLEAN NOT NULL DEFAULT FALSE")
    metadata.create_all(conn, tables=[totp_credentials, recovery_codes, spent_tickets])


def _custom_roles(conn: Connection) -> None:
    """Roles admins define beside the built-in ones: which are built in, and an etag's version.

    The ``service`` role gains ``tokens:introspect``, which token introspection needs.
    """
    add_column(conn, "roles", "builtin", "BOOLEAN NOT NULL DEFAULT FALSE")
    add_column(conn, "roles", "version", "INTEGER NOT NULL DEFAULT 1")
    conn.execute(roles.update().where(roles.c.name.in_(list(BUILTIN_ROLES))).values(builtin=True))
    _grant(conn, "service", Permission.TOKENS_INTROSPECT)


def _object_permissions(conn: Connection) -> None:
    """The OMS's objects: ``editor`` reads and writes them, ``viewer`` reads them."""
    _grant(conn, "editor", Permission.OBJECT_READ)
    _grant(conn, "editor", Permission.OBJECT_WRITE)
    _grant(conn, "viewer", Permission.OBJECT_READ)


def _sealed_totp_secrets(conn: Connection) -> None:
    """TOTP secrets are sealed envelopes now, longer than the 64 characters a plain one took.

    Secrets stored plain before stay readable (users.service opens either) and are sealed when
    the user enrols again.
    """
    if conn.dialect.name != "sqlite":  # SQLite does not enforce a VARCHAR's length
        conn.exec_driver_sql("ALTER TABLE totp_credentials ALTER COLUMN secret TYPE TEXT")


def _signing_keys(conn: Connection) -> None:
    """The key ring moves from files into the database, its private keys sealed.

    The key files of an earlier ring are imported by the first start that finds the table
    empty (:class:`users.keys.KeyRing`), which alone holds the key-encryption key.
    """
    metadata.create_all(conn, tables=[signing_keys])


MIGRATIONS = (
    _create_schema,
    _seed_roles,
    _never_reuse_revocation_sequences,
    _services_watch_revocations,
    _times_in_nanoseconds,
    _password_lifecycle,
    _lockout_per_address,
    _session_origins,
    outbox_traceparent,
    _second_factors,
    _custom_roles,
    _signing_keys,
    _sealed_totp_secrets,
    _object_permissions,
)


_MFA_ENROLLED = (
    sa.exists()
    .where(totp_credentials.c.user_id == users.c.id, totp_credentials.c.confirmed_ns.is_not(None))
    .label("mfa_enrolled")
)


def _user(row: sa.Row[Any], granted: tuple[str, ...]) -> UserRecord:
    return UserRecord(
        user_id=row.id,
        username=row.username,
        display_name=row.display_name,
        email=row.email,
        password_hash=row.password_hash,
        disabled=row.disabled,
        created_ns=row.created_ns,
        updated_ns=row.updated_ns,
        version=row.version,
        roles=granted,
        password_change_required=row.password_change_required,
        mfa_enrolled=row.mfa_enrolled,
    )


def _role(row: sa.Row[Any]) -> RoleDefinition:
    return RoleDefinition(
        name=row.name,
        description=row.description,
        permissions=tuple(json.loads(row.permissions)),
        mfa_required=row.mfa_required,
        builtin=row.builtin,
        version=row.version,
    )


def _session(row: sa.Row[Any]) -> SessionRecord:
    return SessionRecord(
        session_id=row.id,
        user_id=row.user_id,
        created_ns=row.created_ns,
        refreshed_ns=row.refreshed_ns,
        refresh_token_id=row.refresh_token_id,
        revoked_ns=row.revoked_ns,
        revoke_reason=row.revoke_reason,
        client_address=row.client_address,
        user_agent=row.user_agent,
    )


def _attempts(row: sa.Row[Any]) -> LoginAttempts:
    return LoginAttempts(
        username=row.username,
        client_address=row.client_address,
        failures=row.failures,
        last_failure_ns=row.last_failure_ns,
        locked_until_ns=row.locked_until_ns,
        locks=row.locks,
        hard_locked=row.hard_locked,
    )


def _pair(username: str, client_address: str) -> sa.ColumnElement[bool]:
    return sa.and_(
        login_attempts.c.username == username, login_attempts.c.client_address == client_address
    )


def _revocation(row: sa.Row[Any]) -> Revocation:
    return Revocation(
        sequence=row.seq,
        session_id=row.session_id,
        token_id=row.token_id,
        reason=row.reason,
        revoked_ns=row.revoked_ns,
        expires_ns=row.expires_ns,
    )


class _Transaction:
    """:class:`users.store.UserWrites` (and so ``UserReads``) over one open connection."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def user(
        self, *, user_id: str | None = None, username: str | None = None, lock: bool = False
    ) -> UserRecord | None:
        condition = users.c.id == user_id if user_id is not None else users.c.username == username
        query = sa.select(users, _MFA_ENROLLED).where(condition)
        row = self._conn.execute(query.with_for_update(of=users) if lock else query).first()
        if row is None:
            return None
        return _user(row, self._roles_of([row.id]).get(row.id, ()))

    def users_after(self, username: str, *, limit: int) -> list[UserRecord]:
        rows = self._conn.execute(
            rows_after(users.c.username, username, limit).add_columns(_MFA_ENROLLED)
        ).all()
        granted = self._roles_of([row.id for row in rows])
        return [_user(row, granted.get(row.id, ())) for row in rows]

    def _roles_of(self, user_ids: list[str]) -> dict[str, tuple[str, ...]]:
        if not user_ids:
            return {}
        granted: dict[str, list[str]] = {}
        for row in self._conn.execute(
            sa.select(user_roles)
            .where(user_roles.c.user_id.in_(user_ids))
            .order_by(user_roles.c.user_id, user_roles.c.role)
        ):
            granted.setdefault(row.user_id, []).append(row.role)
        return {user_id: tuple(names) for user_id, names in granted.items()}

    def roles(self) -> dict[str, RoleDefinition]:
        return {
            row.name: _role(row)
            for row in self._conn.execute(sa.select(roles).order_by(roles.c.name))
        }

    def role(self, name: str, *, lock: bool = False) -> RoleDefinition | None:
        query = sa.select(roles).where(roles.c.name == name)
        row = self._conn.execute(query.with_for_update() if lock else query).first()
        return None if row is None else _role(row)

    def role_holders(self, name: str) -> list[str]:
        return list(
            self._conn.execute(
                sa.select(user_roles.c.user_id)
                .where(user_roles.c.role == name)
                .order_by(user_roles.c.user_id)
            ).scalars()
        )

    def session(self, session_id: str, *, lock: bool = False) -> SessionRecord | None:
        query = sa.select(sessions).where(sessions.c.id == session_id)
        row = self._conn.execute(query.with_for_update() if lock else query).first()
        return None if row is None else _session(row)

    def live_sessions(
        self, user_id: str, *, active_after_ns: int, after: tuple[int, str] | None, limit: int
    ) -> list[SessionRecord]:
        query = sa.select(sessions).where(
            sessions.c.user_id == user_id,
            sessions.c.revoked_ns.is_(None),
            sessions.c.refreshed_ns > active_after_ns,
        )
        if after is not None:
            query = query.where(sa.tuple_(sessions.c.created_ns, sessions.c.id) > after)
        rows = self._conn.execute(
            query.order_by(sessions.c.created_ns, sessions.c.id).limit(limit)
        ).all()
        return [_session(row) for row in rows]

    def previous_password_hashes(self, user_id: str, *, limit: int) -> list[str]:
        return list(
            self._conn.execute(
                sa.select(password_history.c.password_hash)
                .where(password_history.c.user_id == user_id)
                .order_by(password_history.c.id.desc())
                .limit(limit)
            ).scalars()
        )

    def reset_token(self, token_hash: str, *, lock: bool = False) -> ResetTokenRecord | None:
        query = sa.select(password_reset_tokens).where(
            password_reset_tokens.c.token_hash == token_hash
        )
        row = self._conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            return None
        return ResetTokenRecord(
            token_hash=row.token_hash,
            user_id=row.user_id,
            created_ns=row.created_ns,
            expires_ns=row.expires_ns,
            used_ns=row.used_ns,
        )

    def totp(self, user_id: str) -> TotpRecord | None:
        row = self._conn.execute(
            sa.select(totp_credentials).where(totp_credentials.c.user_id == user_id)
        ).first()
        if row is None:
            return None
        return TotpRecord(
            user_id=row.user_id,
            secret=row.secret,
            created_ns=row.created_ns,
            confirmed_ns=row.confirmed_ns,
            last_step=row.last_step,
        )

    def set_role_mfa_required(self, name: str, required: bool) -> None:
        self._conn.execute(
            roles.update()
            .where(roles.c.name == name)
            .values(mfa_required=required, version=roles.c.version + 1)
        )

    def put_totp(self, totp: TotpRecord) -> None:
        self.remove_mfa(totp.user_id)
        self._conn.execute(
            totp_credentials.insert().values(
                user_id=totp.user_id,
                secret=totp.secret,
                created_ns=totp.created_ns,
                confirmed_ns=totp.confirmed_ns,
                last_step=totp.last_step,
            )
        )

    def confirm_totp(self, user_id: str, *, confirmed_ns: int, step: int) -> None:
        self._conn.execute(
            totp_credentials.update()
            .where(totp_credentials.c.user_id == user_id)
            .values(confirmed_ns=confirmed_ns, last_step=step)
        )

    def set_totp_step(self, user_id: str, step: int) -> None:
        self._conn.execute(
            totp_credentials.update()
            .where(totp_credentials.c.user_id == user_id)
            .values(last_step=step)
        )

    def replace_recovery_codes(self, user_id: str, code_hashes: Iterable[str]) -> None:
        self._conn.execute(recovery_codes.delete().where(recovery_codes.c.user_id == user_id))
        rows = [{"user_id": user_id, "code_hash": h} for h in sorted(set(code_hashes))]
        if rows:
            self._conn.execute(recovery_codes.insert(), rows)

    def spend_recovery_code(self, user_id: str, code_hash: str, *, used_ns: int) -> bool:
        changed = self._conn.execute(
            recovery_codes.update()
            .where(
                recovery_codes.c.user_id == user_id,
                recovery_codes.c.code_hash == code_hash,
                recovery_codes.c.used_ns.is_(None),
            )
            .values(used_ns=used_ns)
        ).rowcount
        return bool(changed)

    def remove_mfa(self, user_id: str) -> bool:
        self._conn.execute(recovery_codes.delete().where(recovery_codes.c.user_id == user_id))
        removed = self._conn.execute(
            totp_credentials.delete().where(totp_credentials.c.user_id == user_id)
        ).rowcount
        return bool(removed)

    def spend_ticket(self, ticket_id: str, *, expires_ns: int) -> bool:
        try:
            with self._conn.begin_nested():
                self._conn.execute(
                    spent_tickets.insert().values(ticket_id=ticket_id, expires_ns=expires_ns)
                )
        except sa.exc.IntegrityError:
            return False
        return True

    def set_password(
        self, user_id: str, password_hash: str, *, change_required: bool, keep: int, now_ns: int
    ) -> None:
        replaced = self._conn.execute(
            sa.select(users.c.password_hash).where(users.c.id == user_id)
        ).scalar_one()
        self._conn.execute(
            password_history.insert().values(
                user_id=user_id, password_hash=replaced, replaced_ns=now_ns
            )
        )
        kept = (
            sa.select(password_history.c.id)
            .where(password_history.c.user_id == user_id)
            .order_by(password_history.c.id.desc())
            .limit(keep)
            .scalar_subquery()
        )
        self._conn.execute(
            password_history.delete().where(
                password_history.c.user_id == user_id, password_history.c.id.not_in(kept)
            )
        )
        self._conn.execute(
            users.update()
            .where(users.c.id == user_id)
            .values(
                password_hash=password_hash,
                password_change_required=change_required,
                updated_ns=now_ns,
            )
        )

    def add_reset_token(self, token: ResetTokenRecord) -> None:
        self._conn.execute(
            password_reset_tokens.insert().values(
                token_hash=token.token_hash,
                user_id=token.user_id,
                created_ns=token.created_ns,
                expires_ns=token.expires_ns,
                used_ns=token.used_ns,
            )
        )

    def spend_reset_tokens(self, user_id: str, *, used_ns: int) -> None:
        self._conn.execute(
            password_reset_tokens.update()
            .where(
                password_reset_tokens.c.user_id == user_id,
                password_reset_tokens.c.used_ns.is_(None),
            )
            .values(used_ns=used_ns)
        )

    def insert_user(self, user: NewUser) -> None:
        try:
            with self._conn.begin_nested():
                self._conn.execute(
                    users.insert().values(
                        id=user.user_id,
                        username=user.username,
                        display_name=user.display_name,
                        email=user.email,
                        password_hash=user.password_hash,
                        disabled=False,
                        created_ns=user.created_ns,
                        updated_ns=user.created_ns,
                        version=1,
                    )
                )
        except sa.exc.IntegrityError as exc:
            raise UsernameTaken(user.username) from exc
        self.set_roles(user.user_id, user.roles)

    def update_user(
        self, user: UserRecord, *, updated_ns: int, changes: dict[str, str | bool]
    ) -> None:
        self._conn.execute(
            users.update()
            .where(users.c.id == user.user_id)
            .values(version=user.version + 1, updated_ns=updated_ns, **changes)
        )

    def set_password_hash(self, user_id: str, password_hash: str) -> None:
        self._conn.execute(
            users.update().where(users.c.id == user_id).values(password_hash=password_hash)
        )

    def set_roles(self, user_id: str, names: Iterable[str]) -> None:
        self._conn.execute(user_roles.delete().where(user_roles.c.user_id == user_id))
        rows = [{"user_id": user_id, "role": name} for name in sorted(set(names))]
        if rows:
            self._conn.execute(user_roles.insert(), rows)

    def insert_role(self, role: RoleDefinition) -> None:
        try:
            with self._conn.begin_nested():
                self._conn.execute(
                    roles.insert().values(
                        name=role.name,
                        description=role.description,
                        permissions=json.dumps(list(role.permissions)),
                        builtin=False,
                        version=1,
                    )
                )
        except sa.exc.IntegrityError as exc:
            raise RoleTaken(role.name) from exc

    def update_role(
        self, role: RoleDefinition, *, description: str, permissions: tuple[str, ...]
    ) -> None:
        self._conn.execute(
            roles.update()
            .where(roles.c.name == role.name)
            .values(
                description=description,
                permissions=json.dumps(list(permissions)),
                version=role.version + 1,
            )
        )

    def delete_role(self, name: str) -> None:
        self._conn.execute(roles.delete().where(roles.c.name == name))

    def enabled_admins(self) -> int:
        # PostgreSQL: the table lock makes such changes take turns, so the second counts after
        # the first has committed. SQLite write transactions take turns already.
        if self._conn.dialect.name == "postgresql":
            self._conn.exec_driver_sql("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
        return int(
            self._conn.execute(
                sa.select(sa.func.count())
                .select_from(users.join(user_roles, users.c.id == user_roles.c.user_id))
                .where(user_roles.c.role == "admin", users.c.disabled == sa.false())
            ).scalar_one()
        )

    def live_session_ids(self, user_id: str) -> list[str]:
        return list(
            self._conn.execute(
                sa.select(sessions.c.id).where(
                    sessions.c.user_id == user_id, sessions.c.revoked_ns.is_(None)
                )
            ).scalars()
        )

    def open_session(self, session: SessionRecord) -> None:
        self._conn.execute(
            sessions.insert().values(
                id=session.session_id,
                user_id=session.user_id,
                created_ns=session.created_ns,
                refreshed_ns=session.refreshed_ns,
                refresh_token_id=session.refresh_token_id,
                client_address=session.client_address,
                user_agent=session.user_agent[:MAX_USER_AGENT],
            )
        )

    def rotate_refresh(self, session_id: str, *, spent: str, fresh: str, refreshed_ns: int) -> None:
        self._conn.execute(
            sessions.update()
            .where(sessions.c.id == session_id, sessions.c.refresh_token_id == spent)
            .values(refresh_token_id=fresh, refreshed_ns=refreshed_ns)
        )

    def end_session(self, session_id: str, *, reason: str, revoked_ns: int) -> bool:
        changed = self._conn.execute(
            sessions.update()
            .where(sessions.c.id == session_id, sessions.c.revoked_ns.is_(None))
            .values(revoked_ns=revoked_ns, revoke_reason=reason)
        ).rowcount
        return bool(changed)

    def record_revocation(
        self,
        *,
        session_id: str,
        token_id: str | None,
        reason: str,
        revoked_ns: int,
        expires_ns: int,
    ) -> None:
        # On PostgreSQL sequence values can commit out of order, and a reader following the
        # log by sequence would skip a row that commits late; the table lock makes writers
        # commit in order. SQLite write transactions are serial already.
        if self._conn.dialect.name == "postgresql":
            self._conn.exec_driver_sql("LOCK TABLE revocations IN SHARE ROW EXCLUSIVE MODE")
        self._conn.execute(
            revocations.insert().values(
                session_id=session_id,
                token_id=token_id,
                reason=reason,
                revoked_ns=revoked_ns,
                expires_ns=expires_ns,
            )
        )
        mark(self._conn, REVOCATIONS_TOPIC)

    def login_attempts(self, username: str, client_address: str, *, now_ns: int) -> LoginAttempts:
        while True:
            held = self.held_login_attempts(username, client_address)
            if held is not None:
                return held
            try:
                with self._conn.begin_nested():
                    self._conn.execute(
                        login_attempts.insert().values(
                            username=username,
                            client_address=client_address,
                            failures=0,
                            last_failure_ns=now_ns,
                            locked_until_ns=None,
                            locks=0,
                            hard_locked=False,
                        )
                    )
            except sa.exc.IntegrityError:
                # A concurrent first attempt created it. On PostgreSQL its login may also have
                # succeeded and cleared it since, so look again rather than expect theirs.
                pass

    def held_login_attempts(self, username: str, client_address: str) -> LoginAttempts | None:
        row = self._conn.execute(
            sa.select(login_attempts).where(_pair(username, client_address)).with_for_update()
        ).first()
        return None if row is None else _attempts(row)

    def set_login_attempts(self, attempts: LoginAttempts) -> None:
        self._conn.execute(
            login_attempts.update()
            .where(_pair(attempts.username, attempts.client_address))
            .values(
                failures=attempts.failures,
                last_failure_ns=attempts.last_failure_ns,
                locked_until_ns=attempts.locked_until_ns,
                locks=attempts.locks,
                hard_locked=attempts.hard_locked,
            )
        )

    def clear_login_attempts(
        self, username: str, client_address: str | None
    ) -> list[LoginAttempts]:
        which = (
            login_attempts.c.username == username
            if client_address is None
            else _pair(username, client_address)
        )
        cleared = [
            _attempts(row)
            for row in self._conn.execute(
                sa.select(login_attempts).where(which).order_by(login_attempts.c.client_address)
            )
        ]
        self._conn.execute(login_attempts.delete().where(which))
        return cleared

    def emit(self, event: OutboxEvent) -> None:
        append(self._conn, outbox, event)

    def signing_keys(self, *, lock: bool = False) -> list[StoredKey]:
        if lock and self._conn.dialect.name == "postgresql":
            # Rows may not exist yet (the first start): lock the table, not rows. SQLite's
            # write transactions are serial already.
            self._conn.exec_driver_sql("LOCK TABLE signing_keys IN EXCLUSIVE MODE")
        query = sa.select(signing_keys).order_by(signing_keys.c.position)
        return [
            StoredKey(
                kid=row.kid,
                sealed=row.sealed,
                created_ns=row.created_ns,
                retired_ns=row.retired_ns,
                upcoming=row.upcoming,
            )
            for row in self._conn.execute(query)
        ]

    def replace_signing_keys(self, keys: Sequence[StoredKey]) -> None:
        self._conn.execute(signing_keys.delete())
        self._conn.execute(
            signing_keys.insert(),
            [
                {
                    "kid": key.kid,
                    "sealed": key.sealed,
                    "created_ns": key.created_ns,
                    "retired_ns": key.retired_ns,
                    "upcoming": key.upcoming,
                    "position": position,
                }
                for position, key in enumerate(keys)
            ],
        )
        mark(self._conn, SIGNING_KEYS_TOPIC)


class SqlUserStore:
    """:class:`users.store.UserStore` on one :class:`common.db.Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @contextmanager
    def read(self) -> Iterator[_Transaction]:
        with self.db.read() as conn:
            yield _Transaction(conn)

    @contextmanager
    def write(self) -> Iterator[_Transaction]:
        with self.db.write() as conn:
            yield _Transaction(conn)

    def record_event(self, event: OutboxEvent) -> None:
        with self.db.write() as conn:
            append(conn, outbox, event)

    def revocations_after(self, sequence: int, *, limit: int) -> list[Revocation]:
        with self.db.read() as conn:
            result = conn.execute(rows_after(revocations.c.seq, sequence, limit))
            return [_revocation(row) for row in result]

    def on_revocation(self, listener: Callable[[], None]) -> None:
        self.db.on_commit(REVOCATIONS_TOPIC, listener)

    def on_signing_keys(self, listener: Callable[[], None]) -> None:
        self.db.on_commit(SIGNING_KEYS_TOPIC, listener)

    def forget_expired(
        self, *, now_ns: int, session_lifetime_ns: int, failure_reset_ns: int
    ) -> Forgotten:
        with self.db.write() as conn:
            gone_revocations = conn.execute(
                revocations.delete().where(revocations.c.expires_ns <= now_ns)
            ).rowcount
            gone_sessions = conn.execute(
                sessions.delete().where(sessions.c.refreshed_ns <= now_ns - session_lifetime_ns)
            ).rowcount
            gone_attempts = conn.execute(
                login_attempts.delete().where(
                    login_attempts.c.last_failure_ns <= now_ns - failure_reset_ns,
                    login_attempts.c.hard_locked == sa.false(),
                    sa.or_(
                        login_attempts.c.locked_until_ns.is_(None),
                        login_attempts.c.locked_until_ns <= now_ns,
                    ),
                )
            ).rowcount
            conn.execute(
                password_reset_tokens.delete().where(password_reset_tokens.c.expires_ns <= now_ns)
            )
            conn.execute(spent_tickets.delete().where(spent_tickets.c.expires_ns <= now_ns))
        return Forgotten(gone_revocations, gone_sessions, gone_attempts)

    def migrate(self) -> None:
        self.db.migrate(MIGRATIONS)

    def close(self) -> None:
        self.db.dispose()
