"""Audit proofs at scale: inclusion and consistency proofs over a log of 1,000,000 events.

The log is built through the store's own append (chain, tiles and all) in commits of 1,000,
with durability relaxed (``PRAGMA synchronous=OFF``) to build it quickly; every timed step runs
on a fresh engine with the service's normal settings. Proofs are made by the service's
:class:`audit.transparency.TransparencyLog` in-process, without gRPC. The ceiling of each is
the same reads alone: the tiles the proof needs (and, for inclusion, the event's row), fetched
in the same queries, with no hashing. Also printed: the time to start, which reads the partial
tiles only, and a checkpoint's signing.

``AUDIT_BENCH_EVENTS`` (default 1000000) sets the log's size.
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit import merkle, tiles
from audit.checkpoints import NoteSigner
from audit.events import Event
from audit.sql_store import SqlEventStore
from audit.transparency import TransparencyLog
from bench._tools import table
from common.blocking import Blocking
from common.db import Database

EVENTS = int(os.environ.get("AUDIT_BENCH_EVENTS", "1000000"))
COMMIT = 1_000
SAMPLES = 200


def _build(url: str) -> None:
    db = Database(url)

    @sa.event.listens_for(db.engine, "connect")
    def _fast(dbapi_connection: object, _record: object) -> None:
        dbapi_connection.execute("PRAGMA synchronous=OFF")  # type: ignore[attr-defined]

    db.engine.dispose()
    store = SqlEventStore(db)
    store.migrate()
    started = time.perf_counter()
    for start in range(0, EVENTS, COMMIT):
        store.append(
            [
                Event(
                    id=f"e-{n}",
                    source="/bench",
                    type="oms.schema.updated",
                    subject=f"object-types/Type{n % 50}",
                    time_ns=1_800_000_000_000_000_000 + n,
                    actor="bench",
                    data=f'{{"branch":"main","n":{n}}}',
                )
                for n in range(start, min(EVENTS, start + COMMIT))
            ]
        )
    print(f"built a log of {EVENTS} events in {time.perf_counter() - started:.1f} s", flush=True)
    store.close()


def _timed(samples: list[Callable[[], object]]) -> list[float]:
    found = []
    for sample in samples:
        start = time.perf_counter()
        sample()
        found.append((time.perf_counter() - start) * 1000)
    return found


def _figures(label: str, spent: list[float], ceiling: list[float]) -> list[object]:
    p50, c50 = statistics.median(spent), statistics.median(ceiling)
    p99 = statistics.quantiles(spent, n=100)[98]
    return [label, p50, p99, c50, p50 / c50]


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="audit-proofs-") as scratch:
        url = f"sqlite:///{Path(scratch) / 'audit.db'}"
        _build(url)
        start = time.perf_counter()
        store = SqlEventStore(Database(url))
        store.migrate()
        tree = store.tree()
        opened = (time.perf_counter() - start) * 1000
        blocking = Blocking(1)
        log = TransparencyLog(
            store,
            NoteSigner("bench.local/audit", Ed25519PrivateKey.generate()),
            interval=5.0,
            last_signed_file=Path(scratch) / "last-checkpoint",
            blocking=blocking,
        )
        start = time.perf_counter()
        checkpoint = log.sign()
        signed = (time.perf_counter() - start) * 1000
        size = checkpoint.size
        chance = random.Random(1)
        indices = [chance.randrange(1, size + 1) for _ in range(SAMPLES)]
        firsts = [chance.randrange(1, size) for _ in range(SAMPLES)]

        def inclusion_reads(sequence: int) -> Callable[[], object]:
            ranges = merkle.inclusion_ranges(sequence - 1, size)
            nodes = {n for r in ranges for n in merkle.range_nodes(*r)}
            keys = sorted(tiles.needed_tiles(nodes))
            return lambda: (store.tiles(keys), store.get(sequence))

        def consistency_reads(first: int) -> Callable[[], object]:
            ranges = merkle.consistency_ranges(first, size)
            nodes = {n for r in ranges for n in merkle.range_nodes(*r)}
            keys = sorted(tiles.needed_tiles(nodes))
            return lambda: store.tiles(keys)

        def prove_inclusion(sequence: int) -> Callable[[], object]:
            return lambda: log.inclusion(sequence, size)

        def prove_consistency(first: int) -> Callable[[], object]:
            return lambda: log.consistency(first, size)

        inclusion = _timed([prove_inclusion(s) for s in indices])
        inclusion_ceiling = _timed([inclusion_reads(s) for s in indices])
        consistency = _timed([prove_consistency(f) for f in firsts])
        consistency_ceiling = _timed([consistency_reads(f) for f in firsts])
        blocking.close()
        store.close()
    print(f"a log of {size} events; {SAMPLES} proofs of each kind at random positions")
    print(
        table(
            [
                _figures("inclusion proof", inclusion, inclusion_ceiling),
                _figures("consistency proof", consistency, consistency_ceiling),
            ],
            ["proof", "p50 ms", "p99 ms", "reads alone p50 ms", "ratio"],
        )
    )
    print(f"start (partial tiles only): {opened:.1f} ms; tree of {tree.size} events")
    print(f"signing a checkpoint of the whole log: {signed:.1f} ms")


if __name__ == "__main__":
    main()
