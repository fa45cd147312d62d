"""The event store on SQLite and PostgreSQL: gap-free chained appends, dedup, filters."""

from __future__ import annotations

import contextlib
import sqlite3
import threading

import pytest
import sqlalchemy as sa

from audit import chain
from audit.events import EventFilter, Recorded, parse_event
from audit.sql_store import SqlEventStore, chain_head
from audit.verification import verify_log
from common.db import Database
from common.errors import AlreadyExists
from tests.support.postgres import scratch_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'audit.db'}"
        else:
            url = stack.enter_context(scratch_database("audit"))
        db = Database(url)
        stack.callback(db.dispose)
        result = SqlEventStore(db)
        result.migrate()
        yield result


def event(n, **changes):
    fields = {
        "id": f"e-{n}",
        "source": "/oms",
        "type": "oms.branch.created",
        "subject": f"branches/b{n}",
        "time_ns": 1_700_000_000_000_000_000 + n,
        "actor": "alice",
        "data": {"n": n},
    }
    return parse_event(**{**fields, **changes})


def test_appends_are_chained_and_gap_free(store):
    first = store.append([event(1), event(2)])
    second = store.append([event(3)])
    stored = [o.stored for o in first + second if isinstance(o, Recorded)]
    assert [s.sequence for s in stored] == [1, 2, 3]
    assert stored[0].previous_hash == chain.GENESIS
    assert [s.previous_hash for s in stored[1:]] == [s.hash for s in stored[:-1]]
    assert store.head() == (3, stored[-1].hash, 3)
    assert store.get(2) == stored[1]


def test_redelivery_returns_the_original_and_reuse_is_a_conflict(store):
    (original,) = store.append([event(1)])
    outcomes = store.append([event(2), event(1), event(2), event(1, actor="mallory")])
    assert isinstance(original, Recorded)
    assert outcomes[0] == Recorded(outcomes[0].stored, duplicate=False)
    assert outcomes[1] == Recorded(original.stored, duplicate=True)
    assert outcomes[2] == Recorded(outcomes[0].stored, duplicate=True)
    assert isinstance(outcomes[3], AlreadyExists)
    assert outcomes[3].reason == "EVENT_ID_CONFLICT"
    assert store.last_sequence() == 2


def test_concurrent_appends_stay_gap_free(store):
    def writer(w):
        for n in range(10):
            store.append([event(w * 100 + n * 2), event(w * 100 + n * 2 + 1)])

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    stored = list(store.scan(1, 1000))
    assert [s.sequence for s in stored] == list(range(1, 81))
    verifier = chain.ChainVerifier(start_sequence=1, previous_hash=chain.GENESIS)
    assert all(verifier.feed(s) for s in stored)
    assert store.head() == (80, stored[-1].hash, 80)


def test_filters_and_order(store):
    store.append(
        [
            event(1, type="oms.branch.created"),
            event(2, type="oms.branch_x.created"),
            event(3, type="oms.branchxx.created", actor="bob"),
            event(4, type="oms.branch.merged", source="/other"),
        ]
    )

    def ids(selection, **options):
        return [s.event.id for s in store.find(selection, **{"limit": 10, **options})]

    assert ids(EventFilter(type="oms.branch.")) == ["e-1", "e-4"]
    assert ids(EventFilter(type="oms.branch_x.")) == ["e-2"]
    assert ids(EventFilter(type="oms.branch.created")) == ["e-1"]
    assert ids(EventFilter(actor="bob")) == ["e-3"]
    assert ids(EventFilter(source="/other")) == ["e-4"]
    assert ids(EventFilter(id="e-2")) == ["e-2"]
    base = 1_700_000_000_000_000_000
    assert ids(EventFilter(start_ns=base + 2, end_ns=base + 4)) == ["e-2", "e-3"]
    assert ids(EventFilter(), newest_first=True) == ["e-4", "e-3", "e-2", "e-1"]
    assert ids(EventFilter(), after=1, before=4) == ["e-2", "e-3"]
    assert ids(EventFilter(), newest_first=True, before=3, limit=1) == ["e-2"]


