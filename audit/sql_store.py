"""The event log on SQLite or PostgreSQL: a table of chained events and a one-row head.

Sequences are assigned under the write lock (SQLite's ``BEGIN IMMEDIATE``; on PostgreSQL a
``SELECT ... FOR UPDATE`` of the head row), so they are gap-free and in commit order even with
several writers. The same SQLAlchemy Core code runs on both databases.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from audit import chain
from audit.events import Event, EventFilter, Recorded, StoredEvent, conflict, redelivers
from audit.store import Head
from common import times
from common.db import Database, Migration
from common.errors import MeshError

metadata = sa.MetaData()

_SEQUENCE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""INTEGER on SQLite makes the sequence the rowid: the table is stored in log order."""

events = sa.Table(
    "events",
    metadata,
    sa.Column("sequence", _SEQUENCE, primary_key=True, autoincrement=False),
    sa.Column("event_id", sa.String(256), nullable=False),
    sa.Column("source", sa.String(256), nullable=False),
    sa.Column("type", sa.String(128), nullable=False),
    sa.Column("subject", sa.String(512), nullable=False),
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Column("time_ns", sa.BigInteger, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("recorded_ns", sa.BigInteger, nullable=False),
    sa.Column("previous_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("datacontenttype", sa.String(256), nullable=True),
    sa.Column("dataschema", sa.String(2048), nullable=True),
    sa.Column("traceparent", sa.String(256), nullable=True),
    sa.Column("tracestate", sa.Text, nullable=True),
    sa.UniqueConstraint("source", "event_id", name="uq_events_source_event_id"),
    sa.Index("ix_events_type_sequence", "type", "sequence"),
    sa.Index("ix_events_source_sequence", "source", "sequence"),
    sa.Index("ix_events_subject_sequence", "subject", "sequence"),
    sa.Index("ix_events_actor_sequence", "actor", "sequence"),
    sa.Index("ix_events_event_id", "event_id"),
    sa.Index("ix_events_time_ns", "time_ns"),
)

chain_head = sa.Table(
    "chain_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("sequence", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)
"""One row (id 1): the last sequence and hash, locked by every append, checked by VerifyLog."""

ticket_key = sa.Table(
    "ticket_key",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("key", sa.String(64), nullable=False),
)
"""One row (id 1): the hex key subscription tickets are signed with, the same for every
replica sharing the database (:mod:`common.tickets`)."""


def _create(conn: Connection) -> None:
    metadata.create_all(conn)
    conn.execute(chain_head.insert().values(id=1, sequence=0, hash=chain.GENESIS))


ATTRIBUTE_COLUMNS = ("datacontenttype", "dataschema", "traceparent", "tracestate")
"""The optional CloudEvents attributes, NULL when an event has none (as every older one)."""


def _add_attributes(conn: Connection) -> None:
    """The attribute columns, for logs created before them; new ones have them from the start."""
    present = {c["name"] for c in sa.inspect(conn).get_columns("events")}
    for name in ATTRIBUTE_COLUMNS:
        if name not in present:
            column = events.c[name]
            kind = column.type.compile(dialect=conn.dialect)
            conn.exec_driver_sql(f"ALTER TABLE events ADD COLUMN {name} {kind}")


def _create_ticket_key(conn: Connection) -> None:
    """A random key, made once per log."""
    ticket_key.create(conn, checkfirst=True)
    if conn.execute(sa.select(ticket_key.c.id)).first() is None:
        conn.execute(ticket_key.insert().values(id=1, key=secrets.token_hex(32)))


MIGRATIONS: list[Migration] = [_create, _add_attributes, _create_ticket_key]

_DURABLE_COMMIT = sa.text(
    "SELECT set_config('synchronous_commit', 'on', true)"
    " WHERE current_setting('synchronous_commit') = 'off'"
)
"""PostgreSQL: an ack promises a flushed commit, whatever the server's default says; any
setting but ``off`` already waits for the local flush and is left alone."""

_KEY_CHUNK = 400
"""(source, id) pairs per dedup lookup, well under every database's bound-parameter limit."""


COLUMNS = tuple(column.name for column in events.columns)
"""The order of the values of a row given to :func:`insert_rows`."""
_INSERTS: dict[str, tuple[str, bool]] = {}


def insert_rows(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert event rows (values in :data:`COLUMNS` order) as the driver's own executemany.

    The statement is compiled once per dialect; SQLAlchemy's per-row parameter processing,
    which costs more than SQLite's insert of the row, is skipped (the values are plain ints
    and strings, which need none).
    """
    found = _INSERTS.get(conn.dialect.name)
    if found is None:
        statement = sa.insert(events).values({name: sa.bindparam(name) for name in COLUMNS})
        compiled = statement.compile(dialect=conn.dialect)
        if compiled.positional and tuple(compiled.positiontup or ()) != COLUMNS:
            raise RuntimeError("the compiled insert binds its columns out of order")
        found = _INSERTS[conn.dialect.name] = (str(compiled), compiled.positional)
    sql, positional = found
    if positional:
        conn.exec_driver_sql(sql, list(rows))
    else:
        conn.exec_driver_sql(sql, [dict(zip(COLUMNS, row, strict=True)) for row in rows])


def _stored(row: Any) -> StoredEvent:
    return StoredEvent(
        event=Event(
            id=row.event_id,
            source=row.source,
            type=row.type,
            subject=row.subject,
            time_ns=row.time_ns,
            actor=row.actor,
            data=row.data,
            datacontenttype=row.datacontenttype or "",
            dataschema=row.dataschema or "",
            traceparent=row.traceparent or "",
            tracestate=row.tracestate or "",
        ),
        sequence=row.sequence,
        recorded_ns=row.recorded_ns,
        previous_hash=row.previous_hash,
        hash=row.hash,
    )


def _row(stored: StoredEvent) -> tuple[Any, ...]:
    event = stored.event
    return (
        stored.sequence,
        event.id,
        event.source,
        event.type,
        event.subject,
        event.actor,
        stored.time_ns,
        event.data,
        stored.recorded_ns,
        stored.previous_hash,
        stored.hash,
        event.datacontenttype or None,
        event.dataschema or None,
        event.traceparent or None,
        event.tracestate or None,
    )


def _conditions(selection: EventFilter) -> list[sa.ColumnElement[bool]]:
    found: list[sa.ColumnElement[bool]] = []
    if selection.type.endswith("."):
        found.append(events.c.type.startswith(selection.type, autoescape=True))
    elif selection.type:
        found.append(events.c.type == selection.type)
    for column, value in (
        (events.c.source, selection.source),
        (events.c.subject, selection.subject),
        (events.c.actor, selection.actor),
        (events.c.event_id, selection.id),
    ):
        if value:
            found.append(column == value)
    if selection.start_ns is not None:
        found.append(events.c.time_ns >= selection.start_ns)
    if selection.end_ns is not None:
        found.append(events.c.time_ns < selection.end_ns)
    return found


class SqlEventStore:
    """:class:`audit.store.EventStore` on one :class:`common.db.Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def migrate(self) -> None:
        self.db.migrate(MIGRATIONS)

    def close(self) -> None:
        self.db.dispose()

    def append(self, batch: Sequence[Event]) -> list[Recorded | MeshError]:
        """Redeliveries are rare, so the batch is first inserted as if every event were new.

        The originals are looked up only when the unique index refuses that.
        """
        with self.db.write() as conn:
            if not self.db.is_sqlite:
                conn.execute(_DURABLE_COMMIT)
            sequence, previous_hash = self._lock_head(conn)
            recorded_ns = times.now()
            keys = {event.key for event in batch}
            if len(keys) == len(batch):
                try:
                    with conn.begin_nested():
                        stored = self._insert(conn, batch, sequence, previous_hash, recorded_ns)
                    return [Recorded(s, duplicate=False) for s in stored]
                except sa.exc.IntegrityError:
                    pass  # some were stored before: sort them out below
            originals = self._existing(conn, keys)
            first: dict[tuple[str, str], int] = {}
            for index, event in enumerate(batch):
                if event.key not in originals:
                    first.setdefault(event.key, index)
            inserted = {
                s.event.key: s
                for s in self._insert(
                    conn, [batch[i] for i in first.values()], sequence, previous_hash, recorded_ns
                )
            }
            outcomes: list[Recorded | MeshError] = []
            for index, event in enumerate(batch):
                if first.get(event.key) == index:
                    outcomes.append(Recorded(inserted[event.key], duplicate=False))
                    continue
                original = originals.get(event.key) or inserted[event.key]
                same = redelivers(original.event, event)
                outcomes.append(Recorded(original, duplicate=True) if same else conflict(event))
            return outcomes

    @staticmethod
    def _insert(
        conn: Connection,
        batch: Sequence[Event],
        sequence: int,
        previous_hash: str,
        recorded_ns: int,
    ) -> list[StoredEvent]:
        """Chain ``batch`` after the head and insert it, moving the head to its last event."""
        stored: list[StoredEvent] = []
        for event in batch:
            sequence += 1
            link = chain.link(
                event, sequence=sequence, recorded_ns=recorded_ns, previous_hash=previous_hash
            )
            previous_hash = link.hash
            stored.append(link)
        if stored:
            insert_rows(conn, [_row(s) for s in stored])
            conn.execute(
                chain_head.update()
                .where(chain_head.c.id == 1)
                .values(sequence=sequence, hash=previous_hash)
            )
        return stored

    @staticmethod
    def _lock_head(conn: Connection) -> tuple[int, str]:
        query = sa.select(chain_head.c.sequence, chain_head.c.hash).where(chain_head.c.id == 1)
        row = conn.execute(query.with_for_update()).one()
        return int(row.sequence), str(row.hash)

    @staticmethod
    def _existing(
        conn: Connection, keys: set[tuple[str, str]]
    ) -> dict[tuple[str, str], StoredEvent]:
        found: dict[tuple[str, str], StoredEvent] = {}
        ordered = sorted(keys)
        for start in range(0, len(ordered), _KEY_CHUNK):
            chunk = ordered[start : start + _KEY_CHUNK]
            query = sa.select(events).where(
                sa.tuple_(events.c.source, events.c.event_id).in_(chunk)
            )
            for row in conn.execute(query):
                stored = _stored(row)
                found[stored.event.key] = stored
        return found

    def head(self) -> Head:
        """One statement reads both, so both come from the same snapshot.

        PostgreSQL takes a snapshot per statement: read apart, a commit landing in between could
        make an intact log look as if its head did not match.
        """

        def head_column(column: sa.Column[Any]) -> sa.ScalarSelect[Any]:
            return sa.select(column).where(chain_head.c.id == 1).scalar_subquery()

        query = sa.select(
            head_column(chain_head.c.sequence),
            head_column(chain_head.c.hash),
            sa.select(sa.func.max(events.c.sequence)).scalar_subquery(),
        )
        with self.db.read() as conn:
            sequence, hash_, last_stored = conn.execute(query).one()
        if sequence is None:  # the head row itself is gone
            return Head(0, chain.GENESIS, int(last_stored or 0))
        return Head(int(sequence), str(hash_), int(last_stored or 0))

    def ticket_key(self) -> bytes:
        with self.db.read() as conn:
            return bytes.fromhex(conn.execute(sa.select(ticket_key.c.key)).scalar_one())

    def last_sequence(self) -> int:
        with self.db.read() as conn:
            return int(conn.execute(sa.select(sa.func.max(events.c.sequence))).scalar() or 0)

    def get(self, sequence: int) -> StoredEvent | None:
        with self.db.read() as conn:
            row = conn.execute(sa.select(events).where(events.c.sequence == sequence)).one_or_none()
        return None if row is None else _stored(row)

    def find(
        self,
        selection: EventFilter,
        *,
        after: int = 0,
        before: int | None = None,
        newest_first: bool = False,
        limit: int,
    ) -> list[StoredEvent]:
        conditions = _conditions(selection)
        conditions.append(events.c.sequence > after)
        if before is not None:
            conditions.append(events.c.sequence < before)
        order = events.c.sequence.desc() if newest_first else events.c.sequence.asc()
        query = sa.select(events).where(*conditions).order_by(order).limit(limit)
        with self.db.read() as conn:
            return [_stored(row) for row in conn.execute(query)]

    def scan(self, start: int, end: int, *, chunk: int = 1000) -> Iterator[StoredEvent]:
        after = start - 1
        while after < end:
            query = (
                sa.select(events)
                .where(events.c.sequence > after, events.c.sequence <= end)
                .order_by(events.c.sequence)
                .limit(chunk)
            )
            with self.db.read() as conn:
                rows = [_stored(row) for row in conn.execute(query)]
            if not rows:
                return
            yield from rows
            after = rows[-1].sequence
