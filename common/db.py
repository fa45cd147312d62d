"""Storage runtime: one SQLAlchemy engine per service, SQLite by default, PostgreSQL by URL.

SQLite runs in WAL mode with ``synchronous=FULL`` so a commit is on disk when it returns, and
write transactions start with ``BEGIN IMMEDIATE`` so concurrent writers queue instead of failing
half-way. Schemas are created and migrated on start through numbered migrations.

A database that cannot take a write (a full disk, a read-only file, a server that went away)
is UNAVAILABLE with a reason, never INTERNAL: the transaction rolled back, nothing of it is
stored, and the caller may retry once space is back. A write transaction can also mark topics
(:func:`mark`) whose listeners run once it has committed, so a relay wakes for its outbox
rows and never for its own reads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from prometheus_client.core import Metric
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool, QueuePool

from common.config import env_str
from common.errors import Unavailable
from common.metrics import gauge

Migration = Callable[[Connection], None]

log = logging.getLogger("mesh.db")

_WRITE = "mesh_write"
_TOPICS = "mesh_topics"

_SQLITE_ERRORS = {
    "SQLITE_FULL": ("STORAGE_FULL", "the database's disk is full"),
    "SQLITE_READONLY": ("STORAGE_READ_ONLY", "the database is read-only"),
    "SQLITE_IOERR": ("STORAGE_IO_ERROR", "the database's disk failed a read or write"),
    "SQLITE_CANTOPEN": ("STORAGE_IO_ERROR", "the database file cannot be opened"),
}
"""By ``sqlite_errorname`` prefix (extended codes such as ``SQLITE_IOERR_WRITE`` included)."""
_POSTGRES_ERRORS = {
    "53100": ("STORAGE_FULL", "the database's disk is full"),
    "25006": ("STORAGE_READ_ONLY", "the database is read-only"),
    "53": ("STORAGE_FULL", "the database is out of resources"),
    "08": ("DATABASE_UNAVAILABLE", "the database cannot be reached"),
    "57P": ("DATABASE_UNAVAILABLE", "the database is shutting down or restarting"),
}
"""By SQLSTATE, most specific first (a code, then its class)."""


def _first_match(known: dict[str, tuple[str, str]], code: str) -> Unavailable | None:
    for prefix, (reason, message) in known.items():
        if code.startswith(prefix):
            return Unavailable(f"{message}; retry later", reason=reason)
    return None


def _unavailable(exc: sa.exc.DBAPIError) -> Unavailable | None:
    """The UNAVAILABLE a storage failure stands for, or None for any other database error."""
    original = exc.orig
    name = getattr(original, "sqlite_errorname", None)
    if isinstance(name, str):
        return _first_match(_SQLITE_ERRORS, name)
    sqlstate = getattr(original, "sqlstate", None)
    if isinstance(sqlstate, str):
        return _first_match(_POSTGRES_ERRORS, sqlstate)
    if isinstance(exc, sa.exc.OperationalError):  # no SQLSTATE: the connection itself failed
        return Unavailable(
            "the database cannot be reached; retry later", reason="DATABASE_UNAVAILABLE"
        )
    return None


@contextmanager
def _storage_errors() -> Iterator[None]:
    try:
        yield
    except sa.exc.DBAPIError as exc:
        unavailable = _unavailable(exc)
        if unavailable is None:
            raise
        log.warning(
            "storage unavailable", extra={"reason": unavailable.reason, "error": str(exc.orig)}
        )
        raise unavailable from exc


def mark(conn: Connection, topic: str) -> None:
    """Within a write transaction: run ``topic``'s listeners once it has committed."""
    conn.info.setdefault(_TOPICS, set()).add(topic)


def database_url(env_var: str, data_dir: Path, filename: str) -> str:
    """``env_var`` if set (``postgresql+psycopg://...``), else a SQLite file in the data dir."""
    return env_str(env_var, f"sqlite:///{data_dir / filename}")


