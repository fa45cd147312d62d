"""Refused calls, reported as events at a bounded rate.

The interceptor hands every call it answers PERMISSION_DENIED, or UNAUTHENTICATED where the
method needs a token, to a :class:`DenialLog`. Each is an attempt someone made, so each is
recorded; but recording one costs a transaction, and a caller must not be able to fill a
service's outbox (or the audit log) by repeating a refused call. So denials are aggregated per
(actor, method): the first in a window is reported at once, the rest of that window are counted
and reported together in one event when it closes, with ``count`` saying how many it stands
for. Every refusal is counted and at most two events per (actor, method) and window are
written. Callers without a valid token are one actor (``""``), so a flood of anonymous calls
costs a few events per method and window, however many connections or addresses it uses;
the keys held are bounded too (the oldest window is closed and reported early).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from common import times
from common.blocking import Blocking
from common.outbox import OutboxEvent

log = logging.getLogger("mesh.denials")

MAX_KEYS = 10_000
"""Most (actor, method) windows held open at once."""


@dataclass(frozen=True)
class Denial:
    """Refused calls of one actor to one method: the last one's details and how many."""

    method: str
    code: str
    reason: str
    actor: str
    client_address: str
    count: int
    first_ns: int
    last_ns: int


Report = Callable[[Denial], Awaitable[None]]


@dataclass
class _Window:
    """One (actor, method)'s period: when it opened, and the refusals not yet reported."""

    opened: float
    pending: int = 0
    first_ns: int = 0
    last: Denial | None = None


class DenialLog:
    """Reports denials through ``report``, at most twice per (actor, method) and window."""

    def __init__(
        self,
        report: Report,
        *,
        window_seconds: float,
        max_keys: int = MAX_KEYS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._report = report
        self._window = window_seconds
        self._max_keys = max_keys
        self._monotonic = monotonic
        self._open: OrderedDict[tuple[str, str], _Window] = OrderedDict()
        self._opened = asyncio.Event()

    async def denied(
        self, *, method: str, code: str, reason: str, actor: str, client_address: str
    ) -> None:
        """Count one refusal; report it now if it opens a window (it waits for the write)."""
        now, moment = self._monotonic(), times.now()
        key = (actor, method)
        window = self._open.get(key)
        denial = Denial(method, code, reason, actor, client_address, 1, moment, moment)
        if window is not None and now - window.opened < self._window:
            if not window.pending:
                window.first_ns = moment
            window.pending += 1
            window.last = denial
            return
        closing = [self._open.pop(key)] if window is not None else []
        self._open[key] = _Window(opened=now)
        self._opened.set()
        while len(self._open) > self._max_keys:
            closing.append(self._open.popitem(last=False)[1])
        await self._close(closing)
        await self._safely(denial)

    async def flush(self, *, everything: bool = False) -> None:
        """Report the counts of the windows that have closed (all of them, ``everything``)."""
        now = self._monotonic()
        closed = [
            key
            for key, window in self._open.items()
            if everything or now - window.opened >= self._window
        ]
        await self._close([self._open.pop(key) for key in closed])

    async def run(self) -> None:
        """Close windows as they end, so a burst's count is reported without a later call.

        Asleep while no window is open: an idle server never wakes for it.
        """
        while True:
            await self._opened.wait()
            await asyncio.sleep(self._window)
            await self.flush()
            if not self._open:
                self._opened.clear()

    async def close(self) -> None:
        """Report every count still held (the server is stopping)."""
        await self.flush(everything=True)

    async def _close(self, windows: list[_Window]) -> None:
        for window in windows:
            if window.pending and window.last is not None:
                last = window.last
                await self._safely(
                    Denial(
                        last.method,
                        last.code,
                        last.reason,
                        last.actor,
                        last.client_address,
                        window.pending,
                        window.first_ns,
                        last.last_ns,
                    )
                )

    async def _safely(self, denial: Denial) -> None:
        """The refusal stands whether or not its record could be written; the log says so."""
        try:
            await self._report(denial)
        except Exception:
            log.exception("cannot record a refused call", extra={"method": denial.method})


def denial_event(denial: Denial, *, service: str) -> OutboxEvent:
    """The ``<service>.call.denied`` event of a denial."""
    return OutboxEvent(
        type=f"{service}.call.denied",
        subject=f"rpcs{denial.method}",
        actor=denial.actor,
        time_ns=denial.last_ns,
        client_address=denial.client_address,
        data={
            "method": denial.method,
            "code": denial.code,
            "reason": denial.reason,
            "count": denial.count,
            "first_time": times.to_rfc3339(denial.first_ns),
        },
    )


def outbox_report(
    write: Callable[[OutboxEvent], None], *, service: str, blocking: Blocking
) -> Report:
    """A report writing each denial's event with ``write`` (its own transaction) in the pool."""

    async def report(denial: Denial) -> None:
        await blocking.run(write, denial_event(denial, service=service))

    return report
