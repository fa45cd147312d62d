"""The blocking pool: each caller's work takes at most its share of the threads."""

from __future__ import annotations

import asyncio
import contextvars
import threading

from common import origin
from common.blocking import Blocking


def test_a_caller_past_its_share_waits_while_others_go_ahead() -> None:
    blocking = Blocking(4, per_caller=2)
    running: dict[str, int] = {"user alice": 0, "user bob": 0}
    most: dict[str, int] = {"user alice": 0, "user bob": 0}
    lock = threading.Lock()
    release = threading.Event()

    def work(caller: str) -> str:
        with lock:
            running[caller] += 1
            most[caller] = max(most[caller], running[caller])
        release.wait(10)
        with lock:
            running[caller] -= 1
        return caller

    async def as_caller(username: str) -> str:
        origin.serve_caller(username)
        return await blocking.run(work, f"user {username}")

    async def scenario() -> list[str]:
        alice = [
            asyncio.create_task(as_caller("alice"), context=contextvars.Context()) for _ in range(5)
        ]
        await asyncio.sleep(0.2)
        assert running["user alice"] == 2  # her other three wait, holding no thread
        bob = asyncio.create_task(as_caller("bob"), context=contextvars.Context())
        for _ in range(100):
            if running["user bob"]:
                break
            await asyncio.sleep(0.01)
        assert running["user bob"] == 1  # a thread was still free for him
        release.set()
        return await asyncio.gather(*alice, bob)

    try:
        done = asyncio.run(scenario())
    finally:
        blocking.close()
    assert sorted(done) == ["user alice"] * 5 + ["user bob"]
    assert most == {"user alice": 2, "user bob": 1}


def test_work_outside_a_call_and_a_pool_without_shares_are_not_held_back() -> None:
    release = threading.Event()
    started = threading.Semaphore(0)

    def work() -> None:
        started.release()
        release.wait(10)

    async def scenario(blocking: Blocking, username: str | None) -> None:
        async def one() -> None:
            if username is not None:
                origin.serve_caller(username)
            await blocking.run(work)

        tasks = [asyncio.create_task(one(), context=contextvars.Context()) for _ in range(3)]
        for _ in range(3):
            assert await asyncio.to_thread(started.acquire, True, 5)
        release.set()
        await asyncio.gather(*tasks)
        release.clear()

    for blocking, username in ((Blocking(3, per_caller=1), None), (Blocking(3), "alice")):
        try:
            asyncio.run(scenario(blocking, username))
        finally:
            blocking.close()


def test_work_its_caller_gave_up_keeps_the_callers_share_until_its_thread_is_done() -> None:
    """Cancelling and asking again must not let one caller take every thread."""
    blocking = Blocking(3, per_caller=1)
    first_done = threading.Event()
    started: list[str] = []

    def slow() -> None:
        started.append("slow")
        first_done.wait(10)

    def quick(name: str) -> str:
        started.append(name)
        return name

    async def as_caller(username: str, fn, *args):
        origin.serve_caller(username)
        return await blocking.run(fn, *args)

    async def scenario() -> None:
        gave_up = asyncio.create_task(as_caller("alice", slow), context=contextvars.Context())
        while "slow" not in started:
            await asyncio.sleep(0.01)
        gave_up.cancel()
        again = asyncio.create_task(
            as_caller("alice", quick, "alice again"), context=contextvars.Context()
        )
        assert await as_caller("bob", quick, "bob") == "bob"  # others go ahead meanwhile
        await asyncio.sleep(0.2)
        assert gave_up.cancelled()
        assert "alice again" not in started  # her share is still at work for the call she left
        first_done.set()
        assert await asyncio.wait_for(again, 5) == "alice again"
        assert blocking._shares == {}

    try:
        asyncio.run(scenario())
    finally:
        first_done.set()
        blocking.close()
