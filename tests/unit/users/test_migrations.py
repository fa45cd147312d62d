"""A database written before moments were nanoseconds keeps every moment through the upgrade."""

from __future__ import annotations

import contextlib
import json

import pytest
import sqlalchemy as sa

from common import times
from common.db import Database
from tests.support.postgres import scratch_database
from users import sql_store
from users.roles import BUILTIN_ROLES
from users.sql_store import SqlUserStore

T = 1_767_225_600.25
"""2026-01-01T00:00:00.25Z, in the float seconds the older schema stored."""
T_NS = 1_767_225_600_250_000_000


def _older_schema() -> sa.MetaData:
    """The tables as the release before nanoseconds created them."""
    meta = sa.MetaData()
    moment = sa.Float
    sa.Table(
        "users",
        meta,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("password_hash", sa.String(512), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created_at", moment, nullable=False),
        sa.Column("updated_at", moment, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    sa.Table(
        "roles",
        meta,
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("permissions", sa.Text, nullable=False),
    )
    sa.Table(
        "user_roles",
        meta,
        sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("role", sa.String(64), sa.ForeignKey("roles.name"), primary_key=True),
    )
    sa.Table(
        "sessions",
        meta,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id"), nullable=False, index=True),
        sa.Column("created_at", moment, nullable=False),
        sa.Column("refreshed_at", moment, nullable=False, index=True),
        sa.Column("refresh_token_id", sa.String(36), nullable=False),
        sa.Column("revoked_at", moment, nullable=True),
        sa.Column("revoke_reason", sa.String(32), nullable=True),
    )
    sa.Table(
        "revocations",
        meta,
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("session_id", sa.String(36), nullable=False),
        sa.Column("token_id", sa.String(36), nullable=True),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("revoked_at", moment, nullable=False),
        sa.Column("expires_at", moment, nullable=False, index=True),
        sqlite_autoincrement=True,
    )
    sa.Table(
        "login_attempts",
        meta,
        sa.Column("username", sa.String(64), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failure_at", moment, nullable=False, index=True),
        sa.Column("locked_until", moment, nullable=True),
    )
    sa.Table(
        "outbox",
        meta,
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("type", sa.String(128), nullable=False),
        sa.Column("subject", sa.String(512), nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("time", sa.String(40), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )
    sa.Table("schema_version", meta, sa.Column("version", sa.Integer, primary_key=True))
    return meta


def _write_older_database(db: Database) -> None:
    meta = _older_schema()
    table = meta.tables
    with db.write() as conn:
        meta.create_all(conn)
        conn.execute(table["schema_version"].insert(), [{"version": v} for v in (1, 2, 3, 4)])
        conn.execute(
            table["roles"].insert(),
            [
                {
                    "name": r.name,
                    "description": r.description,
                    "permissions": json.dumps(list(r.permissions)),
                }
                for r in BUILTIN_ROLES.values()
            ],
        )
        conn.execute(
            table["users"]
            .insert()
            .values(
                id="u1",
                username="ann",
                display_name="Ann",
                email="",
                password_hash="x",
                disabled=False,
                created_at=T,
                updated_at=T + 1,
                version=1,
            )
        )
        conn.execute(table["user_roles"].insert().values(user_id="u1", role="viewer"))
        conn.execute(
            table["sessions"].insert(),
            [
                {
                    "id": "live",
                    "user_id": "u1",
                    "created_at": T,
                    "refreshed_at": T + 2,
                    "refresh_token_id": "r1",
                    "revoked_at": None,
                },
                {
                    "id": "ended",
                    "user_id": "u1",
                    "created_at": T,
                    "refreshed_at": T,
                    "refresh_token_id": "r2",
                    "revoked_at": T + 3,
                    "revoke_reason": "logout",
                },
            ],
        )
        conn.execute(
            table["revocations"]
            .insert()
            .values(session_id="ended", reason="logout", revoked_at=T + 3, expires_at=T + 3603)
        )
        conn.execute(
            table["login_attempts"].insert(),
            [
                {"username": "ann", "failures": 2, "last_failure_at": T, "locked_until": None},
                {"username": "bob", "failures": 5, "last_failure_at": T, "locked_until": T + 60},
            ],
        )
        conn.execute(
            table["outbox"]
            .insert()
            .values(
                event_id="e1",
                type="users.auth.logout",
                subject="users/u1",
                actor="ann",
                time="2026-01-01T00:00:03.250000+00:00",
                data="{}",
            )
        )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request, tmp_path):
    """Makes empty databases of one kind; all are dropped after the test."""
    with contextlib.ExitStack() as stack:

        def new(name: str) -> Database:
            if request.param == "sqlite":
                url = f"sqlite:///{tmp_path / name}.db"
            else:
                url = stack.enter_context(scratch_database("users"))
            db = Database(url)
            stack.callback(db.dispose)
            return db

        yield new


@pytest.fixture
def older(database):
    db = database("older")
    _write_older_database(db)
    return SqlUserStore(db)


def test_every_moment_survives_the_upgrade_to_nanoseconds(older):
    upgrade = sql_store.MIGRATIONS.index(sql_store._times_in_nanoseconds) + 1
    older.db.migrate(sql_store.MIGRATIONS[:upgrade])
    with older.db.read() as conn:
        locks = dict(
            conn.execute(sa.text("SELECT username, locked_until_ns FROM login_attempts")).all()
        )
    assert locks == {"bob": T_NS + 60 * times.SECOND, "ann": None}
    older.migrate()
    with older.read() as reads:
        ann = reads.user(username="ann")
        live, ended = reads.session("live"), reads.session("ended")
    assert ann is not None and (ann.created_ns, ann.updated_ns) == (T_NS, T_NS + times.SECOND)
    assert ann.roles == ("viewer",) and ann.version == 1
    assert live is not None and (live.refreshed_ns, live.revoked_ns) == (
        T_NS + 2 * times.SECOND,
        None,
    )
    assert ended is not None and ended.revoked_ns == T_NS + 3 * times.SECOND
    (revocation,) = older.revocations_after(0, limit=10)
    assert (revocation.revoked_ns, revocation.expires_ns) == (
        T_NS + 3 * times.SECOND,
        T_NS + 3603 * times.SECOND,
    )
    with older.write() as tx:
        # Counts per username alone start over once they are kept per client address.
        assert tx.held_login_attempts("bob", "") is None
    with older.db.read() as conn:
        (moment,) = conn.execute(sa.select(sql_store.outbox.c.time_ns)).scalars()
    assert moment == T_NS + 3 * times.SECOND
    # Housekeeping works on the converted columns and their indexes.
    gone = older.forget_expired(
        now_ns=T_NS + 7200 * times.SECOND,
        session_lifetime_ns=times.seconds(3600),
        failure_reset_ns=times.seconds(60),
    )
    assert (gone.revocations, gone.sessions, gone.login_attempts) == (1, 2, 0)


def test_a_new_database_and_an_upgraded_one_have_the_same_columns(older, database):
    older.migrate()
    fresh = SqlUserStore(database("fresh"))
    fresh.migrate()

    def columns(store: SqlUserStore) -> dict[str, set[str]]:
        with store.db.read() as conn:
            inspector = sa.inspect(conn)
            return {
                name: {c["name"] for c in inspector.get_columns(name)}
                | {f"index {i['name']}" for i in inspector.get_indexes(name)}
                for name in sql_store.metadata.tables
            }

    assert columns(older) == columns(fresh)


def test_an_upgrade_marks_the_built_in_roles_and_lets_services_introspect(older):
    before = [p for p in BUILTIN_ROLES["service"].permissions if p != "tokens:introspect"]
    with older.db.write() as conn:
        conn.execute(
            sa.text("UPDATE roles SET permissions = :p WHERE name = 'service'"),
            {"p": json.dumps(before)},
        )
    older.migrate()
    with older.read() as reads:
        defined = reads.roles()
    assert {name for name, role in defined.items() if role.builtin} == set(BUILTIN_ROLES)
    assert all(role.version == 1 for role in defined.values())
    assert "tokens:introspect" in defined["service"].permissions


def test_an_upgrade_gives_editors_and_viewers_the_object_permissions(older):
    for role in ("editor", "viewer"):
        before = [p for p in BUILTIN_ROLES[role].permissions if not p.startswith("object:")]
        with older.db.write() as conn:
            conn.execute(
                sa.text("UPDATE roles SET permissions = :p WHERE name = :r"),
                {"p": json.dumps(before), "r": role},
            )
    older.migrate()
    with older.read() as reads:
        defined = reads.roles()
    assert {"object:read", "object:write"} <= set(defined["editor"].permissions)
    assert "object:read" in defined["viewer"].permissions
    assert "object:write" not in defined["viewer"].permissions
