"""The outbox relay: streams a service's outbox to the Audit Service, at least once.

A daemon thread reads outbox rows in ``seq`` order and sends them on one
``audit.v1.AuditService/StreamEvents`` call, keeping at most ``window`` unacknowledged. A row
is deleted only after Audit acknowledged it, which Audit does only after its commit; if the
relay dies between the two, the row is sent again and Audit, deduplicating on (source, id),
returns the original result. When Audit is unreachable the relay retries with bounded
exponential backoff; rows written meanwhile simply wait in the outbox.
"""

from __future__ import annotations

import collections
import json
import logging
import random
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

import grpc
import sqlalchemy as sa
from google.protobuf import struct_pb2

from audit.v1 import audit_pb2, audit_pb2_grpc
from common.channels import create_channel
from common.config import env_str
from common.db import Database
from common.errors import MeshError

log = logging.getLogger("mesh.outbox")

AUDIT_SERVICE = "audit.v1.AuditService"
MAX_EVENTS_PER_MESSAGE = 1000
"""Audit's limit per StreamEvents message; a message never holds more than the window."""


def audit_address() -> str:
    """Where producers reach the Audit Service (``MESH_AUDIT_ADDR``, ``127.0.0.1:8002``)."""
    return env_str("MESH_AUDIT_ADDR", "127.0.0.1:8002")


class _AckMismatch(Exception):
    """Audit acknowledged a different event than the next one sent: restart the stream."""


class OutboxRelay:
    """Delivers one service's outbox to the Audit Service from a background thread."""

    def __init__(
        self,
        db: Database,
        table: sa.Table,
        *,
        target: str,
        source: str,
        token_source: Callable[[], str],
        window: int = 256,
        poll_seconds: float = 1.0,
        initial_backoff: float = 0.2,
        max_backoff: float = 10.0,
    ) -> None:
        """``source`` is the CloudEvents source of every event (``/oms``, ``/users``);
        ``token_source`` returns a bearer token with ``audit:write``, asked once per stream."""
        if not 1 <= window <= MAX_EVENTS_PER_MESSAGE:
            raise ValueError(f"window must be 1..{MAX_EVENTS_PER_MESSAGE}, got {window}")
        self._db = db
        self._table = table
        self._source = source
        self._token_source = token_source
        self._window = window
        self._poll_seconds = poll_seconds
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._channel = create_channel(target, service_names=[AUDIT_SERVICE])
        self._stub = audit_pb2_grpc.AuditServiceStub(self._channel)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._call_lock = threading.Lock()
        self._call: Any = None
        self._rejected: set[int] = set()
        self._thread = threading.Thread(target=self._run, name=f"outbox{source}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def notify(self) -> None:
        """Call after committing a transaction that appended to the outbox: sends it now."""
        self._wake.set()

    def close(self, timeout: float = 5.0) -> None:
        """Stop sending; unacknowledged rows stay in the outbox for the next start."""
        self._stopping.set()
        self._wake.set()
        with self._call_lock:
            if self._call is not None:
                self._call.cancel()
        self._thread.join(timeout)
        self._channel.close()

    def _run(self) -> None:
        backoff = self._initial_backoff
        while not self._stopping.is_set():
            delivered = 0
            try:
                delivered = self._session()
            except grpc.RpcError as exc:
                if not self._stopping.is_set():
                    log.warning(
                        "audit stream failed", extra={"code": str(exc.code()), "backoff": backoff}
                    )
            except MeshError as exc:  # no token: the User Service is unreachable
                log.warning("cannot stream to audit", extra={"error": exc.message})
            except Exception:
                log.exception("outbox relay error", extra={"backoff": backoff})
            if delivered:
                backoff = self._initial_backoff
            self._stopping.wait(backoff * random.uniform(0.5, 1.0))
            backoff = min(backoff * 2, self._max_backoff)

    def _session(self) -> int:
        """One StreamEvents call, until it fails or the relay stops; returns rows delivered."""
        in_flight: collections.deque[tuple[int, str]] = collections.deque()
        outstanding: set[int] = set()  # sent on this stream, not deleted yet
        lock = threading.Lock()  # guards ``outstanding`` and ``self._rejected``
        room = threading.Semaphore(self._window)
        ended = threading.Event()

        def requests() -> Iterator[audit_pb2.StreamEventsRequest]:
            while not ended.is_set():
                with lock:
                    skip = outstanding | self._rejected
                rows = [
                    row
                    for row in self._unsent(limit=self._window + len(skip))
                    if row.seq not in skip
                ]
                if not rows:
                    self._wake.wait(self._poll_seconds)
                    self._wake.clear()
                    continue
                while rows:
                    while not room.acquire(timeout=0.5):
                        if ended.is_set():
                            return
                    taken = 1
                    while taken < len(rows) and room.acquire(blocking=False):
                        taken += 1
                    batch, rows = rows[:taken], rows[taken:]
                    with lock:
                        outstanding.update(row.seq for row in batch)
                    in_flight.extend((row.seq, row.event_id) for row in batch)
                    yield audit_pb2.StreamEventsRequest(events=[self._event(r) for r in batch])

        def delete(seqs: list[int]) -> None:
            self._delete(seqs)
            with lock:
                outstanding.difference_update(seqs)

        metadata = [("authorization", f"Bearer {self._token_source()}")]
        delivered = 0
        acked: list[int] = []
        with self._call_lock:
            if self._stopping.is_set():
                return 0
            call = self._stub.StreamEvents(requests(), metadata=metadata)
            self._call = call
        try:
            for response in call:
                for ack in response.acks:
                    seq, event_id = in_flight.popleft()
                    if ack.id != event_id:
                        raise _AckMismatch(f"expected an ack for {event_id}, got {ack.id}")
                    if ack.HasField("error"):
                        with lock:
                            self._rejected.add(seq)
                        self._log_rejection(seq, ack)
                    else:
                        acked.append(seq)
                        delivered += 1
                    room.release()
                delete(acked)
                acked = []
        finally:
            ended.set()
            call.cancel()
            delete(acked)
        return delivered

    def _unsent(self, *, limit: int) -> list[Any]:
        """The oldest rows still in the outbox; the caller skips those already on their way.

        No cursor: on PostgreSQL a row can commit after one with a higher ``seq``, and a cursor
        would step over it.
        """
        query = sa.select(self._table).order_by(self._table.c.seq).limit(limit)
        with self._db.read() as conn:
            return list(conn.execute(query))

    def _event(self, row: Any) -> audit_pb2.Event:
        event = audit_pb2.Event(
            id=row.event_id,
            source=self._source,
            type=row.type,
            subject=row.subject,
            actor=row.actor,
        )
        event.time.FromDatetime(datetime.fromisoformat(row.time))
        data = struct_pb2.Struct()
        data.update(json.loads(row.data))
        event.data.CopyFrom(data)
        return event

    @staticmethod
    def _log_rejection(seq: int, ack: audit_pb2.EventAck) -> None:
        """Audit refused the event itself (invalid, or its id reused): the row is skipped.

        It stays in the outbox for an operator, and is offered again after a restart.
        """
        log.error(
            "audit rejected an outbox event",
            extra={
                "seq": seq,
                "event_id": ack.id,
                "code": ack.error.code,
                "error": ack.error.message,
            },
        )

    def _delete(self, seqs: Sequence[int]) -> None:
        if not seqs:
            return
        with self._db.write() as conn:
            conn.execute(self._table.delete().where(self._table.c.seq.in_(list(seqs))))
