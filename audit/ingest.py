"""Group commit: one writer commits every event waiting, from every caller, together.

Whatever arrives while a commit is in progress (more messages of a stream, other streams, unary
calls) goes into the next transaction, so the cost of an fsync is shared by all of them and an
ack is only ever given for an event whose transaction has committed.

The writer is two stages on the server's loop, each running its work in the blocking pool:
one validates what waits while the other commits what was validated before, so parsing the
next events overlaps the current commit's inserts and fsync, which run without holding the
interpreter. Parsing on the loop instead made the loop and the committing thread take turns
for the interpreter, which measured slower.
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
from common import times, tracing
from common.blocking import Blocking
from common.errors import MeshError, Unavailable

log = logging.getLogger("mesh.audit.ingest")

Outcome = Recorded | MeshError
"""What became of one event: its record, or the error the producer made (invalid, or a
conflicting id)."""
Prepare = Callable[[], Sequence[Event | MeshError]]
"""Validates a submission, in the writer's thread: each item's event, or why it is refused."""
Pending = asyncio.Future[list[Outcome]]
_Submission = tuple[Prepare, int, Pending]
T = TypeVar("T")


def _shutting_down() -> Unavailable:
    return Unavailable("the audit log is shutting down", reason="SHUTTING_DOWN")


_Validated = tuple[list[_Submission], list[Sequence[Event | MeshError]]]


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
        self._validated: asyncio.Queue[_Validated | None] = asyncio.Queue(maxsize=2)
        self._closed = False
        self._stages: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start the writer's two stages on the running loop."""
        self._stages = [
            asyncio.create_task(self._validate(), name="audit-validate"),
            asyncio.create_task(self._commit_validated(), name="audit-commit"),
        ]

    async def submit(self, prepare: Prepare, size: int) -> Pending:
        """Queue the ``size`` items ``prepare`` validates, committed together and in order.

        The result holds one outcome per item, in order.

        Raises Unavailable when closing, or when the queue stays full (the log is overloaded).
        """
        future: Pending = asyncio.get_running_loop().create_future()
        if self._closed:
            raise _shutting_down()
        submission = (prepare, size, future)
        try:
            self._queue.put_nowait(submission)
        except asyncio.QueueFull:
            try:
                await asyncio.wait_for(self._queue.put(submission), self._enqueue_timeout)
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
        if self._stages:
            await self._queue.put(None)
            await asyncio.gather(*self._stages)
        while not self._queue.empty():
            submission = self._queue.get_nowait()
            if submission is not None:
                _fail([submission], _shutting_down())

    async def _validate(self) -> None:
        """Stage one: validate the waiting submissions (up to a batch) in the pool."""
        try:
            stopping = False
            while not stopping:
                taken, stopping = await self._take()
                if not taken:
                    continue
                try:
                    validated = await self._blocking.run(_validate, taken)
                except Exception:
                    log.exception("validation failed", extra={"submissions": len(taken)})
                    _fail(taken, Unavailable("the audit log could not commit, retry"))
                    continue
                await self._validated.put((taken, validated))
        finally:
            await self._validated.put(None)

    async def _take(self) -> tuple[list[_Submission], bool]:
        """The next submissions, as many as a batch holds; and whether the writer must stop."""
        submission = await self._queue.get()
        if submission is None:
            return [], True
        taken = [submission]
        size = submission[1]
        while size < self._max_batch and not self._queue.empty():
            following = self._queue.get_nowait()
            if following is None:
                return taken, True
            taken.append(following)
            size += following[1]
        return taken, False

    async def _commit_validated(self) -> None:
        """Stage two: commit what stage one validated, one transaction for all that waits."""
        stopping = False
        while not stopping:
            first = await self._validated.get()
            if first is None:
                return
            group = [first]
            size = sum(s[1] for s in first[0])
            while size < self._max_batch and not self._validated.empty():
                following = self._validated.get_nowait()
                if following is None:
                    stopping = True
                    break
                group.append(following)
                size += sum(s[1] for s in following[0])
            await self._commit(
                [s for taken, _ in group for s in taken],
                [items for _, validated in group for items in validated],
            )

    async def _commit(
        self, taken: list[_Submission], validated: list[Sequence[Event | MeshError]]
    ) -> None:
        started_ns = times.now()
        try:
            results = await self._blocking.run(self._append, validated)
        except Exception as exc:
            if isinstance(exc, MeshError):
                failure = exc  # the storage refused (full disk, read-only): say so
            else:
                log.exception("commit failed", extra={"submissions": len(taken)})
                failure = Unavailable(
                    "the audit log could not commit, retry", reason="COMMIT_FAILED"
                )
            _fail(taken, failure)
            return
        committed = [
            o.stored
            for outcomes in results
            for o in outcomes
            if isinstance(o, Recorded) and not o.duplicate
        ]
        self._on_commit(committed)
        if tracing.enabled():
            _trace_appends(committed, started_ns, times.now())
        for (*_, future), outcomes in zip(taken, results, strict=True):
            if not future.done():
                future.set_result(outcomes)

    def _append(self, validated: list[Sequence[Event | MeshError]]) -> list[list[Outcome]]:
        """Commit the valid events of every submission in one transaction; outcomes by item."""
        stored = iter(
            self._store.append([i for items in validated for i in items if isinstance(i, Event)])
        )
        return [
            [item if isinstance(item, MeshError) else next(stored) for item in items]
            for items in validated
        ]


def _trace_appends(committed: Sequence[StoredEvent], start_ns: int, end_ns: int) -> None:
    """Each event's commit as a span of the trace of the change it records (its traceparent)."""
    for stored in committed:
        event = stored.event
        tracing.record(
            "audit.append",
            parent=event.traceparent,
            start_ns=start_ns,
            end_ns=end_ns,
            kind=tracing.SpanKind.CONSUMER,
            attributes={
                **tracing.event_attributes(event_id=event.id, source=event.source, type=event.type),
                "mesh.audit_sequence": stored.sequence,
            },
        )


def _validate(taken: list[_Submission]) -> list[Sequence[Event | MeshError]]:
    return [prepare() for prepare, *_ in taken]


def _fail(taken: list[_Submission], failure: MeshError) -> None:
    for *_, future in taken:
        if not future.done():
            future.set_exception(failure)


async def settle(future: Pending, timeout: float) -> list[Outcome]:
    """Wait for a submission's outcomes; Unavailable if its commit failed or took too long."""
    try:
        return await asyncio.wait_for(asyncio.shield(future), timeout)
    except TimeoutError as exc:
        raise Unavailable("the commit did not finish in time", reason="COMMIT_TIMEOUT") from exc


MAX_ACK_GROUP = 1000
_END = object()


async def pipeline(
    ingestor: Ingestor,
    messages: AsyncIterator[tuple[list[T], Prepare]],
    *,
    window: int,
    commit_timeout: float,
) -> AsyncIterator[list[tuple[T, Outcome]]]:
    """Record a stream of messages, yielding each item with its outcome as they become final.

    Each message is its items and how to validate them; items are yielded in order.

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
            async for tags, prepare in messages:
                await room.acquire()
                entries.append((tags, await ingestor.submit(prepare, len(tags))))
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
            group = list(zip(entry[0], await settle(entry[1], commit_timeout), strict=True))
            room.release()
            while (
                len(group) < MAX_ACK_GROUP
                and entries
                and isinstance(entries[0], tuple)
                and entries[0][1].done()
            ):
                tags, future = entries.popleft()
                group.extend(zip(tags, future.result(), strict=True))
                room.release()
            yield group
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
