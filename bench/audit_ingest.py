"""Audit ingest: committed events/s for unary, batch and stream, against the database ceiling.

Each path runs against a real Audit Service process (``python -m audit.server``) on a fresh data
folder, with events built before the clock starts. Then the very rows that run stored are
inserted into a fresh database of the same schema, with the same durability (SQLite WAL,
synchronous=FULL, an fsync per commit) and the same transactions the run got: the ceiling no
ingest path can beat. ``ratio`` is how many times longer the path took than its ceiling; the
fastest of ``--repeat`` runs counts, since a shared machine only ever slows a run down. Run from
the repository root: ``python -m bench audit_ingest`` (or ``python -m bench.audit_ingest -h``)."""

from __future__ import annotations

import argparse
import functools
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import grpc
import sqlalchemy as sa

from audit.store import EventStore, events
from audit.v1 import audit_pb2, audit_pb2_grpc
from common.db import Database
from tests.support.tokens import TestSigner

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0
PHASE_TIMEOUT = 300.0
UNARY_CALLERS = 8
BATCH_SIZE = 100
STREAM_GROUP = 50
"""Events per StreamEvents message in the grouped run, about what the outbox relay sends."""


def _event(source: str, n: int) -> audit_pb2.Event:
    event = audit_pb2.Event(
        id=str(uuid.uuid4()),
        source=source,
        type="oms.schema.updated",
        subject=f"objectTypes/Type{n % 50}",
        actor="bench",
    )
    event.time.FromDatetime(datetime.now(UTC))
    event.data.update({"n": n, "branch": "main", "fields": ["name", "age"], "breaking": False})
    return event


class Server:
    """The Audit Service as its own process, as in production."""

    def __init__(self, data_dir: Path, jwks: Path) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "MESH_DATA_DIR": str(data_dir),
            "MESH_AUDIT_LISTEN": "127.0.0.1:0",
            "MESH_JWKS_FILE": str(jwks),
        }
        env.pop("MESH_AUDIT_DATABASE_URL", None)
        env["MESH_LOG_LEVEL"] = "INFO"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "audit.server"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, args=(lines,), daemon=True).start()
        self.port = self._port(lines)

    def _pump(self, lines: queue.Queue[str]) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if '"serving"' in line:
                lines.put(line)

    def _port(self, lines: queue.Queue[str]) -> int:
        try:
            return int(json.loads(lines.get(timeout=START_TIMEOUT))["port"])
        except queue.Empty:
            self.stop()
            raise SystemExit("the audit server did not start") from None

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def _seconds(run: Callable[[], None]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


Metadata = list[tuple[str, str]]


def _events(source: str, count: int) -> list[audit_pb2.Event]:
    return [_event(source, n) for n in range(count)]


def _unary(
    stub: audit_pb2_grpc.AuditServiceStub, metadata: Metadata, events: list[audit_pb2.Event]
) -> None:
    def caller(offset: int) -> None:
        for event in events[offset::UNARY_CALLERS]:
            stub.PublishEvent(
                audit_pb2.PublishEventRequest(event=event), metadata=metadata, timeout=PHASE_TIMEOUT
            )

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(UNARY_CALLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(PHASE_TIMEOUT)


def _batch(
    stub: audit_pb2_grpc.AuditServiceStub, metadata: Metadata, events: list[audit_pb2.Event]
) -> None:
    for start in range(0, len(events), BATCH_SIZE):
        results = stub.PublishEvents(
            audit_pb2.PublishEventsRequest(events=events[start : start + BATCH_SIZE]),
            metadata=metadata,
            timeout=PHASE_TIMEOUT,
        ).results
        assert all(not r.HasField("error") for r in results)


def _stream(
    stub: audit_pb2_grpc.AuditServiceStub,
    metadata: Metadata,
    events: list[audit_pb2.Event],
    per_message: int,
) -> None:
    requests = [
        audit_pb2.StreamEventsRequest(events=events[start : start + per_message])
        for start in range(0, len(events), per_message)
    ]
    responses = stub.StreamEvents(iter(requests), metadata=metadata, timeout=PHASE_TIMEOUT)
    assert sum(len(response.acks) for response in responses) == len(events)


def _groups(path: Path, source: str) -> list[list[dict[str, object]]]:
    """The rows one path stored, grouped by the transaction that committed them."""
    db = Database(f"sqlite:///{path}")
    try:
        with db.read() as conn:
            rows = conn.execute(
                sa.select(events).where(events.c.source == source).order_by(events.c.sequence)
            ).mappings()
            groups: dict[int, list[dict[str, object]]] = {}
            for row in rows:
                groups.setdefault(row["recorded_ns"], []).append(dict(row))
    finally:
        db.dispose()
    return list(groups.values())


def _ceiling(folder: Path, groups: list[list[dict[str, object]]]) -> Callable[[], None]:
    db = Database(f"sqlite:///{folder / f'ceiling-{uuid.uuid4().hex}.db'}")
    EventStore(db).migrate()

    def insert() -> None:
        for group in groups:
            with db.write() as conn:
                conn.execute(events.insert(), group)
        db.dispose()

    return insert


Run = Callable[[audit_pb2_grpc.AuditServiceStub, Metadata, list[audit_pb2.Event]], None]


def _attempt(signer: TestSigner, source: str, count: int, run: Run) -> tuple[float, float, int]:
    """One run of a path on a fresh server and database: its seconds, the ceiling's, commits."""
    with tempfile.TemporaryDirectory(prefix="audit-bench-") as scratch:
        folder = Path(scratch)
        jwks = folder / "jwks.json"
        jwks.write_text(json.dumps(signer.jwks()))
        metadata = [("authorization", f"Bearer {signer.mint(permissions=('audit:write',))}")]
        events = _events(source, count)
        server = Server(folder, jwks)
        try:
            with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                stub = audit_pb2_grpc.AuditServiceStub(channel)
                seconds = _seconds(functools.partial(run, stub, metadata, events))
        finally:
            server.stop()
        groups = _groups(folder / "audit.db", source)
        assert sum(len(g) for g in groups) == count
        return seconds, _seconds(_ceiling(folder, groups)), len(groups)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="events per batch/stream run")
    parser.add_argument("--unary-events", type=int, default=3_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per path; the best counts")
    args = parser.parse_args([] if argv is None else argv)
    phases: list[tuple[str, int, Run]] = [
        (f"unary, {UNARY_CALLERS} callers", args.unary_events, _unary),
        (f"batch, {BATCH_SIZE} per call", args.events, _batch),
        ("stream, 1 per message", args.events, lambda s, m, e: _stream(s, m, e, 1)),
        (
            f"stream, {STREAM_GROUP} per message",
            args.events,
            lambda s, m, e: _stream(s, m, e, STREAM_GROUP),
        ),
    ]
    signer = TestSigner()
    print(f"best of {args.repeat} runs per path, each on a fresh server and database; the ceiling")
    print("inserts the same rows in the same commits straight into the same schema (fsync each)")
    print(
        f"{'path':<24} {'events':>7} {'commits':>8} {'events/s':>9} {'ceiling/s':>10} {'ratio':>6}"
    )
    for label, count, run in phases:
        attempts = [_attempt(signer, f"/bench-{n}", count, run) for n in range(max(args.repeat, 1))]
        seconds, ceiling, commits = min(attempts)
        print(
            f"{label:<24} {count:>7} {commits:>8} {count / seconds:>9.0f} {count / ceiling:>10.0f} "
            f"{seconds / ceiling:>5.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
