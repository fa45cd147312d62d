"""A bounded buffer between a publisher and one open stream (a subscriber, a follower).

The publisher offers items without ever waiting, so one slow reader cannot hold up the rest.
When a reader falls ``capacity`` items behind, its stream is ended: the reader sees the items
buffered so far, then :class:`common.errors.ResourceExhausted`, and resumes from the last
item it got. A reader that stopped reading altogether cannot even take that error (its writes
are stuck in flow control), so its call is cancelled ``cutoff_seconds`` later.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

from common.errors import ResourceExhausted

T = TypeVar("T")

CUTOFF_SECONDS = 10.0


def fell_behind(after_sequence: int) -> ResourceExhausted:
    """What ends a stream whose reader fell too far behind: where to resume from."""
    return ResourceExhausted(
        "this stream fell too far behind; resume after the last sequence received",
        reason="STREAM_TOO_SLOW",
        metadata={"after_sequence": str(after_sequence)},
    )


class StreamBuffer(Generic[T]):
    """Items waiting for one stream; create it in the task that serves the stream."""

    def __init__(self, capacity: int, *, cutoff_seconds: float = CUTOFF_SECONDS) -> None:
        self._capacity = capacity
        self._cutoff_seconds = cutoff_seconds
        self._items: deque[T] = deque()
        self._ready = asyncio.Event()
        self._ended = False
        self._task = asyncio.current_task()
        self._cutoff: asyncio.TimerHandle | None = None
        self.overflowed = False

    def offer(self, item: T) -> None:
        """Queue ``item``; past the capacity, end the stream instead (without waiting)."""
        if self._ended:
            return
        if len(self._items) >= self._capacity:
            self.overflowed = True
            self.end()
            if self._task is not None:
                self._cutoff = asyncio.get_running_loop().call_later(
                    self._cutoff_seconds, self._task.cancel
                )
            return
        self._items.append(item)
        self._ready.set()

    def end(self) -> None:
        """No more items: the reader gets what is buffered, then the end."""
        self._ended = True
        self._ready.set()

    async def get(self) -> T | None:
        """The next item, or None once the buffer has ended and is empty."""
        while not self._items:
            if self._ended:
                return None
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    def close(self) -> None:
        """The stream is over: forget the items and any pending cut-off."""
        self._ended = True
        self._items.clear()
        if self._cutoff is not None:
            self._cutoff.cancel()
