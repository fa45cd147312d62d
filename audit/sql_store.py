"""The event log on SQLite or PostgreSQL: events, head, Merkle tiles, checkpoints.

The events are chained by hash; a one-row head records the last. Sequences are assigned under
the write lock (SQLite's ``BEGIN IMMEDIATE``; on PostgreSQL a ``SELECT ... FOR UPDATE`` of the
head row), so they are gap-free and in commit order even with several writers. The tree's tiles
change in the same transaction as the events they cover. The same SQLAlchemy Core code runs on
both databases.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from audit import chain, tiles
from audit.checkpoints import Checkpoint
from audit.events import Event, EventFilter, Recorded, StoredEvent, conflict, redelivers
from audit.store import Head
from audit.tiles import TiledTree, TileKey
from common import times
from common.db import Database, Migration, add_column, announce, rows_after
from common.errors import MeshError

EVENTS_TOPIC = "events"
"""Announced by every append, so other replicas' subscriptions take the events at once; this
replica offers its own commits to its subscribers itself."""

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
    sa.Column("leaf_hash", sa.LargeBinary(32)),
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


_LEAF = events.c.leaf_hash
"""The event's Merkle leaf hash: level 0 of the tree, so no tile rewrites it at each commit."""

merkle_tiles = sa.Table(
    "merkle_tiles",
    metadata,
    sa.Column("level", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("hashes", sa.LargeBinary, nullable=False),
)
"""The Merkle tree's tiles of up to 256 hashes above level 0 (see :mod:`audit.tiles`)."""

checkpoints = sa.Table(
    "checkpoints",
    metadata,
    sa.Column("tree_size", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
    sa.Column("signed_ns", sa.BigInteger, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Index("ix_checkpoints_signed_ns", "signed_ns"),
)
"""Every checkpoint the log signed, one per tree size."""

_V1_TABLES = (events, chain_head)
_V2_TABLES = (merkle_tiles, checkpoints)


def _create(conn: Connection) -> None:
    metadata.create_all(conn, tables=list(_V1_TABLES))
    conn.execute(chain_head.insert().values(id=1, sequence=0, hash=chain.GENESIS))


ATTRIBUTE_COLUMNS = ("datacontenttype", "dataschema", "traceparent", "tracestate")
"""The optional CloudEvents attributes, NULL when an event has none (as every older one)."""


def _add_attributes(conn: Connection) -> None:
    """The attribute columns, for logs created before them; new ones have them from the start."""
    for name in ATTRIBUTE_COLUMNS:
        add_column(conn, "events", name, events.c[name].type.compile(dialect=conn.dialect))


def _create_ticket_key(conn: Connection) -> None:
    """A random key, made once per log."""
    ticket_key.create(conn, checkfirst=True)
    if conn.execute(sa.select(ticket_key.c.id)).first() is None:
        conn.execute(ticket_key.insert().values(id=1, key=secrets.token_hex(32)))


def _add_merkle_tree(conn: Connection) -> None:
    """Build the tree over the events already stored, once, as its column and tables come."""
    add_column(conn, "events", "leaf_hash", sa.LargeBinary().compile(dialect=conn.dialect))
    metadata.create_all(conn, tables=list(_V2_TABLES))
    tree = TiledTree.empty()
    after = 0
    while True:
        rows = conn.execute(rows_after(events.c.sequence, after, 10_000)).all()
        if not rows:
            break
        leaves = [chain.leaf_hash(_stored(row)) for row in rows]
        conn.execute(
            events.update()
            .where(events.c.sequence == sa.bindparam("at"))
            .values(leaf_hash=sa.bindparam("leaf")),
            [{"at": row.sequence, "leaf": leaf} for row, leaf in zip(rows, leaves, strict=True)],
        )
        grown, dirty = tree.extend(leaves)
        write_tiles(conn, tree, dirty)
        tree = grown
        after = rows[-1].sequence


MIGRATIONS: list[Migration] = [_create, _add_attributes, _create_ticket_key, _add_merkle_tree]

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
    """Insert event rows (values in :data:`COLUMNS` order) in as few statements as the driver can.

    The statement is compiled once per dialect; SQLAlchemy's per-row parameter processing,
    which costs more than SQLite's insert of the row, is skipped (the values are plain ints
    and strings, which need none). On SQLite the rows go as one multi-row ``INSERT`` (as many
    as its limit of bound values allows): every statement gives up the interpreter while SQLite
    works, and a busy server hands it back only after other threads' turns, so the driver's
    executemany, a statement per row, spent more time waiting than inserting. psycopg sends an
    executemany to PostgreSQL in one pipeline already.
    """
    found = _INSERTS.get(conn.dialect.name)
    if found is None:
        statement = sa.insert(events).values({name: sa.bindparam(name) for name in COLUMNS})
        compiled = statement.compile(dialect=conn.dialect)
        if compiled.positional and tuple(compiled.positiontup or ()) != COLUMNS:
            raise RuntimeError("the compiled insert binds its columns out of order")
        found = _INSERTS[conn.dialect.name] = (str(compiled), compiled.positional)
    sql, positional = found
    if not positional:  # psycopg's named parameters
        conn.exec_driver_sql(sql, [dict(zip(COLUMNS, row, strict=True)) for row in rows])
        return
    into, _, one_row = sql.partition(" VALUES ")
    per_statement = _sqlite_variables(conn) // len(COLUMNS)
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        values = ",".join([one_row] * len(chunk))
        conn.exec_driver_sql(f"{into} VALUES {values}", tuple(v for row in chunk for v in row))


def _sqlite_variables(conn: Connection) -> int:
    """How many values one SQLite statement may bind (32,766 by default since SQLite 3.32).

    SQLite's driver is the one whose parameters are positional.
    """
    dbapi = conn.connection.dbapi_connection
    return int(dbapi.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))  # type: ignore[union-attr]


def write_tiles(conn: Connection, before: TiledTree, dirty: dict[TileKey, bytes]) -> None:
    """Store tiles whole; the partial tiles of the tree ``before`` the append are replaced.

    Level 0 is not stored as tiles: the leaf hashes are in the events' own rows.
    """
    stored = set(tiles.partial_keys(before.size))
    keys = [key for key in dirty if key[0] > 0]
    new = [{"level": k[0], "idx": k[1], "hashes": dirty[k]} for k in keys if k not in stored]
    grown = [{"k_level": k[0], "k_idx": k[1], "hashes": dirty[k]} for k in keys if k in stored]
    if new:
        conn.execute(merkle_tiles.insert(), new)
    if grown:
        conn.execute(
            merkle_tiles.update()
            .where(
                merkle_tiles.c.level == sa.bindparam("k_level"),
                merkle_tiles.c.idx == sa.bindparam("k_idx"),
            )
            .values(hashes=sa.bindparam("hashes")),
            grown,
        )


def _read_tiles(conn: Connection, keys: Sequence[TileKey]) -> dict[TileKey, list[bytes]]:
    """Tiles by key; those of level 0 are read from the events' leaf hashes."""
    found: dict[TileKey, list[bytes]] = {}
    for level, index in keys:
        if level == 0:
            first = index * tiles.WIDTH + 1
            query = (
                sa.select(events.c.sequence, _LEAF)
                .where(events.c.sequence.between(first, first + tiles.WIDTH - 1))
                .order_by(events.c.sequence)
            )
            leaves: list[bytes] = []
            for sequence, leaf in conn.execute(query):
                if sequence != first + len(leaves) or leaf is None:
                    break  # a missing event ends the tile: hashes after it cannot be placed
                leaves.append(bytes(leaf))
            if leaves:
                found[(0, index)] = leaves
    ordered = sorted({key for key in keys if key[0] > 0})
    for start in range(0, len(ordered), _KEY_CHUNK):
        query = sa.select(merkle_tiles).where(
            sa.tuple_(merkle_tiles.c.level, merkle_tiles.c.idx).in_(
                ordered[start : start + _KEY_CHUNK]
            )
        )
        for row in conn.execute(query):
            found[(row.level, row.idx)] = tiles.split(row.hashes)
    return found


def _checkpoint(row: Any) -> Checkpoint:
    return Checkpoint(
        origin=row.note.partition("\n")[0],
        size=row.tree_size,
        root=bytes(row.root_hash),
        note=row.note,
        signed_ns=row.signed_ns,
    )


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


def _row(stored: StoredEvent, leaf: bytes) -> tuple[Any, ...]:
    """The values of ``stored``'s row, in :data:`COLUMNS` order; absent attributes NULL."""
    event, sequence, recorded_ns, previous_hash, hash_ = stored
    (id_, source, type_, subject, time_ns, actor, data, contenttype, schema, parent, state) = event
    return (
        sequence,
        id_,
        source,
        type_,
        subject,
        actor,
        recorded_ns if time_ns is None else time_ns,
        data,
        recorded_ns,
        previous_hash,
        hash_,
        contenttype or None,
        schema or None,
        parent or None,
        state or None,
        leaf,
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
    if selection.start_sequence:
        found.append(events.c.sequence >= selection.start_sequence)
    if selection.end_sequence:
        found.append(events.c.sequence <= selection.end_sequence)
    return found


class SqlEventStore:
    """:class:`audit.store.EventStore` on one :class:`common.db.Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._tree: TiledTree | None = None
        """The tree as this store's last append left it; only the writer touches it."""

    def migrate(self) -> None:
        self.db.migrate(MIGRATIONS)

    def close(self) -> None:
        self.db.dispose()

    def append(self, batch: Sequence[Event]) -> list[Recorded | MeshError]:
        """Redeliveries are rare, so the batch is first inserted as if every event were new.

        The originals are looked up only when the unique index refuses that.
        """
        keys = {event.key for event in batch}
        if len(keys) == len(batch):
            try:
                return self._append(batch, keys, fresh=True)
            except sa.exc.IntegrityError:
                pass  # some were stored before: that transaction rolled back, sort them out anew
        return self._append(batch, keys, fresh=False)

    def _append(
        self, batch: Sequence[Event], keys: set[tuple[str, str]], *, fresh: bool
    ) -> list[Recorded | MeshError]:
        with self.db.write() as conn:
            if not self.db.is_sqlite:
                conn.execute(_DURABLE_COMMIT)
            sequence, previous_hash = self._lock_head(conn)
            tree = self._tree_at(conn, sequence)
            recorded_ns = times.now()
            if fresh:
                stored, grown = self._insert(conn, batch, tree, previous_hash, recorded_ns)
                outcomes: list[Recorded | MeshError] = [Recorded(s, False) for s in stored]
            else:
                outcomes, grown = self._append_deduplicated(
                    conn, batch, keys, tree, previous_hash, recorded_ns
                )
        self._tree = grown
        return outcomes

    def _append_deduplicated(
        self,
        conn: Connection,
        batch: Sequence[Event],
        keys: set[tuple[str, str]],
        tree: TiledTree,
        previous_hash: str,
        recorded_ns: int,
    ) -> tuple[list[Recorded | MeshError], TiledTree]:
        originals = self._existing(conn, keys)
        first: dict[tuple[str, str], int] = {}
        for index, event in enumerate(batch):
            if event.key not in originals:
                first.setdefault(event.key, index)
        stored, grown = self._insert(
            conn, [batch[i] for i in first.values()], tree, previous_hash, recorded_ns
        )
        inserted = {s.event.key: s for s in stored}
        outcomes: list[Recorded | MeshError] = []
        for index, event in enumerate(batch):
            if first.get(event.key) == index:
                outcomes.append(Recorded(inserted[event.key], duplicate=False))
                continue
            original = originals.get(event.key) or inserted[event.key]
            same = redelivers(original.event, event)
            outcomes.append(Recorded(original, duplicate=True) if same else conflict(event))
        return outcomes, grown

    def _tree_at(self, conn: Connection, size: int) -> TiledTree:
        """The tree as of the head just locked.

        It is the one this store's last append left, unless another replica (or a restart)
        moved the head since.
        """
        if self._tree is not None and self._tree.size == size:
            return self._tree
        return TiledTree.load(size, _read_tiles(conn, tiles.partial_keys(size)))

    @staticmethod
    def _insert(
        conn: Connection,
        batch: Sequence[Event],
        tree: TiledTree,
        previous_hash: str,
        recorded_ns: int,
    ) -> tuple[list[StoredEvent], TiledTree]:
        """Chain ``batch`` after the head and insert it, moving the head and the tree along."""
        stored, leaves = chain.seal_all(
            batch, after=tree.size, recorded_ns=recorded_ns, previous_hash=previous_hash
        )
        if not stored:
            return stored, tree
        insert_rows(conn, list(map(_row, stored, leaves)))
        sequence, previous_hash = stored[-1].sequence, stored[-1].hash
        conn.execute(
            chain_head.update()
            .where(chain_head.c.id == 1)
            .values(sequence=sequence, hash=previous_hash)
        )
        grown, dirty = tree.extend(leaves)
        write_tiles(conn, tree, dirty)
        announce(conn, EVENTS_TOPIC)
        return stored, grown

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
            query = rows_after(events.c.sequence, after, chunk).where(events.c.sequence <= end)
            with self.db.read() as conn:
                rows = [_stored(row) for row in conn.execute(query)]
            if not rows:
                return
            yield from rows
            after = rows[-1].sequence

    def tree(self) -> TiledTree:
        """The tree up to the recorded head.

        Tiles only grow, so tiles read after the head hold every hash the head's tree needs,
        even where (PostgreSQL) each statement sees its own snapshot.
        """
        with self.db.read() as conn:
            found = conn.execute(sa.select(chain_head.c.sequence).where(chain_head.c.id == 1))
            size = int(found.scalar() or 0)
            return TiledTree.load(size, _read_tiles(conn, tiles.partial_keys(size)))

    def tiles(self, keys: Sequence[TileKey]) -> dict[TileKey, list[bytes]]:
        with self.db.read() as conn:
            return _read_tiles(conn, keys)

    def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        with self.db.write() as conn:
            exists = conn.execute(
                sa.select(checkpoints.c.tree_size).where(checkpoints.c.tree_size == checkpoint.size)
            ).first()
            if exists is None:
                conn.execute(
                    checkpoints.insert().values(
                        tree_size=checkpoint.size,
                        root_hash=checkpoint.root,
                        signed_ns=checkpoint.signed_ns,
                        note=checkpoint.note,
                    )
                )

    def checkpoint(self, size: int | None) -> Checkpoint | None:
        query = sa.select(checkpoints)
        if size is None:
            query = query.order_by(checkpoints.c.tree_size.desc()).limit(1)
        else:
            query = query.where(checkpoints.c.tree_size == size)
        with self.db.read() as conn:
            row = conn.execute(query).first()
        return None if row is None else _checkpoint(row)

    def find_checkpoints(
        self, *, start_ns: int | None, end_ns: int | None, before_size: int | None, limit: int
    ) -> list[Checkpoint]:
        conditions: list[sa.ColumnElement[bool]] = []
        if start_ns is not None:
            conditions.append(checkpoints.c.signed_ns >= start_ns)
        if end_ns is not None:
            conditions.append(checkpoints.c.signed_ns < end_ns)
        if before_size is not None:
            conditions.append(checkpoints.c.tree_size < before_size)
        query = (
            sa.select(checkpoints)
            .where(*conditions)
            .order_by(checkpoints.c.tree_size.desc())
            .limit(limit)
        )
        with self.db.read() as conn:
            return [_checkpoint(row) for row in conn.execute(query)]
