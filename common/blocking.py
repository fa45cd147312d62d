"""A bounded thread pool for the work that would stall an event loop: SQL and password hashing.

Servers run on asyncio; a call that only reads memory (a cached token, an immutable commit)
stays on the loop, and anything that waits on a database or burns CPU in C hops here. The pool
is bounded, so a burst of slow calls queues instead of spawning threads, and the loop keeps
serving streams and in-memory calls meanwhile.

Each caller (:func:`common.origin.caller`) has a share of the threads: past it, its further
work waits on the loop, holding no thread, while other callers' work goes ahead. Otherwise one
reader starting as many slow scans as there are threads would make everyone else wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from common import origin
from common.config import RuntimeSettings

P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class _Share:
    """One caller's threads: its semaphore, and how many of its calls hold or await it.

    A call given up while its thread works still holds it.
    """

    threads: asyncio.Semaphore
    calls: int = field(default=0)


class Blocking:
    """Runs blocking callables off the event loop, at most ``threads`` at a time.

    At most ``per_caller`` of them for one caller (all of them by default).
    """

    def __init__(
        self, threads: int, *, per_caller: int | None = None, name: str = "blocking"
    ) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        self._per_caller = threads if per_caller is None else min(per_caller, threads)
        self._shared = self._per_caller < threads
        self._shares: dict[str, _Share] = {}

    @classmethod
    def of(cls, runtime: RuntimeSettings) -> Blocking:
        """The pool a server of these settings runs its blocking work in."""
        return cls(runtime.blocking_threads, per_caller=runtime.blocking_per_caller)

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` in the pool, with the caller's context variables.

        A caller that gives up (cancels, or its deadline passes) stops waiting at once, but a
        thread cannot be stopped: its share is given back only when the thread is done (or
        the work is dropped before it started). Otherwise cancelling and asking again would
        let one caller hold every thread.
        """
        context = contextvars.copy_context()
        call = functools.partial(context.run, fn, *args, **kwargs)
        caller = origin.caller()
        loop = asyncio.get_running_loop()
        if not (self._shared and caller):
            return await loop.run_in_executor(self._pool, call)
        share = self._shares.get(caller)
        if share is None:
            share = self._shares[caller] = _Share(asyncio.Semaphore(self._per_caller))
        share.calls += 1
        try:
            await share.threads.acquire()
        except BaseException:
            self._leave(caller, share, holding=False)
            raise
        try:
            work = self._pool.submit(call)
        except BaseException:
            self._leave(caller, share, holding=True)
            raise
        work.add_done_callback(lambda _: _on_loop(loop, self._leave, caller, share, holding=True))
        return await asyncio.wrap_future(work, loop=loop)

    def _leave(self, caller: str, share: _Share, *, holding: bool) -> None:
        if holding:
            share.threads.release()
        share.calls -= 1
        if not share.calls:
            del self._shares[caller]

    def close(self) -> None:
        """Let running work finish, and accept no more."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def _on_loop(
    loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: Any, **kwargs: Any
) -> None:
    """Run ``fn`` on ``loop`` from any thread; nothing once the loop is closed."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(functools.partial(fn, *args, **kwargs))
