"""Storage runtime: one SQLAlchemy engine per service, SQLite by default, PostgreSQL by URL.

SQLite runs in WAL mode with ``synchronous=FULL`` so a commit is on disk when it returns, and
write transactions start with ``BEGIN IMMEDIATE`` so concurrent writers queue instead of failing
half-way. Schemas are created and migrated on start through numbered migrations.

A database that cannot take a write (a full disk, a read-only file, a server that went away)
is UNAVAILABLE with a reason, never INTERNAL: the transaction rolled back, nothing of it is
stored, and the caller may retry once space is back. A write transaction can also mark topics
(:func:`mark`) whose listeners run once it has committed, so a relay wakes for its outbox
rows and never for its own reads. On PostgreSQL a marked commit is also announced to the other
processes sharing the database (``NOTIFY``), whose :class:`common.notify.Notifier` runs the
same listeners there, so replicas learn of each other's commits without polling.

Replicas on PostgreSQL share one database, each service in a schema of its own
(:func:`database_url`); migrations and first-start work run under a lock all of them share
(:meth:`Database.exclusive`).
"""

from __future__ import annotations

import logging
import uuid
import weakref
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
SHARED_URL = "MESH_DATABASE_URL"
"""One PostgreSQL database for every service, each in a schema named after it."""
_SENDERS: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()
"""Each :class:`Database`'s id, sent with its announcements so that it ignores its own (its
listeners ran already) and hears those of any other, in this process or another."""

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
    """Within a write transaction: run ``topic``'s listeners once it has committed.

    Here, and (on PostgreSQL) in every other process listening to this database.
    """
    conn.info.setdefault(_TOPICS, set()).add(topic)
    announce(conn, topic)


def announce(conn: Connection, topic: str) -> None:
    """Within a write transaction: tell other processes (not this one) once it has committed.

    For work this process already does on its own commits (the Audit Service offers its own
    events to its subscribers), so that only other replicas' commits wake it. PostgreSQL
    delivers a ``NOTIFY`` at commit, once per channel and payload, and never on rollback;
    SQLite serves one process and needs none.
    """
    if conn.dialect.name == "postgresql":
        sender = _SENDERS.get(conn.engine, "")
        conn.execute(sa.select(sa.func.pg_notify(channel(conn.engine.url, topic), sender))).all()


def namespace(url: sa.engine.URL) -> str:
    """What tells this service's data apart in its database: its schema, else the database."""
    options = url.query.get("options", "")
    for option in options if isinstance(options, tuple) else (options,):
        name, _, value = option.removeprefix("-c").partition("=")
        if name.strip() == "search_path":
            return value.split(",")[0].strip()
    return url.database or ""


def channel(url: sa.engine.URL, topic: str) -> str:
    """The ``LISTEN`` channel of ``topic`` in this service's schema (channels span a database)."""
    return f"mesh.{namespace(url)}.{topic}"


def database_url(env_var: str, data_dir: Path, filename: str) -> str:
    """The service's database: the first of these that is set.

    - ``env_var``, a URL of its own (``postgresql+psycopg://...``);
    - ``MESH_DATABASE_URL``, one PostgreSQL database shared by every service: this one gets
      the schema named after ``filename`` (``users``, ``oms``, ``audit``), through its
      ``search_path``;
    - a SQLite file in the data folder.
    """
    own = env_str(env_var, "")
    if own:
        return own
    shared = env_str(SHARED_URL, "")
    if not shared:
        return f"sqlite:///{data_dir / filename}"
    url = sa.engine.make_url(shared)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")  # the driver the mesh ships
    schema = Path(filename).stem
    return url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )


