"""A log written before the CloudEvents attribute columns existed keeps verifying after them."""

from __future__ import annotations

import hashlib

import sqlalchemy as sa

from audit import chain
from audit.events import parse_event
from audit.sql_store import ATTRIBUTE_COLUMNS, MIGRATIONS, SqlEventStore
from audit.verification import verify_log
from common.canonical import canonical_json
from common.db import Database

OLD_EVENT = {
    "actor": "alice",
    "data": {"branch": "main"},
    "id": "before-1",
    "previous_hash": chain.GENESIS,
    "recorded_time": 1_700_000_000_000_000_500,
    "sequence": 1,
    "source": "/oms",
    "subject": "branches/main",
    "time": 1_700_000_000_000_000_000,
    "type": "oms.branch.created",
}
"""An event as the log stored it then, hashed by the recipe documented then."""


def _old_log(url: str) -> str:
    """A log of one event in the schema before the attribute columns; its hash."""
    db = Database(url)
    db.migrate(MIGRATIONS[:1])
    digest = hashlib.sha256(canonical_json(OLD_EVENT).encode()).hexdigest()
    with db.write() as conn:
        for name in ATTRIBUTE_COLUMNS:
            conn.exec_driver_sql(f"ALTER TABLE events DROP COLUMN {name}")
        conn.execute(
            sa.text(
                "INSERT INTO events (sequence, event_id, source, type, subject, actor, time_ns,"
                " data, recorded_ns, previous_hash, hash) VALUES (1, :id, :source, :type,"
                " :subject, :actor, :time, :data, :recorded, :previous, :hash)"
            ),
            {
                **{k: OLD_EVENT[k] for k in ("id", "source", "type", "subject", "actor", "time")},
                "data": canonical_json(OLD_EVENT["data"]),
                "recorded": OLD_EVENT["recorded_time"],
                "previous": chain.GENESIS,
                "hash": digest,
            },
        )
        conn.execute(sa.text("UPDATE chain_head SET sequence = 1, hash = :hash"), {"hash": digest})
    db.dispose()
    return digest


def test_an_event_stored_before_the_migration_still_verifies_after_it(tmp_path):
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    digest = _old_log(url)
    store = SqlEventStore(Database(url))
    try:
        store.migrate()
        columns = {c["name"] for c in sa.inspect(store.db.engine).get_columns("events")}
        assert set(ATTRIBUTE_COLUMNS) <= columns
        old = store.get(1)
        assert old is not None and old.hash == digest
        assert (old.event.datacontenttype, old.event.traceparent) == ("", "")
        store.append(
            [
                parse_event(
                    id="after-1",
                    source="/oms",
                    type="oms.branch.created",
                    subject="branches/main",
                    time_ns=None,
                    actor="alice",
                    data={},
                    datacontenttype="application/json",
                    traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                )
            ]
        )
        result = verify_log(store, start=0, end=0)
        assert result.broken is None
        assert result.verified == 2
        new = store.get(2)
        assert new is not None and new.event.datacontenttype == "application/json"
        assert new.event.time_ns == new.recorded_ns
    finally:
        store.close()


def test_migrating_twice_changes_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    _old_log(url)
    db = Database(url)
    try:
        assert db.migrate(MIGRATIONS) == len(MIGRATIONS)
        assert db.migrate(MIGRATIONS) == len(MIGRATIONS)
        assert verify_log(SqlEventStore(db), start=0, end=0).broken is None
    finally:
        db.dispose()
