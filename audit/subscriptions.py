"""Subscriptions: replay the log from a sequence, then follow it live, with no gap or repeat.

There is no separate "live" feed to splice onto the replay: a subscriber only ever reads
``sequence > cursor`` from the database, and a commit merely wakes it up. Sequences are assigned
in commit order under the write lock, so once every event up to the head has been read, nothing
below the head can appear later, and the cursor moves forward without skipping anything.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from audit.events import EventFilter, StoredEvent
from audit.store import EventStore


class CommitSignal:
    """The latest committed sequence, with a condition variable notified on every commit."""

    def __init__(self, head: int = 0) -> None:
        self._condition = threading.Condition()
        self._head = head
        self._closed = False

    def committed(self, sequence: int) -> None:
        with self._condition:
            if sequence > self._head:
                self._head = sequence
            self._condition.notify_all()

    def close(self) -> None:
        """Wake every waiter for good (the server is stopping)."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    def wake(self) -> None:
        """Wake every waiter to recheck its own stop condition (a subscriber went away)."""
        with self._condition:
            self._condition.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def wait_beyond(self, sequence: int, timeout: float, stop: threading.Event) -> None:
        """Return once the head is past ``sequence``, on close or ``stop``, or after ``timeout``."""
        with self._condition:
            self._condition.wait_for(
                lambda: self._head > sequence or self._closed or stop.is_set(), timeout
            )


def follow(
    store: EventStore,
    signal: CommitSignal,
    selection: EventFilter,
    *,
    after: int,
    stop: threading.Event,
    batch: int = 500,
    poll_seconds: float = 1.0,
) -> Iterator[StoredEvent]:
    """Matching events with ``sequence > after`` in order, until ``stop`` is set or the signal
    closes.

    ``stop`` is set (and the signal woken) when the call ends, so a subscriber that went away
    frees its thread and its slot at once. ``poll_seconds`` bounds each wait so that commits
    by other replicas sharing the database are seen too.
    """
    cursor = after
    while not stop.is_set() and not signal.closed:
        head = store.last_sequence()
        found = store.find(selection, after=cursor, before=head + 1, limit=batch)
        yield from found
        if len(found) == batch:
            cursor = found[-1].sequence
            continue
        cursor = max(cursor, head)
        signal.wait_beyond(cursor, poll_seconds, stop)
