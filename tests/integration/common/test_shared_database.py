"""Replicas sharing one PostgreSQL database: schemas per service, leases, commit announcements."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from common import errors
from common.blocking import Blocking
from common.db import Database, database_url, mark
from common.notify import Notifier
from tests.support.postgres import scratch_database

pytestmark = pytest.mark.postgres


@pytest.fixture
def shared_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A service's URL inside the one database ``MESH_DATABASE_URL`` names, in plain libpq form."""
    with scratch_database("shared") as url:
        monkeypatch.setenv("MESH_DATABASE_URL", url.replace("+psycopg", ""))
        monkeypatch.delenv("MESH_OMS_DATABASE_URL", raising=False)
        yield database_url("MESH_OMS_DATABASE_URL", Path("unused"), "oms.db")


def _table(name: str) -> sa.Table:
    return sa.Table(name, sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True))


def test_each_service_migrates_into_its_own_schema_once_however_many_start(shared_url):
    created: list[int] = []

    def migration(conn: sa.Connection) -> None:
        created.append(1)
        _table("things").create(conn)

    replicas = [Database(shared_url) for _ in range(3)]
    threads = [threading.Thread(target=db.migrate, args=([migration],)) for db in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert created == [1]
    with replicas[0].read() as conn:
        schemas = conn.exec_driver_sql(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = 'things'"
        ).scalars()
        assert list(schemas) == ["oms"]
    for db in replicas:
        db.dispose()


def test_a_lease_is_held_by_one_process_and_freed_when_its_connection_dies(shared_url):
    first, second = Database(shared_url), Database(shared_url)
    lease = first.try_lease("relay")
    assert lease is not None
    assert second.try_lease("relay") is None
    with first.read() as conn:
        conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks"
                " WHERE locktype = 'advisory' AND pid <> pg_backend_pid() AND database ="
                " (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        ).all()
    with pytest.raises(errors.Unavailable):
        lease.confirm()
    taken = second.try_lease("relay")
    assert taken is not None
    lease.release()
    taken.release()
    assert first.try_lease("relay") is not None
    first.dispose()
    second.dispose()


def test_another_process_s_commit_runs_the_listeners_and_its_own_do_not(shared_url):
    writer, follower = Database(shared_url), Database(shared_url)
    blocking = Blocking(2)
    heard: list[str] = []

    async def scenario() -> None:
        woke = asyncio.Event()
        loop = asyncio.get_running_loop()

        def listener() -> None:
            heard.append("rows")
            loop.call_soon_threadsafe(woke.set)

        follower.on_commit("rows", listener)
        task = asyncio.create_task(Notifier(follower, ["rows"], blocking=blocking).run())
        await asyncio.wait_for(woke.wait(), 10)  # once on connecting
        heard.clear()
        woke.clear()
        with writer.write() as conn:
            conn.execute(sa.text("SELECT 1"))  # not marked: announces nothing
        with writer.write() as conn:
            mark(conn, "rows")
        await asyncio.wait_for(woke.wait(), 10)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    assert heard == ["rows"]
    blocking.close()
    writer.dispose()
    follower.dispose()
