"""How a service should wait for its database: the bounded thread pool it uses, or async drivers.

The same point read (a branch head by name, as every OMS read makes) runs on SQLite and, when
the local server answers, on PostgreSQL, ``--tasks`` at a time from one event loop:

- ``pool``: SQLAlchemy's synchronous engine in :class:`common.blocking.Blocking`, as the
  services do;
- ``async driver``: SQLAlchemy's asyncio engine on ``aiosqlite`` or psycopg's async mode;
- ``on the loop``: the synchronous read called on the loop itself, which no service may do
  (it stalls every other call) but which shows the cost of the read alone: the ceiling.

Beside reads/s, the ratio to the ceiling and the share of a core the process used.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from bench._tools import cpu_seconds, table
from common.blocking import Blocking
from common.db import Database
from oms.sql_store import SqlStore, branches
from tests.support.postgres import SERVER

_HEAD = sa.select(branches.c.head).where(branches.c.name == sa.bindparam("name"))


async def _rate(
    read: Callable[[], Awaitable[object]], *, reads: int, tasks: int
) -> tuple[float, float]:
    async def worker() -> None:
        for _ in range(reads // tasks):
            await read()

    await read()  # warm up the pools
    started, cpu = time.perf_counter(), cpu_seconds(os.getpid())
    await asyncio.gather(*(worker() for _ in range(tasks)))
    wall = time.perf_counter() - started
    return reads / wall, (cpu_seconds(os.getpid()) - cpu) / wall


async def _measure(sync_url: str, async_url: str, *, reads: int, tasks: int) -> list[list[object]]:
    db = Database(sync_url)
    SqlStore(db).close()  # creates the schema and main
    db = Database(sync_url)
    blocking = Blocking(16)
    async_engine = create_async_engine(async_url)

    def sync_read() -> object:
        with db.read() as conn:
            return conn.execute(_HEAD, {"name": "main"}).scalar()

    async def on_loop() -> object:
        return sync_read()

    async def pooled() -> object:
        return await blocking.run(sync_read)

    async def driver() -> object:
        async with async_engine.connect() as conn:
            return (await conn.execute(_HEAD, {"name": "main"})).scalar()

    rows = []
    ceiling = None
    for name, read in (("on the loop", on_loop), ("pool", pooled), ("async driver", driver)):
        rate, cores = await _rate(read, reads=reads, tasks=tasks)
        ceiling = ceiling or rate
        rows.append([name, rate, rate / ceiling, cores])
    await async_engine.dispose()
    blocking.close()
    db.dispose()
    return rows


def _postgres_url() -> str | None:
    probe = sa.create_engine(f"{SERVER}/test", connect_args={"connect_timeout": 3})
    try:
        with probe.connect():
            return f"{SERVER}/test"
    except sa.exc.OperationalError:
        return None
    finally:
        probe.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--reads", type=int, default=20_000)
    parser.add_argument("--tasks", type=int, default=10)
    args = parser.parse_args([] if argv is None else argv)
    header = ["", "reads/s", "ratio", "cores"]
    with tempfile.TemporaryDirectory(prefix="bench-blocking-") as scratch:
        path = Path(scratch) / "oms.db"
        sqlite = asyncio.run(
            _measure(
                f"sqlite:///{path}",
                f"sqlite+aiosqlite:///{path}",
                reads=args.reads,
                tasks=args.tasks,
            )
        )
    print(f"a branch head by name, {args.reads} reads, {args.tasks} at a time")
    print("SQLite (WAL, a file in a temporary folder)")
    print(table(sqlite, header))
    postgres = _postgres_url()
    if postgres is None:
        print("PostgreSQL: not reachable on 127.0.0.1:5432, skipped")
        return
    scratch_schema = f"bench_{os.getpid()}"
    engine = sa.create_engine(postgres, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{scratch_schema}"'))
    try:
        options = f"?options=-csearch_path%3D{scratch_schema}"
        rows = asyncio.run(
            _measure(postgres + options, postgres + options, reads=args.reads, tasks=args.tasks)
        )
        print("PostgreSQL (local server, psycopg; the async driver is its asyncio mode)")
        print(table(rows, header))
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{scratch_schema}" CASCADE'))
        engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1:])
