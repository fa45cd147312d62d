"""Storage runtime: one SQLAlchemy engine per service, SQLite by default, PostgreSQL by URL.

SQLite runs in WAL mode with ``synchronous=FULL`` so a commit is on disk when it returns, and
write transactions start with ``BEGIN IMMEDIATE`` so concurrent writers queue instead of failing
half-way. Schemas are created and migrated on start through numbered migrations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from common.config import env_str

Migration = Callable[[Connection], None]

_WRITE = "mesh_write"


def database_url(env_var: str, data_dir: Path, filename: str) -> str:
    """``env_var`` if set (``postgresql+psycopg://...``), else a SQLite file in the data dir."""
    return env_str(env_var, f"sqlite:///{data_dir / filename}")


class Database:
    """An engine plus the two ways the services use it: read and write transactions."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = sa.engine.make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.engine = self._create_engine(pool_size)

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
        with self.engine.connect() as conn:
            conn = conn.execution_options(**{_WRITE: True})
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction with a consistent snapshot."""
        with self.engine.connect() as conn, conn.begin():
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

    def dispose(self) -> None:
        self.engine.dispose()
