"""Audit ingest: committed events/s for unary, batch and stream, against the database ceiling.

Each path runs against a real Audit Service process on a fresh data folder. Then the very rows
that run stored are inserted into a fresh database of the same schema, with the same
durability (SQLite WAL, synchronous=FULL, an fsync per commit) and the same transactions the
run got: the ceiling no ingest path can beat. ``ratio`` is how many times longer the path took
than its ceiling; the fastest of ``--repeat`` runs counts, since a shared machine only ever
slows a run down. Aim for the stream of grouped messages (what the outbox relays send): half
the ceiling's rate or better, a ratio of 2.0 or less.

Every event is distinct (Audit deduplicates a repeated one, which costs nothing to store), so
``h2load``, which sends one body over and over, cannot drive this; the client is one asyncio
loop sending messages serialized before the clock starts, which keeps its own work small.
Run from the repository root: ``python -m bench audit_ingest`` (``-h`` for the options).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import grpc
import sqlalchemy as sa

from audit import chain
from audit.events import Event, StoredEvent
from audit.sql_store import COLUMNS, SqlEventStore, events, insert_rows, write_tiles
from audit.tiles import TiledTree
from audit.v1 import audit_pb2
from bench._tools import stack, table
from common.db import Database
from tests.support.tokens import TestSigner

UNARY_CALLERS = 8
BATCH_SIZE = 100
STREAM_GROUP = 50
"""Events per StreamEvents message in the grouped run, about what the outbox relay sends."""
SERVICE = "/audit.v1.AuditService"


def _event(source: str, n: int) -> audit_pb2.Event:
    event = audit_pb2.Event(
        id=str(uuid.uuid4()),
        source=source,
        type="oms.schema.updated",
        subject=f"object-types/Type{n % 50}",
        actor="bench",
    )
    event.time.FromDatetime(datetime.now(UTC))
    event.data.update({"n": n, "branch": "main", "fields": ["name", "age"], "breaking": False})
    return event


def _identity(data: bytes) -> bytes:
    return data


Metadata = tuple[tuple[str, str], ...]
Run = Callable[[grpc.aio.Channel, Metadata, list[audit_pb2.Event]], Awaitable[None]]


async def _unary(
    channel: grpc.aio.Channel, metadata: Metadata, events: list[audit_pb2.Event]
) -> None:
    publish = channel.unary_unary(f"{SERVICE}/PublishEvent", _identity, _identity)
    bodies = [audit_pb2.PublishEventRequest(event=e).SerializeToString() for e in events]

    async def caller(offset: int) -> None:
        for body in bodies[offset::UNARY_CALLERS]:
            await publish(body, metadata=metadata)

    await asyncio.gather(*(caller(i) for i in range(UNARY_CALLERS)))


async def _batch(
    channel: grpc.aio.Channel, metadata: Metadata, events: list[audit_pb2.Event]
) -> None:
    publish = channel.unary_unary(
        f"{SERVICE}/PublishEvents", _identity, audit_pb2.PublishEventsResponse.FromString
    )
    for start in range(0, len(events), BATCH_SIZE):
        body = audit_pb2.PublishEventsRequest(
            events=events[start : start + BATCH_SIZE]
        ).SerializeToString()
        response = await publish(body, metadata=metadata)
        assert all(not r.HasField("error") for r in response.results)


def _stream(per_message: int) -> Run:
    async def run(
        channel: grpc.aio.Channel, metadata: Metadata, events: list[audit_pb2.Event]
    ) -> None:
        bodies = [
            audit_pb2.StreamEventsRequest(
                events=events[start : start + per_message]
            ).SerializeToString()
            for start in range(0, len(events), per_message)
        ]

        async def requests() -> AsyncIterator[bytes]:
            for body in bodies:
                yield body

        stream = channel.stream_stream(
            f"{SERVICE}/StreamEvents", _identity, audit_pb2.StreamEventsResponse.FromString
        )
        acked = 0
        async for response in stream(requests(), metadata=metadata):
            acked += len(response.acks)
        assert acked == len(events)

    return run


def _groups(path: Path, source: str) -> list[list[tuple[object, ...]]]:
    """The rows one path stored, grouped by the transaction that committed them."""
    db = Database(f"sqlite:///{path}")
    try:
        with db.read() as conn:
            rows = conn.execute(
                sa.select(events).where(events.c.source == source).order_by(events.c.sequence)
            ).mappings()
            groups: dict[int, list[tuple[object, ...]]] = {}
            for row in rows:
                groups.setdefault(row["recorded_ns"], []).append(tuple(row[c] for c in COLUMNS))
    finally:
        db.dispose()
    return list(groups.values())


def _leaf(row: tuple[object, ...]) -> bytes:
    """A stored row's Merkle leaf hash, computed as the store does when it chains the event."""
    value = dict(zip(COLUMNS, row, strict=True))
    event = Event(
        id=str(value["event_id"]),
        source=str(value["source"]),
        type=str(value["type"]),
        subject=str(value["subject"]),
        time_ns=int(str(value["time_ns"])),
        actor=str(value["actor"]),
        data=str(value["data"]),
    )
    return chain.leaf_hash(
        StoredEvent(
            event=event,
            sequence=int(str(value["sequence"])),
            recorded_ns=int(str(value["recorded_ns"])),
            previous_hash=str(value["previous_hash"]),
            hash=str(value["hash"]),
        )
    )


