"""Group commit: one writer thread commits every event waiting, from every caller, together.

Whatever arrives while a commit is in progress (more messages of a stream, other streams, unary
calls) goes into the next transaction, so the cost of an fsync is shared by all of them and an
ack is only ever given for an event whose transaction has committed.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from audit.events import Event, Recorded
from audit.store import EventStore
from common.errors import MeshError, Unavailable

log = logging.getLogger("audit.ingest")

Outcome = Recorded | MeshError
"""What became of one event: its record, or the error the producer made (a conflicting id)."""
_Submission = tuple[Sequence[Event], "Future[list[Outcome]]"]
T = TypeVar("T")


class Ingestor:
    """Queues submissions for the writer thread; each gets a future resolved after its commit."""

    def __init__(
        self,
        store: EventStore,
        *,
        max_batch: int,
        queue_limit: int,
        on_commit: Callable[[int], None],
        enqueue_timeout: float = 30.0,
    ) -> None:
        self._store = store
        self._max_batch = max_batch
        self._on_commit = on_commit
        self._enqueue_timeout = enqueue_timeout
        self._queue: queue.Queue[_Submission | None] = queue.Queue(maxsize=queue_limit)
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="audit-commit", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, events: Sequence[Event]) -> Future[list[Outcome]]:
        """Queue ``events``, committed together and in order; one outcome each, in order.

        Raises Unavailable when closing or when the queue stays full (the log is overloaded).
        """
        future: Future[list[Outcome]] = Future()
        if not events:
            future.set_result([])
            return future
        with self._lock:
            if self._closed:
                raise Unavailable("the audit log is shutting down", reason="SHUTTING_DOWN")
        try:
            self._queue.put((events, future), timeout=self._enqueue_timeout)
        except queue.Full as exc:
            raise Unavailable(
                "the audit log is overloaded, retry later", reason="INGEST_OVERLOADED"
            ) from exc
        return future

    def close(self, timeout: float = 30.0) -> None:
        """Commit what is queued, then stop the writer thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout)
        late = Unavailable("the audit log is shutting down", reason="SHUTTING_DOWN")
        while True:
            try:
                submission = self._queue.get_nowait()
            except queue.Empty:
                return
            if submission is not None:
                submission[1].set_exception(late)

    def _run(self) -> None:
        while True:
            submission = self._queue.get()
            if submission is None:
                return
            taken = [submission]
            size = len(submission[0])
            stopping = False
            while size < self._max_batch:
                try:
                    following = self._queue.get_nowait()
                except queue.Empty:
                    break
                if following is None:
                    stopping = True
                    break
                taken.append(following)
                size += len(following[0])
            self._commit(taken)
            if stopping:
                return

    def _commit(self, taken: list[_Submission]) -> None:
        try:
            outcomes = self._store.append([event for events, _ in taken for event in events])
        except Exception:
            log.exception("commit failed", extra={"submissions": len(taken)})
            failure = Unavailable("the audit log could not commit, retry", reason="COMMIT_FAILED")
            for _, future in taken:
                future.set_exception(failure)
            return
        head = max(
            (o.stored.sequence for o in outcomes if isinstance(o, Recorded) and not o.duplicate),
            default=0,
        )
        if head:
            self._on_commit(head)
        start = 0
        for events, future in taken:
            future.set_result(outcomes[start : start + len(events)])
            start += len(events)


def settle(future: Future[list[Outcome]], timeout: float) -> list[Outcome]:
    """Wait for a submission's outcomes; Unavailable if its commit failed or took too long."""
    try:
        return future.result(timeout)
    except TimeoutError as exc:
        raise Unavailable("the commit did not finish in time", reason="COMMIT_TIMEOUT") from exc


def merge(
    items: Sequence[tuple[T, Event | MeshError]], outcomes: Sequence[Outcome]
) -> list[tuple[T, Outcome]]:
    """Pair each item with its outcome: its own validation error, or the next commit outcome."""
    committed = iter(outcomes)
    return [(tag, item if isinstance(item, MeshError) else next(committed)) for tag, item in items]


_END = object()
MAX_ACK_GROUP = 1000


def pipeline(
    ingestor: Ingestor,
    messages: Iterator[list[tuple[T, Event | MeshError]]],
    *,
    window: int,
    commit_timeout: float,
) -> Iterator[list[tuple[T, Outcome]]]:
    """Record a stream of messages of events, yielding outcomes in order as they become final.

    Each yielded list holds the outcomes of every message whose commit is done, in order (one
    message's at least), so acks travel in groups when busy. A reader thread keeps submitting
    while earlier messages await their commit (at most ``window`` of them unacked), so a
    stream's events share transactions. A failed commit ends the stream with Unavailable so
    the producer sends again.
    """
    pending: queue.Queue[Any] = queue.Queue(maxsize=window)
    stop = threading.Event()

    def hand_over(entry: Any) -> bool:
        while not stop.is_set():
            try:
                pending.put(entry, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for items in messages:
                future = ingestor.submit([i for _, i in items if isinstance(i, Event)])
                if not hand_over((items, future)):
                    return
            hand_over(_END)
        except Exception as exc:  # the caller went away, or ingest refused: end the stream
            hand_over(exc)

    reader = threading.Thread(target=read, name="audit-stream-reader", daemon=True)
    reader.start()
    carried: Any = None
    try:
        while True:
            entry, carried = carried, None
            while entry is None:
                try:
                    entry = pending.get(timeout=0.5)
                except queue.Empty:
                    continue  # an idle producer; the reader ends the stream when the caller does
            if entry is _END:
                return
            if isinstance(entry, Exception):
                raise entry
            group = merge(entry[0], settle(entry[1], commit_timeout))
            while len(group) < MAX_ACK_GROUP:
                try:
                    following = pending.get_nowait()
                except queue.Empty:
                    break
                if not isinstance(following, tuple) or not following[1].done():
                    carried = following
                    break
                group.extend(merge(following[0], settle(following[1], commit_timeout)))
            yield group
    finally:
        stop.set()
