"""The outbox relay: streams a service's outbox to the Audit Service, at least once.

A background task of the producing server reads outbox rows in ``seq`` order and sends them on
one ``audit.v1.AuditService/StreamEvents`` call, keeping at most ``window`` unacknowledged. A
row is deleted only after Audit acknowledged it, which Audit does only after its commit; if the
relay dies between the two, the row is sent again and Audit, deduplicating on (source, id),
returns the original result. When Audit is unreachable the relay waits for it to be back;
rows written meanwhile simply wait in the outbox.

Each event carries the ``traceparent`` its row kept, and with tracing on its delivery, from
sending to Audit's acknowledgement, is a span of that trace (``outbox.deliver``).

The relay wakes when a transaction that appended to the outbox commits (never for its own reads
or deletes, nor for other writes), and otherwise looks every ``poll_seconds`` for rows another
process left behind.

Replicas sharing a PostgreSQL database share its outbox, and one relay among them delivers it:
the one holding the outbox's lease (:meth:`common.db.Database.try_lease`), so no two relays
send the same row. The others wait, waking on the same commits (announced across replicas by
:mod:`common.notify`) to try for the lease; a leader that dies loses it with its connection,
and the next commit anywhere hands it on. The leader confirms its lease before each read of the
outbox, so one that lost its connection stops before sending anything more.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import random
from collections.abc import Sequence
from typing import Any, NamedTuple

import grpc
import sqlalchemy as sa
from google.protobuf import struct_pb2
from prometheus_client.core import Metric

from audit.v1 import audit_pb2, audit_pb2_grpc
from common import times, tracing
from common.blocking import Blocking
from common.canonical import nested_deeper
from common.channels import create_channel
from common.config import env_str
from common.db import Database, Lease
from common.errors import MeshError
from common.metrics import counter, gauge
from common.outbox import (
    MAX_ACTOR,
    MAX_DATA_NESTING,
    MAX_SUBJECT,
    OUTBOX_TOPIC,
    fitted,
    printable,
)
from common.server import MeshServer
from common.tls import MutualTls
from common.users_client import TokenSource, bearer

log = logging.getLogger("mesh.outbox")

AUDIT_SERVICE = "audit.v1.AuditService"
MAX_EVENTS_PER_MESSAGE = 1000
"""Audit's limit per StreamEvents message; a message never holds more than the window."""


def audit_address() -> str:
    """Where producers reach the Audit Service (``MESH_AUDIT_ADDR``, ``127.0.0.1:8002``)."""
    return env_str("MESH_AUDIT_ADDR", "127.0.0.1:8002")


class _Sent(NamedTuple):
    """An event on its way, until Audit acknowledges it."""

    seq: int
    event_id: str
    traceparent: str
    type: str
    sent_ns: int


class _AckMismatch(Exception):
    """Audit acknowledged a different event than the next one sent: restart the stream."""