class Database:
    """An engine plus the two ways the services use it: read and write transactions."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = sa.engine.make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.engine = self._create_engine(pool_size)
        self._listeners: dict[str, list[Callable[[], None]]] = {}

    def on_commit(self, topic: str, listener: Callable[[], None]) -> None:
        """Call ``listener`` (in the committing thread) after each commit that marked ``topic``."""
        self._listeners.setdefault(topic, []).append(listener)

    def remove_listener(self, topic: str, listener: Callable[[], None]) -> None:
        listeners = self._listeners.get(topic, [])
        if listener in listeners:
            listeners.remove(listener)

    def _create_engine(self, pool_size: int) -> Engine:
        if not self.is_sqlite:
            return sa.create_engine(
                self.url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
            )
        if self.url.database and self.url.database != ":memory:":
            Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            self.url,
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=NullPool if self.url.database in (None, "", ":memory:") else None,
        )

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            mode = "IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "DEFERRED"
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that may write; on SQLite it holds the write lock from its start."""
        with _storage_errors(), self.engine.connect() as conn:
            conn = conn.execution_options(**{_WRITE: True})
            conn.info[_TOPICS] = set()
            try:
                with conn.begin():
                    yield conn
            finally:
                topics: set[str] = conn.info.pop(_TOPICS, set())
        for topic in topics:
            for listener in list(self._listeners.get(topic, ())):
                listener()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction with a consistent snapshot."""
        with _storage_errors(), self.engine.connect() as conn, conn.begin():
            yield conn

    def migrate(self, migrations: Sequence[Migration]) -> int:
        """Apply the migrations not yet applied, in order, each in its own transaction."""
        versions = sa.Table(
            "schema_version",
            sa.MetaData(),
            sa.Column("version", sa.Integer, primary_key=True),
        )
        with self.write() as conn:
            versions.create(conn, checkfirst=True)
            current = conn.execute(sa.select(sa.func.max(versions.c.version))).scalar() or 0
        for number, migration in enumerate(migrations, start=1):
            if number <= current:
                continue
            with self.write() as conn:
                migration(conn)
                conn.execute(versions.insert().values(version=number))
            current = number
        return current

    def samples(self) -> list[Metric]:
        """The connection pool's use, for :meth:`common.metrics.Metrics.sample`."""
        pool = self.engine.pool
        if not isinstance(pool, QueuePool):
            return []  # an in-memory database keeps no pool
        return [
            gauge(
                "mesh_db_pool_connections",
                "Connections the pool keeps open at most without overflow.",
                pool.size(),
            ),
            gauge(
                "mesh_db_pool_checked_out_connections",
                "Connections in use by a transaction now.",
                pool.checkedout(),
            ),
            gauge(
                "mesh_db_pool_open_connections",
                "Connections open now, in use or idle (more than the size is overflow).",
                pool.checkedin() + pool.checkedout(),
            ),
        ]

    def dispose(self) -> None:
        self.engine.dispose()


def replace_column(
    conn: Connection,
    table: str,
    old: str,
    new: str,
    value: str,
    *,
    nullable: bool = False,
    indexed: bool = False,
) -> None:
    """Replace column ``old`` of ``table`` by the BIGINT column ``new``, set to SQL ``value``.

    ``value`` is an expression over the old columns. Nothing happens when ``old`` is already gone.

    For migrations that change a column's unit on both databases: SQLite can neither alter a
    column's type nor drop an indexed column, so the new column is added, filled, indexed as
    the old one was, and the old one dropped. A NOT NULL column added to SQLite must have a
    default; it keeps ``DEFAULT 0``, which no insert of ours relies on.
    """
    if old not in {c["name"] for c in sa.inspect(conn).get_columns(table)}:
        return
    sqlite = conn.dialect.name == "sqlite"
    constraint = "" if nullable else " NOT NULL DEFAULT 0" if sqlite else ""
    conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {new} BIGINT{constraint}")
    conn.exec_driver_sql(f"UPDATE {table} SET {new} = {value}")  # noqa: S608 - our own names
    if not nullable and not sqlite:
        conn.exec_driver_sql(f"ALTER TABLE {table} ALTER COLUMN {new} SET NOT NULL")
    if indexed:
        conn.exec_driver_sql(f"DROP INDEX ix_{table}_{old}")
        conn.exec_driver_sql(f"CREATE INDEX ix_{table}_{new} ON {table} ({new})")
    conn.exec_driver_sql(f'ALTER TABLE {table} DROP COLUMN "{old}"')