class Database:
    """An engine plus the two ways the services use it: read and write transactions."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = sa.engine.make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.engine = self._create_engine(pool_size)
        self.id = uuid.uuid4().hex
        """What this database's announcements are signed with (see :mod:`common.notify`)."""
        _SENDERS[self.engine] = self.id
        self._listeners: dict[str, list[Callable[[], None]]] = {}

    def on_commit(self, topic: str, listener: Callable[[], None]) -> None:
        """Call ``listener`` (in the committing thread) after each commit that marked ``topic``.

        And, where a :class:`common.notify.Notifier` follows ``topic``, in a thread of the
        server's pool after another process's commit that marked or announced it.
        """
        self._listeners.setdefault(topic, []).append(listener)

    def notify_listeners(self, topic: str) -> None:
        """Run ``topic``'s listeners in this thread."""
        for listener in list(self._listeners.get(topic, ())):
            listener()

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
            self.notify_listeners(topic)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction with a consistent snapshot."""
        with _storage_errors(), self.engine.connect() as conn, conn.begin():
            yield conn

    @property
    def namespace(self) -> str:
        return namespace(self.url)

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """Hold lock ``name`` of this service's data against every process sharing the database.

        A PostgreSQL session advisory lock, held by a connection of its own and freed by the
        server if this process dies; SQLite serves one process, whose callers need none. Replicas
        starting together take it to migrate and to create what the first start creates, so
        exactly one does each, and the others find it done.
        """
        if self.is_sqlite:
            yield
            return
        key = f"{self.namespace}:{name}"
        with _storage_errors(), self.engine.connect() as conn:
            conn.execute(sa.select(sa.func.pg_advisory_lock(sa.func.hashtext(key)))).all()
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sa.select(sa.func.pg_advisory_unlock(sa.func.hashtext(key)))).all()
                conn.commit()

    def try_lease(self, name: str) -> Lease | None:
        """Lock ``name`` against every process sharing the database, unless one holds it.

        The lock lives as long as the lease's connection: a holder that dies (even by
        SIGKILL) loses it at once, and another process may take it. For the one-per-database
        workers, such as an outbox's relay. On SQLite (one process) the lease is always given.
        """
        if self.is_sqlite:
            return Lease(None)
        conn = self.engine.connect()
        try:
            with _storage_errors():
                key = sa.func.hashtext(f"{self.namespace}:{name}")
                taken = conn.execute(sa.select(sa.func.pg_try_advisory_lock(key))).scalar()
                conn.commit()
        except BaseException:
            conn.close()
            raise
        if taken:
            return Lease(conn)
        conn.close()
        return None

    def migrate(self, migrations: Sequence[Migration]) -> int:
        """Apply the migrations not yet applied, in order, each in its own transaction.

        Under :meth:`exclusive`, in the service's schema (created here when it is missing).
        """
        with self.exclusive("migrate"):
            if not self.is_sqlite and self.namespace != self.url.database:
                with self.write() as conn:
                    conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{self.namespace}"')
            return self._migrate(migrations)

    def _migrate(self, migrations: Sequence[Migration]) -> int:
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


class Lease:
    """A lock :meth:`Database.try_lease` gave, held by its own connection until released."""

    def __init__(self, conn: Connection | None) -> None:
        self._conn = conn

    def confirm(self) -> None:
        """Raise UNAVAILABLE unless the lock is still held (its connection still answers)."""
        if self._conn is not None:
            with _storage_errors():
                self._conn.exec_driver_sql("SELECT 1").all()
                self._conn.commit()

    def release(self) -> None:
        """Give the lock up (closing its connection ends the session that holds it)."""
        if self._conn is not None:
            self._conn.invalidate()
            self._conn.close()
            self._conn = None


def rows_after(key: sa.Column[Any], after: Any, limit: int) -> sa.Select[Any]:
    """At most ``limit`` rows of ``key``'s table past ``after``, in ``key``'s order.

    How every list reads a page: from the last key the previous page returned, so a page costs
    the same however deep it is, and rows written meanwhile are neither skipped nor repeated.
    Narrow it with ``.where`` or widen it with ``.add_columns``.
    """
    return sa.select(key.table).where(key > after).order_by(key).limit(limit)


def columns(conn: Connection, table: str) -> set[str]:
    """The names of ``table``'s columns as the database has them now, for migrations."""
    return {c["name"] for c in sa.inspect(conn).get_columns(table)}


def add_column(conn: Connection, table: str, name: str, definition: str) -> None:
    """Add column ``name`` of SQL type and constraints ``definition`` to ``table``, if missing.

    For migrations that add a column: a database created after the column came has it from
    its first migration (which creates the current tables), so there the step does nothing.
    """
    if name not in columns(conn, table):
        conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {name} {definition}")


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
    if old not in columns(conn, table):
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
