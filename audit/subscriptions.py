"""Subscriptions: replay the log from a sequence, then follow it live, with no gap or repeat.

One :class:`Fanout` per server holds the live tail of the log and offers each new event to
every subscriber's bounded buffer, so a thousand subscribers cost one reader, not a thousand
pollers. This server's own commits reach it from the ingestor at once; commits by other
replicas sharing the database are read when the ingestor sees a gap in the sequence, when
PostgreSQL announces them (:meth:`Fanout.announced`, through :mod:`common.notify`), or by a
poll while anyone subscribes. Sequences are assigned in commit order under the write lock, so
reading ``sequence > cursor`` in order never skips an event.

A subscriber replays from the table until it has nearly caught up, joins the fan-out, reads
what committed in between from the table, then takes live events from its buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

from audit.events import EventFilter, StoredEvent
from audit.store import EventStore
from common import errors
from common.blocking import Blocking
from common.streams import StreamBuffer, fell_behind

log = logging.getLogger("mesh.audit.subscriptions")

_EVERYTHING = EventFilter()


class _Subscriber:
    def __init__(self, selection: EventFilter, capacity: int) -> None:
        self.selection = selection
        self.buffer: StreamBuffer[StoredEvent] = StreamBuffer(capacity)


class Fanout:
    """The live tail of the log, shared by every subscription of one server."""

    def __init__(
        self,
        store: EventStore,
        *,
        blocking: Blocking,
        buffer: int,
        poll_seconds: float,
        head: int,
        batch: int = 500,
    ) -> None:
        self._store = store
        self._blocking = blocking
        self._buffer = buffer
        self._poll_seconds = poll_seconds
        self._batch = batch
        self._cursor = head
        """Every event up to here has been offered to every subscriber registered then."""
        self._subscribers: set[_Subscriber] = set()
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._closed = False

    def committed(self, stored: Sequence[StoredEvent]) -> None:
        """Events this server just committed, in order (called on the loop by the ingestor)."""
        if not stored:
            return
        if not self._subscribers:
            # Nobody to offer them to; everything up to them is committed, so skip ahead.
            self._cursor = max(self._cursor, stored[-1].sequence)
        elif stored[0].sequence == self._cursor + 1:
            self._offer(stored)
        elif stored[-1].sequence > self._cursor:
            self._wake.set()  # another replica committed in between: read it from the table

    def announced(self) -> None:
        """Another replica committed events (called in any thread): read them if anyone waits."""
        self._loop.call_soon_threadsafe(self._wake.set)

    def _offer(self, events: Sequence[StoredEvent]) -> None:
        for stored in events:
            if stored.sequence <= self._cursor:
                continue
            if stored.sequence != self._cursor + 1:
                self._wake.set()
                return
            self._cursor = stored.sequence
            for subscriber in self._subscribers:
                if subscriber.selection.matches(stored):
                    subscriber.buffer.offer(stored)

    async def run(self) -> None:
        """Read commits of other replicas while anyone subscribes; idle otherwise."""
        while not self._closed:
            if self._subscribers:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_seconds)
            else:
                await self._wake.wait()
            self._wake.clear()
            try:
                await self._catch_up()
            except errors.MeshError as exc:
                log.warning("cannot read the log's tail", extra={"error": exc.message})

    async def _catch_up(self) -> None:
        while self._subscribers:
            found = await self._blocking.run(
                self._store.find, _EVERYTHING, after=self._cursor, limit=self._batch
            )
            self._offer(found)
            if len(found) < self._batch:
                return

    def close(self) -> None:
        """End every subscription (the server is draining); new ones are refused."""
        self._closed = True
        self._wake.set()
        for subscriber in self._subscribers:
            subscriber.buffer.end()

    async def subscribe(self, selection: EventFilter, *, after: int) -> AsyncIterator[StoredEvent]:
        """Matching events with ``sequence > after`` in order, until the server drains.

        Ends with RESOURCE_EXHAUSTED when the subscriber falls too far behind.
        """
        if self._closed:
            raise errors.Unavailable("the audit log is shutting down", reason="SHUTTING_DOWN")
        last = after
        while True:
            found = await self._blocking.run(
                self._store.find, selection, after=last, limit=self._batch
            )
            for stored in found:
                yield stored
                last = stored.sequence
            if len(found) < self._batch:
                break
        subscriber = _Subscriber(selection, self._buffer)
        self._subscribers.add(subscriber)
        self._wake.set()  # the tail may have idled without subscribers: look once
        try:
            joined = self._cursor
            while last < joined:
                found = await self._blocking.run(
                    self._store.find, selection, after=last, before=joined + 1, limit=self._batch
                )
                for stored in found:
                    yield stored
                    last = stored.sequence
                if len(found) < self._batch:
                    last = max(last, joined)
            while (live := await subscriber.buffer.get()) is not None:
                if live.sequence > last:
                    yield live
                    last = live.sequence
            if subscriber.buffer.overflowed:
                raise fell_behind(last)
        finally:
            self._subscribers.discard(subscriber)
            subscriber.buffer.close()