def _ceiling(
    folder: Path, groups: list[list[tuple[object, ...]]], *, tree: bool
) -> Callable[[], None]:
    """The same rows in the same commits; with ``tree``, each with its leaf hashes and tiles."""
    db = Database(f"sqlite:///{folder / f'ceiling-{uuid.uuid4().hex}.db'}")
    SqlEventStore(db).migrate()
    leaves = [[_leaf(row) for row in group] for group in groups] if tree else []

    leaf = COLUMNS.index("leaf_hash")
    rows = groups if tree else [[(*r[:leaf], None, *r[leaf + 1 :]) for r in g] for g in groups]

    def insert() -> None:
        grown = TiledTree.empty()
        for index, group in enumerate(rows):
            with db.write() as conn:
                insert_rows(conn, group)
                if tree:
                    before = grown
                    grown, dirty = before.extend(leaves[index])
                    write_tiles(conn, before, dirty)
        db.dispose()

    return insert


def _attempt(
    signer: TestSigner, source: str, count: int, run: Run
) -> tuple[float, float, float, int]:
    """One run of a path on a fresh server and database.

    Its seconds, the ceiling's without and with the Merkle tree's tiles, and its commits.
    """
    with tempfile.TemporaryDirectory(prefix="audit-bench-") as scratch:
        folder = Path(scratch)
        jwks = folder / "jwks.json"
        jwks.write_text(json.dumps(signer.jwks()))
        metadata = (("authorization", f"Bearer {signer.mint(permissions=('audit:write',))}"),)
        events = [_event(source, n) for n in range(count)]
        with stack(folder, ["audit"], gateway=False, env={"MESH_JWKS_FILE": str(jwks)}) as audit:

            async def timed() -> float:
                async with grpc.aio.insecure_channel(audit.target("audit")) as channel:
                    start = time.perf_counter()
                    await run(channel, metadata, events)
                    return time.perf_counter() - start

            seconds = asyncio.run(timed())
        groups = _groups(folder / "audit.db", source)
        assert sum(len(g) for g in groups) == count
        ceilings = []
        for tree in (False, True):
            ceiling = _ceiling(folder, groups, tree=tree)
            start = time.perf_counter()
            ceiling()
            ceilings.append(time.perf_counter() - start)
        return seconds, ceilings[0], ceilings[1], len(groups)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=20_000, help="events per batch/stream run")
    parser.add_argument("--unary-events", type=int, default=3_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per path; the best counts")
    args = parser.parse_args([] if argv is None else argv)
    phases: list[tuple[str, int, Run]] = [
        (f"unary, {UNARY_CALLERS} callers", args.unary_events, _unary),
        (f"batch, {BATCH_SIZE} per call", args.events, _batch),
        ("stream, 1 per message", args.events, _stream(1)),
        (f"stream, {STREAM_GROUP} per message", args.events, _stream(STREAM_GROUP)),
    ]
    signer = TestSigner()
    rows = []
    for label, count, run in phases:
        attempts = [_attempt(signer, f"/bench-{n}", count, run) for n in range(max(args.repeat, 1))]
        seconds, ceiling, tree_ceiling, commits = min(attempts)
        rows.append(
            [
                label,
                count,
                commits,
                count / seconds,
                count / ceiling,
                count / tree_ceiling,
                seconds / ceiling,
                tree_ceiling / ceiling,
            ]
        )
    print(f"best of {args.repeat} runs per path, each on a fresh server and database; the ceiling")
    print("inserts the same rows in the same commits straight into the same schema (fsync each);")
    print("'+tree/s' also writes each commit's Merkle tiles, as the service does")
    print(
        table(
            rows,
            ["path", "events", "commits", "events/s", "ceiling/s", "+tree/s", "ratio", "tree cost"],
        )
    )
    print(f"aim: the stream of {STREAM_GROUP} per message at a ratio of 2.00 or less;")
    print("the tree's cost (ceiling with tiles over ceiling without) within 1.20")


if __name__ == "__main__":
    main(sys.argv[1:])