class OutboxRelay:
    """Delivers one service's outbox to the Audit Service; see :meth:`attach`."""

    def __init__(
        self,
        db: Database,
        table: sa.Table,
        *,
        target: str,
        source: str,
        token_source: TokenSource,
        blocking: Blocking,
        window: int = 256,
        poll_seconds: float = 5.0,
        initial_backoff: float = 0.2,
        max_backoff: float = 10.0,
    ) -> None:
        """``source`` is the CloudEvents source of every event (``/oms``, ``/users``).

        ``token_source`` gives a bearer token with ``audit:write``, asked once per stream and
        invalidated when Audit answers UNAUTHENTICATED (expired, revoked, rotated away).
        """
        if not 1 <= window <= MAX_EVENTS_PER_MESSAGE:
            raise ValueError(f"window must be 1..{MAX_EVENTS_PER_MESSAGE}, got {window}")
        self._db = db
        self._table = table
        self._source = source
        self._token_source = token_source
        self._blocking = blocking
        self._window = window
        self._poll_seconds = poll_seconds
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._target = target
        self._tls: MutualTls | None = None
        self._channel: grpc.aio.Channel | None = None
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rejected: set[int] = set()
        self._producer = source.strip("/")
        self._delivered = 0
        self._failures = 0
        self._lease: Lease | None = None

    def attach(self, server: MeshServer) -> None:
        """Relay while ``server`` runs, over its mutual TLS if it has one.

        Unacknowledged rows stay for the next start.
        """
        self._tls = server.tls
        server.background.append(self.run)
        server.on_stop.append(self.close)
        server.metrics.sample(self.samples)

    def samples(self) -> list[Metric]:
        """The outbox's depth and oldest row (one query), and what the relay did."""
        table = self._table
        with self._db.read() as conn:
            depth, oldest_ns = conn.execute(
                sa.select(sa.func.count(), sa.func.min(table.c.time_ns))
            ).one()
        producer = self._producer
        age = 0.0 if oldest_ns is None else max(0, times.now() - oldest_ns) / times.SECOND
        return [
            gauge("mesh_outbox_depth", "Events waiting in the outbox.", depth, producer=producer),
            gauge(
                "mesh_outbox_oldest_age_seconds",
                "Age of the oldest event waiting in the outbox (0 when it is empty).",
                age,
                producer=producer,
            ),
            counter(
                "mesh_outbox_relay_delivered",
                "Events the Audit Service acknowledged as stored.",
                self._delivered,
                producer=producer,
            ),
            counter(
                "mesh_outbox_relay_errors",
                "Relay streams to the Audit Service that failed or ended, and events it refused.",
                self._failures + len(self._rejected),
                producer=producer,
            ),
        ]

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()

    def _on_commit(self) -> None:
        """An outbox row committed (in whichever thread wrote it): look now."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        """Deliver until cancelled, reconnecting with bounded backoff after failures."""
        self._loop = asyncio.get_running_loop()
        self._channel = create_channel(self._target, service_names=[AUDIT_SERVICE], tls=self._tls)
        stub = audit_pb2_grpc.AuditServiceStub(self._channel)
        self._db.on_commit(OUTBOX_TOPIC, self._on_commit)
        backoff = self._initial_backoff
        try:
            while True:
                delivered = 0
                try:
                    if not await self._lead():
                        continue
                    delivered = await self._session(stub)
                except grpc.aio.AioRpcError as exc:
                    if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                        self._token_source.invalidate()
                    log.warning(
                        "audit stream failed", extra={"code": exc.code().name, "backoff": backoff}
                    )
                except MeshError as exc:  # no token, or the outbox (or lease) cannot be read
                    log.warning("cannot stream to audit", extra={"error": exc.message})
                    self._release()
                except Exception:
                    log.exception("outbox relay error", extra={"backoff": backoff})
                self._failures += 1  # a session ends only when its stream failed or ended
                if delivered:
                    backoff = self._initial_backoff
                await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
                backoff = min(backoff * 2, self._max_backoff)
        finally:
            self._db.remove_listener(OUTBOX_TOPIC, self._on_commit)
            self._release()

    async def _lead(self) -> bool:
        """Whether this relay holds the outbox's lease; if another does, wait for a wake-up."""
        if self._lease is None:
            self._wake.clear()
            self._lease = await self._blocking.run(self._db.try_lease, f"relay:{self._table}")
        if self._lease is not None:
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self._poll_seconds)
        return False

    def _release(self) -> None:
        if self._lease is not None:
            self._lease.release()
            self._lease = None

    async def _session(self, stub: audit_pb2_grpc.AuditServiceStub) -> int:
        """One StreamEvents call, until it fails or the relay stops; returns rows delivered."""
        in_flight: collections.deque[_Sent] = collections.deque()
        outstanding: set[int] = set()  # sent on this stream, not deleted yet
        room = asyncio.Semaphore(self._window)
        call = stub.StreamEvents(
            metadata=bearer(await self._token_source.token()), wait_for_ready=True
        )

        async def send() -> None:
            while True:
                self._wake.clear()
                skip = outstanding | self._rejected
                unsent = await self._blocking.run(self._unsent, limit=self._window + len(skip))
                rows = [row for row in unsent if row.seq not in skip]
                if not rows:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._poll_seconds)
                    continue
                while rows:
                    await room.acquire()
                    taken = 1
                    while taken < len(rows) and not room.locked():
                        await room.acquire()
                        taken += 1
                    batch, rows = rows[:taken], rows[taken:]
                    outstanding.update(row.seq for row in batch)
                    sent_ns = times.now()
                    in_flight.extend(
                        _Sent(row.seq, row.event_id, row.traceparent or "", row.type, sent_ns)
                        for row in batch
                    )
                    await call.write(
                        audit_pb2.StreamEventsRequest(events=[self._event(r) for r in batch])
                    )

        async def delete(seqs: list[int]) -> None:
            if seqs:
                await self._blocking.run(self._delete, seqs)
                outstanding.difference_update(seqs)

        delivered = 0
        acked: list[int] = []

        async def receive() -> None:
            nonlocal delivered, acked
            async for response in call:
                for ack in response.acks:
                    sent = in_flight.popleft()
                    seq = sent.seq
                    if ack.id != sent.event_id:
                        raise _AckMismatch(f"expected an ack for {sent.event_id}, got {ack.id}")
                    self._traced(sent, ack)
                    if ack.HasField("error"):
                        self._rejected.add(seq)
                        self._log_rejection(seq, ack)
                    else:
                        acked.append(seq)
                        delivered += 1
                        self._delivered += 1
                    room.release()
                done, acked = acked, []
                await delete(done)

        tasks = {asyncio.create_task(send()), asyncio.create_task(receive())}
        try:
            finished, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                task.result()  # the stream ended (Audit stopping) or failed: raise why
        finally:
            call.cancel()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await delete(acked)
        return delivered

    def _unsent(self, *, limit: int) -> list[Any]:
        """The oldest rows still in the outbox; the caller skips those already on their way.

        No cursor: on PostgreSQL a row can commit after one with a higher ``seq``, and a cursor
        would step over it.
        """
        if self._lease is not None:
            self._lease.confirm()
        query = sa.select(self._table).order_by(self._table.c.seq).limit(limit)
        with self._db.read() as conn:
            return list(conn.execute(query))

    def _traced(self, sent: _Sent, ack: audit_pb2.EventAck) -> None:
        """The delivery as a span of the trace of the call that caused the event."""
        if not tracing.enabled():
            return
        tracing.record(
            "outbox.deliver",
            parent=sent.traceparent,
            start_ns=sent.sent_ns,
            end_ns=times.now(),
            kind=tracing.SpanKind.PRODUCER,
            attributes={
                **tracing.event_attributes(
                    event_id=sent.event_id, source=self._source, type=sent.type
                ),
                "mesh.outbox_seq": sent.seq,
            },
            failed=ack.error.message if ack.HasField("error") else "",
        )

    def _event(self, row: Any) -> audit_pb2.Event:
        event = audit_pb2.Event(
            id=row.event_id,
            source=self._source,
            type=row.type,
            subject=printable(row.subject, MAX_SUBJECT),  # rows written before it was applied
            actor=printable(row.actor, MAX_ACTOR),
            time=times.to_timestamp(row.time_ns),
            traceparent=row.traceparent or "",
        )
        values = json.loads(row.data)
        if nested_deeper(values, row.data, MAX_DATA_NESTING):
            values = json.loads(fitted(values))  # a row from before the outbox capped nesting
        data = struct_pb2.Struct()
        data.update(values)
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