def test_redelivery_inside_a_batch_of_new_events_keeps_the_chain_gap_free(store):
    (original,) = store.append([event(1)])
    outcomes = store.append([event(5), event(1), event(6)])
    assert [(o.stored.sequence, o.duplicate) for o in outcomes] == [
        (2, False),
        (1, True),
        (3, False),
    ]
    assert outcomes[1] == Recorded(original.stored, duplicate=True)
    stored = list(store.scan(1, 10))
    assert [s.event.id for s in stored] == ["e-1", "e-5", "e-6"]
    verifier = chain.ChainVerifier(start_sequence=1, previous_hash=chain.GENESIS)
    assert all(verifier.feed(s) for s in stored)
    assert store.head() == (3, stored[-1].hash, 3)


def test_a_batch_larger_than_one_statement_binds_is_stored_whole_and_in_order(tmp_path):
    """SQLite takes a batch as multi-row INSERTs, as many rows each as its limit allows."""
    db = Database(f"sqlite:///{tmp_path / 'audit.db'}")

    @sa.event.listens_for(db.engine, "connect")
    def _few_variables(dbapi, _record):
        dbapi.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 100)  # 6 rows of 16 columns

    inserts = []

    @sa.event.listens_for(db.engine, "before_cursor_execute")
    def _count(_conn, _cursor, statement, *_):
        if statement.startswith("INSERT INTO events"):
            inserts.append(statement.count("),(") + 1)

    try:
        store = SqlEventStore(db)
        store.migrate()
        outcomes = store.append([event(n) for n in range(1, 21)])
        assert inserts == [6, 6, 6, 2]
        assert [o.stored.sequence for o in outcomes] == list(range(1, 21))
        stored = list(store.scan(1, 30))
        assert [s.event.id for s in stored] == [f"e-{n}" for n in range(1, 21)]
        verifier = chain.ChainVerifier(start_sequence=1, previous_hash=chain.GENESIS)
        assert all(verifier.feed(s) for s in stored)
    finally:
        db.dispose()


def test_a_commit_during_verification_is_not_taken_for_a_break(store):
    """VerifyLog reads the head, then the log.

    An append landing in between must not look like a rewritten head.
    """
    store.append([event(1), event(2)])
    read_head = store.head

    def head_then_a_commit():
        snapshot = read_head()
        store.append([event(3)])
        return snapshot

    store.head = head_then_a_commit
    result = verify_log(store, start=0, end=0)
    assert result.broken is None
    assert (result.verified, result.end_sequence, result.head_sequence) == (2, 2, 2)
    store.head = read_head
    assert verify_log(store, start=0, end=0).verified == 3


def test_head_without_its_row(store):
    store.append([event(1)])
    with store.db.write() as conn:
        conn.execute(chain_head.delete())
    assert store.head() == (0, chain.GENESIS, 1)
    result = verify_log(store, start=0, end=0)
    assert result.broken is not None and result.broken.kind is chain.BreakKind.HEAD_MISMATCH


@pytest.mark.postgres
def test_appends_commit_durably_even_where_the_database_says_otherwise(tmp_path):
    with scratch_database("audit") as url:
        db = Database(url)
        try:
            with db.write() as conn:
                name = conn.execute(sa.text("SELECT current_database()")).scalar_one()
                conn.execute(sa.text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
            db.dispose()
            settings = []

            @sa.event.listens_for(db.engine, "commit")
            def seen(conn):
                setting = conn.exec_driver_sql("SHOW synchronous_commit").scalar_one()
                settings.append(setting)

            store = SqlEventStore(db)
            store.migrate()
            settings.clear()
            store.append([event(1)])
            assert settings == ["on"]
            with db.read() as conn:
                assert conn.exec_driver_sql("SHOW synchronous_commit").scalar_one() == "off"
        finally:
            db.dispose()
