"""Group commit: one writer commits every event waiting, from every caller, together.

Whatever arrives while a commit is in progress (more messages of a stream, other streams, unary
calls) goes into the next transaction, so the cost of an fsync is shared by all of them and an
ack is only ever given for an event whose transaction has committed. The writer is a task on the
server's loop; each commit runs in the blocking pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar

from audit.events import Event, Recorded, StoredEvent
from audit.store import EventStore
from common.blocking import Blocking
from common.errors import MeshError, Unavailable

log = logging.getLogger("mesh.audit.ingest")

Outcome = Recorded | MeshError
"""What became of one event: its record, or the error the producer made (a conflicting id)."""
Pending = asyncio.Future[list[Outcome]]
_Submission = tuple[Sequence[Event], Pending]
T = TypeVar("T")


def _shutting_down() -> Unavailable:
    return Unavailable("the audit log is shutting down", reason="SHUTTING_DOWN")


class Ingestor:
    """Queues submissions for the writer; each gets a future resolved after its commit."""

    def __init__(
        self,
        store: EventStore,
        *,
        blocking: Blocking,
        max_batch: int,
        queue_limit: int,
        on_commit: Callable[[list[StoredEvent]], None],
        enqueue_timeout: float = 30.0,
    ) -> None:
        self._store = store
        self._blocking = blocking
        self._max_batch = max_batch
        self._on_commit = on_commit
        self._enqueue_timeout = enqueue_timeout
        self._queue: asyncio.Queue[_Submission | None] = asyncio.Queue(maxsize=queue_limit)
        self._closed = False
        self._writer: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the writer on the running loop."""
        self._writer = asyncio.create_task(self._run(), name="audit-writer")

    async def submit(self, events: Sequence[Event]) -> Pending:
        """Queue ``events``, committed together and in order; one outcome each, in order.

        Raises Unavailable when closing, or when the queue stays full (the log is overloaded).
        """
        future: Pending = asyncio.get_running_loop().create_future()
        if not events:
            future.set_result([])
            return future
        if self._closed:
            raise _shutting_down()
        try:
            self._queue.put_nowait((events, future))
        except asyncio.QueueFull:
            try:
                await asyncio.wait_for(self._queue.put((events, future)), self._enqueue_timeout)
            except TimeoutError as exc:
                raise Unavailable(
                    "the audit log is overloaded, retry later", reason="INGEST_OVERLOADED"
                ) from exc
        return future

    async def close(self) -> None:
        """Commit what is queued, then stop the writer."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            await self._queue.put(None)
            await self._writer
        while not self._queue.empty():
            submission = self._queue.get_nowait()
            if submission is not None and not submission[1].done():
                submission[1].set_exception(_shutting_down())

    async def _run(self) -> None:
        while True:
            submission = await self._queue.get()
            if submission is None:
                return
            taken = [submission]
            size = len(submission[0])
            stopping = False
            while size < self._max_batch and not self._queue.empty():
                following = self._queue.get_nowait()
                if following is None:
                    stopping = True
                    break
                taken.append(following)
                size += len(following[0])
            await self._commit(taken)
            if stopping:
                return

    async def _commit(self, taken: list[_Submission]) -> None:
        events = [event for events, _ in taken for event in events]
        try:
            outcomes = await self._blocking.run(self._store.append, events)
        except Exception as exc:
            if isinstance(exc, MeshError):
                failure = exc  # the storage refused (full disk, read-only): say so
            else:
                log.exception("commit failed", extra={"submissions": len(taken)})
                failure = Unavailable(
                    "the audit log could not commit, retry", reason="COMMIT_FAILED"
                )
            for _, future in taken:
                if not future.done():
                    future.set_exception(failure)
            return
        self._on_commit([o.stored for o in outcomes if isinstance(o, Recorded) and not o.duplicate])
        start = 0
        for submitted, future in taken:
            if not future.done():
                future.set_result(outcomes[start : start + len(submitted)])
            start += len(submitted)


async def settle(future: Pending, timeout: float) -> list[Outcome]:
    """Wait for a submission's outcomes; Unavailable if its commit failed or took too long."""
    try:
        return await asyncio.wait_for(asyncio.shield(future), timeout)
    except TimeoutError as exc:
        raise Unavailable("the commit did not finish in time", reason="COMMIT_TIMEOUT") from exc


def merge(
    items: Sequence[tuple[T, Event | MeshError]], outcomes: Sequence[Outcome]
) -> list[tuple[T, Outcome]]:
    """Pair each item with its outcome: its own validation error, or the next commit outcome."""
    committed = iter(outcomes)
    return [(tag, item if isinstance(item, MeshError) else next(committed)) for tag, item in items]


MAX_ACK_GROUP = 1000
_END = object()


async def pipeline(
    ingestor: Ingestor,
    messages: AsyncIterator[list[tuple[T, Event | MeshError]]],
    *,
    window: int,
    commit_timeout: float,
) -> AsyncIterator[list[tuple[T, Outcome]]]:
    """Record a stream of messages of events, yielding outcomes in order as they become final.

    Each yielded list holds the outcomes of every message whose commit is done, in order (one
    message's at least), so acks travel in groups when busy. A reader task keeps submitting
    while earlier messages await their commit (at most ``window`` of them unacked), so a
    stream's events share transactions. A failed commit ends the stream with Unavailable so
    the producer sends again.
    """
    room = asyncio.Semaphore(window)
    entries: deque[Any] = deque()
    arrived = asyncio.Event()

    async def read() -> None:
        try:
            async for items in messages:
                await room.acquire()
                future = await ingestor.submit([i for _, i in items if isinstance(i, Event)])
                entries.append((items, future))
                arrived.set()
            entries.append(_END)
        except Exception as exc:  # the caller went away, or ingest refused: end the stream
            entries.append(exc)
        arrived.set()

    reader = asyncio.create_task(read())
    try:
        while True:
            while not entries:
                arrived.clear()
                await arrived.wait()
            entry = entries.popleft()
            if entry is _END:
                return
            if isinstance(entry, Exception):
                raise entry
            group = merge(entry[0], await settle(entry[1], commit_timeout))
            room.release()
            while (
                len(group) < MAX_ACK_GROUP
                and entries
                and isinstance(entries[0], tuple)
                and entries[0][1].done()
            ):
                items, future = entries.popleft()
                group.extend(merge(items, future.result()))
                room.release()
            yield group
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
