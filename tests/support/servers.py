"""Real servers and background work of the mesh in the test process, each on a loop of its own.

Tests talk to a server with blocking clients over a real port, as other processes would; the
server keeps serving from its own thread meanwhile. ``run`` executes a coroutine on that loop,
for the few tests that reach into running objects (say, to count a server's open streams).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

from common.server import MeshServer

T = TypeVar("T")


class LoopThread:
    """An event loop running in a daemon thread until closed."""

    def __init__(self, *, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Awaitable[T]) -> T:
        """Run ``coroutine`` on the loop and wait for its result."""
        return self.spawn(coroutine).result(self.timeout)

    def spawn(self, coroutine: Awaitable[T]) -> concurrent.futures.Future[T]:
        """Start ``coroutine`` on the loop; cancel the returned future to cancel it."""

        async def wrapped() -> T:
            return await coroutine

        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop)

    def call(self, fn: Callable[[], T]) -> T:
        """Call ``fn`` on the loop (to build or read objects that belong to it)."""

        async def wrapped() -> T:
            return fn()

        return self.run(wrapped())

    def close(self) -> None:
        if self.loop.is_closed():
            return

        async def cancel_the_rest() -> None:
            current = asyncio.current_task()
            rest = [t for t in asyncio.all_tasks() if t is not current]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
            self.run(cancel_the_rest())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(self.timeout)
        self.loop.close()


class RunningServer(LoopThread):
    """A started :class:`MeshServer` on a loop of its own; stop it once."""

    def __init__(self, build: Callable[[], MeshServer], *, timeout: float = 30.0) -> None:
        super().__init__(timeout=timeout)
        self._stopped = False

        async def start() -> MeshServer:
            server = build()
            await server.start()
            return server

        try:
            self.server = self.run(start())
        except BaseException:
            self.close()
            raise

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    def stop(self, grace: float = 0) -> None:
        if self._stopped:
            return
        self._stopped = True
        try:
            self.run(self.server.stop(grace))
        finally:
            self.close()


@contextlib.contextmanager
def running(build: Callable[[], MeshServer]) -> Iterator[RunningServer]:
    """A server for the ``with`` block, stopped at its end."""
    server = RunningServer(build)
    try:
        yield server
    finally:
        server.stop()


class Background(LoopThread):
    """Background work (a relay, a follower) built and run on a loop of its own."""

    def __init__(self, build: Callable[[], Any], work: Callable[[Any], Awaitable[None]]) -> None:
        super().__init__()
        self.subject = self.call(build)
        self._task = self.spawn(work(self.subject))

    def stop(self) -> None:
        self._task.cancel()
        self.close()
