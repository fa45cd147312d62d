"""A bounded thread pool for the work that would stall an event loop: SQL and password hashing.

Servers run on asyncio; a call that only reads memory (a cached token, an immutable commit)
stays on the loop, and anything that waits on a database or burns CPU in C hops here. The pool
is bounded, so a burst of slow calls queues instead of spawning threads, and the loop keeps
serving streams and in-memory calls meanwhile.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class Blocking:
    """Runs blocking callables off the event loop, at most ``threads`` at a time."""

    def __init__(self, threads: int, *, name: str = "blocking") -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` in the pool, with the caller's context variables."""
        context = contextvars.copy_context()
        call = functools.partial(context.run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    def close(self) -> None:
        """Let running work finish, and accept no more."""
        self._pool.shutdown(wait=True, cancel_futures=True)
