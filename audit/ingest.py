"""Group commit: one writer thread commits every event waiting, from every caller, together.

Whatever arrives while a commit is in progress (more events of a stream, other streams, unary
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

_Item = tuple[Event, "Future[Recorded]"]
T = TypeVar("T")


class Ingestor:
    """Queues events for the writer thread; each gets a future resolved after its commit."""

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
        self._queue: queue.Queue[_Item | None] = queue.Queue(maxsize=queue_limit)
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="audit-commit", daemon=True)
        self.transactions = 0
        self.committed = 0
        """Counters for benchmarks and logs: transactions run and new events they stored."""

    def start(self) -> None:
        self._thread.start()

    def submit(self, events: Sequence[Event]) -> list[Future[Recorded]]:
        """Queue ``events`` in order; Unavailable when closed or when the queue stays full."""
        futures: list[Future[Recorded]] = []
        for event in events:
            future: Future[Recorded] = Future()
            with self._lock:
                if self._closed:
                    raise Unavailable("the audit log is shutting down", reason="SHUTTING_DOWN")
            try:
                self._queue.put((event, future), timeout=self._enqueue_timeout)
            except queue.Full as exc:
                raise Unavailable(
                    "the audit log is overloaded, retry later", reason="INGEST_OVERLOADED"
                ) from exc
            futures.append(future)
        return futures

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
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                item[1].set_exception(late)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            stopping = False
            while len(batch) < self._max_batch:
                try:
                    following = self._queue.get_nowait()
                except queue.Empty:
                    break
                if following is None:
                    stopping = True
                    break
                batch.append(following)
            self._commit(batch)
            if stopping:
                return

    def _commit(self, batch: list[_Item]) -> None:
        try:
            outcomes = self._store.append([event for event, _ in batch])
        except Exception:
            log.exception("commit failed", extra={"events": len(batch)})
            failure = Unavailable("the audit log could not commit, retry", reason="COMMIT_FAILED")
            for _, future in batch:
                future.set_exception(failure)
            return
        self.transactions += 1
        head = 0
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, MeshError):
                future.set_exception(outcome)
                continue
            if not outcome.duplicate:
                self.committed += 1
                head = max(head, outcome.stored.sequence)
            future.set_result(outcome)
        if head:
            self._on_commit(head)


_END = object()


def pipeline(
    ingestor: Ingestor,
    items: Iterator[tuple[T, Event | MeshError]],
    *,
    window: int,
    commit_timeout: float,
) -> Iterator[tuple[T, Recorded | MeshError]]:
    """Record a stream of events, yielding each outcome in order once it is final.

    A reader thread keeps submitting while earlier events await their commit (at most
    ``window`` unacked), so one stream's events share transactions. An event the caller got
    wrong (invalid, conflicting id) yields its error; a failed commit ends the stream with
    Unavailable so the producer retries it.
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
            for tag, item in items:
                entry = item if isinstance(item, MeshError) else ingestor.submit([item])[0]
                if not hand_over((tag, entry)):
                    return
            hand_over(_END)
        except Exception as exc:  # the caller went away, or ingest refused: end the stream
            hand_over(exc)

    reader = threading.Thread(target=read, name="audit-stream-reader", daemon=True)
    reader.start()
    try:
        while True:
            try:
                entry = pending.get(timeout=0.5)
            except queue.Empty:
                continue  # an idle producer; the reader ends the stream when the caller does
            if entry is _END:
                return
            if isinstance(entry, Exception):
                raise entry
            tag, outcome = entry
            if isinstance(outcome, Future):
                outcome = settle(outcome, commit_timeout)
            yield tag, outcome
    finally:
        stop.set()


def settle(future: Future[Recorded], timeout: float) -> Recorded | MeshError:
    """The outcome of one event: its record, or the error the caller made (raised otherwise)."""
    try:
        return future.result(timeout)
    except TimeoutError as exc:
        raise Unavailable("the commit did not finish in time", reason="COMMIT_TIMEOUT") from exc
    except Unavailable:
        raise
    except MeshError as exc:
        return exc
